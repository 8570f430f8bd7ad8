/**
 * `kubegrace_grace_period_seconds` shows the grace period in force, not the one configured at
 * start: once `kubegrace/kubernetes` adopts the pod's own `terminationGracePeriodSeconds`, the gauge
 * (and the "p95 near the grace period" alert that divides by it) follows. It used to read the frozen
 * settings and stay at 30.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as K8s from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { createKubegrace } from '../../src/kubegrace.js';
import { kubernetes } from '../../src/kubernetes/index.js';
import { metrics } from '../../src/metrics/index.js';
import { seedPod, startFakeKubeApi } from '../support/fake-kube-api.js';

function gauge(text: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith('kubegrace_grace_period_seconds '));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

describe('kubegrace_grace_period_seconds', () => {
  it("shows the pod's own grace period once kubegrace/kubernetes adopted it", async () => {
    const fake = await startFakeKubeApi();
    const pod = seedPod(fake, { graceSeconds: 45 });
    const registry = new Registry();
    const kg = createKubegrace({
      handleSignals: false,
      logger: false,
      exit: () => {},
      managementServer: false,
      env: {},
    });
    kg.use(metrics({ registry }));
    try {
      assert.equal(gauge(await registry.metrics()), 30, 'before: the default');
      assert.equal(kg.timing.gracePeriodSource, 'default');
      const kubeConfig = new K8s.KubeConfig();
      kubeConfig.loadFromOptions(fake.kubeConfigOptions('shop'));
      const k = await kg.use(
        kubernetes({ kubeConfig, client: K8s, podName: pod.name, namespace: 'shop', env: {} }),
      );
      try {
        assert.equal(kg.timing.gracePeriodSource, 'pod');
        assert.equal(kg.timing.gracePeriodMs, 45_000);
        assert.equal(gauge(await registry.metrics()), 45, "after: the pod's own");
      } finally {
        await k.stop();
      }
    } finally {
      await kg.destroy();
      await fake.close();
    }
  });

  it('keeps an explicit grace period (the option wins over the pod)', async () => {
    const fake = await startFakeKubeApi();
    const pod = seedPod(fake, { graceSeconds: 45 });
    const registry = new Registry();
    const kg = createKubegrace({
      handleSignals: false,
      logger: false,
      exit: () => {},
      managementServer: false,
      env: {},
      gracePeriodSeconds: 40,
      budgetCheck: 'off',
    });
    kg.use(metrics({ registry }));
    try {
      const kubeConfig = new K8s.KubeConfig();
      kubeConfig.loadFromOptions(fake.kubeConfigOptions('shop'));
      const k = await kg.use(
        kubernetes({ kubeConfig, client: K8s, podName: pod.name, namespace: 'shop', env: {} }),
      );
      try {
        assert.equal(kg.timing.gracePeriodSource, 'option');
        assert.equal(gauge(await registry.metrics()), 40);
      } finally {
        await k.stop();
      }
    } finally {
      await kg.destroy();
      await fake.close();
    }
  });
});
