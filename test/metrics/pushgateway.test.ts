import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { after, afterEach, before, describe, it } from 'node:test';
import { Counter, Registry } from 'prom-client';
import { createKubegrace, type Kubegrace, type KubegraceOptions } from '../../src/index.js';
import {
  metrics as metricsIntegration,
  type KubegraceMetrics,
  type MetricsOptions,
} from '../../src/metrics/index.js';
import { groupingPath } from '../../src/metrics/pushgateway.js';
import {
  eventually,
  fastRulesConfig,
  PROMETHEUS,
  PUSHGATEWAY,
  skipUnlessInstalled,
  startPrometheus,
  startPushgateway,
  type RunningServer,
} from '../support/prometheus.js';

const skip = skipUnlessInstalled(PUSHGATEWAY);

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

function shutdownWith(
  metricsOptions: MetricsOptions,
  options: KubegraceOptions = {},
): { kg: Kubegrace; warnings: string[]; metrics: KubegraceMetrics } {
  const warnings: string[] = [];
  const kg = createKubegrace({
    logger: { info() {}, warn: (message) => warnings.push(message), error() {} },
    handleSignals: false,
    exit: () => {},
    managementServer: false,
    propagation: { strategy: 'fixed', delayMs: 0 },
    ...options,
  });
  cleanup.push(() => kg.destroy());
  const metrics = kg.use(metricsIntegration(metricsOptions));
  kg.ready();
  return { kg, warnings, metrics };
}

describe('groupingPath', () => {
  it('puts job, namespace and pod in the path; values with a slash or empty ones in base64', () => {
    assert.equal(
      groupingPath([
        ['job', 'web'],
        ['namespace', 'shop'],
        ['pod', 'web-7d9f-abc'],
      ]),
      '/job/web/namespace/shop/pod/web-7d9f-abc',
    );
    assert.equal(groupingPath([['job', 'a/b']]), `/job@base64/${Buffer.from('a/b').toString('base64url')}`);
    assert.equal(groupingPath([['job', '']]), '/job@base64/=');
  });
});

describe('Pushgateway push on exit (real Pushgateway)', { skip, timeout: 60_000 }, () => {
  let gateway: RunningServer | undefined;
  before(async () => {
    gateway = await startPushgateway();
  });
  after(async () => {
    await gateway?.stop();
  });
  const scrape = async (): Promise<string> => (await fetch(`${gateway!.url}/metrics`)).text();
  afterEach(async () => {
    // Each test starts from an empty Pushgateway: groups of one test must not conflict with the next.
    const wiped = await fetch(`${gateway!.url}/api/v1/admin/wipe`, { method: 'PUT' });
    assert.ok(wiped.ok, `wipe answered ${wiped.status}`);
  });

  it('pushes only kubegrace metrics, grouped by job, namespace and pod', async () => {
    const registry = new Registry();
    new Counter({ name: 'app_orders_total', help: 'the app', registers: [registry] }).inc();
    const { kg, metrics } = shutdownWith({
      registry,
      pushgateway: { url: gateway!.url, job: 'checkout', namespace: 'shop', pod: 'checkout-1' },
    });
    const summary = await kg.shutdown('SIGTERM');
    assert.equal(summary.outcome, 'clean');
    assert.equal(metrics.figures().pushgateway?.status, 'ok');
    const text = await scrape();
    assert.match(
      text,
      /^kubegrace_shutdowns_total\{instance="",job="checkout",namespace="shop",outcome="clean",pod="checkout-1",trigger="SIGTERM"\} 1$/m,
    );
    assert.match(
      text,
      /^kubegrace_shutdown_phase_duration_seconds_count\{[^}]*phase="cleanup",pod="checkout-1"\} 1$/m,
    );
    // The state it leaves in, for good: the group outlives the pod.
    assert.match(text, /^kubegrace_lifecycle_state\{[^}]*pod="checkout-1",state="stopped"\} 1$/m);
    assert.match(text, /^kubegrace_lifecycle_state\{[^}]*pod="checkout-1",state="draining"\} 0$/m);
    assert.doesNotMatch(text, /app_orders_total/);
  });

  it('takes namespace and pod from POD_NAMESPACE / POD_NAME, and copes with a slash in the job', async () => {
    const { kg } = shutdownWith({
      registry: new Registry(),
      pushgateway: { url: `${gateway!.url}/`, job: 'team/web' },
      env: { POD_NAMESPACE: 'payments', POD_NAME: 'web-5' },
    });
    await kg.shutdown('prestop');
    assert.match(
      await scrape(),
      /^kubegrace_shutdowns_total\{instance="",job="team\/web",namespace="payments",outcome="clean",pod="web-5",trigger="prestop"\} 1$/m,
    );
  });

  it('a rejected push is a warning with the status, not a failed shutdown', async () => {
    // Another group already holds the name as a gauge: the real Pushgateway refuses ours (a counter).
    const conflict = await fetch(`${gateway!.url}/metrics/job/other`, {
      method: 'PUT',
      body: '# TYPE kubegrace_shutdowns_total gauge\nkubegrace_shutdowns_total 1\n',
    });
    assert.equal(conflict.status, 200);
    const { kg, warnings, metrics } = shutdownWith({
      registry: new Registry(),
      pushgateway: { url: gateway!.url, job: 'web', namespace: 'shop', pod: 'web-9' },
    });
    const summary = await kg.shutdown('SIGTERM');
    assert.equal(summary.outcome, 'clean');
    assert.equal(metrics.figures().pushgateway?.status, 'error');
    assert.ok(
      warnings.some((w) =>
        /metrics: Pushgateway push failed after \d+ ms: KubegraceError: Pushgateway answered 400/.test(w),
      ),
      warnings.join('\n'),
    );
  });
});

describe('Pushgateway push limits', () => {
  it('a Pushgateway that never answers costs at most the push timeout', async () => {
    const sockets = new Set<import('node:net').Socket>();
    const silent: Server = createServer(() => {}); // accepts, never answers
    silent.on('connection', (s) => sockets.add(s));
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    cleanup.push(() => {
      for (const s of sockets) s.destroy();
      silent.close();
    });
    const address = silent.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const { kg, warnings, metrics } = shutdownWith({
      registry: new Registry(),
      pushgateway: {
        url: `http://127.0.0.1:${port}`,
        job: 'web',
        namespace: 'shop',
        pod: 'web-1',
        timeoutMs: 300,
      },
    });
    const started = Date.now();
    const summary = await kg.shutdown('SIGTERM');
    const took = Date.now() - started;
    assert.ok(took >= 250 && took < 10_000, `took ${took} ms`);
    assert.equal(summary.outcome, 'clean');
    assert.equal(metrics.figures().pushgateway?.status, 'error');
    assert.equal(warnings.filter((w) => w.includes('Pushgateway push failed')).length, 1);
  });

  it('a Pushgateway that refuses connections is reported, and the shutdown goes on', async () => {
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const address = closed.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    closed.close();
    const { kg, metrics } = shutdownWith({
      registry: new Registry(),
      pushgateway: { url: `http://127.0.0.1:${port}`, job: 'web', namespace: 'shop', pod: 'web-1' },
    });
    assert.equal((await kg.shutdown('SIGTERM')).outcome, 'clean');
    assert.match(metrics.figures().pushgateway?.error ?? '', /ECONNREFUSED/);
  });

  // Inside a pod the service account's namespace file answers; the error needs a machine without one.
  const inPod = existsSync('/var/run/secrets/kubernetes.io/serviceaccount/namespace');
  it('needs a namespace from somewhere', { skip: inPod && 'running inside a pod' }, () => {
    const kg = createKubegrace({
      logger: false,
      handleSignals: false,
      exit: () => {},
      managementServer: false,
    });
    cleanup.push(() => kg.destroy());
    assert.throws(
      () =>
        kg.use(
          metricsIntegration({
            registry: new Registry(),
            pushgateway: { url: 'http://127.0.0.1:9091', job: 'web' },
            env: {},
          }),
        ),
      { code: 'ERR_KUBEGRACE_INVALID_OPTION', message: /^pushgateway\.namespace must be a namespace/ },
    );
  });
});

describe('a deadline shutdown pushed to a real Pushgateway fires the real deadline alert', () => {
  const skipBoth = skipUnlessInstalled(PROMETHEUS, PUSHGATEWAY);
  it(
    'the report slice after the deadline carries the push; Prometheus, scraping only the Pushgateway, fires KubegraceShutdownDeadlineReached',
    { skip: skipBoth, timeout: 90_000 },
    async () => {
      const gateway = await startPushgateway();
      cleanup.push(() => gateway.stop());
      const prometheus = await startPrometheus(
        fastRulesConfig(`
  - job_name: pushgateway
    honor_labels: true
    static_configs:
      - targets: ['${new URL(gateway.url).host}']
`),
      );
      cleanup.push(() => prometheus.stop());
      const { kg, metrics } = shutdownWith(
        {
          registry: new Registry(),
          pushgateway: { url: gateway.url, job: 'web', namespace: 'shop', pod: 'web-7' },
        },
        { gracePeriodSeconds: 2, safetyMarginMs: 1000, budgetCheck: 'off' },
      );
      // A participant that ignores its signal holds the drain past the deadline (1 s after the start).
      kg.addParticipant({ name: 'deaf', drain: () => new Promise((resolve) => setTimeout(resolve, 5000)) });
      const summary = await kg.shutdown('SIGTERM');
      assert.equal(summary.outcome, 'deadline');
      assert.equal(metrics.figures().pushgateway?.status, 'ok', 'the push ran in the report slice');

      const alert = await eventually(
        'KubegraceShutdownDeadlineReached firing',
        async () => {
          const { alerts } = await prometheus.api<{
            alerts: { labels: Record<string, string>; state: string }[];
          }>('alerts');
          return alerts.find(
            (a) => a.labels.alertname === 'KubegraceShutdownDeadlineReached' && a.state === 'firing',
          );
        },
        30_000,
      );
      assert.deepEqual(
        { namespace: alert.labels.namespace, job: alert.labels.job },
        { namespace: 'shop', job: 'web' },
      );
    },
  );
});
