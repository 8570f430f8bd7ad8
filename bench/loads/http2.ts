/**
 * HTTP/2 (h2c) clients behind the endpoint table, recorded like the HTTP/1 load (one record per
 * request):
 * - pooled clients, each one session multiplexing `STREAMS_PER_SESSION` closed-loop request loops
 *   (`concurrency` loops in all); a session that got GOAWAY or closed is replaced by a new one
 *   through the Service, the way HTTP/2 client pools (grpc, Go, undici) behave;
 * - `newConnectionsPerSecond` new clients, each opening a session for one request.
 *
 * Counted as retried, not failed: a stream the server refused with REFUSED_STREAM (RFC 9113 §8.7:
 * not processed, safe to retry), sent again on another session, as those clients do. Failed:
 * everything else that did not end in a response (a reset or cancelled stream, a session that went
 * away without GOAWAY, a refused connect, a timeout) and 5xx responses.
 */
import { connect, constants, type ClientHttp2Session } from 'node:http2';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  failureKind,
  loadBasics,
  startArrivals,
  type Load,
  type LoadOptions,
  type RequestRecord,
} from '../../src/cli/demo/load.js';
import type { ConnectionKind, EndpointTable } from '../../src/cli/demo/endpoint-table.js';

export interface RetryingLoad extends Load {
  /** Requests sent again after REFUSED_STREAM. */
  readonly retried: number;
}

const STREAMS_PER_SESSION = 4;
const MAX_RETRIES = 3;

interface Session {
  readonly session: ClientHttp2Session;
  readonly endpoint: string;
  goaway: boolean;
}

type Result =
  | { readonly status: number; readonly failure?: undefined; readonly refused?: undefined }
  | { readonly status?: undefined; readonly failure: string; readonly refused: boolean };

function h2FailureKind(error: unknown): string {
  const e = error as NodeJS.ErrnoException & { cause?: unknown };
  // A stream cancelled because its session failed: the session's reason is the one that matters.
  if (e?.code === 'ERR_HTTP2_STREAM_CANCEL' && e.cause !== undefined) return failureKind(e.cause);
  if (e?.code === 'ERR_HTTP2_STREAM_ERROR') return e.message.replace(/^Stream closed with error code /, '');
  return failureKind(error);
}

export function startHttp2Load(options: LoadOptions, table: EndpointTable): RetryingLoad {
  const { now, timeoutMs, backoffMs, pickWork } = loadBasics(options);
  const records: RequestRecord[] = [];
  const sessions = new Set<Session>();
  let stopped = false;
  let aborted = false;
  let retried = 0;

  const bound = setTimeout(() => {
    stopped = true;
  }, options.maxDurationMs);
  bound.unref();

  function openSession(kind: ConnectionKind = 'pooled'): Session | undefined {
    const connection = table.connect(kind);
    if (connection === undefined) return undefined;
    const session = connect('http://service.demo', { createConnection: () => connection.socket });
    const entry: Session = { session, endpoint: connection.endpoint.name, goaway: false };
    sessions.add(entry);
    // Its streams report what went wrong; the session's own error must not crash the harness.
    session.on('error', () => {});
    session.on('goaway', () => {
      entry.goaway = true;
    });
    session.once('close', () => sessions.delete(entry));
    return entry;
  }

  const usable = (entry: Session | undefined): entry is Session =>
    entry !== undefined && !entry.goaway && !entry.session.closed && !entry.session.destroyed;

  function request(entry: Session, workMs: number): Promise<Result> {
    return new Promise((resolve) => {
      let status: number | undefined;
      let ended = false;
      let error: unknown;
      let settled = false;
      const settle = (result: Result): void => {
        if (settled) return;
        settled = true;
        resolve(result);
      };
      let stream;
      try {
        stream = entry.session.request({ ':path': `/work?ms=${workMs}` }, { endStream: true });
      } catch (thrown) {
        // The session closed between the check and the call: nothing was sent.
        settle({ failure: h2FailureKind(thrown), refused: true });
        return;
      }
      stream.setTimeout(timeoutMs, () => {
        error = Object.assign(new Error('timeout'), { code: 'timeout' });
        stream.close(constants.NGHTTP2_CANCEL);
      });
      stream.on('response', (headers) => {
        status = Number(headers[':status']);
      });
      stream.on('error', (e) => {
        error ??= e;
      });
      stream.on('end', () => {
        ended = true;
      });
      stream.resume();
      stream.on('close', () => {
        if (status !== undefined && ended && error === undefined) {
          settle(status >= 500 ? { failure: `http ${status}`, refused: false } : { status });
        } else if (stream.rstCode === constants.NGHTTP2_REFUSED_STREAM) {
          settle({ failure: 'REFUSED_STREAM', refused: true });
        } else {
          settle({
            failure: error === undefined ? `rst ${stream.rstCode}` : h2FailureKind(error),
            refused: false,
          });
        }
      });
    });
  }

  /** One request, retried on another session while refused; records the final outcome. */
  async function exchange(loop: number, current: () => Session | undefined): Promise<boolean> {
    const workMs = pickWork();
    for (let attempt = 0; ; attempt++) {
      const startedAt = now();
      const entry = current();
      const base = { loop, startedAt, workMs, reusedSocket: false, connectionClose: false };
      if (entry === undefined) {
        if (!aborted)
          push({ ...base, endedAt: now(), status: undefined, failure: 'ECONNREFUSED', endpoint: undefined });
        return false;
      }
      const result = await request(entry, workMs);
      if (result.refused === true && attempt < MAX_RETRIES && !aborted) {
        retried++;
        continue;
      }
      if (aborted) return false;
      push({
        ...base,
        endedAt: now(),
        status: result.status,
        failure: result.failure,
        endpoint: entry.endpoint,
      });
      return result.failure === undefined;
    }
  }

  function push(record: RequestRecord): void {
    records.push(record);
    options.onRecord?.(record);
  }

  async function pooledClient(first: number, loops: number): Promise<void> {
    let entry: Session | undefined;
    const current = (): Session | undefined => {
      if (!usable(entry)) entry = openSession();
      return entry;
    };
    await Promise.all(
      Array.from({ length: loops }, async (_, i) => {
        while (!stopped) {
          if (!(await exchange(first + i, current)) && !stopped) await sleep(backoffMs);
        }
      }),
    );
    if (entry !== undefined && !entry.session.closed) entry.session.close();
  }

  async function newClient(): Promise<void> {
    let entry: Session | undefined;
    await exchange(-1, () => {
      if (!usable(entry)) entry = openSession('new-client');
      return entry;
    });
    if (entry !== undefined && !entry.session.closed) entry.session.close();
  }

  const arrivals = startArrivals(options, () => stopped, newClient);

  const clients: Promise<void>[] = [];
  for (let first = 0; first < options.concurrency; first += STREAMS_PER_SESSION) {
    clients.push(pooledClient(first, Math.min(STREAMS_PER_SESSION, options.concurrency - first)));
  }
  const done = Promise.all(clients).then(async () => {
    clearTimeout(bound);
    arrivals.stop();
    await arrivals.settled();
  });

  return {
    records,
    done,
    get retried() {
      return retried;
    },
    stop() {
      stopped = true;
      return done;
    },
    abort() {
      stopped = true;
      aborted = true;
      arrivals.stop();
      for (const entry of sessions) entry.session.destroy();
    },
  };
}
