/**
 * A real `node:cluster` service for the cluster tests, run as a child process: this one file is the
 * primary (kubegrace with `clusterPrimary()`, the management port) and its workers (an HTTP server
 * on a shared port, kubegrace with `clusterWorker()`). Everyone reports on stdout as JSON lines
 * (the workers share the primary's stdout): the primary's `{"event":"listening","port":…,
 * "managementPort":…}` once the pod is ready, then lifecycle events and summaries, the workers'
 * tagged with `worker`.
 *
 *   CLUSTER_WORKERS            how many workers (default 2)
 *   CLUSTER_RESPAWN=0          no replacement for a worker that dies
 *   FIXTURE_HANG_WORKER=<id>   that worker blocks its event loop as soon as its shutdown begins
 *   FIXTURE_CRASH_WORKER=<id>  that worker exits with code 3 as soon as its shutdown begins
 *   FIXTURE_METRICS=1          kubegrace/metrics in the primary and every worker
 *   FIXTURE_UNREADY_FILE=<f>   each worker's own readiness check fails while that file exists
 *   FIXTURE_HOLD_FILE=<f>      a worker that starts while that file exists waits for it to go
 *                              before it listens and reports ready
 *   FIXTURE_LOAD_HOLD_FILE=<f> the same, before it even creates kubegrace (a slow module load)
 *   FIXTURE_FATAL_WORKER=<id>  that worker throws an uncaught error when asked for /fatal
 *   FIXTURE_FINAL_SCRAPE=1     the primary's metrics() waits for a final scrape (5 s at most)
 *   FIXTURE_PRIMARY_UNREADY_MS=<ms>
 *                              the primary's beforeShutdown hook takes that long (its unready phase
 *                              ends, and its propagation wait begins, that much after the workers')
 */
import cluster from 'node:cluster';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createKubegrace, type Kubegrace } from '../../src/index.js';
import { clusterPrimary, clusterWorker } from '../../src/cluster/index.js';
import { metrics } from '../../src/metrics/index.js';

const env = process.env;
const workerId = cluster.worker?.id;
const emit = (payload: Record<string, unknown>): void => {
  process.stdout.write(
    `${JSON.stringify({ t: Date.now(), ...(workerId === undefined ? {} : { worker: workerId }), ...payload })}\n`,
  );
};

function report(kg: Kubegrace): void {
  kg.on('state', ({ state }) => emit({ event: 'state', state }));
  kg.on('phase', ({ phase, status }) => emit({ event: 'phase', phase, status }));
}

const logger = {
  info: (msg: string, fields: Readonly<Record<string, unknown>> = {}) =>
    emit({ event: 'log', msg, ...fields }),
  warn: (msg: string, fields: Readonly<Record<string, unknown>> = {}) =>
    emit({ event: 'log', level: 'warn', msg, ...fields }),
  error: (msg: string, fields: Readonly<Record<string, unknown>> = {}) =>
    emit({ event: 'log', level: 'error', msg, ...fields }),
};

if (cluster.isPrimary) {
  // One free port for the workers to share (the primary listens on their behalf).
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));

  const kg = createKubegrace({ logger, probes: { port: 0, host: '127.0.0.1' } });
  report(kg);
  if (env.FIXTURE_METRICS === '1')
    kg.use(metrics(env.FIXTURE_FINAL_SCRAPE === '1' ? { finalScrape: { timeoutMs: 5000 } } : {}));
  const slowUnreadyMs = Number(env.FIXTURE_PRIMARY_UNREADY_MS ?? 0);
  if (slowUnreadyMs > 0)
    kg.beforeShutdown(() => new Promise((resolve) => setTimeout(resolve, slowUnreadyMs)));
  const pod = kg.use(
    clusterPrimary({
      workers: Number(env.CLUSTER_WORKERS ?? 2),
      env: { FIXTURE_PORT: String(port) },
      respawn: env.CLUSTER_RESPAWN !== '0',
    }),
  );
  await kg.start();
  await pod.ready;
  emit({
    event: 'listening',
    port,
    managementPort: kg.managementAddress?.port,
    workers: pod.workers().map((w) => w.pid),
  });
} else {
  const loadHold = env.FIXTURE_LOAD_HOLD_FILE;
  while (loadHold !== undefined && existsSync(loadHold))
    await new Promise((resolve) => setTimeout(resolve, 20));
  const kg = createKubegrace({ logger });
  report(kg);
  kg.use(clusterWorker());
  if (env.FIXTURE_METRICS === '1') kg.use(metrics());
  const unreadyFile = env.FIXTURE_UNREADY_FILE;
  if (unreadyFile !== undefined) kg.addReadinessCheck('fixture-file', () => !existsSync(unreadyFile));
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const ms = Number(url.searchParams.get('ms') ?? 0);
    if (url.pathname === '/fatal' && env.FIXTURE_FATAL_WORKER === String(workerId)) {
      res.end('failing');
      setImmediate(() => {
        throw new Error('worker bug');
      });
      return;
    }
    setTimeout(() => res.end(`worker ${workerId}`), ms);
  });
  kg.attach(server);
  if (env.FIXTURE_HANG_WORKER === String(workerId)) {
    kg.beforeShutdown(() => {
      // A worker stuck for good: a blocked event loop answers no message and keeps no budget.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    });
  }
  if (env.FIXTURE_CRASH_WORKER === String(workerId)) {
    kg.beforeShutdown(() => {
      process.exit(3);
    });
  }
  await kg.start();
  const holdFile = env.FIXTURE_HOLD_FILE;
  while (holdFile !== undefined && existsSync(holdFile))
    await new Promise((resolve) => setTimeout(resolve, 20));
  await new Promise<void>((resolve) => server.listen(Number(env.FIXTURE_PORT), '127.0.0.1', resolve));
  emit({ event: 'worker listening' });
  kg.ready();
}
