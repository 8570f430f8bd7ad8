/**
 * A middlebox (a proxy, a load balancer in front of the API server) that ends every watch half a
 * second after it was accepted: each watch answered, so the EndpointSlice confirmation keeps waiting
 * for the slice change (replayed when the watch resumes) instead of giving up on an API that "did
 * not answer".
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { createKubegrace } from '../../src/kubegrace.js';
import { kubernetes } from '../../src/kubernetes/index.js';
import {
  captureLog,
  clientMajors,
  seedPod,
  setEndpointReady,
  startFakeKubeApi,
  waitFor,
  fakeKubernetesOptions,
} from '../support/fake-kube-api.js';

for (const major of clientMajors()) {
  describe(`watches cut short via ${major.label}`, { skip: major.skip ?? false }, () => {
    it('a watch that was accepted and sent bookmarks answered: the confirmation waits for the slice', async () => {
      const client = await major.load();
      const fake = await startFakeKubeApi({ bookmarkIntervalMs: 100 });
      const log = captureLog();
      const kg = createKubegrace({
        handleSignals: false,
        logger: log.logger,
        exit: () => {},
        managementServer: false,
        budgetCheck: 'off',
        unreadyTimeoutMs: 100,
        propagation: { quietPeriodMs: 200, maxMs: 6000, proxyAllowanceMs: 300 },
        drain: { timeoutMs: 500 },
        cleanupTimeoutMs: 500,
      });
      try {
        const pod = seedPod(fake, { graceSeconds: 30 });
        fake.cutWatchesAfter(500);
        const k = await kg.use(
          kubernetes(
            fakeKubernetesOptions(fake, client, {
              podName: pod.name,
              requestTimeoutMs: 1000,
            }),
          ),
        );
        try {
          kg.ready();
          await waitFor(() => k.endpoints.some((e) => e.ready), 'the endpoint');
          await delay(1500); // a few cut watches
          const done = kg.shutdown('SIGTERM');
          await delay(2000); // past requestTimeoutMs, the limit of an unanswered watch
          const removedAt = Date.now();
          setEndpointReady(fake, 'shop', pod.slice, pod.uid, false);
          await done;
          assert.equal(kg.propagation?.endedBy, 'confirmed', `ended by ${kg.propagation?.endedBy}`);
          const confirmedAfter = kg.propagation?.confirmedAfterMs;
          assert.ok(confirmedAfter !== undefined, 'the slice change was seen');
          assert.ok(Date.now() >= removedAt + 300, 'the proxy allowance ran after the removal');
          assert.deepEqual(log.warnings(), [], 'cut watches that answered are routine');
          const watches = fake.requests.filter((r) => r.verb === 'watch' && r.resource === 'endpointslices');
          assert.ok(watches.length >= 4, `${watches.length} watches: each cut one was resumed`);
        } finally {
          await k.stop();
        }
      } finally {
        await kg.destroy();
        await fake.close();
      }
    });
  });
}
