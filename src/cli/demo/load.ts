/**
 * Closed-loop keep-alive load: N client loops, each sending one request after another through the
 * endpoint table's agent. Every request is recorded; the load stops by itself at a time or count bound.
 */
import { request, type Agent } from 'node:http';
import type { Duplex } from 'node:stream';
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

export const preciseNow = (): number => performance.timeOrigin + performance.now();

/** Seeded: runs draw the same sequence of short and long requests (which client gets which follows timing). */
export function mulberry32(seed: number): () => number {
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

export function startLoad(options: LoadOptions): Load {
  const now = options.now ?? preciseNow;
  const longShare = options.longShare ?? 0;
  const longMs = options.longMs ?? options.requestMs;
  const timeoutMs = options.timeoutMs ?? Math.max(options.requestMs, longShare > 0 ? longMs : 0) + 10_000;
  const backoffMs = options.failureBackoffMs ?? 50;
  const random = mulberry32(options.seed ?? 1);
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

  const pickWork = (): number => (longShare > 0 && random() < longShare ? longMs : options.requestMs);

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

  // New clients arrive on a clock, whatever the pooled loops are doing (open loop).
  const newClients = new Set<Promise<unknown>>();
  const rate = options.newConnectionsPerSecond ?? 0;
  const arrivals =
    rate > 0
      ? setInterval(() => {
          if (stopped) return;
          const pending = once(-1, pickWork(), options.freshAgent ?? options.agent);
          newClients.add(pending);
          void pending.then(() => newClients.delete(pending));
        }, 1000 / rate)
      : undefined;

  const done = Promise.all(Array.from({ length: options.concurrency }, (_, i) => loop(i))).then(async () => {
    clearTimeout(bound);
    clearInterval(arrivals);
    await Promise.all([...newClients]);
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
