/**
 * The pod's deletion through the API against the kubelet's kill time, where real clusters make it
 * hard: a second delete with a shorter grace period, the API server's clock apart from the node's,
 * and a force delete that happened while the pod watch was away and whose history was compacted.
 * The fake API deletes as the API server does (rest.BeforeDelete) and records the kill time on the
 * node's clock.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { createKubegrace } from '../../src/kubegrace.js';
import type { KubeClientModule } from '../../src/kubernetes/client.js';
import { kubernetes, type KubernetesIntegration } from '../../src/kubernetes/index.js';
import {
  captureLog,
  clientMajors,
  seedPod,
  startFakeKubeApi,
  waitFor,
  type FakeKubeApi,
  type FakeKubeApiOptions,
  fakeKubernetesOptions,
} from '../support/fake-kube-api.js';

interface Setup {
  readonly fake: FakeKubeApi;
  readonly k: KubernetesIntegration;
  readonly kg: ReturnType<typeof createKubegrace>;
  readonly pod: ReturnType<typeof seedPod>;
  readonly log: ReturnType<typeof captureLog>;
  readonly exits: number[];
  /** Holds the drain open until released. */
  release(): void;
  done(): Promise<void>;
}

async function setup(
  client: KubeClientModule,
  graceSeconds: number,
  fakeOptions: FakeKubeApiOptions = {},
): Promise<Setup> {
  const fake = await startFakeKubeApi(fakeOptions);
  const pod = seedPod(fake, { graceSeconds });
  const exits: number[] = [];
  const log = captureLog();
  const kg = createKubegrace({
    handleSignals: false,
    logger: log.logger,
    exit: (code) => exits.push(code),
    managementServer: false,
    budgetCheck: 'off',
    unreadyTimeoutMs: 100,
    propagation: { quietPeriodMs: 200, maxMs: 500, proxyAllowanceMs: 100 },
    drain: { timeoutMs: 60_000 },
    cleanupTimeoutMs: 300,
  });
  const k = await kg.use(
    kubernetes(
      fakeKubernetesOptions(fake, client, {
        podName: pod.name,
        requestTimeoutMs: 1000,
        retry: { initialMs: 50, maxMs: 300 },
      }),
    ),
  );
  await waitFor(() => k.watching.pod, 'the pod watch to open');
  kg.ready();
  const lease = kg.lease('job');
  return {
    fake,
    k,
    kg,
    pod,
    log,
    exits,
    release: () => lease.release(),
    async done() {
      lease.release();
      await k.stop();
      void kg.destroy();
      await fake.close();
    },
  };
}

for (const major of clientMajors()) {
  describe(`deletion via ${major.label}`, { skip: major.skip ?? false }, () => {
    it('a second delete with a shorter grace period moves the kill time and the deadline earlier', async () => {
      const client = await major.load();
      const s = await setup(client, 30);
      try {
        const first = s.fake.deletePod('shop', s.pod.name, { graceSeconds: 30 });
        await waitFor(() => s.k.deletion !== undefined && s.kg.state === 'draining', 'the first deletion');
        assert.ok(Math.abs((s.kg.timing.killAt ?? 0) - first.killAt) <= 100);
        await delay(300);
        // kubectl delete --grace-period=3 on the terminating pod, through the real client.
        const kc = new client.KubeConfig();
        kc.loadFromOptions(s.fake.kubeConfigOptions('shop'));
        const core = kc.makeApiClient(client.CoreV1Api as never) as {
          deleteNamespacedPod(param: Record<string, unknown>): Promise<unknown>;
        };
        await core.deleteNamespacedPod({ name: s.pod.name, namespace: 'shop', gracePeriodSeconds: 3 });
        const second = s.fake.deletedPod('shop', s.pod.name);
        assert.equal(second?.graceSeconds, 3, 'the API server shortened the deletion');
        await waitFor(
          () => (s.kg.timing.killAt ?? Infinity) < first.killAt - 10_000,
          'the kill time to move',
        );
        const error = (s.kg.timing.killAt ?? 0) - (second?.killAt ?? 0);
        assert.ok(error <= 100 && error >= -100, `kill time ${error} ms off the kubelet's new kill time`);
        assert.equal(s.k.deletion?.graceSeconds, 3);
        assert.ok(
          (s.kg.timing.deadlineAt ?? Infinity) + s.kg.settings.safetyMarginMs <= (second?.killAt ?? 0) + 100,
          'the deadline keeps its margin before the new kill time',
        );
        assert.ok(
          s.log.lines.some((l) => l.msg === 'pod deletion shortened'),
          'the shortening is logged',
        );
      } finally {
        await s.done();
      }
    });

    for (const skewMs of [3000, -3000]) {
      it(`API server clock ${skewMs > 0 ? 'ahead of' : 'behind'} the node's by ${Math.abs(skewMs)} ms: the deadline stays before the kill time, at most the Date header's second early`, async () => {
        const s = await setup(await major.load(), 10, { clockSkewMs: skewMs });
        try {
          const deleted = s.fake.deletePod('shop', s.pod.name);
          await waitFor(() => s.k.deletion !== undefined, 'the deletion');
          const killAt = s.kg.timing.killAt ?? s.k.deletion?.killAt ?? 0;
          const error = killAt - deleted.killAt;
          // Late by the watch's latency at most; early by at most what a whole-second Date header hides.
          assert.ok(error <= 100, `kill time ${error} ms after the kubelet's: the deadline would overrun`);
          assert.ok(error >= -1200, `kill time ${-error} ms before the kubelet's: the drain is cut short`);
        } finally {
          await s.done();
        }
      });
    }

    it('a pod force-deleted while the watch was away (history compacted, re-list empty) starts the shutdown', async () => {
      const s = await setup(await major.load(), 8, { bookmarkIntervalMs: 60_000 });
      try {
        s.release();
        s.fake.failWatches(503);
        s.fake.dropWatches();
        await waitFor(
          () => s.fake.requests.some((r) => r.resource === 'pods' && r.verb === 'watch' && r.status === 503),
          'a refused watch',
        );
        s.fake.remove('pods', 'shop', s.pod.name);
        s.fake.compact();
        s.fake.failWatches(undefined);
        await waitFor(() => s.kg.state === 'stopped', 'the shutdown', 8000);
        assert.deepEqual(s.exits, [0]);
        const notFound = s.log.warnings().filter((w) => /not found/.test(w));
        assert.deepEqual(notFound, [], 'a pod seen before and gone now was deleted, not misnamed');
      } finally {
        await s.done();
      }
    });
  });
}
