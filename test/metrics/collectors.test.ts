import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Registry } from 'prom-client';
import { DURATION_BUCKETS, getCollectors, METRIC_NAMES, METRICS } from '../../src/metrics/collectors.js';

async function series(registry: Registry, name: string): Promise<Map<string, number>> {
  const metric = registry.getSingleMetric(name);
  assert.ok(metric, `${name} is registered`);
  const { values } = await metric.get();
  return new Map(
    values.map((v) => [
      `${(v as { metricName?: string }).metricName ?? name}${JSON.stringify(Object.entries(v.labels).sort())}`,
      v.value,
    ]),
  );
}

describe('collectors', () => {
  it('register exactly the DESIGN §5 metrics (plus the grace period) with their types and labels', async () => {
    const registry = new Registry();
    getCollectors(registry);
    const exported = (await registry.getMetricsAsJSON()).map((m) => ({
      name: m.name,
      type: String(m.type),
      labels: [
        ...((registry.getSingleMetric(m.name) as unknown as { labelNames: string[] }).labelNames ?? []),
      ],
    }));
    assert.deepEqual(exported.map((m) => m.name).sort(), [...METRIC_NAMES].sort());
    const expected: Record<string, [string, string[]]> = {
      kubegrace_lifecycle_state: ['gauge', ['state']],
      kubegrace_grace_period_seconds: ['gauge', []],
      kubegrace_shutdown_phase_duration_seconds: ['histogram', ['phase']],
      kubegrace_shutdown_duration_seconds: ['histogram', ['outcome']],
      kubegrace_shutdown_grace_used_ratio: ['histogram', []],
      kubegrace_inflight_requests: ['gauge', []],
      kubegrace_open_connections: ['gauge', ['protocol']],
      kubegrace_requests_during_shutdown_total: ['counter', ['phase']],
      kubegrace_connections_closed_total: ['counter', ['reason']],
      kubegrace_paced_closes_total: ['counter', ['protocol', 'step']],
      kubegrace_propagation_wait_seconds: ['histogram', ['strategy', 'ended_by']],
      kubegrace_registry_deregistration_duration_seconds: ['histogram', ['registry', 'outcome']],
      kubegrace_hook_duration_seconds: ['histogram', ['participant', 'outcome']],
      kubegrace_shutdowns_total: ['counter', ['trigger', 'outcome']],
    };
    for (const m of exported) assert.deepEqual([m.type, m.labels], expected[m.name], m.name);
  });

  it('use buckets up to 120 s', async () => {
    assert.equal(DURATION_BUCKETS.at(-1), 120);
    const registry = new Registry();
    getCollectors(registry).shutdownDuration.observe({ outcome: 'clean' }, 100);
    const text = await registry.getSingleMetricAsString(METRICS.shutdownDuration.name);
    assert.match(text, /kubegrace_shutdown_duration_seconds_bucket\{le="90",outcome="clean"\} 0/);
    assert.match(text, /kubegrace_shutdown_duration_seconds_bucket\{le="120",outcome="clean"\} 1/);
  });

  it('create the series whose label values are known at 0, so increase() sees the first shutdown', async () => {
    const registry = new Registry();
    getCollectors(registry);
    const counts = await series(registry, METRICS.shutdownDuration.name);
    for (const outcome of ['clean', 'deadline', 'forced', 'failed']) {
      assert.equal(
        counts.get(`kubegrace_shutdown_duration_seconds_count${JSON.stringify([['outcome', outcome]])}`),
        0,
      );
    }
    const closed = await series(registry, METRICS.connectionsClosed.name);
    assert.equal(closed.size, 7);
    assert.ok([...closed.values()].every((v) => v === 0));
    const paced = await series(registry, METRICS.pacedCloses.name);
    assert.equal(paced.size, 8, 'four protocols by two steps');
    assert.ok([...paced.values()].every((v) => v === 0));
    const during = await series(registry, METRICS.requestsDuringShutdown.name);
    assert.equal(during.size, 5);
  });

  it('a second call on the same registry reuses the metrics and keeps their counts', async () => {
    const registry = new Registry();
    const first = getCollectors(registry);
    first.shutdownDuration.observe({ outcome: 'deadline' }, 3);
    first.connectionsClosed.inc({ reason: 'forced' });
    const second = getCollectors(registry);
    assert.equal(second.shutdownDuration, first.shutdownDuration);
    second.connectionsClosed.inc({ reason: 'forced' });
    const counts = await series(registry, METRICS.shutdownDuration.name);
    assert.equal(
      counts.get(`kubegrace_shutdown_duration_seconds_count${JSON.stringify([['outcome', 'deadline']])}`),
      1,
    );
    const closed = await series(registry, METRICS.connectionsClosed.name);
    assert.equal(
      closed.get(`kubegrace_connections_closed_total${JSON.stringify([['reason', 'forced']])}`),
      2,
    );
  });

  it('a second copy of the module (hot reload) shares the gauges instead of crashing', async () => {
    const registry = new Registry();
    const reloaded = (await import(
      `../../src/metrics/collectors.ts?copy=${Date.now()}`
    )) as typeof import('../../src/metrics/collectors.js');
    assert.notEqual(reloaded.getCollectors, getCollectors, 'a distinct module instance');
    const a = getCollectors(registry);
    const b = reloaded.getCollectors(registry);
    a.contribute('inflightRequests', (add) => add({}, 2));
    const removeB = b.contribute('inflightRequests', (add) => add({}, 3));
    assert.equal(
      (await series(registry, METRICS.inflightRequests.name)).get('kubegrace_inflight_requests[]'),
      5,
    );
    removeB();
    assert.equal(
      (await series(registry, METRICS.inflightRequests.name)).get('kubegrace_inflight_requests[]'),
      2,
    );
  });

  it('gauges sum contributions per label set; the grace period takes the largest', async () => {
    const registry = new Registry();
    const c = getCollectors(registry);
    c.contribute('lifecycleState', (add) => {
      add({ state: 'ready' }, 1);
      add({ state: 'draining' }, 0);
    });
    const remove = c.contribute('lifecycleState', (add) => {
      add({ state: 'ready' }, 0);
      add({ state: 'draining' }, 1);
    });
    c.contribute('gracePeriod', (add) => add({}, 30));
    c.contribute('gracePeriod', (add) => add({}, 60));
    const states = await series(registry, METRICS.lifecycleState.name);
    assert.equal(states.get(`kubegrace_lifecycle_state${JSON.stringify([['state', 'ready']])}`), 1);
    assert.equal(states.get(`kubegrace_lifecycle_state${JSON.stringify([['state', 'draining']])}`), 1);
    remove();
    const after = await series(registry, METRICS.lifecycleState.name);
    assert.equal(after.get(`kubegrace_lifecycle_state${JSON.stringify([['state', 'draining']])}`), 0);
    assert.equal(
      (await series(registry, METRICS.gracePeriod.name)).get('kubegrace_grace_period_seconds[]'),
      60,
    );
  });

  it('a contribution that throws costs its own figures, not the scrape', async () => {
    const registry = new Registry();
    const c = getCollectors(registry);
    c.contribute('inflightRequests', () => {
      throw new Error('broken instance');
    });
    c.contribute('inflightRequests', (add) => add({}, 4));
    assert.match(await registry.metrics(), /^kubegrace_inflight_requests 4$/m);
  });

  it('refuse a same-named metric of another shape with a clear error', () => {
    const registry = new Registry();
    new Counter({
      name: 'kubegrace_shutdowns_total',
      help: 'not ours',
      labelNames: ['result'],
      registers: [registry],
    });
    assert.throws(() => getCollectors(registry), {
      code: 'ERR_KUBEGRACE_INVALID_STATE',
      message: /kubegrace_shutdowns_total is already registered as a counter with labels \[result\]/,
    });
    const other = new Registry();
    new Counter({ name: 'kubegrace_inflight_requests', help: 'not ours', registers: [other] });
    assert.throws(() => getCollectors(other), { code: 'ERR_KUBEGRACE_INVALID_STATE' });
  });
});
