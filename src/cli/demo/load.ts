/**
 * Closed-loop keep-alive load: N client loops, each sending one request after another through the
 * endpoint table's agent. Every request is recorded; the load stops by itself at a time or count bound.
 */
import { request, type Agent } from 'node:http';
import type { Duplex } from 'node:stream';
import { monotonicNow } from '../../wait.js';
import type { Endpoint } from './endpoint-table.js';

export interface RequestRecord {
  /** Client loop index; -1 for a request from a new client (`newConnectionsPerSecond`). */
  readonly loop: number;
  /** Epoch ms (fractional). */
  readonly startedAt: number;
  readonly endedAt: number;
  /** Work time asked of the service (`/work?ms=`). */
  readonly workMs: number;
  readonly status: number | undefined;
  /** Why the request failed (`ECONNREFUSED`, `ECONNRESET`, `socket hang up`, `EPIPE`, `timeout`, `http 503`, …); undefined when it succeeded. */
  readonly failure: string | undefined;
  /** The pod whose socket carried it, when a socket was assigned. */
  readonly endpoint: string | undefined;
  /** True when it went out on a pooled keep-alive socket. */
  readonly reusedSocket: boolean;
  /** The response asked the client to close the connection. */
  readonly connectionClose: boolean;
}

export interface LoadOptions {
  readonly agent: Agent;
  /** Agent for `newConnectionsPerSecond`: one fresh connection per request. */
  readonly freshAgent?: Agent;
  readonly endpointOf: (socket: Duplex | null | undefined) => Endpoint | undefined;
  readonly concurrency: number;
  /**
   * Besides the pooled loops, this many requests per second from new clients, each on a new
   * connection (the same mix of short and long requests). Real Services see such churn; without it a fixed pool soon sits
   * on the remaining pods and a pod that left before its endpoint was removed would go unpunished.
   * @default 0
   */
  readonly newConnectionsPerSecond?: number;
  /**
   * When the new clients come: `clock`, evenly spaced; `poisson`, exponential inter-arrival times
   * from the seeded generator (independent clients, so gaps several times the mean occur).
   * @default 'clock'
   */
  readonly arrivals?: ArrivalProcess;
  readonly requestMs: number;
  /** Share (0..1) of requests that take `longMs` instead of `requestMs`. @default 0 */
  readonly longShare?: number;
  readonly longMs?: number;
  /** A request not answered within this long fails as `timeout`. @default longest work + 10000 */
  readonly timeoutMs?: number;
  /** Stop issuing requests after this long, whatever happens. */
  readonly maxDurationMs: number;
  readonly maxRequests?: number;
  /**
   * Pause of a loop after a failed request, so a refusing endpoint is not hammered at CPU speed
   * and failure counts stay comparable to the request rate. @default 50
   */
  readonly failureBackoffMs?: number;
  readonly seed?: number;
  readonly now?: () => number;
  readonly onRecord?: (record: RequestRecord) => void;
}

export interface Load {
  readonly records: readonly RequestRecord[];
  /** Resolves when every loop has ended (after `stop()` or a bound). */
  readonly done: Promise<void>;
  /** Send no new request; resolves once the requests in flight ended. */
  stop(): Promise<void>;
  /** Stop and destroy the requests in flight (they are not recorded). */
  abort(): void;
}

export const preciseNow = monotonicNow;

export type ArrivalProcess = 'clock' | 'poisson';

/**
 * A seeded generator of uniform numbers in [0, 1) (mulberry32): runs draw the same sequence of short
 * and long requests, arrival gaps and endpoint choices (which client gets which follows timing).
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function failureKind(error: unknown): string {
  const e = error as NodeJS.ErrnoException | undefined;
  if (e?.code === 'ECONNRESET' && e.message === 'socket hang up') return 'socket hang up';
  if (e?.code === 'ECONNRESET' && e.message === 'aborted') return 'ECONNRESET';
  return e?.code ?? (error instanceof Error ? error.message : String(error));
}

/** What every load (HTTP/1.1 here; HTTP/2 and WebSocket in bench/loads) derives from its options. */
export interface LoadBasics {
  readonly now: () => number;
  /** Per request: the longest work it can ask for, plus 10 s, unless `timeoutMs` says otherwise. */
  readonly timeoutMs: number;
  readonly backoffMs: number;
  /** The next request's work: `longMs` for a `longShare` of them (seeded), else `requestMs`. */
  readonly pickWork: () => number;
}

export function loadBasics(options: LoadOptions): LoadBasics {
  const longShare = options.longShare ?? 0;
  const longMs = options.longMs ?? options.requestMs;
  const random = seededRandom(options.seed ?? 1);
  return {
    now: options.now ?? preciseNow,
    timeoutMs: options.timeoutMs ?? Math.max(options.requestMs, longShare > 0 ? longMs : 0) + 10_000,
    backoffMs: options.failureBackoffMs ?? 50,
    pickWork: () => (longShare > 0 && random() < longShare ? longMs : options.requestMs),
  };
}

/** New clients arriving on their own (open loop), whatever the pooled clients are doing. */
export interface Arrivals {
  /** No more arrivals. */
  stop(): void;
  /** Resolves when every client that arrived has finished. */
  settled(): Promise<void>;
}

/**
 * The new clients' arrival times, in ms after the load's start: the same for every run with the same
 * seed (a test can tell in advance when the gaps come). Infinite; take what you need.
 */
export function* arrivalOffsets(
  perSecond: number,
  kind: ArrivalProcess = 'clock',
  seed = 1,
): Generator<number, void, undefined> {
  if (perSecond <= 0) return;
  const meanMs = 1000 / perSecond;
  // Its own sequence, apart from the work picks, so the arrival times do not depend on the mix.
  const random = seededRandom(seed + 0x85ebca6b);
  let at = 0;
  for (;;) {
    at += kind === 'poisson' ? -Math.log(1 - random()) * meanMs : meanMs;
    yield at;
  }
}

export function startArrivals(
  options: Pick<LoadOptions, 'newConnectionsPerSecond' | 'arrivals' | 'seed'>,
  stopped: () => boolean,
  arrive: () => Promise<unknown>,
): Arrivals {
  const pending = new Set<Promise<unknown>>();
  const offsets = arrivalOffsets(options.newConnectionsPerSecond ?? 0, options.arrivals, options.seed);
  const origin = performance.now();
  let timer: NodeJS.Timeout | undefined;
  // Each arrival is timed from the start, not from the previous one, so timer lateness does not add up.
  const schedule = (): void => {
    const next = offsets.next();
    if (next.done === true) return;
    timer = setTimeout(
      () => {
        if (stopped()) return;
        const client = arrive();
        pending.add(client);
        void client.then(() => pending.delete(client));
        schedule();
      },
      Math.max(0, origin + next.value - performance.now()),
    );
  };
  schedule();
  return {
    stop: () => clearTimeout(timer),
    settled: async () => {
      await Promise.all([...pending]);
    },
  };
}

export function startLoad(options: LoadOptions): Load {
  const { now, timeoutMs, backoffMs, pickWork } = loadBasics(options);
  const records: RequestRecord[] = [];
  const inFlight = new Set<{ destroy(error?: Error): void }>();
  let stopped = false;
  let aborted = false;
  let sent = 0;

  const bound = setTimeout(() => {
    stopped = true;
  }, options.maxDurationMs);
  bound.unref();

  function once(loop: number, workMs: number, agent: Agent): Promise<RequestRecord | undefined> {
    return new Promise((resolve) => {
      const startedAt = now();
      let endpoint: string | undefined;
      let settled = false;
      const req = request({
        agent,
        host: 'service.demo',
        port: 80,
        path: `/work?ms=${workMs}`,
        method: 'GET',
      });
      inFlight.add(req);
      const finish = (
        status: number | undefined,
        failure: string | undefined,
        connectionClose: boolean,
      ): void => {
        if (settled) return;
        settled = true;
        inFlight.delete(req);
        if (aborted) {
          resolve(undefined);
          return;
        }
        const record: RequestRecord = {
          loop,
          startedAt,
          endedAt: now(),
          workMs,
          status,
          failure,
          endpoint,
          reusedSocket: req.reusedSocket,
          connectionClose,
        };
        records.push(record);
        options.onRecord?.(record);
        resolve(record);
      };
      req.on('socket', (socket) => {
        endpoint = options.endpointOf(socket)?.name;
      });
      req.setTimeout(timeoutMs, () => {
        finish(undefined, 'timeout', false);
        req.destroy();
      });
      req.on('error', (error) => finish(undefined, failureKind(error), false));
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        const connectionClose = /\bclose\b/i.test(String(res.headers.connection ?? ''));
        res.on('error', (error) => finish(status, failureKind(error), connectionClose));
        res.on('end', () => finish(status, status >= 500 ? `http ${status}` : undefined, connectionClose));
        res.resume();
      });
      req.end();
    });
  }

  async function loop(index: number): Promise<void> {
    while (!stopped) {
      if (options.maxRequests !== undefined && sent >= options.maxRequests) break;
      sent++;
      const record = await once(index, pickWork(), options.agent);
      if (record?.failure !== undefined && !stopped) {
        await new Promise((resolve) => setTimeout(resolve, backoffMs));
      }
    }
  }

  const arrivals = startArrivals(
    options,
    () => stopped,
    () => once(-1, pickWork(), options.freshAgent ?? options.agent),
  );

  const done = Promise.all(Array.from({ length: options.concurrency }, (_, i) => loop(i))).then(async () => {
    clearTimeout(bound);
    arrivals.stop();
    await arrivals.settled();
  });

  return {
    records,
    done,
    stop() {
      stopped = true;
      return done;
    },
    abort() {
      stopped = true;
      aborted = true;
      for (const req of inFlight) req.destroy();
    },
  };
}
