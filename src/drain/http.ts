/**
 * The drainer for `node:http`, `node:https` and `node:http2` servers (h2c, h2 over TLS, and
 * `allowHTTP1`). Never refuse, never reset:
 * - unready: keep the listener open and keep serving. HTTP/1 responses carry `Connection: close`
 *   (the tracker sets it, Node closes the socket after that response); HTTP/2 sessions get a
 *   graceful GOAWAY (open ones at once, new ones after their first stream).
 * - drain: close only the listener, end idle HTTP/1 sockets with FIN, end busy ones after their
 *   response, GOAWAY what is left, and wait. When the signal aborts, destroy what remains.
 *
 * Sessions are tracked here rather than left to `server.close()`: HTTP/2 `close()` sends GOAWAY only
 * from Node 24, and HTTP/1 `close()` destroys idle keep-alive sockets at an arbitrary moment.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type {
  Http2SecureServer,
  Http2Server,
  Http2ServerRequest,
  Http2ServerResponse,
  ServerHttp2Session,
  ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import { KubegraceError } from '../errors.js';
import type { Participant, PhaseContext } from '../lifecycle.js';
import type { TrafficActivity } from '../propagation/activity.js';
import type { CloseReason, DrainObserver } from './observer.js';
import type { RequestTracker, SocketLedger } from './requests.js';

export type DrainableServer = http.Server | https.Server | Http2Server | Http2SecureServer;

export interface ServerDrainer extends Participant {
  /** Open HTTP/1 sockets plus HTTP/2 sessions; upgraded sockets (WebSockets) are not counted. */
  readonly connections: number;
  /** Remove every listener kubegrace added to the server (and restore its `emit`). */
  detach(): void;
}

export interface HttpDrainerOptions {
  /** Participant name. @default 'http' */
  readonly name?: string;
  readonly tracker: RequestTracker;
  /** Noted for every new connection or session, for the adaptive propagation strategy. */
  readonly activity: TrafficActivity;
  readonly observer?: DrainObserver;
}

/**
 * A connection that only completed its TLS handshake after the listener closed gets this long to
 * send its first request before it is ended: ending it at once would race that request.
 */
const LATE_CONNECTION_GRACE_MS = 1000;

/** Stream id of the GOAWAY shutdown notice: the largest there is, so nothing is refused yet. */
const SHUTDOWN_NOTICE_STREAM_ID = 2 ** 31 - 1;
const NO_ERROR = 0;
/** The final GOAWAY follows the PING ack, or this long after the notice without one. */
const PING_ACK_TIMEOUT_MS = 500;

type Stage = 'serving' | 'unready' | 'draining';

/** Plain data: the functions that work on it are the drainer's, shared by every socket. */
interface SocketState {
  /** The socket's requests in flight (pipelining makes it more than one). */
  readonly ledger: SocketLedger;
  /** Set when kubegrace ends or destroys the socket. */
  closing: CloseReason | undefined;
  /** A `Connection: close` response completed during shutdown: Node closes the socket after it. */
  boundary: boolean;
  /** `performance.now()` at accept: a socket this young may still be sending its first request. */
  readonly openedAt: number;
}

/**
 * A socket's state, kept on the socket: a property read per request is cheaper than a Map lookup.
 * Cleared by assigning undefined, never `delete`, which would turn an upgraded socket's properties
 * into a slow dictionary for the rest of its life.
 */
const kSocketState = Symbol('kubegrace.socketState');

interface DrainedSocket {
  [kSocketState]?: SocketState | undefined;
}

interface SessionState {
  sawStream: boolean;
  goaway: boolean;
  readonly onStream: (stream: ServerHttp2Stream) => void;
  readonly onStreamClose: () => void;
  readonly onClose: () => void;
}

const drainedServers = new WeakSet<DrainableServer>();

export function createHttpDrainer(server: DrainableServer, options: HttpDrainerOptions): ServerDrainer {
  const { tracker, activity, observer } = options;
  const name = options.name ?? 'http';
  const kind = serverKind(server);
  // Two drainers would count every request twice and each end the other's sockets.
  if (drainedServers.has(server)) {
    throw new KubegraceError(
      'ERR_KUBEGRACE_INVALID_STATE',
      'createHttpDrainer: this server already has a drainer; detach() it first',
    );
  }
  drainedServers.add(server);
  const http1 = new Map<Socket, SocketState>();
  const sessions = new Map<ServerHttp2Session, SessionState>();
  let stage: Stage = 'serving';
  let attached = true;
  let draining: Promise<void> | undefined;
  /** Set while drain() waits for the last connection to close. */
  let onEmpty: (() => void) | undefined;
  let finishDrain: (() => void) | undefined;
  /** Requests Node had parsed on a socket that closed, by kubegrace's doing, before answering them. */
  let dropped = 0;

  function onHttp1Socket(socket: Socket): void {
    if (http1.has(socket) || socket.destroyed) return;
    const state: SocketState = {
      ledger: tracker.openLedger(socket, onResponseDone),
      closing: undefined,
      boundary: false,
      openedAt: performance.now(),
    };
    http1.set(socket, state);
    (socket as DrainedSocket)[kSocketState] = state;
    socket.on('close', onSocketClose);
    activity.noteConnection();
    observer?.connectionOpened?.('http1');
    if (stage === 'draining') {
      setTimeout(() => {
        if (state.ledger.inflight === 0) endSocket(socket, state, 'idle');
      }, LATE_CONNECTION_GRACE_MS).unref();
    }
  }

  /** Each finished response on a tracked socket; only a shutdown has anything to do with it. */
  function onResponseDone(res: http.ServerResponse, socket: Socket): void {
    if (stage === 'serving' || !attached) return;
    const state = http1.get(socket);
    if (state === undefined) return;
    if (res.getHeader('connection') === 'close') state.boundary = true;
    // After Node's own end-of-response work for this socket (the ledger hears of the end as it
    // begins): a response whose headers went out (keep-alive) before the shutdown ends its socket now.
    if (stage === 'draining') process.nextTick(endIfIdle, socket, state);
  }

  // One listener function for every socket (`this` is the socket), not a closure per connection.
  function onSocketClose(this: Socket): void {
    const state = http1.get(this);
    if (state === undefined) return;
    // Ended after a `Connection: close` response or by this drainer with requests still unanswered
    // (pipelined behind a response whose header was already out): lost, so not a clean shutdown.
    if (stage !== 'serving' && state.ledger.inflight > 0 && (state.boundary || state.closing !== undefined)) {
      dropped += state.ledger.inflight;
    }
    tracker.closeLedger(state.ledger);
    http1.delete(this);
    (this as DrainedSocket)[kSocketState] = undefined;
    observer?.connectionClosed?.(
      'http1',
      state.closing ?? (state.boundary ? 'response_boundary' : undefined),
    );
    checkEmpty();
  }

  function endIfIdle(socket: Socket, state: SocketState): void {
    if (state.ledger.inflight === 0) endSocket(socket, state, 'response_boundary');
  }

  function onSecureSocket(socket: tls.TLSSocket): void {
    // An h2 socket belongs to its session (Node emitted 'session' before this listener ran).
    if (socket.alpnProtocol === 'h2') return;
    onHttp1Socket(socket);
  }

  /** FIN, not RST: the client sees a clean end and, after the propagation wait, reconnects elsewhere. */
  function endSocket(socket: Socket, state: SocketState, reason: CloseReason): void {
    if (state.closing !== undefined || socket.writableEnded || socket.destroyed) return;
    state.closing = reason;
    socket.end();
  }

  function onSession(session: ServerHttp2Session): void {
    const state: SessionState = {
      sawStream: false,
      goaway: false,
      onStream(stream) {
        state.sawStream = true;
        // While serving nothing per stream: only a session opened during the shutdown needs to
        // know when a stream completes.
        if (stage !== 'serving' && !state.goaway) stream.on('close', state.onStreamClose);
      },
      onStreamClose() {
        goaway(session, state);
      },
      onClose() {
        if (sessions.get(session) !== state) return;
        sessions.delete(session);
        observer?.connectionClosed?.('http2', state.goaway ? 'goaway' : undefined);
        checkEmpty();
      },
    };
    sessions.set(session, state);
    session.on('stream', state.onStream);
    session.on('close', state.onClose);
    activity.noteConnection();
    observer?.connectionOpened?.('http2');
    if (stage === 'draining') {
      setTimeout(() => {
        if (!state.sawStream) goaway(session, state);
      }, LATE_CONNECTION_GRACE_MS).unref();
    }
  }

  /**
   * The two-step GOAWAY of RFC 9113 §6.8. First a notice with the highest stream id: the client
   * stops opening streams, and every stream already on the wire will still be served. Then, once a
   * PING round trip proves those streams have arrived (TCP keeps order), `close()`: GOAWAY with the
   * real last stream id, and the session ends when its streams complete. A plain `close()` refuses
   * the streams still on their way. Streams an nghttp2 client (Node's) had queued but not sent when
   * the notice came can never be sent; the final GOAWAY refuses them (retry-safe REFUSED_STREAM)
   * instead of leaving them stalled, which is why it follows the PING ack and not a long timer.
   */
  function goaway(session: ServerHttp2Session, state: SessionState): void {
    if (state.goaway) return;
    state.goaway = true;
    if (session.closed || session.destroyed) return;
    const closeNow = (): void => {
      clearTimeout(fallback);
      if (!session.closed && !session.destroyed) session.close();
    };
    // A peer that never answers the PING gets the final GOAWAY anyway.
    const fallback = setTimeout(closeNow, PING_ACK_TIMEOUT_MS).unref();
    try {
      session.goaway(NO_ERROR, SHUTDOWN_NOTICE_STREAM_ID);
      if (!session.ping(closeNow)) closeNow();
    } catch {
      closeNow();
    }
  }

  function onRequest(req: http.IncomingMessage | Http2ServerRequest, res: unknown): boolean {
    const state = req.httpVersionMajor === 1 ? (req.socket as DrainedSocket)[kSocketState] : undefined;
    if (state === undefined) return tracker.track(req, res as http.ServerResponse | Http2ServerResponse);
    // The emit wrapper runs before any application listener, so this is the request's first sighting.
    return tracker.trackOn(state.ledger, req as http.IncomingMessage, res as http.ServerResponse);
  }

  /** An upgraded socket (WebSocket, CONNECT) leaves HTTP: its owner closes it, not this drainer. */
  function onUpgrade(socket: unknown): void {
    const state = http1.get(socket as Socket);
    if (state === undefined) return;
    http1.delete(socket as Socket);
    (socket as DrainedSocket)[kSocketState] = undefined;
    (socket as Socket).off('close', onSocketClose);
    tracker.releaseLedger(state.ledger);
    observer?.connectionClosed?.('http1', undefined);
    checkEmpty();
  }

  // The only way to answer a request before the application's own 'request' listeners run (503
  // during drain) and to see upgrades without adding an 'upgrade' listener, which would change how
  // Node treats upgrade requests. Instance-level and undone by detach().
  const originalEmit = server.emit;
  /** TCP connections accepted so far: the drain closes the listener once a loop turn adds none. */
  let accepted = 0;
  const hadOwnEmit = Object.hasOwn(server, 'emit');
  function emitWithDrainer(this: unknown, event: string | symbol, a?: unknown, b?: unknown): boolean {
    // The request-bearing events of http and http2 servers, always emitted as (event, req, res):
    // forwarded with a plain call, which costs less than spreading `arguments`.
    if (
      (event === 'request' || event === 'checkContinue' || event === 'checkExpectation') &&
      arguments.length === 3
    ) {
      if (attached && onRequest(a as http.IncomingMessage | Http2ServerRequest, b)) return true;
      return originalEmit.call(this, event, a, b);
    }
    if (event === 'connection') accepted += 1;
    else if (attached && (event === 'upgrade' || event === 'connect')) onUpgrade(b);
    // eslint-disable-next-line prefer-rest-params -- forwards every argument without an array per emit
    return Reflect.apply(originalEmit, this, arguments) as boolean;
  }
  server.emit = emitWithDrainer as typeof server.emit;

  const connectionEvent = kind === 'http' ? 'connection' : 'secureConnection';
  const onConnection = kind === 'http2-secure' ? onSecureSocket : onHttp1Socket;
  if (kind !== 'http2') server.on(connectionEvent, onConnection as (socket: Socket) => void);
  if (kind === 'http2' || kind === 'http2-secure') server.on('session', onSession as (s: unknown) => void);

  function unready(): void {
    if (stage !== 'serving') return;
    stage = 'unready';
    tracker.shutdownStarted();
    // Sessions opened from now on get theirs after their first stream (onStreamClose): a GOAWAY
    // before any stream would turn away a client that connected to send a request.
    for (const [session, state] of sessions) goaway(session, state);
  }

  function drain(ctx: PhaseContext): Promise<void> {
    draining ??= startDrain(ctx);
    return draining;
  }

  function startDrain(ctx: PhaseContext): Promise<void> {
    unready();
    stage = 'draining';
    // When a stalled loop let the propagation budget run out, the kernel holds connections that
    // queued meanwhile; closing the listener would reset them. Node accepts them one poll phase at
    // a time, so the listener closes only after a loop turn in which none was accepted.
    let stopAccepting: NodeJS.Immediate;
    const whenAcceptQueueEmpty = (seen: number, then: () => void): void => {
      stopAccepting = setImmediate(() => {
        if (accepted !== seen) whenAcceptQueueEmpty(accepted, then);
        else then();
      });
    };
    whenAcceptQueueEmpty(accepted, () => {
      // Only the listener: http's close() would also destroy idle keep-alive sockets (Node ≥ 19),
      // and http2's would GOAWAY every session (Node ≥ 24); both are done here, gracefully.
      if (server.listening) net.Server.prototype.close.call(server);
      const now = performance.now();
      for (const [socket, state] of http1) {
        if (state.ledger.inflight !== 0) continue;
        // A socket accepted a moment ago may be sending its first request: give it the same grace
        // as a connection accepted during the drain.
        const age = now - state.openedAt;
        if (age >= LATE_CONNECTION_GRACE_MS) endSocket(socket, state, 'idle');
        else {
          setTimeout(() => {
            if (state.ledger.inflight === 0) endSocket(socket, state, 'idle');
          }, LATE_CONNECTION_GRACE_MS - age).unref();
        }
      }
      for (const [session, state] of sessions) goaway(session, state);
      checkEmpty();
    });

    return new Promise<void>((resolve) => {
      const { signal } = ctx;
      const finish = (): void => {
        if (finishDrain === undefined) return;
        finishDrain = undefined;
        onEmpty = undefined;
        signal.removeEventListener('abort', onAbort);
        if (dropped > 0) {
          ctx.reportForced(dropped);
          ctx.warn(`${dropped} request(s) pipelined on closing connections were left unanswered`);
          dropped = 0;
        }
        resolve();
      };
      const onAbort = (): void => {
        clearImmediate(stopAccepting);
        if (server.listening) net.Server.prototype.close.call(server);
        ctx.reportForced(destroyRemaining());
        finish();
      };
      finishDrain = finish;
      if (signal.aborted) {
        onAbort();
        return;
      }
      signal.addEventListener('abort', onAbort, { once: true });
      onEmpty = () => {
        onEmpty = undefined;
        void tracker.idle(signal).then(finish);
      };
      // Not empty yet: stopAccepting checks once the queued connections are in.
    });
  }

  function checkEmpty(): void {
    if (onEmpty !== undefined && http1.size === 0 && sessions.size === 0) onEmpty();
  }

  /** Destroys every connection still open; returns how many. Reported as 'forced'. */
  function destroyRemaining(): number {
    let count = 0;
    for (const [socket, state] of http1) {
      http1.delete(socket);
      (socket as DrainedSocket)[kSocketState] = undefined;
      socket.off('close', onSocketClose);
      socket.destroy();
      tracker.closeLedger(state.ledger);
      observer?.connectionClosed?.('http1', 'forced');
      count++;
    }
    for (const [session, state] of sessions) {
      sessions.delete(session);
      session.off('close', state.onClose);
      session.destroy();
      observer?.connectionClosed?.('http2', 'forced');
      count++;
    }
    return count;
  }

  function detach(): void {
    if (!attached) return;
    attached = false;
    drainedServers.delete(server);
    if (server.emit === emitWithDrainer) {
      if (hadOwnEmit) server.emit = originalEmit;
      else delete (server as { emit?: unknown }).emit;
    }
    if (kind !== 'http2') server.off(connectionEvent, onConnection as (socket: Socket) => void);
    if (kind === 'http2' || kind === 'http2-secure') server.off('session', onSession as (s: unknown) => void);
    for (const [socket, state] of http1) {
      socket.off('close', onSocketClose);
      (socket as DrainedSocket)[kSocketState] = undefined;
      tracker.releaseLedger(state.ledger);
    }
    for (const [session, state] of sessions) {
      session.off('stream', state.onStream);
      session.off('close', state.onClose);
    }
    http1.clear();
    sessions.clear();
    // Nothing is tracked any more, so a drain in progress has nothing left to wait for.
    finishDrain?.();
  }

  return {
    name,
    unready,
    drain,
    get connections() {
      return http1.size + sessions.size;
    },
    detach,
  };
}

type ServerKind = 'http' | 'https' | 'http2' | 'http2-secure';

function serverKind(server: DrainableServer): ServerKind {
  if (server instanceof http.Server) return 'http';
  if (server instanceof https.Server) return 'https';
  // Http2Server and Http2SecureServer are not exported as classes; updateSettings() is theirs alone.
  if (typeof (server as Partial<Http2Server>).updateSettings === 'function') {
    return server instanceof tls.Server ? 'http2-secure' : 'http2';
  }
  throw new KubegraceError(
    'ERR_KUBEGRACE_UNSUPPORTED_SERVER',
    'createHttpDrainer expects a node:http, node:https or node:http2 server',
  );
}
