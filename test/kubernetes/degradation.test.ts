/**
 * Every way the API can fail a pod: unreachable (from the start, or mid-way), slow, 401, 403 on each
 * resource, broken watches. In each, the shutdown must finish inside its budget, fall back to the
 * local strategy (the quiet period, not the propagation maximum), and say so in exactly one warning.
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
  fakeKubernetesOptions,
} from '../support/fake-kube-api.js';

const REQUEST_TIMEOUT_MS = 500;
const QUIET_MS = 300;
const MAX_MS = 4000;
// unready 0.2 + propagation max 4 + drain 0.5 + cleanup 0.5 + margin 1 = 6.2 s within 8 s.
const BUDGET_MS = 200 + MAX_MS + 500 + 500;

interface Case {
  readonly name: string;
  /** Before `kubernetes`. */
  readonly before?: (fake: FakeKubeApi) => void | Promise<void>;
  /** After the integration is up, before the shutdown. */
  readonly during?: (fake: FakeKubeApi, k: KubernetesIntegration) => void | Promise<void>;
  /** While the shutdown runs (e.g. the endpoint controller doing its job when only Events fail). */
  readonly whileShuttingDown?: (fake: FakeKubeApi, pod: ReturnType<typeof seedPod>) => void | Promise<void>;
  readonly warning: RegExp;
  /** The propagation wait may last this long at most (default: the quiet period plus API time limits). */
  readonly propagateAtMostMs?: number;
}

const cases: Case[] = [
  {
    name: 'API unreachable from the start',
    before: (fake) => fake.down(),
    warning:
      /^the Kubernetes API at https:\/\/127\.0\.0\.1:\d+ is unreachable \(.*ECONNREFUSED.*\) for list (pods|endpointslices\.discovery\.k8s\.io); retrying in the background; until then kubegrace relies on the local strategy/,
  },
  {
    name: 'API becomes unreachable after start-up',
    during: (fake) => fake.down(),
    // The shutdown starts right away, so the first call to meet the dead API is a watch (or its
    // re-list) or the shutdown's own Event, whichever the scheduler runs first; either is the one warning.
    warning:
      // An Event is dropped, not retried; a list or a watch is retried.
      /^the Kubernetes API at \S+ is unreachable \(.*(ECONNREFUSED|ECONNRESET).*\) for ((watch|list) (pods|endpointslices\.discovery\.k8s\.io); retrying in the background|create events; that Event is dropped \(Events are not retried\); the next ones are still sent); until then kubegrace relies on the local strategy/,
  },
  {
    name: 'API slow: every answer takes longer than requestTimeoutMs',
    before: (fake) => fake.setLatency(3000),
    warning: new RegExp(
      `^the Kubernetes API at \\S+ did not answer list (pods|endpointslices\\.discovery\\.k8s\\.io) within ${REQUEST_TIMEOUT_MS} ms \\(requestTimeoutMs\\); retrying in the background`,
    ),
  },
  {
    name: 'API slow only for watches: a watch never gets accepted',
    during: (fake) => {
      fake.setLatency(3000, (r) => r.verb === 'watch');
      fake.dropWatches();
    },
    warning:
      /did not answer watch (pods|endpointslices\.discovery\.k8s\.io) within 500 ms \(requestTimeoutMs\)/,
  },
  {
    name: '401: the token is rejected',
    before: (fake) => fake.setUnauthorized(true),
    warning:
      /^the Kubernetes API at \S+ rejected the service-account token \(401 Unauthorized\) to list (pods|endpointslices\.discovery\.k8s\.io): Unauthorized; check that the pod mounts a valid token/,
  },
  {
    name: '403 on endpointslices',
    before: (fake) => fake.forbid('endpointslices', ['list', 'watch']),
    warning:
      /^cannot list endpointslices\.discovery\.k8s\.io in namespace shop: add verbs \[list, watch\] on endpointslices \(discovery\.k8s\.io\) to the Role bound to this pod's service account \(docs\/rbac\.yaml\); until then the propagation wait judges the silence alone, without the EndpointSlice confirmation$/,
  },
  {
    name: '403 on pods',
    before: (fake) => fake.forbid('pods', ['list', 'watch']),
    // The EndpointSlices still work: the controller marks the endpoint not ready 200 ms in.
    whileShuttingDown: async (fake, pod) => {
      await delay(200);
      setEndpointReady(fake, pod.namespace, pod.slice, pod.uid, false);
    },
    warning:
      /^cannot list pods in namespace shop: add verbs \[list, watch\] on pods \(core API group ""\) to the Role bound to this pod's service account \(docs\/rbac\.yaml\); until then the deadline comes from the configured grace period/,
    propagateAtMostMs: 200 + QUIET_MS + 400,
  },
  {
    name: '403 on events',
    before: (fake) => fake.forbid('events', ['create']),
    whileShuttingDown: async (fake, pod) => {
      await delay(200);
      setEndpointReady(fake, pod.namespace, pod.slice, pod.uid, false);
    },
    warning:
      /^cannot create events in namespace shop: add verbs \[create\] on events \(core API group ""\) to the Role bound to this pod's service account \(docs\/rbac\.yaml\); until then no Kubernetes Events are recorded/,
    propagateAtMostMs: 200 + QUIET_MS + 400,
  },
  {
    name: 'watches broken: dropped and refused with 500',
    during: (fake) => {
      fake.failWatches(500);
      fake.dropWatches();
    },
    warning:
      /^the Kubernetes API at \S+ failed to watch (pods|endpointslices\.discovery\.k8s\.io) in namespace shop \(500 Internal Server Error\); retrying with backoff/,
  },
];

for (const major of clientMajors()) {
  describe(`degradation via ${major.label}`, { skip: major.skip ?? false }, () => {
    for (const c of cases) {
      it(`${c.name}: shutdown inside the budget, one warning`, async () => {
        const client = await major.load();
        await runCase(client, c);
      });
    }
  });
}

async function runCase(client: KubeClientModule, c: Case): Promise<void> {
  const fake = await startFakeKubeApi();
  const pod = seedPod(fake);
  const log = captureLog();
  const lifecycleWarnings: string[] = [];
  const exits: number[] = [];
  const kg = createKubegrace({
    handleSignals: false,
    logger: log.logger,
    exit: (code) => exits.push(code),
    managementServer: false,
    gracePeriodSeconds: 8,
    unreadyTimeoutMs: 200,
    propagation: { quietPeriodMs: QUIET_MS, maxMs: MAX_MS, proxyAllowanceMs: QUIET_MS },
    drain: { timeoutMs: 500 },
    cleanupTimeoutMs: 500,
  });
  kg.on('warning', ({ message }) => lifecycleWarnings.push(message));
  const phases = new Map<string, number>();
  kg.on('phase', ({ phase, status, durationMs }) => status === 'end' && phases.set(phase, durationMs));
  let k: KubernetesIntegration | undefined;
  try {
    await c.before?.(fake);
    const options = fakeKubernetesOptions(fake, client, {
      podName: pod.name,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      retry: { initialMs: 100, maxMs: 500 },
    });
    const startedAt = Date.now();
    k = await kg.use(kubernetes(options));
    const startup = Date.now() - startedAt;
    assert.ok(startup <= REQUEST_TIMEOUT_MS + 700, `kubernetes resolved after ${startup} ms`);
    if (c.during) {
      const integration = k;
      await waitFor(() => integration.endpoints.length > 0, 'the endpoint to be seen');
      await c.during(fake, integration);
    }
    const shuttingDown = c.whileShuttingDown?.(fake, pod);
    const summary = await kg.shutdown('SIGTERM');
    await shuttingDown;
    // Whatever failed only has to surface once; give a late retry the chance to warn twice.
    await delay(300);

    assert.equal(
      summary.outcome,
      'clean',
      `outcome ${summary.outcome}: ${JSON.stringify({ failures: summary.failures, phases: summary.phases })}`,
    );
    assert.deepEqual(exits, [0]);
    assert.ok(
      summary.durationMs <= BUDGET_MS,
      `the shutdown took ${summary.durationMs} ms, budget ${BUDGET_MS} ms`,
    );
    assert.ok(summary.startedAt + summary.durationMs < summary.deadlineAt, 'finished before the deadline');
    const propagate = phases.get('propagate') ?? Number.NaN;
    const allowed = c.propagateAtMostMs ?? QUIET_MS + 2 * REQUEST_TIMEOUT_MS + 300;
    assert.ok(
      propagate <= allowed,
      `the propagation wait took ${propagate} ms: it should fall back to the quiet period (at most ${allowed} ms), not wait for propagation.maxMs`,
    );
    const warnings = [...log.warnings(), ...lifecycleWarnings];
    assert.equal(warnings.length, 1, `expected exactly one warning, got:\n${warnings.join('\n')}`);
    assert.match(warnings[0] as string, c.warning);
  } finally {
    await k?.stop();
    await fake.close();
  }
}
