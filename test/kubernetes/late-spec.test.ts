/**
 * The API unavailable when `kg.use(kubernetes())` runs: the pod's spec, read once the API answers,
 * is adopted and checked as it would have been at start-up, and a budget that does not fit is
 * logged as an error (a start that succeeded cannot be refused any more).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createKubegrace } from '../../src/kubegrace.js';
import { kubernetes } from '../../src/kubernetes/index.js';
import {
  captureLog,
  clientMajors,
  seedPod,
  startFakeKubeApi,
  waitFor,
  fakeKubernetesOptions,
} from '../support/fake-kube-api.js';

for (const major of clientMajors()) {
  describe(`the pod read after start-up via ${major.label}`, { skip: major.skip ?? false }, () => {
    it('adopts its grace period and reports the budget that does not fit', async () => {
      const client = await major.load();
      const fake = await startFakeKubeApi();
      const log = captureLog();
      // No grace period configured; the budget (0.5 + 10 + 15 + 0.5 + 1 s) needs more than the pod's 10 s.
      const kg = createKubegrace({
        handleSignals: false,
        logger: log.logger,
        exit: () => {},
        managementServer: false,
        unreadyTimeoutMs: 500,
        drain: { timeoutMs: 15_000 },
        cleanupTimeoutMs: 500,
      });
      try {
        const pod = seedPod(fake, { graceSeconds: 10 });
        await fake.down();
        const k = await kg.use(
          kubernetes(
            fakeKubernetesOptions(fake, client, {
              podName: pod.name,
              requestTimeoutMs: 500,
              retry: { initialMs: 100, maxMs: 300 },
            }),
          ),
        );
        try {
          assert.equal(k.timing, undefined, 'nothing read while the API is down');
          assert.equal(kg.timing.gracePeriodSource, 'default');
          await fake.up();
          await waitFor(() => k.timing !== undefined, 'the pod to be read', 8000);
          assert.equal(kg.timing.gracePeriodMs, 10_000, "the pod's terminationGracePeriodSeconds");
          assert.equal(kg.timing.gracePeriodSource, 'pod');
          const errors = log.lines.filter((l) => l.level === 'error');
          assert.equal(errors.length, 1, JSON.stringify(log.lines.map((l) => l.msg)));
          assert.equal(errors[0]?.fields.code, 'ERR_KUBEGRACE_BUDGET_EXCEEDS_GRACE');
          assert.match(
            String(errors[0]?.msg),
            /^shutdown budget 27 s exceeds terminationGracePeriodSeconds 10 s of pod shop\/\S+ \(container app\): .* \(read after start-up: the Kubernetes API was unavailable/,
          );
        } finally {
          await k.stop();
        }
      } finally {
        await kg.destroy();
        await fake.close();
      }
    });

    it('read during a SIGTERM shutdown behind a preStop sleep: the kill time counts from before the sleep', async () => {
      const client = await major.load();
      const fake = await startFakeKubeApi();
      const log = captureLog();
      const kg = createKubegrace({
        handleSignals: false,
        logger: log.logger,
        exit: () => {},
        managementServer: false,
        budgetCheck: 'off',
        unreadyTimeoutMs: 100,
        drain: { timeoutMs: 600_000 },
        propagation: { quietPeriodMs: 200, maxMs: 500 },
      });
      const lease = kg.lease('job');
      try {
        fake.put('pods', {
          metadata: { name: 'web-0', namespace: 'shop' },
          spec: {
            terminationGracePeriodSeconds: 60,
            nodeName: 'node-1',
            containers: [{ name: 'app', image: 'x', lifecycle: { preStop: { sleep: { seconds: 10 } } } }],
          },
          status: { phase: 'Running', podIP: '10.1.2.3' },
        });
        fake.forbid('pods', ['list', 'watch', 'get']);
        const k = await kg.use(
          kubernetes(
            fakeKubernetesOptions(fake, client, {
              podName: 'web-0',
              requestTimeoutMs: 1000,
              retry: { initialMs: 50, maxMs: 200 },
              confirmPropagation: false,
              events: false,
            }),
          ),
        );
        try {
          kg.ready();
          // The kubelet slept 10 s in the preStop hook, then sent SIGTERM; no deletion in the API (an
          // eviction by the kubelet, a liveness restart): it kills 60 s after the sleep began.
          const signalledAt = Date.now();
          void kg.shutdown({ kind: 'signal', signal: 'SIGTERM' });
          fake.allowAll();
          await waitFor(() => k.timing !== undefined, 'the pod to be read', 8000);
          assert.equal(kg.timing.gracePeriodMs, 60_000);
          const kubeletKill = signalledAt - 10_000 + 60_000;
          const killAt = kg.timing.killAt ?? Number.NaN;
          // Not 60 s after SIGTERM, which is 10 s past the kubelet's kill.
          assert.ok(killAt <= kubeletKill + 100, `kill time ${killAt - kubeletKill} ms after the kubelet's`);
          assert.ok(
            killAt >= kubeletKill - 1000,
            `kill time ${kubeletKill - killAt} ms before the kubelet's`,
          );
          assert.equal(kg.timing.killAtSource, 'pod-spec');
        } finally {
          lease.release();
          await k.stop();
        }
      } finally {
        await kg.destroy();
        await fake.close();
      }
    });
  });
}
