/**
 * Mistakes the chart cannot stop but `kubegrace check` must: each test/fixtures/chart-values/bad-*.yaml
 * renders (it is valid Helm input) and the check fails on it with the finding it was seeded with.
 * Then the mistakes the chart does stop, at render time: values the schema refuses, and combinations
 * the library or the API server would refuse, each with a message that names the value.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { check, ciValues, render, renderError, root } from './helm.js';

const fixtures = join(root, 'test', 'fixtures', 'chart-values');

const expected: Readonly<
  Record<string, { readonly code: string; readonly message: RegExp; readonly kubeVersion?: string }>
> = {
  'bad-grace-too-short.yaml': {
    code: 'budget-exceeds-grace',
    message: /^shutdown budget 28 s exceeds terminationGracePeriodSeconds 20 s: unready 2 s .* = 28 s$/,
  },
  'bad-propagation-exceeds-grace.yaml': {
    code: 'propagation-exceeds-grace',
    message:
      /^the propagation wait does not fit: .*propagation \(fixed\) 30 s .* = 33 s > terminationGracePeriodSeconds 30 s/,
  },
  'bad-prestop-sleep-over-grace.yaml': {
    code: 'propagation-exceeds-grace',
    message:
      /^the propagation wait does not fit: preStop sleep 20 s \(lifecycle\.preStop\.sleep\.seconds\) .* = 33 s > terminationGracePeriodSeconds 25 s/,
    kubeVersion: '1.31.0',
  },
  'bad-liveness-on-readyz.yaml': {
    code: 'liveness-on-readyz',
    message: /^livenessProbe points at \/readyz: readiness fails on purpose during a shutdown/,
  },
  'bad-readiness-on-livez.yaml': {
    code: 'readiness-on-livez',
    message: /^readinessProbe points at \/livez: \/livez stays 200 while draining/,
  },
};

describe('kubegrace check on the chart rendered with seeded mistakes', () => {
  const files = readdirSync(fixtures)
    .filter((f) => f.endsWith('.yaml'))
    .sort();

  it('every fixture is named bad-*.yaml, has an expectation, and none is in charts/kubegrace/ci/', () => {
    assert.deepEqual(files, Object.keys(expected).sort());
    for (const file of files) assert.match(file, /^bad-/);
    assert.ok(ciValues.every((f) => !/\/bad-/.test(f)));
  });

  for (const file of files) {
    const want = expected[file];
    it(`${file} → ${want?.code}`, async () => {
      assert.ok(want);
      const rendered = await render({
        valuesFiles: [join(fixtures, file)],
        kubeVersion: want.kubeVersion ?? '1.31.0',
      });
      const result = await check(rendered.text);
      assert.ok(result.errors >= 1, `check passed on ${file}`);
      const errors = result.containers.flatMap((c) => c.findings.filter((f) => f.severity === 'error'));
      assert.deepEqual(
        errors.map((f) => f.code),
        [want.code],
      );
      assert.match(errors[0]?.message ?? '', want.message);
    });
  }
});

describe('mistakes the chart refuses to render', () => {
  const cases: readonly {
    readonly name: string;
    readonly set: Record<string, unknown>;
    readonly kubeVersion?: string;
    readonly error: RegExp;
  }[] = [
    {
      name: 'a negative duration',
      set: { 'kubegrace.drain.timeoutMs': -1 },
      error: /kubegrace\.drain\.timeoutMs: Must be greater than or equal to 0/,
    },
    {
      name: 'a fractional duration',
      set: { 'kubegrace.cleanupTimeoutMs': 1.5 },
      error: /kubegrace\.cleanupTimeoutMs: Invalid type\. Expected: integer, given: number/,
    },
    {
      name: 'a duration as a string',
      set: { 'kubegrace.propagation.maxMs': '10s' },
      error: /kubegrace\.propagation\.maxMs: Invalid type\. Expected: integer, given: string/,
    },
    {
      name: 'a negative pacing window',
      set: { 'kubegrace.drain.pacingWindowMs': -1 },
      error: /kubegrace\.drain\.pacingWindowMs: Must be greater than or equal to 0/,
    },
    {
      name: 'a pacing window as a string',
      set: { 'kubegrace.drain.pacingWindowMs': '20s' },
      error: /kubegrace\.drain\.pacingWindowMs: Invalid type\. Expected: integer, given: string/,
    },
    {
      name: 'a misspelt key',
      set: { 'kubegrace.propagation.maxMS': 1 },
      error: /Additional property maxMS is not allowed/,
    },
    {
      name: 'an unknown strategy',
      set: { 'kubegrace.propagation.strategy': 'smart' },
      error:
        /kubegrace\.propagation\.strategy: kubegrace\.propagation\.strategy must be one of the following: "adaptive", "fixed"/,
    },
    {
      name: 'a liveness successThreshold other than 1',
      set: { 'kubegrace.probes.liveness.successThreshold': 2 },
      error: /kubegrace\.probes\.liveness\.successThreshold/,
    },
    {
      name: 'a grace period of 0',
      set: { 'kubegrace.terminationGracePeriodSeconds': 0 },
      error: /kubegrace\.terminationGracePeriodSeconds: Must be greater than or equal to 1/,
    },
    {
      name: 'the sleep action on a cluster without it, reported at the template that renders the hook',
      set: { 'kubegrace.preStop': { enabled: true, action: 'sleep' } },
      kubeVersion: '1.29.0',
      error:
        /execution error at \(kubegrace\/templates\/deployment\.yaml:\d+:\d+\): kubegrace\.preStop\.action 'sleep' needs Kubernetes 1\.30 or later .* this cluster is v1\.29\.0/,
    },
    {
      name: 'a zero-second sleep before 1.33, reported at the template that renders the hook',
      set: { 'kubegrace.preStop': { enabled: true, action: 'sleep', sleepSeconds: 0 } },
      kubeVersion: '1.32.0',
      error:
        /execution error at \(kubegrace\/templates\/deployment\.yaml:\d+:\d+\): kubegrace\.preStop\.sleepSeconds 0 needs Kubernetes 1\.33 or later/,
    },
    {
      name: 'a preStop sleep as long as the grace period',
      set: {
        kubegrace: {
          preStop: { enabled: true, action: 'sleep', sleepSeconds: 30 },
          terminationGracePeriodSeconds: 30,
        },
      },
      kubeVersion: '1.31.0',
      error:
        /execution error at \(kubegrace\/templates\/deployment\.yaml:\d+:\d+\): kubegrace\.preStop\.sleepSeconds \(30\) must be less than terminationGracePeriodSeconds \(30\)/,
    },
    {
      name: 'a PodMonitor and a ServiceMonitor at once (every pod scraped twice)',
      set: { metrics: { podMonitor: { enabled: true }, serviceMonitor: { enabled: true } } },
      error:
        /metrics\.podMonitor\.enabled and metrics\.serviceMonitor\.enabled are both true: Prometheus would scrape every pod twice/,
    },
    {
      name: 'an ingress path that is not absolute',
      set: { ingress: { enabled: true, hosts: [{ host: 'a.example.com', paths: [{ path: 'api' }] }] } },
      error: /ingress\.hosts\.0\.paths\.0\.path: Does not match pattern '\^\/'/,
    },
    {
      name: 'an unknown ingress pathType',
      set: {
        ingress: {
          enabled: true,
          hosts: [{ host: 'a.example.com', paths: [{ path: '/', pathType: 'Regex' }] }],
        },
      },
      error:
        /ingress\.hosts\.0\.paths\.0\.pathType: ingress\.hosts\.0\.paths\.0\.pathType must be one of the following/,
    },
    {
      name: 'propagation.minMs above maxMs',
      set: { 'kubegrace.propagation': { minMs: 5000, maxMs: 1000 } },
      error:
        /kubegrace\.propagation\.minMs must be at most kubegrace\.propagation\.maxMs \(1000\), received 5000/,
    },
    {
      name: 'extraEnv shadowing a computed KUBEGRACE_* value',
      set: { extraEnv: [{ name: 'KUBEGRACE_GRACE_PERIOD_SECONDS', value: '60' }] },
      error: /extraEnv sets KUBEGRACE_GRACE_PERIOD_SECONDS, which the chart sets from the kubegrace: values/,
    },
    {
      name: 'extraEnv shadowing the pacing window',
      set: { extraEnv: [{ name: 'KUBEGRACE_DRAIN_PACING_WINDOW_MS', value: '0' }] },
      error:
        /extraEnv sets KUBEGRACE_DRAIN_PACING_WINDOW_MS, which the chart sets from the kubegrace: values/,
    },
    {
      name: 'extraEnv KUBEGRACE_SIGNALS without SIGTERM (the kubelet would end the process at once)',
      set: { extraEnv: [{ name: 'KUBEGRACE_SIGNALS', value: 'SIGINT, SIGUSR2' }] },
      error:
        /extraEnv sets KUBEGRACE_SIGNALS to "SIGINT, SIGUSR2", without SIGTERM: the kubelet stops the container with SIGTERM/,
    },
    {
      name: 'extraEnv KUBEGRACE_SIGNALS listing a signal twice (the library refuses it)',
      set: { extraEnv: [{ name: 'KUBEGRACE_SIGNALS', value: 'SIGTERM,SIGINT,SIGTERM' }] },
      error: /extraEnv sets KUBEGRACE_SIGNALS to "SIGTERM,SIGINT,SIGTERM", which lists a signal twice/,
    },
    {
      name: "a safety margin under the library's least (750 ms)",
      set: { 'kubegrace.safetyMarginMs': 500 },
      error: /kubegrace\.safetyMarginMs: Must be greater than or equal to 750/,
    },
    {
      name: 'a computed grace period above what the library accepts',
      set: { 'kubegrace.drain': { timeoutMs: 2147483647 } },
      error:
        /terminationGracePeriodSeconds would be 2147502 \(computed\), above 2147483 s, the most kubegrace accepts \(KUBEGRACE_GRACE_PERIOD_SECONDS\): shorten the phase budgets$/m,
    },
    {
      name: 'an override above what the library accepts',
      set: { 'kubegrace.terminationGracePeriodSeconds': 3000000 },
      error:
        /would be 3000000 \(kubegrace\.terminationGracePeriodSeconds\), .*: shorten the phase budgets or the override$/m,
    },
    {
      name: 'a number too large for an integer, shown whole',
      set: { 'kubegrace.terminationGracePeriodSeconds': 9999999999 },
      error:
        /kubegrace\.terminationGracePeriodSeconds must be at most 2147483647 \(seconds\), received 9999999999$/m,
    },
    {
      name: 'the app on the management port',
      set: { containerPort: 9000 },
      error: /containerPort \(9000\) and kubegrace\.probes\.port \(9000\) must differ/,
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const stderr = await renderError({ set: c.set, kubeVersion: c.kubeVersion ?? '1.31.0' });
      assert.match(stderr, c.error);
    });
  }
});
