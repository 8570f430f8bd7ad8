/**
 * A demo-like service with kubegrace metrics, run as a child process by test/metrics tests.
 * JSON lines on stdout: `{"event":"listening","port","managementPort","lingerPort"}`, then
 * `{"event":"summary",…}`; kubegrace's own JSON log goes to stderr.
 *
 *   METRICS_SCENARIO=clean     default: fixed propagation, quick hooks, a registry that deregisters
 *   METRICS_SCENARIO=deadline  a held lease keeps the drain open into the deadline, a registry
 *                              deregistration times out, busy connections are forced closed
 *   METRICS_FINAL_SCRAPE_MS    enable the final-scrape wait with this limit
 *   METRICS_PUSHGATEWAY_URL    push to this Pushgateway (job "web"; POD_NAMESPACE / POD_NAME from env)
 *   METRICS_LINGER_MS          keep serving the registry on `lingerPort` this long after the shutdown
 *
 * Why the linger server: when the deadline is reached the exit phase has no time left, so the
 * management server closes before Prometheus can scrape the outcome (see docs/metrics.md). To test
 * that the deadline alert fires on what kubegrace really exports, the deadline scenario also serves
 * the same registry on a port of its own for a while after the shutdown.
 */
import { createServer } from 'node:http';
import { createKubegrace } from '../../src/index.js';
import { metrics as metricsIntegration } from '../../src/metrics/index.js';
import { registry, type Registry } from '../../src/registry/index.js';

const env = process.env;
const scenario = env.METRICS_SCENARIO ?? 'clean';
const emit = (payload: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify({ t: Date.now(), ...payload })}\n`);
};
const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });

const lingerMs = Number(env.METRICS_LINGER_MS ?? 0);
let lingerServer: ReturnType<typeof createServer> | undefined;

const kg = createKubegrace({
  probes: { port: 0, host: '127.0.0.1' },
  exit: (code) => {
    if (lingerServer) setTimeout(() => process.exit(code), lingerMs);
    else process.exit(code);
  },
});
kg.on('phase', ({ phase, status, durationMs }) => emit({ event: 'phase', phase, status, durationMs }));
kg.on('shutdown', (summary) =>
  emit({
    event: 'summary',
    trigger: summary.trigger,
    outcome: summary.outcome,
    durationMs: summary.durationMs,
    phases: summary.phases,
    forced: summary.forced,
  }),
);

const metrics = kg.use(
  metricsIntegration({
    ...(env.METRICS_FINAL_SCRAPE_MS
      ? { finalScrape: { timeoutMs: Number(env.METRICS_FINAL_SCRAPE_MS) } }
      : {}),
    ...(env.METRICS_PUSHGATEWAY_URL ? { pushgateway: { url: env.METRICS_PUSHGATEWAY_URL, job: 'web' } } : {}),
  }),
);

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  setTimeout(() => res.end('ok\n'), Number(url.searchParams.get('ms') ?? 0));
});
kg.attach(server);

kg.beforeShutdown(() => sleep(20), { name: 'stop-consumers' });
kg.onCleanup(() => sleep(50), { name: 'close-db-pool' });
// A registry through the one plug-in shape: its deregistration reaches the metrics by itself.
const consul = (deregister: Registry['deregister']): Registry => ({
  name: 'consul',
  register: async () => {},
  deregister,
});
if (scenario === 'deadline') {
  kg.lease('stuck-job');
  // Like a registry client whose request is aborted: it rejects when its time is up.
  kg.use(
    registry(
      consul(async (call) => {
        await sleep(60_000, call.signal);
        throw new Error('deregistration aborted');
      }),
      { callTimeoutMs: 200, retries: 0 },
    ),
  );
} else {
  kg.use(registry(consul(() => sleep(30))));
}

const listen = (s: ReturnType<typeof createServer>): Promise<number> =>
  new Promise((resolve) =>
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    }),
  );

if (lingerMs > 0) lingerServer = createServer((req, res) => void metrics.handler(req, res));
const lingerPort = lingerServer ? await listen(lingerServer) : undefined;
const port = await listen(server);
await kg.start();
kg.ready();
emit({ event: 'listening', port, managementPort: kg.managementAddress?.port, lingerPort });
