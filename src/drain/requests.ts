/**
 * The request tracker: one per process, shared by every server drainer and by the express
 * middleware. It counts requests in flight, turns keep-alive off from the first moment of shutdown
 * (so every HTTP/1 connection ends at a response boundary) and, when asked to, answers requests
 * that still arrive during the drain with 503 + Retry-After.
 *
 * Pipelining: Node parses every request a client pipelined and closes the socket after the first
 * response that says `Connection: close`, so the requests behind it would get no answer. Only the
 * newest request of a socket carries `Connection: close`; when another arrives behind it before its
 * headers went out, the header moves to the newcomer.
 *
 * This runs once per request on the hot path. Two ways in:
 * - a socket ledger (`openLedger`, `trackOn`), for HTTP/1 sockets a server drainer tracks: no
 *   listener and no property per response, and no closure per socket. A response leaves the ledger
 *   when Node publishes its end on the `http.server.response.finish` diagnostics channel (one
 *   subscriber for the whole process), or when its socket closes first.
 * - `track()`, for everything else (HTTP/2, the express middleware on a server kubegrace did not
 *   attach): one shared `'close'` listener per response, no closure.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { Socket } from 'node:net';
import { invalidOption, redactUrls } from '../errors.js';
import { createNotifier, settle } from '../wait.js';
import type { DrainObserver } from './observer.js';

export interface RequestTracker {
  /**
   * Counts the request in flight until its response finishes or closes. Idempotent per request.
   * During shutdown it sets `Connection: close` (HTTP/1.x, headers not yet sent); during the drain,
   * with `rejectDuringDrain`, it answers 503 + `Retry-After` and returns true: the request is
   * handled and the application must not run.
   *
   * `onDone` is called once when the request stops being in flight. It rides on the tracker's own
   * listener, so a request costs one listener. It is ignored when the request was already tracked.
   */
  track(
    req: IncomingMessage | Http2ServerRequest,
    res: ServerResponse | Http2ServerResponse,
    onDone?: RequestDone,
  ): boolean;
  /**
   * `track()` for a request no server drainer watches (`kg.trackRequest` on a server kubegrace did
   * not attach: the express middleware, fastify's `attach: false`). Nothing else would cut it at the
   * drain's end: `abandonUnwatched()` does. A request a drainer saw first stays the drainer's.
   */
  trackUnwatched(
    req: IncomingMessage | Http2ServerRequest,
    res: ServerResponse | Http2ServerResponse,
  ): boolean;
  /**
   * Destroys each request tracked with `trackUnwatched()` and still in flight (HTTP/1: its socket;
   * HTTP/2: its stream), as a drainer destroys its connections at the budget; returns them as
   * `METHOD /path` (no query string: it may carry tokens).
   */
  abandonUnwatched(): string[];
  /**
   * Starts tracking the HTTP/1 requests of one socket through a ledger (the server drainers' fast
   * path). `onDone` is called as each of its responses finishes (as Node begins its own
   * end-of-response work), not for those a closing socket cut short; pass one function for all
   * sockets, not a closure per socket: a ledger is plain data, so a tracked connection costs a few
   * dozen bytes.
   */
  openLedger(socket: Socket, onDone: LedgerDone): SocketLedger;
  /** `track()` for a request on a ledger's socket: the same answer, without a listener per response. */
  trackOn(ledger: SocketLedger, req: IncomingMessage, res: ServerResponse): boolean;
  /** The socket closed (or was destroyed): whatever was in flight on it will not finish. */
  closeLedger(ledger: SocketLedger): void;
  /**
   * The caller stops watching the socket (detach, upgrade): responses still in flight are handed
   * to `track()`'s per-response listener, so they still count until they end.
   */
  releaseLedger(ledger: SocketLedger): void;
  /** Requests tracked and not yet finished or closed. */
  readonly inflight: number;
  /** Sets `Connection: close` on every in-flight HTTP/1 response whose headers are not sent yet. */
  shutdownStarted(): void;
  /** Resolves when nothing is in flight, or when `signal` aborts. Never rejects. */
  idle(signal: AbortSignal): Promise<void>;
  /** Calls `listener` each time the last request in flight ends; returns the unsubscriber. */
  onIdle(listener: () => void): () => void;
}

export type RequestDone = (res: ServerResponse | Http2ServerResponse) => void;
export type LedgerDone = (res: ServerResponse, socket: Socket) => void;

/** The requests of one HTTP/1 socket. */
export interface SocketLedger {
  /** Responses on this socket not yet finished (more than one only with pipelining). */
  readonly inflight: number;
  /** The response being written now, if any (an event stream stays here until it ends). */
  readonly current: ServerResponse | undefined;
  /** Pipelined responses waiting behind it, in order. */
  readonly queued: readonly ServerResponse[] | undefined;
}

export interface RequestTrackerOptions {
  /** True from the first moment of shutdown. */
  readonly isShuttingDown: () => boolean;
  /** True once the drain phase began. */
  readonly isDraining: () => boolean;
  readonly rejectDuringDrain: boolean;
  readonly retryAfterSeconds: number;
  readonly observer?: DrainObserver;
}

/** `undefined`: never tracked; `true`: in flight; `false`: finished. Kept on the response object. */
const kTracked = Symbol('kubegrace.tracked');
const kDone = Symbol('kubegrace.done');
/** Index in `openHttp1` while an HTTP/1 response is in flight. */
const kSlot = Symbol('kubegrace.slot');
/** Its slot in the array of requests tracked by `trackUnwatched()`, the same way. */
const kUnwatchedSlot = Symbol('kubegrace.unwatchedSlot');
/** The ledger of a socket, for the diagnostics-channel subscriber (which gets the socket). */
const kLedger = Symbol('kubegrace.ledger');
/** On a socket: the response kubegrace gave `Connection: close` (the newest one it saw). */
const kCloseCarrier = Symbol('kubegrace.closeCarrier');
/** On a socket without a ledger: its newest tracked response, so a shutdown knows which is last. */
const kNewest = Symbol('kubegrace.newest');
/** On a socket in a lingering close: it reads the rest of a body and can answer nothing more. */
const kLingering = Symbol('kubegrace.lingering');

/** The part of both response types the tracker uses; the two Node types differ in overloads only. */
interface TrackedResponse {
  [kTracked]?: boolean;
  [kSlot]?: number;
  [kUnwatchedSlot]?: number | undefined;
  [kDone]?: RequestDone;
  readonly headersSent: boolean;
  setHeader(name: string, value: string): unknown;
  getHeader(name: string): unknown;
  removeHeader(name: string): void;
  writeHead(statusCode: number, headers: Record<string, string>): unknown;
  end(): unknown;
  destroy(): unknown;
  on(event: 'close', listener: (this: TrackedResponse) => void): unknown;
  /** The request it answers (HTTP/1: an `IncomingMessage`). */
  readonly req?: IncomingMessage | Http2ServerRequest;
}

/** A ledger's data; the functions that work on it are the tracker's, shared by every socket. */
interface Ledger extends SocketLedger {
  inflight: number;
  /** The response being written and, with pipelining, the ones queued behind it, in order. */
  current: ServerResponse | undefined;
  queued: ServerResponse[] | undefined;
  open: boolean;
  readonly socket: Socket;
  readonly onDone: LedgerDone;
  /** How the process-wide channel subscriber reaches the tracker that opened this ledger. */
  readonly finished: (ledger: Ledger, res: ServerResponse) => void;
}

interface LedgeredSocket {
  destroySoon?: () => void;
  [kLingering]?: true;
  [kLedger]?: Ledger | undefined;
  [kCloseCarrier]?: TrackedResponse | undefined;
  [kNewest]?: TrackedResponse | undefined;
}

/** What Node publishes on `http.server.response.finish` (Node ≥ 16.18; the same on 20 to 26). */
interface ResponseFinishMessage {
  readonly response: ServerResponse;
  readonly socket: LedgeredSocket;
}

const RESPONSE_FINISH = 'http.server.response.finish';
/** Ledgers open in the process: the channel has its one subscriber while there is any. */
let liveLedgers = 0;

/** The one subscriber for the whole process: it finds the ledger through the socket. */
function onResponseFinish(message: unknown): void {
  const { socket, response } = message as ResponseFinishMessage;
  const ledger = socket[kLedger];
  if (ledger !== undefined) ledger.finished(ledger, response);
}

function inLedger(ledger: Ledger, res: unknown): boolean {
  return (
    ledger.current === res || (ledger.queued !== undefined && ledger.queued.includes(res as ServerResponse))
  );
}

/**
 * What Node calls on a socket after a response that carries `Connection: close`, in place of its own
 * `destroySoon` (which ends the socket and destroys it once the FIN is out). When the request's body
 * is still arriving (a handler that answered without reading it: 401, 413, 415, 202), destroying the
 * socket with those bytes unread makes the kernel answer them with RST, and a client that sends its
 * whole body before it reads (Python's http.client, most raw clients) never sees the response.
 * Without the shutdown's `Connection: close` Node would have read and dropped the rest and kept the
 * connection. So: end the write side, read the rest of the body and drop it, and only then close (a
 * lingering close, as nginx does); the drain's budget bounds a client that never finishes.
 */
function lingeringClose(this: LedgeredSocket & Socket): void {
  const req = this[kCloseCarrier]?.req as IncomingMessage | undefined;
  if (req === undefined || req.complete || this.destroyed) {
    Socket.prototype.destroySoon.call(this);
    return;
  }
  // What Node parses after the body is not run: this socket answers nothing more (see `admit`).
  this[kLingering] = true;
  if (this.writable) this.end();
  req.once('end', () => Socket.prototype.destroySoon.call(this));
  // Node resumed a body nobody read (`_dump`); one the handler paused is dropped the same way.
  if (req.isPaused()) req.resume();
}

export function createRequestTracker(options: RequestTrackerOptions): RequestTracker {
  const { isShuttingDown, isDraining, rejectDuringDrain, observer } = options;
  const retryAfterSeconds = options.retryAfterSeconds;
  if (!Number.isInteger(retryAfterSeconds) || retryAfterSeconds < 0) {
    throw invalidOption('drain.retryAfterSeconds', 'a non-negative integer (seconds)', retryAfterSeconds);
  }
  const retryAfter = String(retryAfterSeconds);
  let inflight = 0;
  // Only HTTP/1 responses can carry `Connection: close`; shutdownStarted() needs to reach them.
  // An array with swap-remove rather than a Set: hashing each response object costs about 1 µs per
  // request (measured), an array slot a few ns.
  const openHttp1: TrackedResponse[] = [];
  const ledgers = new Set<Ledger>();
  const becameIdle = createNotifier();

  function requestEnded(): void {
    inflight--;
    observer?.requestFinished?.();
    if (inflight === 0) becameIdle.notify();
  }

  // One shared listener (`this` is the response) instead of a closure per request.
  function onResponseClose(this: TrackedResponse): void {
    if (this[kTracked] !== true) return;
    this[kTracked] = false;
    const slot = this[kSlot];
    if (slot !== undefined) {
      const last = openHttp1.pop() as TrackedResponse;
      if (last !== this) {
        openHttp1[slot] = last;
        last[kSlot] = slot;
      }
    }
    requestEnded();
    const done = this[kDone];
    if (done !== undefined) done(this as unknown as ServerResponse);
  }

  function write503(res: TrackedResponse): void {
    // HTTP/1: `Connection: close` only if it is still the socket's newest response (carryClose).
    if (!res.headersSent) res.writeHead(503, { 'retry-after': retryAfter, 'content-length': '0' });
    res.end();
  }

  function reject(req: IncomingMessage | Http2ServerRequest, res: TrackedResponse, http1: boolean): void {
    // HTTP/1: a tick later, once Node has parsed whatever was pipelined behind this request in the
    // same chunk; the 503 then carries `Connection: close` only if nothing did.
    if (http1) process.nextTick(write503, res);
    else write503(res);
    // Read and drop the body: closing a socket with unread data would make the kernel send RST.
    req.resume();
  }

  /**
   * Gives `res`, the newest response of its socket, `Connection: close`, and takes it back from the
   * one before it when that one's headers are not out yet: Node ends the socket after the response
   * that carries it, and would leave the pipelined requests behind it unanswered.
   */
  function carryClose(socket: LedgeredSocket | null | undefined, res: TrackedResponse): void {
    if (res.headersSent) return;
    if (socket) {
      const previous = socket[kCloseCarrier];
      if (
        previous !== undefined &&
        previous !== res &&
        !previous.headersSent &&
        previous.getHeader('connection') === 'close'
      ) {
        previous.removeHeader('connection');
      }
      socket[kCloseCarrier] = res;
      socket.destroySoon = lingeringClose;
    }
    res.setHeader('connection', 'close');
  }

  /** What every new request gets, whichever way it was tracked; true when answered with 503. */
  function admit(req: IncomingMessage | Http2ServerRequest, res: TrackedResponse, http1: boolean): boolean {
    inflight++;
    observer?.requestStarted?.();
    if (http1 && isShuttingDown()) {
      // Pipelined behind a body that a lingering close reads and drops, after a `Connection: close`
      // answer: no later request on the connection may be processed (RFC 9112 §9.6), and the client
      // may send it again elsewhere. Not run; counted unanswered when the socket closes.
      if ((req.socket as LedgeredSocket | null)?.[kLingering] === true) {
        req.resume();
        return true;
      }
      carryClose(req.socket, res);
    }
    if (rejectDuringDrain && isDraining()) {
      reject(req, res, http1);
      return true;
    }
    return false;
  }

  /** Per-response tracking; the response must not be tracked yet. */
  function trackResponse(res: TrackedResponse, http1: boolean, onDone: RequestDone | undefined): void {
    res[kTracked] = true;
    if (onDone !== undefined) res[kDone] = onDone;
    res.on('close', onResponseClose);
    if (http1) res[kSlot] = openHttp1.push(res) - 1;
  }

  function track(
    req: IncomingMessage | Http2ServerRequest,
    response: ServerResponse | Http2ServerResponse,
    onDone?: RequestDone,
  ): boolean {
    const res = response as unknown as TrackedResponse;
    if (res[kTracked] !== undefined) return false;
    const http1 = req.httpVersionMajor < 2;
    // Already in a drainer's ledger: the drainer saw it first (its emit wrapper runs before any listener).
    const socket = http1 ? (req.socket as LedgeredSocket | null) : null;
    const ledger = socket?.[kLedger];
    if (ledger !== undefined && inLedger(ledger, res)) return false;
    trackResponse(res, http1, onDone);
    if (socket && ledger === undefined) socket[kNewest] = res;
    return admit(req, res, http1);
  }

  /**
   * In flight, tracked by trackUnwatched(): every request of an app whose server kubegrace does not
   * drain, so an array with swap-remove, as openHttp1 (no hashing per request).
   */
  const unwatched: TrackedResponse[] = [];
  const unwatchedEnded: RequestDone = (response) => {
    const res = response as unknown as TrackedResponse;
    const slot = res[kUnwatchedSlot];
    if (slot === undefined) return;
    res[kUnwatchedSlot] = undefined;
    const last = unwatched.pop() as TrackedResponse;
    if (last !== res) {
      unwatched[slot] = last;
      last[kUnwatchedSlot] = slot;
    }
  };

  function trackUnwatched(
    req: IncomingMessage | Http2ServerRequest,
    response: ServerResponse | Http2ServerResponse,
  ): boolean {
    const res = response as unknown as TrackedResponse;
    const fresh = res[kTracked] === undefined;
    const answered = track(req, response, unwatchedEnded);
    // Not when a drainer had it first (a ledger, or its own track()): the drainer cuts it.
    if (fresh && res[kTracked] === true) res[kUnwatchedSlot] = unwatched.push(res) - 1;
    return answered;
  }

  function abandonUnwatched(): string[] {
    const cut = unwatched.splice(0);
    return cut.map((res) => {
      res[kUnwatchedSlot] = undefined;
      const { method = '?', url = '' } = res.req ?? {};
      const query = url.indexOf('?');
      res.destroy();
      // Without the query (it may carry tokens); an absolute-form target without its user info.
      return `${method} ${redactUrls(query === -1 ? url : url.slice(0, query))}`;
    });
  }

  function openLedger(socket: Socket, onDone: LedgerDone): SocketLedger {
    if (liveLedgers++ === 0) subscribe(RESPONSE_FINISH, onResponseFinish);
    const ledger: Ledger = {
      inflight: 0,
      current: undefined,
      queued: undefined,
      open: true,
      socket,
      onDone,
      finished,
    };
    ledgers.add(ledger);
    (socket as LedgeredSocket)[kLedger] = ledger;
    return ledger;
  }

  function trackOn(handle: SocketLedger, req: IncomingMessage, res: ServerResponse): boolean {
    const ledger = handle as Ledger;
    if (ledger.current === undefined) ledger.current = res;
    else (ledger.queued ??= []).push(res);
    ledger.inflight++;
    return admit(req, res, true);
  }

  function finished(ledger: Ledger, res: ServerResponse): void {
    if (ledger.current === res) {
      ledger.current = ledger.queued?.shift();
    } else {
      const index = ledger.queued?.indexOf(res) ?? -1;
      if (index === -1) return;
      ledger.queued?.splice(index, 1);
    }
    ledger.inflight--;
    requestEnded();
    ledger.onDone(res, ledger.socket);
  }

  function closeLedger(handle: SocketLedger): void {
    // Nothing left to finish on a closed socket: each response in flight ends here.
    for (let left = stopWatching(handle as Ledger).length; left > 0; left--) requestEnded();
  }

  function releaseLedger(handle: SocketLedger): void {
    // Still in flight: from now on their own 'close' ends them, as with track().
    for (const res of stopWatching(handle as Ledger)) trackResponse(res, true, undefined);
  }

  /** Detaches the ledger from its socket; returns the responses that were still in flight. */
  function stopWatching(ledger: Ledger): ServerResponse[] {
    if (!ledger.open) return [];
    ledger.open = false;
    ledgers.delete(ledger);
    // Assigned, not deleted: `delete` would slow every later property access on a live socket.
    (ledger.socket as LedgeredSocket)[kLedger] = undefined;
    if (--liveLedgers === 0) unsubscribe(RESPONSE_FINISH, onResponseFinish);
    const left = ledger.current === undefined ? [] : [ledger.current, ...(ledger.queued ?? [])];
    ledger.current = undefined;
    ledger.queued = undefined;
    ledger.inflight = 0;
    return left;
  }

  // The requests participant and every attached server's drainer call this; one pass is enough, since
  // responses admitted later get `Connection: close` in admit(). Only each socket's newest response
  // gets it; one whose headers are already out leaves the socket to end at the drain instead.
  let shutdownMarked = false;
  function shutdownStarted(): void {
    if (shutdownMarked) return;
    shutdownMarked = true;
    for (const res of openHttp1) {
      const socket = (res as unknown as ServerResponse).req.socket as LedgeredSocket | null;
      if (socket === null || socket[kNewest] === res) carryClose(socket, res);
    }
    for (const ledger of ledgers) {
      const newest = ledger.queued?.at(-1) ?? ledger.current;
      if (newest !== undefined) carryClose(ledger.socket, newest);
    }
  }

  async function idle(signal: AbortSignal): Promise<void> {
    await settle({ isDone: () => inflight === 0, subscribe: becameIdle.subscribe, signal });
  }

  return {
    track,
    trackUnwatched,
    abandonUnwatched,
    openLedger,
    trackOn,
    closeLedger,
    releaseLedger,
    get inflight() {
      return inflight;
    },
    shutdownStarted,
    idle,
    onIdle: becameIdle.subscribe,
  };
}
