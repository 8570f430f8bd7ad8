/**
 * Watch bookkeeping through the real client against the fake API: resuming a dropped watch from the
 * last resourceVersion (bookmarks included) without relisting, relisting after 410 Gone, paginated
 * lists, a rotated service-account token, and the pod's own DELETED event.
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
  setEndpointReady,
  startFakeKubeApi,
  waitFor,
  type FakeKubeApi,
  type FakeKubeApiOptions,
  type RequestRecord,
  fakeKubernetesOptions,
} from '../support/fake-kube-api.js';

interface Setup {
  readonly fake: FakeKubeApi;
  readonly k: KubernetesIntegration;
  readonly kg: ReturnType<typeof createKubegrace>;
  readonly pod: ReturnType<typeof seedPod>;
  readonly log: ReturnType<typeof captureLog>;
  readonly exits: number[];
  done(): Promise<void>;
}

async function setup(
  client: KubeClientModule,
  fakeOptions: FakeKubeApiOptions = {},
  seed?: (fake: FakeKubeApi) => void,
): Promise<Setup> {
  const fake = await startFakeKubeApi(fakeOptions);
  const pod = seedPod(fake);
  seed?.(fake);
  const exits: number[] = [];
  const log = captureLog();
  const kg = createKubegrace({
    handleSignals: false,
    logger: log.logger,
    exit: (code) => exits.push(code),
    managementServer: false,
    gracePeriodSeconds: 8,
    unreadyTimeoutMs: 200,
    propagation: { quietPeriodMs: 200, maxMs: 3000, proxyAllowanceMs: 500 },
    drain: { timeoutMs: 300 },
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
  await waitFor(() => fake.openWatches === 2, 'both watches to open');
  return {
    fake,
    k,
    kg,
    pod,
    log,
    exits,
    async done() {
      await k.stop();
      await fake.close();
    },
  };
}

const of = (fake: FakeKubeApi, resource: string, verb: string): RequestRecord[] =>
  fake.requests.filter((r) => r.resource === resource && r.verb === verb);

for (const major of clientMajors()) {
  describe(`watches via ${major.label}`, { skip: major.skip ?? false }, () => {
    it('lists once, then watches from the list resourceVersion with bookmarks allowed', async () => {
      const s = await setup(await major.load());
      try {
        const [list] = of(s.fake, 'endpointslices', 'list');
        const [watch] = of(s.fake, 'endpointslices', 'watch');
        assert.equal(list?.query.labelSelector, 'kubernetes.io/service-name');
        assert.equal(watch?.query.allowWatchBookmarks, 'true');
        assert.ok(Number(watch?.query.timeoutSeconds) > 0, 'a server-side timeout bounds every watch');
        // Nothing changed since the seed: the list answered at the current resourceVersion.
        assert.equal(watch?.query.resourceVersion, String(s.fake.resourceVersion));
        const [podList] = of(s.fake, 'pods', 'list');
        assert.equal(podList?.query.fieldSelector, `metadata.name=${s.pod.name}`);
      } finally {
        await s.done();
      }
    });

    it('resumes a dropped watch from the last bookmark, without relisting, and misses nothing', async () => {
      const s = await setup(await major.load(), { bookmarkIntervalMs: 100 });
      try {
        const listedAt = Number(of(s.fake, 'pods', 'watch')[0]?.query.resourceVersion);
        // Changes the pod watch does not select move the global resourceVersion; only bookmarks tell it.
        s.fake.put('pods', { metadata: { name: 'other', namespace: 'shop' }, spec: { containers: [] } });
        s.fake.put('pods', { metadata: { name: 'another', namespace: 'shop' }, spec: { containers: [] } });
        const current = s.fake.resourceVersion;
        await delay(350); // a few bookmarks
        assert.equal(s.fake.dropWatches(), 2);
        setEndpointReady(s.fake, 'shop', s.pod.slice, s.pod.uid, false);
        await waitFor(
          () => s.k.endpoints.length === 1 && s.k.endpoints[0]?.ready === false,
          'the change made during the drop',
        );
        // Each watch pauses its own jittered while before reopening: the slice's may come back first.
        await waitFor(() => of(s.fake, 'pods', 'watch').length >= 2, 'the pod watch to reopen');
        const podWatches = of(s.fake, 'pods', 'watch');
        const resumedFrom = Number(podWatches[1]?.query.resourceVersion);
        assert.ok(
          resumedFrom > listedAt,
          `resumed from ${resumedFrom}, past the list's ${listedAt} thanks to bookmarks`,
        );
        assert.ok(resumedFrom >= current, `resumed from ${resumedFrom}, the bookmark at ${current} or later`);
        assert.equal(of(s.fake, 'pods', 'list').length, 1, 'no relist after a plain drop');
        assert.equal(of(s.fake, 'endpointslices', 'list').length, 1, 'no relist after a plain drop');
        assert.deepEqual(s.log.warnings(), [], 'a dropped watch is routine, not a warning');
      } finally {
        await s.done();
      }
    });

    it('relists after 410 Gone and sees what changed while it was away', async () => {
      // No bookmarks: the resourceVersion it holds falls behind the compaction.
      const s = await setup(await major.load(), { bookmarkIntervalMs: 60_000 });
      try {
        s.fake.failWatches(503);
        s.fake.dropWatches();
        await waitFor(
          () => of(s.fake, 'endpointslices', 'watch').some((r) => r.status === 503),
          'a refused watch',
        );
        setEndpointReady(s.fake, 'shop', s.pod.slice, s.pod.uid, false);
        s.fake.compact();
        s.fake.failWatches(undefined);
        await waitFor(() => s.k.endpoints[0]?.ready === false, 'the relisted state', 6000);
        assert.equal(of(s.fake, 'endpointslices', 'list').length, 2, 'one relist after 410');
        const watches = of(s.fake, 'endpointslices', 'watch');
        const last = watches[watches.length - 1];
        assert.ok(
          Number(last?.query.resourceVersion) >= s.fake.resourceVersion - 1,
          'the new watch starts from the new list',
        );
      } finally {
        await s.done();
      }
    });

    it('pages through a large namespace with limit/continue', async () => {
      const s = await setup(await major.load(), {}, (fake) => {
        for (let i = 0; i < 520; i++) {
          fake.put('endpointslices', {
            metadata: {
              name: `svc-${String(i).padStart(3, '0')}`,
              namespace: 'shop',
              labels: { 'kubernetes.io/service-name': `svc-${i}` },
            },
            addressType: 'IPv4',
            endpoints: [{ addresses: [`10.2.${i >> 8}.${i & 255}`], conditions: { ready: true } }],
          });
        }
      });
      try {
        const lists = of(s.fake, 'endpointslices', 'list');
        assert.equal(lists.length, 2, 'two pages');
        assert.equal(lists[0]?.query.limit, '500');
        assert.ok(lists[1]?.query.continue, 'the second page continues the first');
        assert.equal(s.k.endpoints.length, 1, 'the own endpoint found among 521 slices');
      } finally {
        await s.done();
      }
    });

    it('re-reads a rotated service-account token when the old one is refused', async () => {
      const s = await setup(await major.load());
      try {
        // Rotated but still valid: client-node keeps using the cached token (it re-reads the file once a minute).
        const first = s.fake.requests.at(-1)?.token;
        s.fake.rotateToken();
        s.fake.dropWatches();
        await waitFor(() => s.fake.openWatches === 2, 'the watches to reopen');
        assert.equal(s.fake.requests.at(-1)?.token, first, 'still the cached token');
        // Now the old token is revoked: the next request gets 401, and the file is read again.
        const fresh = s.fake.rotateToken({ revokeOld: true });
        s.fake.dropWatches();
        await waitFor(
          () => s.fake.requests.some((r) => r.token === fresh && r.status === 200),
          'a request with the new token',
        );
        assert.ok(
          s.fake.requests.some((r) => r.status === 401),
          'the old token was refused once',
        );
        setEndpointReady(s.fake, 'shop', s.pod.slice, s.pod.uid, false);
        await waitFor(() => s.k.endpoints[0]?.ready === false, 'events after the rotation');
        assert.deepEqual(s.log.warnings(), [], 'a rotation is handled without a warning');
      } finally {
        await s.done();
      }
    });

    it('two revocations in a row: each refused token is re-read at once, the watches come back without a warning', async () => {
      const s = await setup(await major.load());
      try {
        for (let i = 0; i < 2; i++) {
          const fresh = s.fake.rotateToken({ revokeOld: true });
          s.fake.dropWatches();
          await waitFor(
            () => s.fake.requests.some((r) => r.token === fresh && r.status === 200),
            `a request with token ${i + 1}`,
            3000,
          );
          await delay(300);
        }
        await waitFor(() => s.k.watching.pod && s.k.watching.endpointSlices, 'the watches back', 3000);
        assert.deepEqual(s.log.warnings(), [], 'a rotation is handled without a warning');
      } finally {
        await s.done();
      }
    });

    it('a pod that disappears without a deletionTimestamp first (force delete) starts the shutdown', async () => {
      const s = await setup(await major.load());
      try {
        s.fake.remove('pods', 'shop', s.pod.name);
        await waitFor(() => s.kg.state === 'stopped', 'the shutdown', 6000);
        assert.deepEqual(s.exits, [0]);
      } finally {
        await s.done();
      }
    });
  });
}
