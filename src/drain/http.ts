/**
 * The drainer for `node:http`, `node:https` and `node:http2` servers (h2c, h2 over TLS, and
 * `allowHTTP1`). Never refuse, never reset:
 * - unready: keep the listener open and keep serving. HTTP/1 responses carry `Connection: close`
 *   (the tracker sets it, Node closes the socket after that response); HTTP/2 sessions get a
 *   graceful GOAWAY (open ones at once, new ones after their first stream).
 * - drain: close only the listener, end idle HTTP/1 sockets with FIN, end busy ones after their
 *   response, and wait. When the signal aborts, destroy what remains.
 * The long-lived ones are paced (pacer.ts): HTTP/2 GOAWAYs from `unready` on, and server-sent event
 * streams (event-streams.ts; HTTP/1, and HTTP/2's compatibility API), ended at a message boundary
 * from the drain on.
 *
 * Connections are tracked here (HTTP/2 sessions in http2-sessions.ts) rather than left to
 * `server.close()`: HTTP/2 `close()` sends GOAWAY only from Node 24, and HTTP/1 `close()` destroys
 * idle keep-alive sockets at an arbitrary moment.
 *
 * Over ~400 lines because the HTTP/1 socket states (idle, busy, pipelined, upgraded) and the phase
 * each is ended in are one state machine: split across files, a reader could not check that every
 * socket ends exactly once. HTTP/2 sessions and event streams, which have their own states, live
 * in their own files.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Http2SecureServer, Http2Server, Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Socket } from 'node:net';
import { KubegraceError } from '../errors.js';
import type { Participant, PhaseContext } from '../lifecycle.js';
import type { TrafficActivity } from '../propagation/activity.js';
import { createNotifier, settle, subscribeAll } from '../wait.js';
import {
  endEventStream,
  isEventStream,
  watchEventStream,
  type LastEvent,
  type StreamResponse,
} from './event-streams.js';
import { sharedHandshakes, type Handshakes } from './handshakes.js';
import { createSessionSet } from './http2-sessions.js';
import type { CloseReason, DrainObserver } from './observer.js';
import { createPacer, type PacingOptions } from './pacer.js';
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
  /** How HTTP/2 sessions and event streams are spread (pacer.ts); without it, all at once. */
  readonly pacing?: PacingOptions;
  /** The last event an event stream gets before the drain ends it (`text/event-stream`). */
  readonly lastEvent?: LastEvent;
  /**
   * WebSocket handshakes in progress, shared with the instance's WebSocket drainers (handshakes.ts).
   * @default one set shared by every drainer created without one
   */
  readonly handshakes?: Handshakes;
}

/**
 * A connection that only completed its TLS handshake after the listener closed, or an idle one
 * younger than this when the drain began, gets until this age to send its first request before it
 * is ended: ending it at once would race that request. (The bench's bar allows for it.)
 */
export const LATE_CONNECTION_GRACE_MS = 1000;

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
  /** The drain ended an event stream on it: its close counts as `event_stream_end`. */
  eventStream: boolean;
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

/** A response's slot in the drainer's array of HTTP/2 responses (swap-remove, as the tracker's). */
const kSlot = Symbol('kubegrace.http2Slot');

interface SlottedResponse extends Http2ServerResponse {
  [kSlot]?: number | undefined;
}

/** An event stream the drain found: its response, and its HTTP/1 socket's state (none for HTTP/2). */
type StreamEntry = readonly [StreamResponse, SocketState | undefined];

const drainedServers = new WeakSet<DrainableServer>();

export function createHttpDrainer(server: DrainableServer, options: HttpDrainerOptions): ServerDrainer {
  const { tracker, activity, observer } = options;
  const name = options.name ?? 'http';
  const kind = serverKind(server);
  // Two drainers would count every request twice and each end the other's sockets.
  if (drainedServers.has(server)) {
    throw new KubegraceError(
      'ERR_KUBEGRACE_INVALID_STATE',
      `this server is already drained by kubegrace (kg.attach(), or an integration such as ` +
        `fastifyApp() or socketIo() that attaches it): attach each server once, or detach() the first`,
    );
  }
  drainedServers.add(server);
  const http1 = new Map<Socket, SocketState>();
  const handshakes = options.handshakes ?? sharedHandshakes;
  let stage: Stage = 'serving';
  const sessions = createSessionSet({
    stage: () => stage,
    activity,
    observer,
    lateSessionGraceMs: LATE_CONNECTION_GRACE_MS,
    onClosed: checkEmpty,
  });
  let attached = true;
  let draining: Promise<void> | undefined;
  /** Set once the drain has ended the event streams it found: later ones end as they start. */
  let streamsEndAtOnce = false;
  /** A connection went away (or the drainer detached): what drain() waits on may be over. */
  const connectionsChanged = createNotifier();
  /** Requests Node had parsed on a socket that closed, by kubegrace's doing, before answering them. */
  let dropped = 0;
  /**
   * HTTP/2 responses of the compatibility API in flight, for their event streams: a session's GOAWAY
   * lets its streams finish, and an event stream never does. An array, not a Set, for the reason the
   * tracker gives (hashing an object per request).
   */
  const http2Responses: SlottedResponse[] = [];

  function noteHttp2Response(res: SlottedResponse): void {
    res[kSlot] = http2Responses.push(res) - 1;
    res.on('close', forgetHttp2Response);
  }

  // One listener function for every response (`this` is the response).
  function forgetHttp2Response(this: SlottedResponse): void {
    const slot = this[kSlot];
    if (slot === undefined) return;
    this[kSlot] = undefined;
    const last = http2Responses.pop() as SlottedResponse;
    if (last !== this) {
      http2Responses[slot] = last;
      last[kSlot] = slot;
    }
  }

  function onHttp1Socket(socket: Socket): void {
    if (http1.has(socket) || socket.destroyed) return;
    const state: SocketState = {
      ledger: tracker.openLedger(socket, onResponseDone),
      closing: undefined,
      boundary: false,
      openedAt: performance.now(),
      eventStream: false,
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
    const reason = state.closing ?? (state.boundary ? 'response_boundary' : undefined);
    observer?.connectionClosed?.(
      'http1',
      state.eventStream && reason !== undefined && reason !== 'forced' ? 'event_stream_end' : reason,
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
    // A timer set for it may fire after it was upgraded (a WebSocket): no longer this drainer's.
    if (http1.get(socket) !== state) return;
    state.closing = reason;
    socket.end();
  }

  function onRequest(req: http.IncomingMessage | Http2ServerRequest, res: unknown): boolean {
    const state = req.httpVersionMajor === 1 ? (req.socket as DrainedSocket)[kSocketState] : undefined;
    if (state === undefined) {
      if (req.httpVersionMajor !== 2) return tracker.track(req, res as http.ServerResponse);
      if (tracker.track(req, res as Http2ServerResponse)) return true;
      noteHttp2Response(res as Http2ServerResponse);
      if (streamsEndAtOnce) endIfItStreams(res as Http2ServerResponse);
      return false;
    }
    if (streamsEndAtOnce) endIfItStreams(res as http.ServerResponse);
    // The emit wrapper runs before any application listener, so this is the request's first sighting.
    return tracker.trackOn(state.ledger, req as http.IncomingMessage, res as http.ServerResponse);
  }

  /**
   * Once the drain's streams have had their turn, a response that starts an event stream later (its
   * handler subscribed or authenticated first, or it arrived during the drain) is ended just after its
   * headers go out, with the last event: otherwise nothing would end it, and it would hold the drain
   * to its budget and be reset. One `writeHead` wrapper per response still without headers, no more.
   */
  function endIfItStreams(res: StreamResponse): void {
    if (res.headersSent || Object.hasOwn(res, 'writeHead')) return;
    type WriteHead = (this: StreamResponse, ...args: unknown[]) => StreamResponse;
    const target = res as { writeHead: WriteHead };
    const writeHead = target.writeHead;
    const writeHeadThenEnd: WriteHead = function (this: StreamResponse, ...args: unknown[]) {
      delete (res as { writeHead?: unknown }).writeHead;
      let result: StreamResponse;
      try {
        result = Reflect.apply(writeHead, this, args);
      } catch (error) {
        // Refused (a bad status code): the handler may try again, and that one counts.
        if (!res.headersSent) target.writeHead = writeHeadThenEnd;
        throw error;
      }
      if (isEventStream(res)) {
        watchEventStream(res, lastEvent);
        // After what the handler writes in this turn (whole events): then at a boundary. A pipelined
        // response has no socket of its own yet; its request has. HTTP/2 has no socket state.
        process.nextTick(() => {
          const state = 'socket' in res.req ? http1.get(res.req.socket) : undefined;
          if (endEventStream(res) && state !== undefined) state.eventStream = true;
        });
      }
      return result;
    };
    target.writeHead = writeHeadThenEnd;
  }

  /**
   * An upgraded socket (WebSocket, CONNECT) leaves HTTP: its owner closes it, not this drainer. A
   * WebSocket's handshake is noted until a `ws` server takes the socket (handshakes.ts).
   */
  function onUpgrade(req: unknown, socket: unknown): void {
    const upgrade = (req as http.IncomingMessage | undefined)?.headers?.upgrade;
    if (typeof upgrade === 'string' && upgrade.toLowerCase() === 'websocket')
      handshakes.note(socket as Socket);
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
    if (event === 'connection') {
      accepted += 1;
      if (secure && stage !== 'serving' && attached) noteTlsHandshake(a as Socket);
    } else if (event === 'secureConnection') {
      if (tlsHandshakes.size > 0) endTlsHandshake((a as { _parent?: Socket })._parent);
    } else if (attached && (event === 'upgrade' || event === 'connect')) onUpgrade(a, b);
    // eslint-disable-next-line prefer-rest-params -- forwards every argument without an array per emit
    return Reflect.apply(originalEmit, this, arguments) as boolean;
  }
  server.emit = emitWithDrainer as typeof server.emit;

  /**
   * TLS connections accepted during the shutdown, until their handshake completes (they are tracked
   * from `secureConnection` on): after a stalled loop the drain can otherwise end, and the process
   * leave, under handshakes it accepted a moment before. Each is waited for at most
   * LATE_CONNECTION_GRACE_MS, and left alone, not closed, after that (a slow client may still finish).
   */
  const secure = kind === 'https' || kind === 'http2-secure';
  const tlsHandshakes = new Set<Socket>();
  function noteTlsHandshake(raw: Socket): void {
    tlsHandshakes.add(raw);
    raw.once('close', () => endTlsHandshake(raw));
    setTimeout(endTlsHandshake, LATE_CONNECTION_GRACE_MS, raw).unref();
  }
  function endTlsHandshake(raw: Socket | undefined): void {
    if (raw !== undefined && tlsHandshakes.delete(raw)) connectionsChanged.notify();
  }

  const connectionEvent = kind === 'http' ? 'connection' : 'secureConnection';
  const onConnection = kind === 'http2-secure' ? onSecureSocket : onHttp1Socket;
  if (kind !== 'http2') server.on(connectionEvent, onConnection as (socket: Socket) => void);
  if (kind === 'http2' || kind === 'http2-secure') server.on('session', sessions.add as (s: unknown) => void);

  const pacing = options.pacing ?? { windowMs: 0, budgetMs: 0 };
  const { lastEvent } = options;
  // Two pacers: the GOAWAYs' window counts from the start of the shutdown, the streams' from the drain.
  const sessionPacer = createPacer(pacing);
  const streamPacer = createPacer(pacing);
  let sessionPacing: Promise<void> | undefined;

  /**
   * The responses that are event streams, each now watched: HTTP/1 sockets' current ones, oldest
   * socket first, then HTTP/2's.
   */
  function eventStreams(): StreamEntry[] {
    const found: StreamEntry[] = [];
    for (const [, state] of http1) {
      const res = state.ledger.current;
      if (res === undefined || !isEventStream(res)) continue;
      watchEventStream(res, lastEvent);
      found.push([res, state]);
    }
    for (const res of http2Responses) {
      if (!isEventStream(res)) continue;
      watchEventStream(res, lastEvent);
      found.push([res, undefined]);
    }
    return found;
  }

  function endStream([res, state]: StreamEntry): boolean {
    if (!endEventStream(res)) return false;
    if (state !== undefined) state.eventStream = true;
    return true;
  }

  function unready(ctx?: PhaseContext): void {
    if (stage !== 'serving') return;
    stage = 'unready';
    tracker.shutdownStarted();
    // From here on a stream's writes show where its messages end.
    eventStreams();
    // Not cut by the unready budget: the GOAWAYs go on into the drain, whose signal forces the rest.
    sessionPacing = sessions.goawayPaced(
      sessionPacer,
      ctx === undefined ? {} : { deadline: ctx.deadline, warn: (message) => ctx.warn(message) },
    );
  }

  function drain(ctx: PhaseContext): Promise<void> {
    draining ??= startDrain(ctx);
    return draining;
  }

  async function startDrain(ctx: PhaseContext): Promise<void> {
    unready(ctx);
    stage = 'draining';
    const streamPacing = streamPacer
      .pace(
        eventStreams(),
        (entry, step) => {
          if (!endStream(entry)) return false;
          observer?.pacedClose?.('event_stream', step);
          return true;
        },
        ctx,
      )
      // Streams that began during the drain are ended at the window's end, at once.
      .then(() => {
        if (ctx.signal.aborted) return;
        for (const entry of eventStreams()) endStream(entry);
        streamsEndAtOnce = true;
        for (const [, state] of http1) {
          if (state.ledger.current !== undefined) endIfItStreams(state.ledger.current);
          for (const res of state.ledger.queued ?? []) endIfItStreams(res);
        }
        for (const res of http2Responses) endIfItStreams(res);
      });
    // When a stalled loop let the propagation budget run out, the kernel holds connections that
    // queued meanwhile; closing the listener would reset them. Node accepts them one poll phase at
    // a time (one per loop turn, measured on Node 20), so the listener closes only after a loop turn
    // in which none was accepted. The first immediate only reaches the check phase: queued from a
    // poll-phase callback (a SIGTERM seen with the stalled loop's queue, a zero propagation wait),
    // it runs in that same turn with no poll phase in between, and would see no accept.
    let stopAccepting: NodeJS.Immediate;
    let acceptQueueEmpty = false;
    const whenAcceptQueueEmpty = (seen: number, then: () => void): void => {
      stopAccepting = setImmediate(() => {
        if (accepted !== seen) whenAcceptQueueEmpty(accepted, then);
        else then();
      });
    };
    const closeListener = (): void => {
      acceptQueueEmpty = true;
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
      // Sessions opened during the propagation wait; the paced ones keep their turn.
      sessions.goawayUnpaced();
      connectionsChanged.notify();
    };
    stopAccepting = setImmediate(() => whenAcceptQueueEmpty(accepted, closeListener));

    await settle({
      // Detached: nothing is tracked any more, so nothing is left to wait for.
      isDone: () =>
        !attached ||
        (acceptQueueEmpty &&
          http1.size === 0 &&
          sessions.size === 0 &&
          tracker.inflight === 0 &&
          tlsHandshakes.size === 0 &&
          // A WebSocket handshake on one of these sockets, or its client closing (handshakes.ts).
          handshakes.size === 0),
      subscribe: subscribeAll(connectionsChanged.subscribe, tracker.onIdle, handshakes.subscribe),
      signal: ctx.signal,
      force() {
        clearImmediate(stopAccepting);
        if (server.listening) net.Server.prototype.close.call(server);
        ctx.reportForced(destroyRemaining() + handshakes.destroyAll());
      },
    });
    await Promise.all([streamPacing, sessionPacing]);
    if (dropped > 0) {
      ctx.reportForced(dropped);
      ctx.warn(`${dropped} request(s) pipelined on closing connections were left unanswered`);
      dropped = 0;
    }
  }

  function checkEmpty(): void {
    if (stage === 'draining' && http1.size === 0 && sessions.size === 0) connectionsChanged.notify();
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
    return count + sessions.destroyAll();
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
    if (kind === 'http2' || kind === 'http2-secure')
      server.off('session', sessions.add as (s: unknown) => void);
    for (const [socket, state] of http1) {
      socket.off('close', onSocketClose);
      (socket as DrainedSocket)[kSocketState] = undefined;
      tracker.releaseLedger(state.ledger);
    }
    sessions.release();
    http1.clear();
    connectionsChanged.notify();
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
