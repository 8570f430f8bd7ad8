/**
 * A queue worker: jobs are taken from a queue and each holds a kubegrace work lease while it runs,
 * so the drain waits for running jobs instead of cutting them off.
 *
 *   node --import tsx examples/queue-worker/server.ts
 *   curl -X POST 'localhost:8080/jobs?count=10&ms=2000'; kill -TERM <pid>
 *
 * On shutdown: the `beforeShutdown` hook stops taking new jobs at once (unready phase); running
 * jobs finish under their leases (drain phase, up to drain.timeoutMs); jobs that were still
 * waiting are handed back to the queue for another worker. `createQueue` stands in for a real
 * broker client (SQS, RabbitMQ, BullMQ): `receive` → message with `ack` / `nack`.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createKubegrace } from '../../src/index.js';

const port = Number(process.env.PORT ?? 8080);
const concurrency = Number(process.env.WORKER_CONCURRENCY ?? 4);

interface Message {
  readonly id: number;
  readonly ms: number;
  ack(): void;
  nack(): void;
}

/** An in-memory stand-in for a broker: messages are redelivered unless acked. */
function createQueue() {
  const waiting: { id: number; ms: number }[] = [];
  let nextId = 1;
  const stats = { enqueued: 0, acked: 0, returned: 0 };
  const sleepers: (() => void)[] = [];
  return {
    stats,
    get depth() {
      return waiting.length;
    },
    send(ms: number): number {
      const id = nextId++;
      waiting.push({ id, ms });
      stats.enqueued++;
      sleepers.shift()?.(); // one message, one consumer woken
      return id;
    },
    /** The next message, or undefined once `signal` aborts. */
    async receive(signal: AbortSignal): Promise<Message | undefined> {
      while (!signal.aborted) {
        const job = waiting.shift();
        if (job) {
          return {
            ...job,
            ack: () => {
              stats.acked++;
            },
            nack: () => {
              waiting.unshift(job);
              stats.returned++;
            },
          };
        }
        await new Promise<void>((resolve) => {
          const wake = (): void => {
            signal.removeEventListener('abort', wake);
            resolve();
          };
          sleepers.push(wake);
          signal.addEventListener('abort', wake, { once: true });
        });
      }
      return undefined;
    },
  };
}

const queue = createQueue();
const kg = createKubegrace();
const consuming = new AbortController();
const stats = { started: 0, completed: 0 };

async function runJob(message: Message): Promise<void> {
  // The lease keeps the drain open until the job is done; a job still running at the drain
  // budget is counted as forced in the shutdown summary.
  using _lease = kg.lease(`job-${message.id}`);
  stats.started++;
  await new Promise((resolve) => setTimeout(resolve, message.ms));
  stats.completed++;
  message.ack();
}

async function consume(): Promise<void> {
  for (;;) {
    const message = await queue.receive(consuming.signal);
    if (!message) return;
    if (consuming.signal.aborted) {
      message.nack(); // received as the shutdown began: another worker takes it
      return;
    }
    await runJob(message);
  }
}

kg.beforeShutdown(
  () => {
    consuming.abort();
    console.log(`stopped taking jobs; ${queue.depth} left in the queue for other workers`);
  },
  { name: 'queue-consumer' },
);
kg.on('shutdown', () => {
  console.log(JSON.stringify({ event: 'worker-summary', ...stats, ...queue.stats, waiting: queue.depth }));
});

// A small HTTP API to feed the queue (a real worker would get jobs from the broker).
const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (req.method === 'POST' && url.pathname === '/jobs') {
    const count = Math.min(Math.max(Number(url.searchParams.get('count')) || 1, 1), 1000);
    const ms = Math.min(Math.max(Number(url.searchParams.get('ms')) || 0, 0), 60_000);
    const ids = Array.from({ length: count }, () => queue.send(ms));
    res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ ids }));
    return;
  }
  if (url.pathname === '/stats') {
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ ...stats, ...queue.stats, waiting: queue.depth }));
    return;
  }
  res.writeHead(404).end();
});
kg.attach(server);
await kg.start();
for (let i = 0; i < concurrency; i++) void consume();
server.listen(port, () => {
  const { port: bound } = server.address() as AddressInfo;
  console.log(`example queue-worker listening on :${bound}, management on :${kg.managementAddress?.port}`);
  kg.ready();
});
