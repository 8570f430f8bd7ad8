/**
 * `kubegrace/grpc`: `kg.use(grpc(server))` for an `@grpc/grpc-js` server. It adds a
 * `grpc.health.v1.Health` service driven by kubegrace's readiness and liveness, and drains the server:
 * it keeps accepting through the propagation wait, then `tryShutdown()` (GOAWAY; in-flight calls
 * finish); at the budget or the deadline the calls left end with status `UNAVAILABLE` (trailers),
 * counted as forced, and the sessions are destroyed once those have left (cleanup phase; past the
 * deadline, the exit phase). A call whose client stopped reading gets a dropped connection instead.
 *
 * New HTTP/2 sessions feed the propagation decision and `kubegrace_open_connections{protocol="grpc"}`.
 * grpc-js keeps its HTTP/2 servers private (`http2Servers`); kubegrace listens on them for sessions
 * and streams, and without them (a grpc-js that renamed the field) still drains, warning once.
 *
 * Structural types, no import of grpc-js: the app's own copy is the only one.
 */
import type { Http2Server, ServerHttp2Session, ServerHttp2Stream } from 'node:http2';
import { constants as http2Constants } from 'node:http2';
import { invalidOption, KubegraceError } from '../errors.js';
import { defineIntegration, type Host, type Integration } from '../host.js';
import type { PhaseContext } from '../lifecycle.js';
import { createSettingReader } from '../settings.js';
import { settle } from '../wait.js';
import { healthServiceDefinition, SERVING_STATUS, type ServingStatusCode } from './health.js';

export { healthServiceDefinition } from './health.js';

/** The part of a grpc-js `Server` kubegrace uses; every `new grpc.Server()` fits. */
export interface GrpcServerLike {
  addService(service: object, implementation: object): void;
  tryShutdown(callback: (error?: Error) => void): void;
  forceShutdown(): void;
}

export interface GrpcOptions {
  /**
   * Service names whose health follows readiness, besides the overall `""`; any other name gets
   * `NOT_FOUND` from `Check` and `SERVICE_UNKNOWN` from `Watch`. @default []
   */
  readonly services?: readonly string[];
  /** The health service name that follows liveness (SERVING while draining). @default 'liveness' */
  readonly livenessService?: string;
  /** Add the `grpc.health.v1.Health` service to the server. @default true */
  readonly health?: boolean;
  /** Names the server in logs and the summary. @default 'grpc' */
  readonly name?: string;
}

export interface GrpcHandle {
  /** The health status kubegrace answers now for `service` (`""`: overall). */
  status(service?: string): 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';
  /** Stop draining the server (the health service stays on it, answering NOT_SERVING from then on). */
  detach(): void;
}

/** The servers given to kubegrace: a second `grpc(server)` would add the health service twice. */
const inUse = new WeakSet<GrpcServerLike>();

const STATUS_NOT_FOUND = 5;
/** After a forced end, how long the sessions stay for the UNAVAILABLE trailers to leave before they are destroyed. */
const FORCED_FLUSH_MS = 100;

interface Call {
  readonly request: { service: string };
  write(message: { status: ServingStatusCode }): unknown;
  end(): unknown;
  on(event: 'cancelled', listener: () => void): unknown;
}

/** A grpc-js server for `kg.use()`: options are checked here, at once. Use it before `bindAsync()`'s callback starts serving. */
export function grpc(server: GrpcServerLike, options: GrpcOptions = {}): Integration<GrpcHandle> {
  if (
    typeof server !== 'object' ||
    server === null ||
    typeof server.addService !== 'function' ||
    typeof server.tryShutdown !== 'function' ||
    typeof server.forceShutdown !== 'function'
  ) {
    throw invalidOption('grpc(server)', 'a grpc-js Server (new grpc.Server())', server);
  }
  createSettingReader({}).object('grpc options', options, 'an object', [
    'services',
    'livenessService',
    'health',
    'name',
  ]);
  const services = options.services ?? [];
  if (!Array.isArray(services) || !services.every((s) => typeof s === 'string')) {
    throw invalidOption('grpc services', 'an array of service names (strings)', services);
  }
  const livenessService = options.livenessService ?? 'liveness';
  if (typeof livenessService !== 'string' || livenessService === '' || services.includes(livenessService)) {
    throw invalidOption(
      'grpc livenessService',
      'a non-empty service name that is not one of services (liveness must not follow readiness)',
      livenessService,
    );
  }
  const name = options.name ?? 'grpc';
  if (typeof name !== 'string' || name === '') throw invalidOption('grpc name', 'a non-empty string', name);
  const health = options.health ?? true;
  if (typeof health !== 'boolean') throw invalidOption('grpc health', 'a boolean', health);
  const readinessServices = new Set(['', ...services]);

  return defineIntegration(`grpc:${name}`, (host: Host): GrpcHandle => {
    if (inUse.has(server)) {
      throw new KubegraceError(
        'ERR_KUBEGRACE_INVALID_STATE',
        `grpc:${name}: this grpc-js server was already given to kubegrace (its health service stays ` +
          'on it, even after detach()); call kg.use(grpc(server)) once per server',
      );
    }
    let detached = false;
    const statusOf = (service: string): ServingStatusCode => {
      if (service === livenessService)
        return host.lifecycle.live ? SERVING_STATUS.SERVING : SERVING_STATUS.NOT_SERVING;
      if (!readinessServices.has(service)) return SERVING_STATUS.SERVICE_UNKNOWN;
      return host.lifecycle.state === 'ready' && !detached
        ? SERVING_STATUS.SERVING
        : SERVING_STATUS.NOT_SERVING;
    };

    const watchers = new Map<Call, ServingStatusCode>();
    const tellWatchers = (): void => {
      for (const [call, last] of watchers) {
        const now = statusOf(call.request.service);
        if (now === last) continue;
        watchers.set(call, now);
        call.write({ status: now });
      }
    };
    const endWatchers = (): void => {
      tellWatchers();
      for (const call of watchers.keys()) call.end();
      watchers.clear();
    };
    if (health) {
      addHealthService({
        check(
          call: Call,
          callback: (
            error: { code: number; details: string } | null,
            value?: { status: ServingStatusCode },
          ) => void,
        ) {
          const status = statusOf(call.request.service);
          if (status === SERVING_STATUS.SERVICE_UNKNOWN) {
            callback({
              code: STATUS_NOT_FOUND,
              details: `unknown service ${JSON.stringify(call.request.service)}`,
            });
          } else callback(null, { status });
        },
        watch(call: Call) {
          const status = statusOf(call.request.service);
          call.write({ status });
          if (host.lifecycle.phase === 'drain' || host.lifecycle.state === 'stopped') {
            call.end();
            return;
          }
          watchers.set(call, status);
          call.on('cancelled', () => watchers.delete(call));
        },
      });
    }
    // After the health service went in: a refused kg.use() leaves no listener behind.
    const offState = host.lifecycle.on('state', tellWatchers);
    const offPhase = host.lifecycle.on('phase', tellWatchers);

    // Sessions and streams, read from grpc-js's HTTP/2 servers.
    const sessions = new Set<ServerHttp2Session>();
    const streams = new Set<ServerHttp2Stream>();
    /** Health Watch streams: they do not hold the drain, and end with it. */
    const watchStreams = new Set<ServerHttp2Stream>();
    let closeReason: 'goaway' | 'forced' | undefined;
    /** The drain was cut short (when, and how many calls it ended): cleanup, or the exit phase past the deadline, destroys the sessions once their statuses are out. */
    let forcedDrain: { readonly at: number; readonly calls: number } | undefined;
    const changed = new Set<() => void>();
    const notify = (): void => {
      for (const listener of changed) listener();
    };
    const hooked = new WeakSet<Http2Server>();
    let privateWarned = false;
    const hookServers = (): void => {
      const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
      if (!(servers instanceof Map)) {
        if (!privateWarned) {
          privateWarned = true;
          host.logger.warn(
            `${name}: this grpc-js keeps no http2Servers map; new connections do not feed the propagation wait ` +
              'and calls cut at the deadline are not counted (the drain still runs)',
          );
        }
        return;
      }
      for (const http2Server of servers.keys() as IterableIterator<Http2Server>) {
        if (hooked.has(http2Server)) continue;
        hooked.add(http2Server);
        http2Server.on('session', onSession);
        http2Server.on('stream', onStream);
      }
    };
    function onSession(session: ServerHttp2Session): void {
      if (detached) return;
      sessions.add(session);
      host.noteConnection();
      host.observer.connectionOpened?.('grpc');
      session.once('close', () => {
        sessions.delete(session);
        host.observer.connectionClosed?.('grpc', closeReason);
        notify();
      });
    }
    function onStream(stream: ServerHttp2Stream, headers: Record<string, unknown>): void {
      if (detached) return;
      const set = headers[':path'] === healthServiceDefinition.Watch.path ? watchStreams : streams;
      set.add(stream);
      stream.once('close', () => {
        set.delete(stream);
        notify();
      });
    }
    hookServers();
    // grpc-js creates its HTTP/2 servers in bindAsync: hook the ones it made after kg.use().
    const bindable = server as unknown as { bindAsync?: (...args: unknown[]) => unknown };
    const originalBind = bindable.bindAsync;
    if (typeof originalBind === 'function') {
      bindable.bindAsync = (...args: unknown[]) => {
        const callback = args[2];
        if (typeof callback === 'function') {
          args[2] = (...result: unknown[]) => {
            hookServers();
            return (callback as (...a: unknown[]) => unknown)(...result);
          };
        }
        return originalBind.apply(server, args);
      };
    }

    /**
     * grpc-js refuses a second handler for a path with a bare Error; the server may already carry
     * a health service of its own (`grpc-health-check`'s). grpc-js adds the methods in order: one
     * that went in before the clash comes out again.
     */
    function addHealthService(implementation: object): void {
      try {
        server.addService(healthServiceDefinition, implementation);
      } catch (error) {
        const message = error instanceof Error ? error.message : '';
        const { Check, Watch } = healthServiceDefinition;
        if (!message.includes(Check.path) && !message.includes(Watch.path)) throw error;
        if (message.includes(Watch.path)) {
          (server as unknown as { unregister?: (path: string) => unknown }).unregister?.(Check.path);
        }
        throw new KubegraceError(
          'ERR_KUBEGRACE_INVALID_STATE',
          `grpc:${name}: this grpc-js server already has a grpc.health.v1.Health service (grpc-health-check's, ` +
            'say), and kubegrace/grpc adds its own: pass grpc(server, { health: false }) to keep yours (then it ' +
            'does not follow the shutdown; probe /readyz and /livez instead), or remove yours to let kubegrace ' +
            'answer health from the lifecycle',
          { cause: error },
        );
      }
    }

    /**
     * From our forced end on, grpc-js may still answer the call it thinks is running (the handler
     * finishes, or fails): what we already sent is not sent again. A second respond() or
     * sendTrailers() throws, uncaught, in the app's callback or inside 'wantTrailers' (removing
     * grpc-js's listener is not enough: emit() calls the listeners it had when it began).
     */
    function answerOnce(stream: ServerHttp2Stream): void {
      const respond = stream.respond.bind(stream);
      stream.respond = (...args) => {
        if (!stream.headersSent) respond(...args);
      };
      const sendTrailers = stream.sendTrailers.bind(stream);
      stream.sendTrailers = (headers) => {
        if (!stream.sentTrailers) sendTrailers(headers);
      };
    }

    /** End a call with status UNAVAILABLE (14), which clients and their retry policies retry. */
    function endUnavailable(stream: ServerHttp2Stream): void {
      const status = { 'grpc-status': '14', 'grpc-message': 'server shutting down' };
      try {
        answerOnce(stream);
        if (!stream.headersSent) {
          stream.respond(
            { ':status': 200, 'content-type': 'application/grpc', ...status },
            { endStream: true },
          );
        } else if (!stream.writableEnded) {
          // grpc-js responds with waitForTrailers: ending the stream asks for the trailers, ours first.
          stream.prependOnceListener('wantTrailers', () => stream.sendTrailers(status));
          stream.end();
        }
      } catch {
        stream.close(http2Constants.NGHTTP2_REFUSED_STREAM);
      }
    }

    async function drain(ctx: PhaseContext): Promise<void> {
      hookServers();
      closeReason = 'goaway';
      let shutDown = false;
      forcedDrain = undefined;
      // One GOAWAY, from tryShutdown(). A call the client sent as it left is refused (REFUSED_STREAM:
      // never processed; grpc-js retries it transparently unless retries are off). A GOAWAY notice
      // (last stream 2^31-1) and a PING first would not save it: Node sends every GOAWAY with
      // nghttp2_submit_goaway, after which nghttp2 ignores new streams whatever the last stream id
      // (session_allow_incoming_new_stream), so the notice only delayed the same refusal by a PING.
      server.tryShutdown(() => {
        shutDown = true;
        notify();
      });
      await settle({
        isDone: () => {
          // Watch streams must not hold the drain: end them once the other calls are done.
          if (streams.size === 0) endWatchers();
          return shutDown;
        },
        subscribe: (onChange) => {
          changed.add(onChange);
          return () => changed.delete(onChange);
        },
        signal: ctx.signal,
        // Synchronous: the lifecycle gives an aborted participant one turn of the event loop. The
        // sessions stay until cleanup (or, past the deadline, the exit phase), so that the trailers
        // written here can leave.
        force: () => {
          closeReason = 'forced';
          const forced = streams.size;
          for (const stream of streams) endUnavailable(stream);
          endWatchers();
          ctx.reportForced(forced);
          ctx.warn(
            `${forced} gRPC call(s) still running at the drain budget or the deadline: ending them with status UNAVAILABLE`,
          );
          forcedDrain = { at: Date.now(), calls: forced };
        },
      });
    }

    /**
     * After a forced drain: the UNAVAILABLE trailers and Watch ends leave, then the sessions are
     * destroyed. A status sent after a stream's headers leaves only on a later 'wantTrailers' (a few
     * turns of the event loop), and only behind the data the client has not taken yet.
     */
    async function cleanup(ctx: PhaseContext): Promise<void> {
      // Past the deadline the cleanup gets one turn: the exit phase, which runs alongside the final
      // report within its slice, lets the statuses leave instead.
      if (forcedDrain === undefined || ctx.signal.aborted) return;
      await flushThenClose(ctx);
    }

    async function exit(ctx: PhaseContext): Promise<void> {
      if (forcedDrain !== undefined) await flushThenClose(ctx);
    }

    async function flushThenClose(ctx: PhaseContext): Promise<void> {
      const forced = forcedDrain;
      if (forced === undefined) return;
      await settle({
        isDone: () => streams.size === 0 && watchStreams.size === 0,
        subscribe: (onChange) => {
          changed.add(onChange);
          return () => changed.delete(onChange);
        },
        signal: ctx.signal,
        timeoutMs: Math.max(0, forced.at + FORCED_FLUSH_MS - Date.now()),
      });
      // In cleanup, cut short by the deadline: the exit phase finishes the flush.
      if (ctx.phase === 'cleanup' && ctx.signal.aborted && streams.size + watchStreams.size > 0) return;
      forcedDrain = undefined;
      // Still open: the status is queued behind data the client stopped reading (flow control), or
      // the loop had no time to write it. grpc-js's forceShutdown() would reset each such call with
      // CANCEL (the client sees CANCELLED, which nobody retries); dropping the connection instead is
      // what clients report as UNAVAILABLE (grpc-js: "Connection dropped").
      const stuck = [...streams, ...watchStreams];
      const stuckCalls = streams.size;
      for (const session of new Set(stuck.map((stream) => stream.session))) session?.destroy();
      server.forceShutdown();
      if (stuckCalls > 0) {
        ctx.warn(
          `${stuckCalls} of the ${forced.calls} gRPC call(s) ended at the drain budget or the deadline could not be ` +
            'sent status UNAVAILABLE (their clients had stopped reading, and a status cannot pass the data ' +
            'queued before it): their connections were dropped, which clients report as UNAVAILABLE ' +
            '(grpc-js: "Connection dropped") or as a connection error',
        );
      }
    }

    const removeParticipant = host.addParticipant({
      name,
      unready: () => tellWatchers(),
      drain,
      cleanup,
      exit,
    });

    inUse.add(server);
    return {
      status(service = '') {
        if (typeof service !== 'string') throw invalidOption('status(service)', 'a string', service);
        const code = statusOf(service);
        return code === SERVING_STATUS.SERVING
          ? 'SERVING'
          : code === SERVING_STATUS.NOT_SERVING
            ? 'NOT_SERVING'
            : 'SERVICE_UNKNOWN';
      },
      detach() {
        if (detached) return;
        detached = true;
        removeParticipant();
        offState();
        offPhase();
        endWatchers();
        if (originalBind !== undefined) bindable.bindAsync = originalBind;
      },
    };
  });
}
