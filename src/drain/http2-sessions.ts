/**
 * The HTTP/2 half of the HTTP drainer: the sessions of one server, each ended with the two-step
 * GOAWAY of RFC 9113 §6.8 (its first GOAWAY tells the client early, from `unready`). On Node it
 * cannot save a stream sent while the first GOAWAY is on its way: Node submits every GOAWAY as an
 * ordinary one, after which nghttp2 ignores new streams (session_allow_incoming_new_stream), and the
 * final GOAWAY refuses them (REFUSED_STREAM: never processed, safe for the client to retry).
 */
import type { ServerHttp2Session, ServerHttp2Stream } from 'node:http2';
import type { TrafficActivity } from '../propagation/activity.js';
import type { DrainObserver } from './observer.js';
import type { PaceContext, Pacer } from './pacer.js';

/** Stream id of the first GOAWAY: the largest there is (the client keeps what it has in flight). */
const SHUTDOWN_NOTICE_STREAM_ID = 2 ** 31 - 1;
const NO_ERROR = 0;
/** The final GOAWAY follows the PING ack, or this long after the notice without one. */
const PING_ACK_TIMEOUT_MS = 500;

export interface SessionSet {
  /** The server's `'session'` listener. */
  readonly add: (session: ServerHttp2Session) => void;
  readonly size: number;
  /**
   * GOAWAY to every open session. Sessions opened from now on get theirs after their first stream:
   * a GOAWAY before any stream would turn away a client that connected to send a request.
   */
  goawayAll(): void;
  /** `goawayAll()` spread over the pacer's window, oldest session first. */
  goawayPaced(pacer: Pacer, ctx: PaceContext): Promise<void>;
  /** GOAWAY to every open session that no paced GOAWAY is waiting for (opened since). */
  goawayUnpaced(): void;
  /** Destroys every session still open; returns how many. */
  destroyAll(): number;
  /** Stops watching every session (detach). */
  release(): void;
}

export interface SessionSetOptions {
  readonly stage: () => 'serving' | 'unready' | 'draining';
  readonly activity: TrafficActivity;
  readonly observer: DrainObserver | undefined;
  /** A session opened during the drain that sent no stream within this gets its GOAWAY anyway. */
  readonly lateSessionGraceMs: number;
  /** Called after a session closed by itself. */
  readonly onClosed: () => void;
}

interface SessionState {
  sawStream: boolean;
  goaway: boolean;
  /** A paced GOAWAY is on its way. */
  paced: boolean;
  readonly onStream: (stream: ServerHttp2Stream) => void;
  readonly onStreamClose: () => void;
  readonly onClose: () => void;
}

export function createSessionSet(options: SessionSetOptions): SessionSet {
  const { stage, activity, observer } = options;
  const sessions = new Map<ServerHttp2Session, SessionState>();

  function add(session: ServerHttp2Session): void {
    const state: SessionState = {
      sawStream: false,
      goaway: false,
      paced: false,
      onStream(stream) {
        state.sawStream = true;
        // While serving nothing per stream: only a session opened during the shutdown needs to
        // know when a stream completes.
        if (stage() !== 'serving' && !state.goaway) stream.on('close', state.onStreamClose);
      },
      onStreamClose() {
        goaway(session, state);
      },
      onClose() {
        if (sessions.get(session) !== state) return;
        sessions.delete(session);
        observer?.connectionClosed?.('http2', state.goaway ? 'goaway' : undefined);
        options.onClosed();
      },
    };
    sessions.set(session, state);
    session.on('stream', state.onStream);
    session.on('close', state.onClose);
    activity.noteConnection();
    observer?.connectionOpened?.('http2');
    if (stage() === 'draining') {
      setTimeout(() => {
        if (!state.sawStream) goaway(session, state);
      }, options.lateSessionGraceMs).unref();
    }
  }

  function goaway(session: ServerHttp2Session, state: SessionState): void {
    if (state.goaway) return;
    state.goaway = true;
    twoStepGoaway(session);
  }

  return {
    add,
    get size() {
      return sessions.size;
    },
    goawayAll() {
      for (const [session, state] of sessions) goaway(session, state);
    },
    goawayPaced(pacer, ctx) {
      const waiting = [...sessions].filter(([, state]) => !state.goaway);
      for (const [, state] of waiting) state.paced = true;
      return pacer.pace(
        waiting,
        ([session, state], step) => {
          if (state.goaway || sessions.get(session) !== state) return false;
          observer?.pacedClose?.('http2', step);
          goaway(session, state);
          return true;
        },
        ctx,
      );
    },
    goawayUnpaced() {
      for (const [session, state] of sessions) if (!state.paced) goaway(session, state);
    },
    destroyAll() {
      let count = 0;
      for (const [session, state] of sessions) {
        sessions.delete(session);
        session.off('close', state.onClose);
        session.destroy();
        observer?.connectionClosed?.('http2', 'forced');
        count++;
      }
      return count;
    },
    release() {
      for (const [session, state] of sessions) {
        session.off('stream', state.onStream);
        session.off('close', state.onClose);
      }
      sessions.clear();
    },
  };
}

/**
 * First a notice with the highest stream id: the client stops opening streams, and every stream
 * already on the wire will still be served. Then, once a PING round trip proves those streams have
 * arrived (TCP keeps order), `close()`: GOAWAY with the real last stream id, and the session ends
 * when its streams complete. A plain `close()` refuses the streams still on their way. Streams an
 * nghttp2 client (Node's) had queued but not sent when the notice came can never be sent; the final
 * GOAWAY refuses them (retry-safe REFUSED_STREAM) instead of leaving them stalled, which is why it
 * follows the PING ack and not a long timer.
 */
function twoStepGoaway(session: ServerHttp2Session): void {
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
