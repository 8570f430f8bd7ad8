/**
 * charts/kubegrace-lib used the way docs/helm.md shows: a team's own chart, depending on the library,
 * with the Deployment template from the docs (read from docs/helm.md, so the docs cannot drift).
 * Without any `kubegrace:` values it must render kubegrace's own defaults (src/options.ts); the
 * values a team sets flow into the grace period and env; and, with no schema to catch them, the
 * library's own checks refuse bad values with the library's wording.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { defaults, resolveSettings, shutdownBudget } from '../../src/options.js';
import { check, envOf, libDir, podOf, render, renderError, root } from './helm.js';
import { validateAll } from './kube-schema.js';

const docs = readFileSync(join(root, 'docs', 'helm.md'), 'utf8');
const template = /<!-- team-chart:start -->\s*```yaml\n([\s\S]*?)```/.exec(docs)?.[1];

describe('charts/kubegrace-lib in a chart of your own', () => {
  const work = mkdtempSync(join(tmpdir(), 'kubegrace-lib-'));
  after(() => rmSync(work, { recursive: true, force: true }));

  function teamChart(name: string, values: Record<string, unknown>): string {
    const chart = join(work, name);
    mkdirSync(join(chart, 'templates'), { recursive: true });
    writeFileSync(
      join(chart, 'Chart.yaml'),
      stringify({
        apiVersion: 'v2',
        name,
        version: '1.0.0',
        dependencies: [{ name: 'kubegrace-lib', version: '0.1.0', repository: 'file://../kubegrace-lib' }],
      }),
    );
    writeFileSync(
      join(chart, 'values.yaml'),
      stringify({ image: 'registry.example.com/shop/api:1.0.0', ...values }),
    );
    writeFileSync(join(chart, 'templates', 'deployment.yaml'), template ?? '');
    cpSync(libDir, join(chart, 'charts', 'kubegrace-lib'), { recursive: true });
    return chart;
  }

  it('docs/helm.md has the template', () => {
    assert.ok(template?.includes('kubegrace-lib.container'));
  });

  it("renders kubegrace's own defaults when the chart sets nothing", async () => {
    const rendered = await render({ chart: teamChart('plain', {}), kubeVersion: '1.31.0' });
    assert.deepEqual(validateAll(rendered.docs), []);
    const { spec, container } = podOf(rendered);
    const settings = resolveSettings({}, envOf(container));
    for (const key of [
      'gracePeriodSeconds',
      'preStopSleepSeconds',
      'unreadyTimeoutMs',
      'propagation',
      'drain',
      'cleanupTimeoutMs',
      'safetyMarginMs',
      'budgetCheck',
      'probes',
    ] as const) {
      assert.deepEqual(settings[key], key === 'gracePeriodSeconds' ? 28 : defaults[key], key);
    }
    assert.equal(spec.terminationGracePeriodSeconds, Math.ceil(shutdownBudget(defaults).totalMs / 1000));
    assert.equal(container.readinessProbe?.httpGet?.path, '/readyz');
    assert.equal(container.lifecycle, undefined);
    assert.equal((await check(rendered.text)).errors, 0);
  });

  it("carries the team's values into the grace period, the env and the preStop hook", async () => {
    const chart = teamChart('api', {
      kubegrace: {
        drain: { timeoutMs: 20_000, pacingWindowMs: 8000 },
        preStop: { enabled: true, sleepSeconds: 3 },
      },
    });
    const recent = await render({ chart, kubeVersion: '1.31.0' });
    assert.deepEqual(validateAll(recent.docs), []);
    const { spec, container } = podOf(recent);
    // The pacing window is spent inside the drain budget: it adds nothing to the grace period.
    assert.equal(spec.terminationGracePeriodSeconds, 3 + 2 + 10 + 20 + 5 + 1);
    assert.equal(envOf(container).KUBEGRACE_DRAIN_TIMEOUT_MS, '20000');
    assert.equal(envOf(container).KUBEGRACE_DRAIN_PACING_WINDOW_MS, '8000');
    assert.deepEqual(container.lifecycle, { preStop: { sleep: { seconds: 3 } } });
    assert.match(
      recent.text,
      /# preStop sleep 3 s \+ unready 2 s .* = 41 s of terminationGracePeriodSeconds 41 \(computed\): fits/,
    );
    const result = await check(recent.text);
    assert.equal(result.errors + result.warnings, 0);

    const older = podOf(await render({ chart, kubeVersion: '1.28.0' }));
    assert.deepEqual(older.container.lifecycle, { preStop: { exec: { command: ['kubegrace', 'prestop'] } } });
    assert.equal(older.spec.terminationGracePeriodSeconds, 38);
  });

  it('switches the probes to gRPC: readiness and startup on the readiness service, liveness on its own', async () => {
    const chart = teamChart('orders', {
      kubegrace: { probes: { grpc: { enabled: true, port: 50051, readinessService: 'shop.Orders' } } },
    });
    const rendered = await render({ chart, kubeVersion: '1.31.0' });
    assert.deepEqual(validateAll(rendered.docs), []);
    const { container } = podOf(rendered);
    assert.deepEqual(container.readinessProbe?.grpc, { port: 50051, service: 'shop.Orders' });
    assert.deepEqual(container.startupProbe?.grpc, { port: 50051, service: 'shop.Orders' });
    assert.deepEqual(container.livenessProbe?.grpc, { port: 50051, service: 'liveness' });
    assert.equal(container.readinessProbe?.httpGet, undefined);
    assert.equal((container.readinessProbe as Record<string, unknown>).periodSeconds, 2);
    const result = await check(rendered.text);
    assert.equal(result.errors + result.warnings, 0);

    assert.match(
      await renderError({
        chart: teamChart('orders-no-port', {}),
        set: { 'kubegrace.probes.grpc.enabled': true },
      }),
      /kubegrace\.probes\.grpc\.port must be set/,
    );
    assert.match(
      await renderError({ chart, set: { 'kubegrace.probes.grpc.livenessService': 'shop.Orders' } }),
      /kubegrace\.probes\.grpc\.livenessService must not be the readiness service \("shop\.Orders"\)/,
    );
    assert.match(
      await renderError({ chart, set: { 'kubegrace.probes.grpc.port': 70000 } }),
      /kubegrace\.probes\.grpc\.port must be an integer port from 1 to 65535, received 70000/,
    );
  });

  it('refuses what the library would refuse, in its words', async () => {
    const chart = teamChart('bad', {});
    assert.match(
      await renderError({ chart, set: { 'kubegrace.drain.timeoutMs': -1 } }),
      /kubegrace\.drain\.timeoutMs must be a non-negative integer \(ms\), received -1/,
    );
    assert.match(
      await renderError({ chart, set: { 'kubegrace.drain.pacingWindowMs': -1 } }),
      /kubegrace\.drain\.pacingWindowMs must be a non-negative integer \(ms\), received -1/,
    );
    assert.match(
      await renderError({ chart, set: { 'kubegrace.drain.pacingWindowMs': '20s' } }),
      /kubegrace\.drain\.pacingWindowMs must be a non-negative integer \(ms\), received 20s/,
    );
    assert.match(
      await renderError({ chart, set: { 'kubegrace.propagation.maxMs': '10s' } }),
      /kubegrace\.propagation\.maxMs must be a non-negative integer \(ms\), received 10s/,
    );
    assert.match(
      await renderError({ chart, set: { 'kubegrace.propagation.strategy': 'smart' } }),
      /kubegrace\.propagation\.strategy must be one of 'adaptive', 'fixed', received smart/,
    );
    assert.match(
      await renderError({ chart, set: { 'kubegrace.probes.port': 70000 } }),
      /kubegrace\.probes\.port must be an integer port from 1 to 65535, received 70000/,
    );
    assert.match(
      await renderError({
        chart,
        set: { 'kubegrace.preStop': { enabled: true, action: 'exec', execCommand: [] } },
      }),
      /kubegrace\.preStop\.execCommand must be a non-empty list of strings/,
    );
  });
});
