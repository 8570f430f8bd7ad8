/**
 * A real Prometheus scrapes two real kubegrace services through their shutdowns: `web-1` shuts down
 * cleanly under keep-alive load (final-scrape wait and Pushgateway push on), `web-2` runs into its
 * deadline. Then every dashboard query and alert rule is run against what Prometheus stored.
 */
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startMetricsService, type MetricsChild } from '../support/metrics-child.js';
import { dashboardQueries, dashboardVariables, substitute } from '../support/metrics-dashboards.js';
import {
  eventually,
  fastRulesConfig,
  PROMETHEUS,
  PUSHGATEWAY,
  skipUnlessInstalled,
  startPrometheus,
  startPushgateway,
  type Prometheus,
  type RunningServer,
} from '../support/prometheus.js';

const skip = skipUnlessInstalled(PROMETHEUS, PUSHGATEWAY);

interface Alert {
  readonly labels: Record<string, string>;
  readonly state: string;
}
interface RuleGroup {
  readonly name: string;
  readonly rules: readonly {
    readonly name: string;
    readonly health: string;
    readonly type: string;
    readonly lastError?: string;
  }[];
}

/** Keep-alive clients hammering the service until `stop()`; failures are counted, not thrown. */
function startLoad(port: number, workers: number): { stop(): Promise<{ ok: number; failed: number }> } {
  const agent = new Agent({ keepAlive: true, maxSockets: workers });
  let running = true;
  let ok = 0;
  let failed = 0;
  const once = (): Promise<void> =>
    new Promise((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/?ms=40', agent }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) ok++;
          else failed++;
          resolve();
        });
      });
      req.on('error', () => {
        failed++;
        resolve();
      });
      req.end();
    });
  const loops = Array.from({ length: workers }, async () => {
    while (running) await once();
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return { ok, failed };
    },
  };
}

function get(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

describe('metrics scraped by a real Prometheus through a shutdown', { skip, timeout: 110_000 }, () => {
  let pushgateway: RunningServer | undefined;
  let prometheus: Prometheus | undefined;
  let web1: MetricsChild | undefined;
  let web2: MetricsChild | undefined;
  let load: { ok: number; failed: number } | undefined;
  const started = Date.now();

  before(async () => {
    pushgateway = await startPushgateway();
    [web1, web2] = await Promise.all([
      startMetricsService({
        POD_NAMESPACE: 'shop',
        POD_NAME: 'web-1',
        METRICS_FINAL_SCRAPE_MS: '10000',
        METRICS_PUSHGATEWAY_URL: pushgateway.url,
        KUBEGRACE_PROPAGATION_STRATEGY: 'fixed',
        KUBEGRACE_PROPAGATION_DELAY_MS: '2500',
      }),
      startMetricsService({
        METRICS_SCENARIO: 'deadline',
        METRICS_LINGER_MS: '60000',
        KUBEGRACE_GRACE_PERIOD_SECONDS: '4',
        KUBEGRACE_SAFETY_MARGIN_MS: '750',
        KUBEGRACE_BUDGET_CHECK: 'off',
        KUBEGRACE_PROPAGATION_STRATEGY: 'fixed',
        KUBEGRACE_PROPAGATION_DELAY_MS: '500',
        KUBEGRACE_DRAIN_TIMEOUT_MS: '10000',
      }),
    ]);
    prometheus = await startPrometheus(
      fastRulesConfig(`
  - job_name: web
    static_configs:
      - targets: ['127.0.0.1:${web1.managementPort}']
        labels: { namespace: shop, pod: web-1 }
      - targets: ['127.0.0.1:${web2.lingerPort}']
        labels: { namespace: shop, pod: web-2 }
`),
    );
  });

  after(async () => {
    web1?.kill();
    web2?.kill();
    await prometheus?.stop();
    await pushgateway?.stop();
  });

  it('serves /metrics while ready, with the zeroed series already there', async () => {
    const prom = prometheus!;
    // A few scrapes of both pods before the shutdown, so rate() and increase() have a baseline.
    await eventually(
      'three scrapes of each pod',
      async () => {
        const result = await prom.query('count_over_time(kubegrace_grace_period_seconds[1m]) >= 3');
        return result.length === 2 ? result : undefined;
      },
      30_000,
    );
    const ready = await prom.query('kubegrace_lifecycle_state{state="ready"} == 1');
    assert.deepEqual(ready.map((s) => s.metric.pod).sort(), ['web-1', 'web-2']);
    const zeroed = await prom.query('kubegrace_shutdown_duration_seconds_count{outcome="deadline"}');
    assert.equal(zeroed.length, 2, 'deadline outcome series exist at 0 before any shutdown');
  });

  it('web-1 shuts down cleanly under load; the final scrape and the push carry the outcome', async () => {
    const child = web1!;
    const traffic = startLoad(child.port, 4);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    child.process.kill('SIGTERM');
    // Keep the load on through most of the propagation wait (2.5 s): those requests are served.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const slow = get(child.port, '/?ms=1500');
    load = await traffic.stop();
    assert.equal(await slow, 200);
    const { code } = await child.exited;
    assert.equal(code, 0, child.stderr.join(''));
    assert.equal(load.failed, 0, `failed requests: ${JSON.stringify(load)}`);

    const line = child.logs.find((l) => l.msg === 'shutdown complete');
    assert.ok(line, `a summary log line; stderr: ${child.stderr.join('')}`);
    assert.equal(line.outcome, 'clean');
    assert.equal(line.trigger, 'SIGTERM');
    const during = line.requestsDuringShutdown as Record<string, number>;
    assert.ok(
      (during.propagate ?? 0) > 0,
      `requests served during the propagation wait: ${JSON.stringify(during)}`,
    );
    assert.ok(((line.connectionsClosed as Record<string, number>).response_boundary ?? 0) > 0);
    const propagation = line.propagation as { strategy: string; endedBy: string; waitedMs: number };
    assert.equal(propagation.strategy, 'fixed');
    assert.equal(propagation.endedBy, 'fixed', 'the fixed delay ended the wait');
    assert.ok(
      propagation.waitedMs <= ((line.phases as Record<string, number>).propagate ?? 0),
      'the wait lies within its phase',
    );
    assert.equal(line.finalScrape, 'scraped');
    assert.equal((line.pushgateway as { status: string }).status, 'ok');
    assert.deepEqual(
      (line.deregistrations as { registry: string; outcome: string }[]).map(
        (d) => `${d.registry}:${d.outcome}`,
      ),
      ['consul:success'],
    );

    // The outcome is recorded only in the exit phase; Prometheus has it because the exit waited.
    const shutdowns = await prometheus!.query('kubegrace_shutdowns_total{pod="web-1"}[5m]');
    assert.equal(shutdowns.length, 1);
    assert.deepEqual(
      { trigger: shutdowns[0]?.metric.trigger, outcome: shutdowns[0]?.metric.outcome },
      { trigger: 'SIGTERM', outcome: 'clean' },
    );

    const pushed = await (await fetch(`${pushgateway!.url}/metrics`)).text();
    assert.match(
      pushed,
      /^kubegrace_shutdowns_total\{instance="",job="web",namespace="shop",outcome="clean",pod="web-1",trigger="SIGTERM"\} 1$/m,
    );
    assert.match(
      pushed,
      /^kubegrace_shutdown_duration_seconds_count\{[^}]*outcome="clean"[^}]*pod="web-1"[^}]*\} 1$/m,
    );
  });

  it('web-2 runs into the deadline and the live deadline alert fires', async () => {
    const child = web2!;
    const busy = get(child.port, '/?ms=60000');
    // The busy request must be in flight before the shutdown, or there is nothing to force.
    await eventually(
      'the busy request in flight',
      async () => {
        const text = await (await fetch(`http://127.0.0.1:${child.lingerPort}/metrics`)).text();
        return /^kubegrace_inflight_requests 1$/m.test(text) ? true : undefined;
      },
      10_000,
      50,
    );
    child.process.kill('SIGTERM');
    await eventually('the summary', async () => child.events.find((e) => e.event === 'summary'), 20_000);
    assert.equal(await busy, 0, 'the busy connection was closed by force');
    const summary = child.events.find((e) => e.event === 'summary');
    assert.equal(summary?.outcome, 'deadline');

    const prom = prometheus!;
    const alert = await eventually(
      'KubegraceShutdownDeadlineReached firing',
      async () => {
        const { alerts } = await prom.api<{ alerts: Alert[] }>('alerts');
        return alerts.find(
          (a) => a.labels.alertname === 'KubegraceShutdownDeadlineReached' && a.state === 'firing',
        );
      },
      30_000,
    );
    assert.deepEqual(
      { namespace: alert.labels.namespace, job: alert.labels.job, severity: alert.labels.severity },
      { namespace: 'shop', job: 'web', severity: 'warning' },
    );
    // The same shutdown forced a connection closed and failed to deregister.
    const firing = await eventually(
      'the forced-close and deregistration alerts firing',
      async () => {
        const { alerts } = await prom.api<{ alerts: Alert[] }>('alerts');
        const names = new Set(alerts.filter((a) => a.state === 'firing').map((a) => a.labels.alertname));
        return names.has('KubegraceForcedConnectionCloses') && names.has('KubegraceDeregistrationFailed')
          ? names
          : undefined;
      },
      15_000,
    );
    assert.ok(
      !firing.has('KubegraceShutdownNearGracePeriod'),
      'two shutdowns well inside 30 s are not near the grace period',
    );

    const { groups } = await prom.api<{ groups: RuleGroup[] }>('rules');
    const rules = groups.flatMap((g) => g.rules);
    assert.equal(rules.length, 5);
    for (const rule of rules) assert.equal(rule.health, 'ok', `${rule.name}: ${rule.lastError ?? ''}`);
  });

  it('every dashboard query returns data after the shutdowns', async () => {
    const prom = prometheus!;
    const end = Date.now();
    const empty: string[] = [];
    const queries = dashboardQueries();
    assert.ok(queries.length >= 25, `found ${queries.length} queries`);
    for (const q of queries) {
      const expr = substitute(q.expr, { pod: 'web-1' });
      const result = q.instant ? await prom.query(expr, end) : await prom.queryRange(expr, started, end, 1);
      const points = result.reduce((n, s) => n + (s.values?.length ?? (s.value ? 1 : 0)), 0);
      if (result.length === 0 || points === 0)
        empty.push(`${q.dashboard} / ${q.panel} [${q.refId}]: ${expr}`);
    }
    assert.deepEqual(empty, [], 'panels whose query returned no series');

    for (const v of dashboardVariables()) {
      const values = await prom.api<string[]>(`label/${v.label}/values`, {
        'match[]': substitute(v.match, { pod: 'web-1' }),
        start: String(started / 1000),
        end: String(end / 1000),
      });
      assert.ok(values.length > 0, `variable ${v.dashboard} / ${v.name} has values`);
    }
  });
});
