/**
 * WebSocket clients behind the endpoint table, recorded like the HTTP/1 load (one record per echo):
 * - `concurrency` long-lived clients, each with one echo in flight at a time (`{"id","ms"}`,
 *   answered after `ms`), reconnecting through the Service whenever their connection ends;
 * - `newConnectionsPerSecond` new clients, each connecting, exchanging one echo and leaving (1000).
 *
 * Every connection is a new TCP connection routed by the table (its fresh agent), so a pod keeps the
 * clients it has until it closes them, as kube-proxy keeps established flows.
 *
 * Counted as resent, not failed: an echo outstanding when the server closed the connection cleanly
 * (a close frame with 1000 or 1001): the client cannot get the reply on a closing connection and
 * sends the message again on its next one, which is what an application protocol over WebSockets
 * does on Going Away. Failed: every other end of a connection the client did not ask for (1006: no
 * close frame, a reset, the process gone), a refused or failed upgrade, a timeout.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import {
  failureKind,
  loadBasics,
  startArrivals,
  type Load,
  type LoadOptions,
  type RequestRecord,
} from '../../src/cli/demo/load.js';
import type { EndpointTable } from '../../src/cli/demo/endpoint-table.js';
import { messageText } from '../services/app.js';

export interface ResendingLoad extends Load {
  /** Echoes sent again on a new connection after a clean close (1000/1001) left them unanswered. */
  readonly resent: number;
}

type Outcome =
  | { readonly kind: 'reply' }
  | { readonly kind: 'closed'; readonly code: number }
  | { readonly kind: 'timeout' };

interface Connection {
  readonly ws: WebSocket;
  readonly endpoint: string | undefined;
  /** Set once the connection closed (the close code). */
  closedWith: number | undefined;
  /** The echo in flight and how to settle it. */
  pending: { readonly id: number; readonly settle: (outcome: Outcome) => void } | undefined;
}

const CLEAN_CLOSE = new Set([1000, 1001]);

export function startWebSocketLoad(options: LoadOptions, table: EndpointTable): ResendingLoad {
  const { now, timeoutMs, backoffMs, pickWork } = loadBasics(options);
  const records: RequestRecord[] = [];
  const open = new Set<Connection>();
  let stopped = false;
  let aborted = false;
  let resent = 0;
  let nextId = 0;

  const bound = setTimeout(() => {
    stopped = true;
  }, options.maxDurationMs);
  bound.unref();

  function record(
    entry: Omit<RequestRecord, 'endedAt' | 'status' | 'connectionClose' | 'failure'>,
    failure?: string,
  ): void {
    if (aborted) return;
    const full: RequestRecord = {
      ...entry,
      endedAt: now(),
      status: failure === undefined ? 200 : undefined,
      failure,
      connectionClose: false,
    };
    records.push(full);
    options.onRecord?.(full);
  }

  /** A new connection through the Service, or why there is none. */
  function connect(): Promise<
    Connection | { readonly failure: string; readonly endpoint: string | undefined }
  > {
    return new Promise((resolve) => {
      let endpoint: string | undefined;
      let settled = false;
      const ws = new WebSocket('ws://service.demo/', {
        agent: table.freshAgent,
        handshakeTimeout: timeoutMs,
        perMessageDeflate: false,
      });
      const fail = (failure: string): void => {
        if (settled) return;
        settled = true;
        ws.terminate();
        resolve({ failure, endpoint });
      };
      // Errors after the open show up as the close code; before it, they fail the connect.
      ws.on('error', (error) => fail(failureKind(error)));
      ws.once('upgrade', (res) => {
        endpoint = table.endpointOf(res.socket)?.name;
      });
      ws.once('unexpected-response', (req, res) => {
        endpoint = table.endpointOf(res.socket)?.name;
        res.resume();
        req.destroy();
        fail(`http ${res.statusCode ?? 0}`);
      });
      ws.once('open', () => {
        if (settled) return;
        settled = true;
        const connection: Connection = { ws, endpoint, closedWith: undefined, pending: undefined };
        open.add(connection);
        ws.on('message', (data) => {
          const id = (JSON.parse(messageText(data)) as { id?: unknown }).id;
          const pending = connection.pending;
          if (pending !== undefined && pending.id === id) pending.settle({ kind: 'reply' });
        });
        ws.once('close', (code) => {
          connection.closedWith = code;
          open.delete(connection);
          connection.pending?.settle({ kind: 'closed', code });
        });
        resolve(connection);
      });
    });
  }

  function exchange(connection: Connection, workMs: number): Promise<Outcome> {
    if (connection.closedWith !== undefined) {
      return Promise.resolve({ kind: 'closed', code: connection.closedWith });
    }
    return new Promise((resolve) => {
      const id = nextId++;
      const timer = setTimeout(() => settle({ kind: 'timeout' }), timeoutMs);
      const settle = (outcome: Outcome): void => {
        clearTimeout(timer);
        connection.pending = undefined;
        resolve(outcome);
      };
      connection.pending = { id, settle };
      connection.ws.send(JSON.stringify({ id, ms: workMs }));
    });
  }

  /** One client: `echoes` exchanges (Infinity: until the load stops), reconnecting as needed. */
  async function client(loop: number, echoes: number): Promise<void> {
    let left = echoes;
    let resend: number | undefined;
    while (!stopped && left > 0) {
      const startedAt = now();
      const connection = await connect();
      if (!('ws' in connection)) {
        record(
          { loop, startedAt, workMs: resend ?? 0, endpoint: connection.endpoint, reusedSocket: false },
          connection.failure,
        );
        resend = undefined;
        left--;
        await sleep(backoffMs);
        continue;
      }
      let reused = false;
      while (!aborted && left > 0 && (!stopped || resend !== undefined)) {
        const workMs = resend ?? pickWork();
        const sentAt = now();
        const outcome = await exchange(connection, workMs);
        const entry = {
          loop,
          startedAt: sentAt,
          workMs,
          endpoint: connection.endpoint,
          reusedSocket: reused,
        };
        reused = true;
        if (outcome.kind === 'reply') {
          record(entry);
          resend = undefined;
          left--;
          continue;
        }
        if (outcome.kind === 'closed' && CLEAN_CLOSE.has(outcome.code)) {
          resent++;
          resend = workMs;
          break;
        }
        record(entry, outcome.kind === 'timeout' ? 'timeout' : `ws close ${outcome.code}`);
        resend = undefined;
        left--;
        connection.ws.terminate();
        await sleep(backoffMs);
        break;
      }
      if (connection.closedWith === undefined) connection.ws.close(1000);
    }
  }

  const arrivals = startArrivals(
    options,
    () => stopped,
    () => client(-1, 1),
  );

  const done = Promise.all(Array.from({ length: options.concurrency }, (_, i) => client(i, Infinity))).then(
    async () => {
      clearTimeout(bound);
      arrivals.stop();
      await arrivals.settled();
    },
  );

  return {
    records,
    done,
    get resent() {
      return resent;
    },
    stop() {
      stopped = true;
      return done;
    },
    abort() {
      stopped = true;
      aborted = true;
      arrivals.stop();
      for (const connection of open) {
        connection.ws.terminate();
        connection.pending?.settle({ kind: 'closed', code: 1006 });
      }
    },
  };
}
