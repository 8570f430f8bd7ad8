import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Agent, createServer, request, type Server } from 'node:http';
import { afterEach, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { createKubegrace, type Kubegrace, type KubegraceOptions } from '../../src/index.js';
import { metrics as metricsIntegration } from '../../src/metrics/index.js';
import { registry as registryIntegration, type Registry as Registry_ } from '../../src/registry/index.js';

interface LogLine {
  readonly level: string;
  readonly message: string;
  readonly fields: Readonly<Record<string, unknown>>;
}

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function service(
  options: KubegraceOptions = {},
): Promise<{ kg: Kubegrace; logs: LogLine[]; url: (path: string) => string }> {
  const logs: LogLine[] = [];
  const log =
    (level: string) =>
    (message: string, fields: Readonly<Record<string, unknown>> = {}): void => {
      logs.push({ level, message, fields });
    };
  const kg = createKubegrace({
    logger: { info: log('info'), warn: log('warn'), error: log('error') },
    handleSignals: false,
    exit: () => {},
    probes: { port: 0, host: '127.0.0.1' },
    propagation: { strategy: 'fixed', delayMs: 0 },
    ...options,
  });
  cleanup.push(() => kg.destroy());
  await kg.start();
  const port = kg.managementAddress?.port;
  return { kg, logs, url: (path) => `http://127.0.0.1:${port}${path}` };
}

async function appServer(kg: Kubegrace): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 0);
    setTimeout(() => res.end('ok'), ms);
  });
  kg.attach(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanup.push(() => {
    server.closeAllConnections();
    server.close();
  });
  const address = server.address();
  return { server, port: typeof address === 'object' && address ? address.port : 0 };
}

function get(
  port: number,
  path: string,
  agent: Agent | false = false,
): Promise<{ status: number; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('kg.use(metricsIntegration())', () => {
  it('serves the registry on /metrics of the management port (GET, HEAD; other methods 405)', async () => {
    const { kg, url } = await service();
    const registry = new Registry();
    kg.use(metricsIntegration({ registry }));
    kg.ready();
    const res = await fetch(url('/metrics?x=1'));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), registry.contentType);
    const text = await res.text();
    assert.equal(value(text, 'kubegrace_lifecycle_state{state="ready"}'), 1);
    assert.equal(value(text, 'kubegrace_lifecycle_state{state="starting"}'), 0);
    assert.equal(value(text, 'kubegrace_grace_period_seconds'), 30);
    const head = await fetch(url('/metrics'), { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
    const post = await fetch(url('/metrics'), { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
  });

  it('takes another path, or none; with probes disabled it serves nothing and does not throw', async () => {
    const { kg, url } = await service();
    const metrics = kg.use(metricsIntegration({ registry: new Registry(), path: '/internal/metrics' }));
    assert.equal((await fetch(url('/internal/metrics'))).status, 200);
    assert.equal((await fetch(url('/metrics'))).status, 404);
    metrics.detach();
    assert.equal((await fetch(url('/internal/metrics'))).status, 404);

    const quiet = createKubegrace({
      logger: false,
      handleSignals: false,
      exit: () => {},
      managementServer: false,
    });
    cleanup.push(() => quiet.destroy());
    const unserved = quiet.use(metricsIntegration({ registry: new Registry() }));
    assert.equal(typeof unserved.handler, 'function');
    assert.throws(
      () =>
        createKubegrace({ logger: false, managementServer: false }).use(
          metricsIntegration({
            registry: new Registry(),
            path: '/metrics',
          }),
        ),
      {
        code: 'ERR_KUBEGRACE_INVALID_STATE',
      },
    );
  });

  it('two instances on one registry both count; detach takes one out; one instance twice is refused', async () => {
    const registry = new Registry();
    const a = await service();
    const b = await service();
    const ma = a.kg.use(metricsIntegration({ registry }));
    b.kg.use(metricsIntegration({ registry }));
    assert.throws(() => a.kg.use(metricsIntegration({ registry })), {
      code: 'ERR_KUBEGRACE_INVALID_STATE',
      message: /has metrics already/,
    });
    a.kg.ready();
    let text = await registry.metrics();
    assert.equal(value(text, 'kubegrace_lifecycle_state{state="ready"}'), 1);
    assert.equal(value(text, 'kubegrace_lifecycle_state{state="starting"}'), 1);
    ma.detach();
    text = await registry.metrics();
    assert.equal(value(text, 'kubegrace_lifecycle_state{state="ready"}'), 0);
    assert.equal(value(text, 'kubegrace_lifecycle_state{state="starting"}'), 1);
    a.kg.use(metricsIntegration({ registry, path: '/metrics2' })); // after detach the instance may be instrumented again
    text = await registry.metrics();
    assert.equal(value(text, 'kubegrace_lifecycle_state{state="ready"}'), 1);
  });

  it('records a shutdown under keep-alive load: phases, requests and closes, hooks, registries, outcome', async () => {
    const registry = new Registry();
    const { kg, logs } = await service({ propagation: { strategy: 'fixed', delayMs: 400 } });
    kg.use(metricsIntegration({ registry }));
    const { port } = await appServer(kg);
    kg.beforeShutdown(() => new Promise((resolve) => setTimeout(resolve, 20)), { name: 'stop-consumers' });
    kg.onCleanup(
      () => {
        throw new Error('pool already closed');
      },
      { name: 'close-pool' },
    );
    // Registries report each deregistration to the instance, where metrics record it: one in unready
    // (30 ms), one after the drain, one that fails.
    const fake = (name: string, deregister: () => Promise<void>): Registry_ => ({
      name,
      register: async () => {},
      deregister,
    });
    kg.use(
      registryIntegration(
        fake('etcd', () => new Promise((resolve) => setTimeout(resolve, 30))),
        { register: false },
      ),
    );
    kg.use(
      registryIntegration(
        fake('nacos', async () => {}),
        { register: false, deregister: 'afterDrain' },
      ),
    );
    kg.use(
      registryIntegration(
        fake('consul', async () => {
          throw new Error('consul answered 500');
        }),
        { register: false, retries: 0 },
      ),
    );
    kg.ready();

    const agent = new Agent({ keepAlive: true, maxSockets: 2 });
    cleanup.push(() => agent.destroy());
    await Promise.all([get(port, '/', agent), get(port, '/', agent)]);
    let text = await registry.metrics();
    assert.equal(value(text, 'kubegrace_open_connections{protocol="http1"}'), 2);

    const inflight = get(port, '/?ms=600', agent);
    const summaryDone = kg.shutdown('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Arrives during the propagation wait on a pooled connection: served, and closed after its response.
    assert.equal((await get(port, '/', agent)).status, 200);
    assert.equal((await inflight).status, 200);
    const summary = await summaryDone;
    assert.equal(summary.outcome, 'failed');

    text = await registry.metrics();
    assert.equal(value(text, 'kubegrace_shutdowns_total{trigger="SIGTERM",outcome="failed"}'), 1);
    assert.equal(value(text, 'kubegrace_shutdown_duration_seconds_count{outcome="failed"}'), 1);
    assert.equal(value(text, 'kubegrace_shutdown_duration_seconds_count{outcome="clean"}'), 0);
    // The same shutdown as a share of the grace period in force (30 s): its duration over 30.
    assert.equal(value(text, 'kubegrace_shutdown_grace_used_ratio_count'), 1);
    const share = value(text, 'kubegrace_shutdown_grace_used_ratio_sum') ?? NaN;
    const seconds = value(text, 'kubegrace_shutdown_duration_seconds_sum{outcome="failed"}') ?? NaN;
    assert.ok(Math.abs(share - seconds / 30) < 1e-9, `${share} is not ${seconds} s / 30 s`);
    assert.equal(value(text, 'kubegrace_shutdown_grace_used_ratio_bucket{le="0.1"}'), 1);
    for (const phase of ['unready', 'propagate', 'drain', 'cleanup', 'exit']) {
      assert.equal(
        value(text, `kubegrace_shutdown_phase_duration_seconds_count{phase="${phase}"}`),
        1,
        phase,
      );
    }
    const waited =
      value(text, 'kubegrace_propagation_wait_seconds_sum{strategy="fixed",ended_by="fixed"}') ?? 0;
    const waitLines = text.split('\n').filter((l) => l.startsWith('kubegrace_propagation_wait_seconds_sum'));
    assert.ok(waited >= 0.35, `propagation wait ${waited} s:\n${waitLines.join('\n')}`);
    assert.ok((value(text, 'kubegrace_requests_during_shutdown_total{phase="propagate"}') ?? 0) >= 1);
    assert.ok((value(text, 'kubegrace_connections_closed_total{reason="response_boundary"}') ?? 0) >= 2);
    assert.equal(value(text, 'kubegrace_connections_closed_total{reason="forced"}'), 0);
    assert.equal(value(text, 'kubegrace_open_connections{protocol="http1"}'), 0);
    assert.equal(value(text, 'kubegrace_inflight_requests'), 0);
    assert.equal(
      value(text, 'kubegrace_hook_duration_seconds_count{participant="stop-consumers",outcome="ok"}'),
      1,
    );
    assert.equal(
      value(text, 'kubegrace_hook_duration_seconds_count{participant="close-pool",outcome="error"}'),
      1,
    );
    assert.equal(
      value(
        text,
        'kubegrace_registry_deregistration_duration_seconds_count{registry="etcd",outcome="success"}',
      ),
      1,
    );
    assert.equal(
      value(
        text,
        'kubegrace_registry_deregistration_duration_seconds_count{registry="consul",outcome="failed"}',
      ),
      1,
    );
    assert.equal(
      value(
        text,
        'kubegrace_registry_deregistration_duration_seconds_count{registry="nacos",outcome="success"}',
      ),
      1,
    );
    assert.equal(
      value(
        text,
        'kubegrace_registry_deregistration_duration_seconds_count{registry="etcd",outcome="failed"}',
      ),
      undefined,
    );
    assert.equal(value(text, 'kubegrace_lifecycle_state{state="stopped"}'), 1);

    // The one summary line carries the figures of DESIGN §5.
    const lines = logs.filter((l) => l.message === 'shutdown complete');
    assert.equal(lines.length, 1);
    const fields = lines[0]?.fields ?? {};
    assert.equal(fields.outcome, 'failed');
    assert.equal(fields.trigger, 'SIGTERM');
    assert.ok(((fields.requestsDuringShutdown as Record<string, number>).propagate ?? 0) >= 1);
    assert.ok(((fields.connectionsClosed as Record<string, number>).response_boundary ?? 0) >= 2);
    assert.equal((fields.propagation as { strategy: string }).strategy, 'fixed');
    assert.deepEqual(
      (fields.deregistrations as { registry: string; outcome: string }[])
        .map((d) => `${d.registry}:${d.outcome}`)
        .sort(),
      ['consul:failed', 'etcd:success', 'nacos:success'],
    );
    assert.equal(fields.finalScrape, undefined, 'no final-scrape wait unless asked for');
  });

  it('counts the share of the grace period from when the kubelet began: a preStop sleep is in it', async () => {
    // Grace 10 s, a 3 s preStop sleep before SIGTERM: the kubelet kills 7 s after the signal, so a
    // shutdown that ends at once has used 30 % of the grace period, not ~0 %.
    const { kg } = await service({ gracePeriodSeconds: 10, budgetCheck: 'off' });
    const registry = new Registry();
    kg.use(metricsIntegration({ registry }));
    kg.ready();
    // As the signal handler passes it with preStopSleepSeconds: 3.
    const summary = await kg.shutdown(
      { kind: 'signal', signal: 'SIGTERM' },
      { terminationStartedAt: Date.now() - 3000 },
    );
    assert.equal(summary.outcome, 'clean');
    const text = await registry.metrics();
    assert.equal(value(text, 'kubegrace_shutdown_grace_used_ratio_count'), 1);
    assert.equal(value(text, 'kubegrace_shutdown_grace_used_ratio_bucket{le="0.3"}'), 0, text);
    assert.equal(value(text, 'kubegrace_shutdown_grace_used_ratio_bucket{le="0.5"}'), 1);
  });

  it('with finalScrape, the exit phase waits for a scrape that sees the outcome', async () => {
    const { kg, logs, url } = await service();
    const registry = new Registry();
    const metrics = kg.use(metricsIntegration({ registry, finalScrape: { timeoutMs: 20_000 } }));
    kg.ready();
    let settled = false;
    const exitStarted = new Promise<void>((resolve) => {
      kg.on('phase', ({ phase, status }) => {
        if (phase === 'exit' && status === 'start') resolve();
      });
    });
    const done = kg.shutdown('SIGTERM').finally(() => (settled = true));
    await exitStarted;
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(settled, false, 'the exit phase holds until a scrape');
    const text = await (await fetch(url('/metrics'))).text();
    assert.equal(value(text, 'kubegrace_shutdowns_total{trigger="SIGTERM",outcome="clean"}'), 1);
    const summary = await done;
    assert.equal(summary.outcome, 'clean');
    assert.deepEqual(summary.failures, []);
    assert.equal(metrics.figures().finalScrape, 'scraped');
    assert.equal(logs.find((l) => l.message === 'shutdown complete')?.fields.finalScrape, 'scraped');
  });

  it('a final scrape that never comes ends quietly at its limit', async () => {
    const { kg } = await service();
    const metrics = kg.use(metricsIntegration({ registry: new Registry(), finalScrape: { timeoutMs: 200 } }));
    kg.ready();
    const started = Date.now();
    const summary = await kg.shutdown('SIGTERM');
    const exitMs = summary.phases.exit ?? 0;
    assert.ok(exitMs >= 150 && Date.now() - started < 10_000, `exit phase took ${exitMs} ms`);
    assert.equal(summary.outcome, 'clean');
    assert.deepEqual(summary.failures, []);
    assert.equal(metrics.figures().finalScrape, 'timeout');
  });

  it('the final-scrape wait never outlasts the shutdown deadline', async () => {
    const { kg } = await service({ gracePeriodSeconds: 2, safetyMarginMs: 750, budgetCheck: 'off' });
    const metrics = kg.use(
      metricsIntegration({ registry: new Registry(), finalScrape: { timeoutMs: 60_000 } }),
    );
    kg.ready();
    const started = Date.now();
    const summary = await kg.shutdown('SIGTERM');
    const took = Date.now() - started;
    // Far below the 60 s limit of the wait, with room for a busy machine.
    assert.ok(took < 10_000, `ended by the deadline (1.5 s), took ${took} ms`);
    assert.equal(summary.outcome, 'clean', 'the outcome was settled before the exit phase');
    assert.ok(took >= 1_400, `waited until the deadline, took ${took} ms`);
    assert.equal(metrics.figures().finalScrape, 'timeout');
  });

  it('validates its options with messages that name them', async () => {
    const { kg } = await service();
    const registry = new Registry();
    assert.throws(() => kg.use(metricsIntegration({ registry, finalScrape: { timeoutMs: -1 } })), {
      code: 'ERR_KUBEGRACE_INVALID_OPTION',
      message: 'finalScrape.timeoutMs must be an integer from 0 to 2147483647 (ms), received -1',
    });
    assert.throws(
      () => kg.use(metricsIntegration({ registry, pushgateway: { url: 'ftp://x', job: 'web' } })),
      {
        message: /^pushgateway\.url must be an http:\/\/ or https:\/\/ URL, received "ftp:\/\/x"$/,
      },
    );
    assert.throws(
      () => kg.use(metricsIntegration({ registry, pushgateway: { url: 'http://127.0.0.1:1', job: '' } })),
      {
        message: /^pushgateway\.job must be a non-empty string/,
      },
    );
    assert.throws(() => kg.use(metricsIntegration({ registry, path: 'metrics' })), {
      message: /^path must be a path starting with '\/'/,
    });
    assert.throws(() => kg.use(metricsIntegration({ registry: {} as Registry })), {
      message: /^registry must be a prom-client Registry/,
    });
  });
});
