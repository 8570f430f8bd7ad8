/**
 * kubegrace as a service attaches it: `attach(server)` (HTTP/1 or h2c), `attachWebSocketServer(wss)`
 * for WebSockets, probes on their own port. Settings come from the `KUBEGRACE_*` variables the
 * harness sets (probe port, the pod's grace period); the propagation runs on kubegrace's defaults
 * unless the harness sets `KUBEGRACE_PROPAGATION_*` (the scale benchmark does).
 *
 * With `BENCH_KUBERNETES=1` (the `in-cluster` traffic shape) it also runs the Kubernetes integration
 * as a service in a cluster would, against the harness's API server (`KUBERNETES_SERVICE_*`, the
 * Downward API variables, and the service-account files in `BENCH_SERVICE_ACCOUNT_DIR`).
 *
 * With `BENCH_STATS=1` (the scale benchmark) it also reports, at exit, its peak RSS and the
 * event-loop delay from the start of the drain (memory on request: see app.ts).
 *
 * With `BENCH_PACING=1` (the realtime scenario) it counts, through `kubegrace/metrics` on a registry
 * of its own, the long-lived connections its paced drain closed in their slot and at the window's
 * end, and reports both when the drain ends: a pod that fell behind its schedule closes the rest at
 * the window's end, in one burst.
 */
import { createKubegrace } from '../../src/kubegrace.js';
import { eventLogger, reportLifecycle, writeEvent } from '../../src/cli/demo/pod-events.js';
import { percentile } from '../report.js';
import { createBenchApp } from './app.js';

const app = createBenchApp();
const kubegrace = createKubegrace({ logger: eventLogger() });
reportLifecycle(kubegrace);
kubegrace.attach(app.server);
if (app.wss) kubegrace.attachWebSocketServer(app.wss);

if (process.env.BENCH_STATS === '1') reportStats();
if (process.env.BENCH_PACING === '1') await reportPacing();

await kubegrace.start();
if (process.env.BENCH_KUBERNETES === '1') {
  // Loaded only here: the other benchmarks' pods should not pay for it at start-up.
  const { kubernetes } = await import('../../src/kubernetes/index.js');
  const serviceAccountDir = process.env.BENCH_SERVICE_ACCOUNT_DIR;
  await kubegrace.use(
    kubernetes({
      ...(serviceAccountDir === undefined ? {} : { serviceAccountDir }),
    }),
  );
}
await app.listen({ path: '/readyz', managementPort: kubegrace.managementAddress?.port ?? null });
kubegrace.ready();

function reportStats(): void {
  // A 5 ms interval's lateness from the start of the drain: how long the loop stayed busy at a time.
  // (perf_hooks' monitorEventLoopDelay recorded no sample at all across this drain on Node 20.)
  const TICK_MS = 5;
  const late: number[] = [];
  let ticker: NodeJS.Timeout | undefined;
  kubegrace.on('phase', ({ phase, status }) => {
    if (phase !== 'drain' || status !== 'start') return;
    let last = performance.now();
    ticker = setInterval(() => {
      const now = performance.now();
      late.push(Math.max(0, now - last - TICK_MS));
      last = now;
    }, TICK_MS);
    ticker.unref();
  });
  process.once('exit', () => {
    clearInterval(ticker);
    writeEvent({
      event: 'log',
      level: 'stats',
      msg: 'exit',
      fields: {
        maxRssBytes: process.resourceUsage().maxRSS * 1024,
        loopDelaySamples: late.length,
        loopDelayMaxMs: late.length === 0 ? 0 : percentile(late, 100),
        loopDelayP99Ms: late.length === 0 ? 0 : percentile(late, 99),
      },
    });
  });
}

async function reportPacing(): Promise<void> {
  const { Registry } = await import('prom-client');
  const { metrics } = await import('../../src/metrics/index.js');
  const registry = new Registry();
  kubegrace.use(metrics({ registry, path: false }));
  kubegrace.on('phase', ({ phase, status }) => {
    if (phase !== 'drain' || status !== 'end') return;
    void registry
      .getSingleMetric('kubegrace_paced_closes_total')
      ?.get()
      .then(({ values }) => {
        const sum = (step: string): number =>
          values.filter((v) => v.labels['step'] === step).reduce((n, v) => n + v.value, 0);
        writeEvent({
          event: 'log',
          level: 'stats',
          msg: 'pacing',
          fields: { paced: sum('paced'), windowEnd: sum('window_end') },
        });
      });
  });
}
