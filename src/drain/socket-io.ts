/**
 * The drainer for a Socket.IO server (`kg.use(socketIo(io))`, kubegrace/socket.io): it works on the engine.io
 * connections under it. In the drain each is closed the way engine.io closes a session itself —
 * after its buffered packets are flushed, so no message the server emitted is lost — and the
 * client, told `transport close`, reconnects (with its own backoff) through the Service to another
 * pod. A `disconnect()` of the Socket.IO socket would instead tell the client not to reconnect.
 *
 * Long-polling sessions are closed when the shutdown begins (`unready`): from then on every HTTP/1
 * response carries `Connection: close`, so each poll comes on a new connection, which the Service
 * sends to another pod once the endpoint is gone, where the session id is unknown (a transport
 * error). Closed at once, their pending poll carries the close and the client's next handshake goes
 * wherever the Service sends it. New polling sessions during the shutdown are closed at once. A
 * session with no poll pending needs the client's next poll to reach this pod: one still not closed
 * when the drain begins (after the propagation wait, its polls go elsewhere) is dropped and counted
 * as forced, rather than holding the drain to its budget.
 * WebSocket sessions are one TCP connection each, kept through the propagation wait and paced in
 * the drain (pacer.ts); the ones opened during the drain are closed at once. At the signal what is
 * left is closed without flushing and counted as forced.
 *
 * `socket.io` is an optional peer: only structural types here.
 */
import type { Participant, PhaseContext } from '../lifecycle.js';
import { createNotifier, settle } from '../wait.js';
import type { DrainObserver } from './observer.js';
import { createPacer, type PacingOptions } from './pacer.js';

/** The part of an engine.io `Socket` kubegrace uses. */
export interface EngineSocketLike {
  readonly readyState: string;
  /** `shouldClose`: engine.io's polling transport keeps here the close that waits for the next poll. */
  readonly transport?: { readonly name?: string; shouldClose?: (() => void) | null };
  close(discard?: boolean): unknown;
  once(event: 'close', listener: () => void): unknown;
}

/** The part of a Socket.IO `Server` kubegrace uses: its engine.io server. */
export interface SocketIoServerLike {
  readonly engine: {
    readonly clients: Readonly<Record<string, EngineSocketLike>>;
    on(event: 'connection', listener: (socket: EngineSocketLike) => void): unknown;
    off(event: 'connection', listener: (socket: EngineSocketLike) => void): unknown;
  };
}

export interface SocketIoDrainer extends Participant {
  /** Engine.io sessions open now. */
  readonly sessions: number;
  detach(): void;
}

export interface SocketIoDrainerOptions {
  /** Participant name. @default 'socket.io' */
  readonly name?: string;
  readonly observer?: DrainObserver;
  readonly pacing?: PacingOptions;
}

export function createSocketIoDrainer(
  io: SocketIoServerLike,
  options: SocketIoDrainerOptions = {},
): SocketIoDrainer {
  const { observer } = options;
  const engine = io.engine;
  const pacer = createPacer(options.pacing ?? { windowMs: 0, budgetMs: 0 });
  const changed = createNotifier();
  let draining: Promise<void> | undefined;
  let stage: 'serving' | 'unready' | 'draining' = 'serving';
  let attached = true;
  /** Polling sessions told to close in unready: the close waits for their next poll. */
  const pollingClosed = new Set<EngineSocketLike>();
  /** Polling sessions opened during unready and closed at once. */
  const openedClosing = new Set<EngineSocketLike>();

  /**
   * Close without flushing. `close(true)` does nothing to a polling session whose close already
   * waits for a poll (engine.io would hold it for 30 s): that close is run now instead.
   */
  function drop(socket: EngineSocketLike): void {
    const transport = socket.transport;
    const pending = transport?.shouldClose;
    if (transport !== undefined && typeof pending === 'function') {
      transport.shouldClose = null;
      pending();
    } else socket.close(true);
  }

  const isPolling = (socket: EngineSocketLike): boolean => socket.transport?.name === 'polling';
  const open = (): EngineSocketLike[] =>
    Object.values(engine.clients).filter((s) => s.readyState === 'open' || s.readyState === 'opening');

  function onConnection(socket: EngineSocketLike): void {
    socket.once('close', () => changed.notify());
    if (stage === 'unready' && isPolling(socket)) {
      // Nothing of the app's is buffered yet: if its next poll goes elsewhere, drop it at the drain.
      openedClosing.add(socket);
      socket.once('close', () => openedClosing.delete(socket));
      socket.close();
    } else if (stage === 'draining') socket.close();
  }
  engine.on('connection', onConnection);
  for (const socket of Object.values(engine.clients)) socket.once('close', () => changed.notify());

  function closeSession(socket: EngineSocketLike, step: 'paced' | 'window_end'): boolean {
    if (socket.readyState !== 'open') return false;
    observer?.pacedClose?.('socket_io', step);
    socket.close();
    return true;
  }

  function unready(): void {
    if (stage !== 'serving') return;
    stage = 'unready';
    for (const socket of open()) {
      if (!isPolling(socket)) continue;
      pollingClosed.add(socket);
      socket.once('close', () => pollingClosed.delete(socket));
      closeSession(socket, 'window_end');
    }
  }

  function drain(ctx: PhaseContext): Promise<void> {
    draining ??= startDrain(ctx);
    return draining;
  }

  async function startDrain(ctx: PhaseContext): Promise<void> {
    // Told to close in an unready phase before this one, and still waiting for a poll.
    const stranded = [...pollingClosed].filter((s) => Object.values(engine.clients).includes(s));
    pollingClosed.clear();
    for (const socket of openedClosing) drop(socket);
    openedClosing.clear();
    unready();
    stage = 'draining';
    if (stranded.length > 0) {
      for (const socket of stranded) drop(socket);
      ctx.reportForced(stranded.length);
      ctx.warn(
        `${stranded.length} long-polling session(s) closed at the start of the shutdown made no poll since; ` +
          'dropped with what they had buffered (their polls reach another pod now)',
      );
    }
    const sessions = open();
    // Polling sessions opened or left mid-upgrade since unready.
    for (const socket of sessions) if (isPolling(socket)) closeSession(socket, 'window_end');
    const pacing = pacer.pace(
      sessions.filter((s) => !isPolling(s)),
      closeSession,
      ctx,
    );
    await settle({
      isDone: () => !attached || Object.keys(engine.clients).length === 0,
      subscribe: changed.subscribe,
      signal: ctx.signal,
      force() {
        const left = Object.values(engine.clients);
        for (const socket of left) drop(socket);
        ctx.reportForced(left.length);
      },
    });
    await pacing;
  }

  function detach(): void {
    attached = false;
    engine.off('connection', onConnection);
    changed.notify();
  }

  return {
    name: options.name ?? 'socket.io',
    unready,
    drain,
    get sessions() {
      return Object.keys(engine.clients).length;
    },
    detach,
  };
}
