/**
 * `kubegrace/socket.io`: `kg.use(socketIo(io))` for a `socket.io` 4 server. It drains the engine.io
 * sessions under it (drain/socket-io.ts): long-polling ones closed when the shutdown begins,
 * WebSockets kept through the propagation wait and closed over `drain.pacingWindowMs` in the drain,
 * each after the packets the server had emitted are flushed, so the client is told `transport close`
 * and reconnects, with its own backoff, through the Service to another pod. It attaches
 * `io.httpServer` (`kg.attach`) unless told the app attaches it itself.
 *
 * New sessions feed the adaptive propagation wait; paced closes count in
 * `kubegrace_paced_closes_total{protocol="socket_io"}`.
 *
 * Structural types, no import of socket.io: the app's own copy is the only one, and importing this
 * entry point loads nothing.
 */
import { invalidOption, KubegraceError } from '../errors.js';
import { defineIntegration, type Host, type Integration } from '../host.js';
import type { Kubegrace } from '../kubegrace.js';
import { createSocketIoDrainer, type EngineSocketLike, type SocketIoServerLike } from '../drain/socket-io.js';
import { createSettingReader } from '../settings.js';

export type { EngineSocketLike } from '../drain/socket-io.js';

/**
 * What `socketIo(io)` needs of a Socket.IO `Server`: its engine.io server, and its HTTP server when
 * it attaches it. Every socket.io 4 `Server` bound to an HTTP server fits. (The engine's session map,
 * `clients`, is read too; engine.io types it protected, so it is not spelled out here.)
 */
export interface SocketIoLike {
  readonly engine: {
    on(event: 'connection', listener: (socket: EngineSocketLike) => void): unknown;
    off(event: 'connection', listener: (socket: EngineSocketLike) => void): unknown;
  };
  /** Set by `new Server(httpServer)`, `io.attach()` and `io.listen()`. */
  readonly httpServer?: Parameters<Kubegrace['attach']>[0];
}

export interface SocketIoOptions {
  /**
   * Drain `io.httpServer` (`kg.attach`). `false` when the app attaches that server itself (it serves
   * an express or fastify app too): kubegrace must drain it either way. @default true
   */
  readonly attach?: boolean;
  /** Names the server in logs and the summary. @default 'socket.io' */
  readonly name?: string;
}

export interface SocketIoHandle {
  /** Engine.io sessions open now. */
  readonly sessions: number;
  /** Stop draining the sessions (and the HTTP server, when `socketIo` attached it). */
  detach(): void;
}

/** A socket.io server for `kg.use()`: options are checked here, at once. Use it after `new Server(httpServer)`. */
export function socketIo(io: SocketIoLike, options: SocketIoOptions = {}): Integration<SocketIoHandle> {
  const engine =
    typeof io === 'object' && io !== null ? (io as Partial<SocketIoServerLike>).engine : undefined;
  if (
    typeof engine !== 'object' ||
    engine === null ||
    typeof engine.clients !== 'object' ||
    typeof engine.on !== 'function' ||
    typeof engine.off !== 'function'
  ) {
    throw invalidOption(
      'socketIo(io)',
      'a socket.io Server bound to its HTTP server (new Server(httpServer), or after io.attach())',
      io,
    );
  }
  const read = createSettingReader({});
  read.object('socketIo options', options, 'an object', ['attach', 'name']);
  const attach = read.boolean('attach', options.attach, undefined) ?? true;
  const name = read.string('name', options.name, undefined) ?? 'socket.io';
  const server = io.httpServer;
  if (attach && (typeof server !== 'object' || server === null)) {
    throw invalidOption(
      'socketIo attach',
      'false when io has no httpServer (io.httpServer is set by new Server(httpServer) and io.attach())',
      server,
    );
  }
  return defineIntegration(`socket.io:${name}`, (host) => install(host, io, { attach, name }));
}

function install(host: Host, io: SocketIoLike, options: { attach: boolean; name: string }): SocketIoHandle {
  let detachServer: (() => void) | undefined;
  if (options.attach) {
    try {
      detachServer = host.attach(io.httpServer as Parameters<Kubegrace['attach']>[0], {
        name: `${options.name}-http`,
      });
    } catch (error) {
      if (error instanceof KubegraceError && error.code === 'ERR_KUBEGRACE_INVALID_STATE') {
        throw new KubegraceError(
          'ERR_KUBEGRACE_INVALID_STATE',
          `socketIo(io): io.httpServer is already attached (kg.attach or another integration); ` +
            'pass { attach: false } to leave it to that one',
          { option: 'attach', cause: error },
        );
      }
      throw error;
    }
  }
  const drainer = createSocketIoDrainer(io as unknown as SocketIoServerLike, {
    name: options.name,
    observer: host.observer,
    pacing: { windowMs: host.settings.drain.pacingWindowMs, budgetMs: host.settings.drain.timeoutMs },
  });
  // A new session is traffic still arriving: the adaptive propagation wait must see it.
  const onConnection = (_socket: EngineSocketLike): void => host.noteConnection();
  io.engine.on('connection', onConnection);
  const removeParticipant = host.addParticipant(drainer);
  let detached = false;
  return {
    get sessions() {
      return drainer.sessions;
    },
    detach() {
      if (detached) return;
      detached = true;
      removeParticipant();
      io.engine.off('connection', onConnection);
      drainer.detach();
      detachServer?.();
    },
  };
}
