/**
 * Fault matrix, the Kubernetes API failing *while the shutdown waits on it*: the EndpointSlice watch
 * dropped, its resourceVersion compacted (410 Gone), the API gone. The faults before a shutdown
 * (unreachable, slow, 401, 403 per resource, broken watches) are test/kubernetes/degradation.test.ts.
 * The real `@kubernetes/client-node` against the fake API server; the outcome from the summary, the
 * exit code kubegrace hands to `exit`, and a scrape of /metrics during the exit phase.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { createKubegrace } from '../../src/kubegrace.js';
import type { KubeClientModule } from '../../src/kubernetes/client.js';
import { kubernetes } from '../../src/kubernetes/index.js';
import { metrics } from '../../src/metrics/index.js';
import { metricValue } from '../support/fault-child.js';
import { get } from '../support/http.js';
import {
  captureLog,
  clientMajors,
  seedPod,
  setEndpointReady,
  startFakeKubeApi,
  waitFor,
  type FakeKubeApi,
  fakeKubernetesOptions,
} from '../support/fake-kube-api.js';

const QUIET_MS = 200;
const MAX_MS = 4000;
const REQUEST_TIMEOUT_MS = 500;

interface Case {
  readonly name: string;
  /** Runs once the propagation wait has begun; the shutdown waits on the EndpointSlice meanwhile. */
  readonly fault: (fake: FakeKubeApi, pod: ReturnType<typeof seedPod>) => Promise<void>;
  /** The propagation wait lasts at least this long: the removal was seen through the fault. */
  readonly propagateAtLeastMs: number;
  readonly propagateAtMostMs: number;
  readonly warnings: RegExp | undefined;
  /** What the API saw: proof the fault took the path it names. */
  readonly check?: (fake: FakeKubeApi) => void;
}

const count = (fake: FakeKubeApi, verb: string, status?: number): number =>
  fake.requests.filter(
    (r) =>
      r.resource === 'endpointslices' && r.verb === verb && (status === undefined || r.status === status),
  ).length;

const REMOVED_AFTER_MS = 700;

const cases: Case[] = [
  {
    name: 'watch dropped while waiting for the EndpointSlice: it resumes and sees the removal; exit 0, clean',
    fault: async (fake, pod) => {
      fake.dropWatches();
      await delay(REMOVED_AFTER_MS);
      setEndpointReady(fake, pod.namespace, pod.slice, pod.uid, false);
    },
    propagateAtLeastMs: REMOVED_AFTER_MS,
    propagateAtMostMs: REMOVED_AFTER_MS + 1500,
    warnings: undefined,
    check: (fake) => {
      assert.ok(count(fake, 'watch') >= 2, 'the watch was reopened');
      assert.equal(count(fake, 'list'), 1, 'resumed without a relist');
    },
  },
  {
    name: '410 Gone while waiting for the EndpointSlice: it relists and sees the removal; exit 0, clean',
    fault: async (fake, pod) => {
      await delay(REMOVED_AFTER_MS);
      // The removal happens while no watch is open, then history is compacted: the watch resumes
      // from a resourceVersion the server no longer has and must relist to see it.
      fake.dropWatches();
      setEndpointReady(fake, pod.namespace, pod.slice, pod.uid, false);
      fake.compact();
    },
    propagateAtLeastMs: REMOVED_AFTER_MS,
    propagateAtMostMs: REMOVED_AFTER_MS + 1500,
    warnings: undefined,
    check: (fake) => assert.equal(count(fake, 'list'), 2, 'one relist after 410 Gone'),
  },
  {
    name: 'API down while waiting for the EndpointSlice: the quiet period decides, not propagation.maxMs; exit 0, clean',
    fault: async (fake) => {
      await delay(100);
      await fake.down();
    },
    propagateAtLeastMs: QUIET_MS,
    propagateAtMostMs: 100 + REQUEST_TIMEOUT_MS + QUIET_MS + 800,
    warnings: /unreachable/,
  },
];

for (const major of clientMajors()) {
  describe(
    `fault matrix: Kubernetes API during the shutdown via ${major.label}`,
    { skip: major.skip ?? false },
    () => {
      for (const c of cases) {
        it(c.name, async () => runCase(await major.load(), c));
      }
    },
  );
}

async function runCase(client: KubeClientModule, c: Case): Promise<void> {
  const fake = await startFakeKubeApi({ bookmarkIntervalMs: 60_000 });
  const pod = seedPod(fake);
  const log = captureLog();
  const exits: number[] = [];
  const kg = createKubegrace({
    handleSignals: false,
    logger: log.logger,
    exit: (code) => exits.push(code),
    probes: { port: 0, host: '127.0.0.1' },
    gracePeriodSeconds: 8,
    unreadyTimeoutMs: 200,
    propagation: { quietPeriodMs: QUIET_MS, maxMs: MAX_MS, proxyAllowanceMs: QUIET_MS },
    drain: { timeoutMs: 500 },
    cleanupTimeoutMs: 500,
  });
  kg.use(metrics({ registry: new Registry(), finalScrape: { timeoutMs: 2000 } }));
  const phases = new Map<string, number>();
  kg.on('phase', ({ phase, status, durationMs }) => status === 'end' && phases.set(phase, durationMs));
  const propagating = new Promise<void>((resolve) =>
    kg.on('phase', ({ phase, status }) => phase === 'propagate' && status === 'start' && resolve()),
  );
  const k = await kg.use(
    kubernetes(
      fakeKubernetesOptions(fake, client, {
        podName: pod.name,
        requestTimeoutMs: REQUEST_TIMEOUT_MS,
        retry: { initialMs: 50, maxMs: 300 },
      }),
    ),
  );
  try {
    await kg.start();
    kg.ready();
    await waitFor(() => fake.openWatches === 2, 'both watches to open');
    const done = kg.shutdown('SIGTERM');
    await propagating;
    await c.fault(fake, pod);
    // What Prometheus sees: the exit phase holds until a scrape has the outcome.
    let scraped: string | undefined;
    const port = kg.managementAddress?.port ?? 0;
    while (exits.length === 0) {
      const { body } = await get(port, '/metrics', { timeoutMs: 2000 });
      if (metricValue(body, 'kubegrace_shutdowns_total', { trigger: 'SIGTERM' }) !== undefined) {
        scraped = body;
        break;
      }
      await delay(50);
    }
    const summary = await done;

    assert.equal(summary.outcome, 'clean');
    assert.deepEqual(exits, [0]);
    assert.ok(summary.startedAt + summary.durationMs < summary.deadlineAt, 'finished before the deadline');
    const propagate = phases.get('propagate') ?? Number.NaN;
    assert.ok(
      propagate >= c.propagateAtLeastMs && propagate <= c.propagateAtMostMs,
      `the propagation wait took ${propagate} ms, expected ${c.propagateAtLeastMs}–${c.propagateAtMostMs} ms`,
    );
    const warnings = log.warnings();
    if (c.warnings === undefined) assert.deepEqual(warnings, [], 'a routine reconnect is not a warning');
    else
      assert.ok(
        warnings.some((w) => c.warnings?.test(w)),
        warnings.join('\n'),
      );
    assert.equal(metricValue(scraped, 'kubegrace_shutdowns_total', { outcome: 'clean' }), 1);
    c.check?.(fake);
  } finally {
    await k.stop();
    await kg.destroy();
    await fake.close();
  }
}
