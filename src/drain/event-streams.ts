/**
 * Server-sent event streams (`content-type: text/event-stream`) in the drain, over HTTP/1 or HTTP/2's
 * compatibility API: a response that never ends would hold the drain to its budget and then be reset. Instead the paced drain ends each one
 * at a message boundary, after an optional last event the app supplies (a `retry:` hint, a
 * "reconnect" event); the client's EventSource reconnects, through the Service, to another pod.
 *
 * A boundary is a write that ends with a blank line (`\n\n`, `\r\n\r\n`, `\r\r`). From the shutdown
 * on, kubegrace watches each stream's writes (one wrapper per stream, none before); a stream not
 * written to since is taken to be at a boundary: apps write whole events, one `write()` each. One
 * that is mid-event when its turn comes is ended after the write that completes the event. Writes
 * the app makes after kubegrace ended the stream are dropped (the app's timer has not heard of the
 * close yet), not turned into an error.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';

/** The event written last, or nothing; called once per stream as it is ended. */
export type LastEvent = (req: IncomingMessage | Http2ServerRequest) => string | undefined;

/** An HTTP/1 response, or an HTTP/2 one of the compatibility API (a `'request'` listener's). */
export type StreamResponse = ServerResponse | Http2ServerResponse;

type Write = (this: StreamResponse, chunk: unknown, ...rest: unknown[]) => boolean;

/** What kubegrace keeps on a watched stream. */
interface StreamState {
  atBoundary: boolean;
  /** Set when the drain wanted to end it mid-event: the write that completes the event ends it. */
  endPending: boolean;
  ended: boolean;
  /** kubegrace's own `end()` is writing: HTTP/2's `end(chunk)` goes through `write()`. */
  ending: boolean;
  readonly lastEvent: LastEvent | undefined;
}

const kStream = Symbol('kubegrace.eventStream');

type WatchedResponse = StreamResponse & {
  [kStream]?: StreamState;
};

/** True for a response whose headers went out as `text/event-stream`. */
export function isEventStream(res: StreamResponse): boolean {
  if (!res.headersSent || res.writableEnded) return false;
  const type = res.getHeader('content-type');
  if (typeof type === 'string') return type.toLowerCase().startsWith('text/event-stream');
  // HTTP/1's writeHead(status, headers) without setHeader() keeps the headers only in the text it
  // sent (HTTP/2's getHeader() sees them).
  const sent = (res as { _header?: unknown })._header;
  return typeof sent === 'string' && EVENT_STREAM_HEADER.test(sent);
}

const EVENT_STREAM_HEADER = /\r\ncontent-type:[ \t]*text\/event-stream/i;

function endsAtBoundary(chunk: unknown): boolean | undefined {
  let tail: string;
  if (typeof chunk === 'string') tail = chunk.slice(-4);
  else if (chunk instanceof Uint8Array) tail = Buffer.from(chunk.subarray(-4)).toString('latin1');
  else return undefined;
  if (tail === '') return undefined;
  return tail.endsWith('\n\n') || tail.endsWith('\r\r') || tail.endsWith('\r\n\r\n');
}

/** Start watching the writes of an event stream (idempotent). */
export function watchEventStream(res: StreamResponse, lastEvent: LastEvent | undefined): void {
  const watched = res as WatchedResponse;
  if (watched[kStream] !== undefined) return;
  const state: StreamState = { atBoundary: true, endPending: false, ended: false, ending: false, lastEvent };
  watched[kStream] = state;
  const original = res.write as Write;
  const write: Write = function write(this: StreamResponse, chunk: unknown, ...rest: unknown[]): boolean {
    if (state.ending) return Reflect.apply(original, this, [chunk, ...rest]);
    if (state.ended) {
      // Dropped: the stream is over, and Node would answer the write with an 'error' event.
      const callback = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined;
      if (callback) process.nextTick(callback);
      return false;
    }
    const result = Reflect.apply(original, this, [chunk, ...rest]);
    const boundary = endsAtBoundary(chunk);
    if (boundary !== undefined) state.atBoundary = boundary;
    if (state.endPending && state.atBoundary) finish(res, state);
    return result;
  };
  (res as { write: Write }).write = write;
}

/**
 * End a watched stream at its next message boundary: now when it is at one, else after the write
 * that completes its event. Returns false when it was over already.
 */
export function endEventStream(res: StreamResponse): boolean {
  const state = (res as WatchedResponse)[kStream];
  // An Http2ServerResponse's `destroyed` is undefined (its type says otherwise); its stream's is not.
  const destroyed = res.destroyed === true || ('stream' in res && res.stream.destroyed);
  if (state === undefined || state.ended || res.writableEnded || destroyed) return false;
  if (state.atBoundary) finish(res, state);
  else state.endPending = true;
  return true;
}

function finish(res: StreamResponse, state: StreamState): void {
  if (state.ended) return;
  let last: string | undefined;
  try {
    last = state.lastEvent?.(res.req);
  } catch {
    // An app's lastEvent that throws costs its last event, not the clean end.
    last = undefined;
  }
  state.ended = true;
  state.ending = true;
  try {
    if (last !== undefined && last !== '') res.end(last.endsWith('\n\n') ? last : `${last}\n\n`);
    else res.end();
  } finally {
    state.ending = false;
  }
}
