/**
 * The Kubernetes integration's scenarios, each run against every cluster at hand: the in-process
 * fake API playing Kubernetes 1.25 (the oldest supported) through client-node 1.x (always), playing
 * 1.34 through client-node 2.x (on Node ≥ 22.19; CI runs the suite on Node 26), playing 1.30 for the
 * scenarios whose pods have a preStop hook (the sleep action's side of the version switch), and a
 * real cluster (opt-in: KUBECONFIG set; docs/kubernetes.md). A cluster that is not at hand is skipped
 * with the reason and the scenarios it did not run, never passed silently.
 *
 * Nothing here leans on what only the fake does: pods are created over the wire with the preStop
 * handler the server's version takes, and Events are ordered by what the API keeps (`eventTime`,
 * microseconds; `firstTimestamp` is whole seconds). What only the fake can show (its request log) is
 * in `fakeOnly` scenarios.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import * as k8s1 from '@kubernetes/client-node';
import { createKubegrace, type KubegraceOptions } from '../../src/kubegrace.js';
import type { KubeClientModule } from '../../src/kubernetes/client.js';
import { kubernetes, type KubernetesOptions } from '../../src/kubernetes/index.js';
import type { Logger } from '../../src/log.js';
import {
  eventMicros,
  fakeDriver,
  realClusterDriver,
  type ClusterDriver,
  type ScenarioPod,
} from '../support/cluster-driver.js';
import { OLDEST_KUBERNETES, startFakeKubeApi, type Json } from '../support/fake-kube-api.js';

interface Captured {
  readonly logger: Logger;
  readonly lines: { level: string; msg: string; fields: Readonly<Record<string, unknown>> }[];
  warnings(): string[];
}

function capture(): Captured {
  const lines: Captured['lines'] = [];
  const at =
    (level: string) =>
    (msg: string, fields: Readonly<Record<string, unknown>> = {}) => {
      lines.push({ level, msg, fields });
    };
  return {
    logger: { info: at('info'), warn: at('warn'), error: at('error') },
    lines,
    // The integration's own warnings; the instance's other lines share the logger.
    warnings: () =>
      lines.filter((l) => l.level === 'warn' && l.fields.component === 'kubernetes').map((l) => l.msg),
  };
}

/** A kubegrace with short, fitting budgets: 0.2 + 3 + 0.5 + 0.5 + 1 = 5.2 s within 8 s. */
function makeKubegrace(overrides: Partial<KubegraceOptions> = {}) {
  const exits: number[] = [];
  const phases: { phase: string; status: string; at: number }[] = [];
  const captured = capture();
  const kg = createKubegrace({
    handleSignals: false,
    logger: captured.logger,
    exit: (code) => exits.push(code),
    managementServer: false,
    gracePeriodSeconds: 8,
    safetyMarginMs: 1000,
    unreadyTimeoutMs: 200,
    propagation: { quietPeriodMs: 400, maxMs: 3000, proxyAllowanceMs: 600 },
    drain: { timeoutMs: 500 },
    cleanupTimeoutMs: 500,
    ...overrides,
  });
  kg.on('phase', ({ phase, status }) => phases.push({ phase, status, at: Date.now() }));
  const phaseAt = (phase: string, status: 'start' | 'end'): number => {
    const found = phases.find((p) => p.phase === phase && p.status === status);
    assert.ok(found, `phase ${phase} ${status} was not seen`);
    return found.at;
  };
  return { kg, exits, phases, phaseAt, captured };
}

interface Cluster {
  readonly label: string;
  readonly client: () => Promise<KubeClientModule>;
  readonly driver: (client: KubeClientModule) => Promise<ClusterDriver>;
  /** Undefined when available; else why not. */
  readonly unavailable: string | undefined;
  /** Only the scenarios whose pods have a preStop hook (the other side of the version switch). */
  readonly preStopOnly?: boolean;
}

const nodeVersion = process.versions.node.split('.').map(Number) as [number, number, number];
const nodeAtLeast = (major: number, minor: number): boolean =>
  nodeVersion[0] > major || (nodeVersion[0] === major && nodeVersion[1] >= minor);

const clusters: Cluster[] = [
  {
    label: `fake API (Kubernetes ${OLDEST_KUBERNETES}) via @kubernetes/client-node 1.x`,
    client: async () => k8s1,
    driver: async (client) => fakeDriver(await startFakeKubeApi(), 'fake API/1.x', client),
    unavailable: undefined,
  },
  {
    label: 'fake API (Kubernetes v1.30.0) via @kubernetes/client-node 1.x',
    client: async () => k8s1,
    driver: async (client) =>
      fakeDriver(await startFakeKubeApi({ version: 'v1.30.0' }), 'fake API/1.x', client),
    unavailable: undefined,
    preStopOnly: true,
  },
  {
    label: 'fake API (Kubernetes v1.34.1) via @kubernetes/client-node 2.x',
    client: async () => await import('k8s-client-2'),
    driver: async (client) =>
      fakeDriver(await startFakeKubeApi({ version: 'v1.34.1' }), 'fake API/2.x', client),
    unavailable: nodeAtLeast(22, 19)
      ? undefined
      : `client-node 2.x needs Node >= 22.19 (its undici), this is Node ${process.versions.node}; ` +
        'CI runs it with KUBEGRACE_TEST_NODE pointing at Node 26',
  },
  {
    label: 'real cluster (KUBECONFIG)',
    client: async () => k8s1,
    driver: (client) => realClusterDriver(client),
    unavailable: process.env.KUBECONFIG
      ? undefined
      : 'KUBECONFIG is not set (set it to run these against a real cluster)',
  },
];

interface Scenario {
  readonly name: string;
  /** Needs failure switches or a request log only the fake has. */
  readonly fakeOnly?: boolean;
  /** Its pod has a preStop hook, whose handler depends on the server's version. */
  readonly preStop?: boolean;
  run(driver: ClusterDriver, client: KubeClientModule): Promise<void>;
}

function integrationOptions(
  driver: ClusterDriver,
  client: KubeClientModule,
  pod: { name: string },
): KubernetesOptions {
  return {
    kubeConfig: driver.kubeConfig(client),
    client,
    podName: pod.name,
    namespace: driver.namespace,
    env: {},
    requestTimeoutMs: 1500,
    retry: { initialMs: 100, maxMs: 1000 },
  };
}

const scenarios: Scenario[] = [
  {
    name: 'reads the own pod: identity from the API, grace period and preStop from the spec',
    preStop: true,
    async run(driver, client) {
      const pod = await driver.createPod({ graceSeconds: 8, preStopSleepSeconds: 1 });
      // The handler the chart's preStop.action auto picks: the sleep action from 1.30, exec before.
      const sleepAction = driver.serverVersion.minor >= 30;
      assert.deepEqual(Object.keys(pod.preStop ?? {}), [sleepAction ? 'sleep' : 'exec']);
      const { kg, captured } = makeKubegrace({ preStopSleepSeconds: 1 });
      const k = await kg.use(kubernetes(integrationOptions(driver, client, pod)));
      try {
        assert.equal(k.enabled, true);
        assert.equal(k.identity.uid, pod.uid, 'the UID comes from the API');
        assert.equal(k.identity.sources.uid, 'api');
        assert.equal(k.timing?.graceSeconds, 8);
        assert.deepEqual(
          k.timing?.preStop,
          sleepAction
            ? { kind: 'sleep', seconds: 1, source: 'lifecycle.preStop.sleep.seconds' }
            : {
                kind: 'exec-sleep',
                seconds: 1,
                source: 'lifecycle.preStop.exec.command',
                command: 'sleep 1',
              },
        );
        assert.deepEqual(captured.warnings(), [], 'a matching configuration warns about nothing');
      } finally {
        await k.stop();
      }
    },
  },
  {
    name: "deletion starts the shutdown (preStop still holding SIGTERM) with the kubelet's kill time as deadline",
    preStop: true,
    async run(driver, client) {
      const pod = await driver.createPod({ graceSeconds: 8, preStopSleepSeconds: 2 });
      const { kg, exits } = makeKubegrace({ preStopSleepSeconds: 2 });
      const k = await kg.use(kubernetes(integrationOptions(driver, client, pod)));
      try {
        const started = new Promise<number>((resolve) =>
          kg.on('state', ({ state }) => state === 'draining' && resolve(Date.now())),
        );
        // A deletion seen while the watch is still being set up arrives late by the set-up time.
        await waitFor(() => k.watching.pod, 'the pod watch to open');
        const trigger = new Promise<string>((resolve) =>
          kg.addParticipant({ name: 't', unready: (ctx) => resolve(ctx.trigger) }),
        );
        const { deletedAt, killAt } = await driver.deletePod(pod, 6);
        const startedAt = await started;
        assert.equal(await trigger, 'deletion');
        assert.ok(
          startedAt - deletedAt < 1000,
          `the shutdown started ${startedAt - deletedAt} ms after the delete`,
        );
        const deadline = kg.timing.deadlineAt;
        assert.ok(deadline !== undefined);
        const error = deadline + kg.settings.safetyMarginMs - killAt;
        const tolerance = 100 + driver.clockToleranceMs;
        assert.ok(
          Math.abs(error) <= tolerance,
          `deadline + margin is ${error} ms off the kill time (bar: ${tolerance} ms)`,
        );
        measurements.push(`${driver.name}: deadline + margin ${error} ms off the kubelet's kill time`);
        assert.equal(k.deletion?.graceSeconds, 6);
        const summary = await kg.shutdown();
        assert.equal(summary.trigger, 'deletion');
        assert.equal(summary.outcome, 'clean');
        assert.deepEqual(exits, [0]);
      } finally {
        await k.stop();
      }
    },
  },
  {
    name: 'SIGTERM after a preStop sleep: the deadline counts the sleep from the pod spec',
    preStop: true,
    async run(driver, client) {
      const pod = await driver.createPod({ graceSeconds: 8, preStopSleepSeconds: 2 });
      // Configured as if nobody told kubegrace about the preStop sleep: the spec read through the API fixes it.
      const { kg, captured } = makeKubegrace();
      const k = await kg.use(kubernetes(integrationOptions(driver, client, pod)));
      try {
        assert.match(captured.warnings().join('\n'), /KUBEGRACE_PRE_STOP_SLEEP_SECONDS=2/);
        const sigtermAt = Date.now();
        // As the process handler does for the kubelet's signal (handleSignals is off here).
        const done = kg.shutdown({ kind: 'signal', signal: 'SIGTERM' });
        await delay(20);
        const deadline = kg.timing.deadlineAt as number;
        const expected = sigtermAt - 2000 + 8000 - kg.settings.safetyMarginMs;
        assert.ok(
          Math.abs(deadline - expected) <= 50,
          `deadline ${deadline - sigtermAt} ms after SIGTERM, expected ${expected - sigtermAt}`,
        );
        await done;
      } finally {
        await k.stop();
      }
    },
  },
  {
    name: 'propagation ends at the proxy allowance (+ 0.3 s) after the endpoint turned not ready, never before',
    async run(driver, client) {
      const pod = await driver.createPod({ graceSeconds: 8 });
      const slice = await driver.addEndpoints(pod);
      const { kg, phaseAt, captured } = makeKubegrace();
      const k = await kg.use(kubernetes(integrationOptions(driver, client, pod)));
      try {
        await waitFor(() => k.endpoints.some((e) => e.ready), 'the endpoint to be seen ready');
        const done = kg.shutdown('SIGTERM');
        await delay(1000);
        const removedAt = await driver.markNotReady(slice, pod);
        await done;
        const end = phaseAt('propagate', 'end');
        const allowance = kg.settings.propagation.proxyAllowanceMs;
        const tolerance = driver.clockToleranceMs;
        assert.ok(
          end >= removedAt + allowance - tolerance,
          `propagation ended ${end - removedAt} ms after the removal: node proxies get ${allowance} ms`,
        );
        assert.ok(
          end - removedAt <= allowance + 300,
          `propagation ended ${end - removedAt} ms after the removal (bar ${allowance + 300})`,
        );
        assert.deepEqual(captured.warnings(), []);
        measurements.push(
          `${driver.name}: not ready at +${removedAt - phaseAt('propagate', 'start')} ms, propagation ended ${end - removedAt} ms later`,
        );
      } finally {
        await k.stop();
      }
    },
  },
  {
    name: 'an endpoint removed early still waits out the quiet period and the proxy allowance; a removed endpoint counts as gone',
    async run(driver, client) {
      const pod = await driver.createPod({ graceSeconds: 8 });
      const slice = await driver.addEndpoints(pod);
      const { kg, phaseAt } = makeKubegrace();
      const k = await kg.use(kubernetes(integrationOptions(driver, client, pod)));
      try {
        await waitFor(() => k.endpoints.some((e) => e.ready), 'the endpoint to be seen ready');
        const done = kg.shutdown('SIGTERM');
        const removedAt = await driver.removeEndpoint(slice, pod);
        await done;
        const start = phaseAt('propagate', 'start');
        const end = phaseAt('propagate', 'end');
        const quiet = kg.settings.propagation.quietPeriodMs;
        const allowance = kg.settings.propagation.proxyAllowanceMs;
        assert.ok(
          end - start >= quiet - 5,
          `the quiet period (${quiet} ms) still applies: ended after ${end - start} ms`,
        );
        assert.ok(end >= removedAt);
        assert.ok(end - removedAt <= allowance + 300, `ended ${end - removedAt} ms after the removal`);
        assert.deepEqual(k.endpoints, [], 'the endpoint is gone from the slice');
      } finally {
        await k.stop();
      }
    },
  },
  {
    name: 'Events on the pod: started, propagation complete, drained, complete with durations',
    async run(driver, client) {
      const pod = await driver.createPod({ graceSeconds: 8 });
      const slice = await driver.addEndpoints(pod);
      const { kg } = makeKubegrace();
      const k = await kg.use(kubernetes(integrationOptions(driver, client, pod)));
      try {
        await waitFor(() => k.endpoints.some((e) => e.ready), 'the endpoint to be seen ready');
        const done = kg.shutdown('SIGTERM');
        await delay(200);
        await driver.markNotReady(slice, pod);
        await done;
        const events = await waitForEvents(driver, pod, 4);
        assertApiOrder(events, pod);
        const reasons = events.map((e) => e.reason);
        assert.deepEqual(reasons, ['ShutdownStarted', 'PropagationComplete', 'Drained', 'ShutdownComplete']);
        for (const e of events) {
          assert.equal(e.type, 'Normal');
          assert.deepEqual(
            {
              kind: (e.involvedObject as Json).kind,
              name: (e.involvedObject as Json).name,
              uid: (e.involvedObject as Json).uid,
            },
            { kind: 'Pod', name: pod.name, uid: pod.uid },
          );
          assert.equal((e.source as Json).component, 'kubegrace');
        }
        assert.match(String(events[0]?.message), /shutdown started by SIGTERM; deadline \S+ \(\d/);
        assert.match(
          String(events[1]?.message),
          /propagation wait ended after [\d.]+ s: the EndpointSlices showed the pod removed [\d.]+ s after the start, then the proxy allowance/,
        );
        assert.match(String(events[2]?.message), /drain finished in [\d.]+ s/);
        assert.match(
          String(events[3]?.message),
          /shutdown clean in [\d.]+ s \(trigger SIGTERM, exit code 0\): unready [\d.]+ s, propagate [\d.]+ s, drain [\d.]+ s, cleanup [\d.]+ s/,
        );
      } finally {
        await k.stop();
      }
    },
  },
  {
    name: 'Warning Events when the deadline cuts the shutdown short, posted before the kill time',
    async run(driver, client) {
      const pod = await driver.createPod({ graceSeconds: 8 });
      const { kg, exits } = makeKubegrace({
        drain: { timeoutMs: 3000 },
        propagation: { quietPeriodMs: 200, maxMs: 1000 },
      });
      const k = await kg.use(kubernetes(integrationOptions(driver, client, pod)));
      try {
        await waitFor(() => k.watching.pod, 'the pod watch to open');
        kg.lease('report-export'); // never released: the drain waits for it until the deadline
        // kubectl delete --grace-period=3: the kill time moves to 3 s after the delete.
        const { killAt } = await driver.deletePod(pod, 3);
        await waitFor(() => kg.state === 'stopped', 'the shutdown to end', 8000);
        assert.deepEqual(exits, [1]);
        const events = await waitForEvents(driver, pod, 6);
        assertApiOrder(events, pod);
        const byReason = new Map(events.map((e) => [e.reason, e]));
        assert.deepEqual(
          events.map((e) => `${String(e.type)} ${String(e.reason)}`),
          [
            'Normal ShutdownStarted',
            'Normal PropagationComplete',
            'Warning Drained',
            'Warning ShutdownComplete',
            'Warning ShutdownDeadlineReached',
            'Warning ConnectionsForcedClosed',
          ],
        );
        assert.match(
          String(byReason.get('Drained')?.message),
          /^drain cut short by the deadline after [\d.]+ s$/,
        );
        assert.match(
          String(byReason.get('ShutdownDeadlineReached')?.message),
          /^the shutdown reached its deadline \S+ in its drain phase, before it finished: what was still open was cut short/,
        );
        assert.match(
          String(byReason.get('ShutdownComplete')?.message),
          /^shutdown deadline in [\d.]+ s \(trigger deletion, exit code 1\)/,
        );
        for (const e of events) {
          const happenedAt = eventMicros(e) / 1000;
          assert.ok(
            happenedAt < killAt,
            `${String(e.reason)} recorded ${killAt - happenedAt} ms before the kill time`,
          );
        }
      } finally {
        await k.stop();
      }
    },
  },
  {
    name: 'Warning Events when work is closed by force at the end of its budget',
    async run(driver, client) {
      const pod = await driver.createPod({ graceSeconds: 8 });
      const { kg, exits } = makeKubegrace();
      const k = await kg.use(kubernetes(integrationOptions(driver, client, pod)));
      try {
        kg.lease('report-export'); // never released: abandoned when the drain budget (0.5 s) ends
        const summary = await kg.shutdown('SIGTERM');
        assert.equal(summary.outcome, 'forced');
        assert.deepEqual(exits, [1]);
        const events = await waitForEvents(driver, pod, 5);
        assertApiOrder(events, pod);
        assert.deepEqual(
          events.map((e) => e.reason),
          [
            'ShutdownStarted',
            'PropagationComplete',
            'Drained',
            'ShutdownComplete',
            'ConnectionsForcedClosed',
          ],
        );
        const byReason = new Map(events.map((e) => [e.reason, e]));
        assert.equal(byReason.get('ShutdownComplete')?.type, 'Warning');
        assert.match(
          String(byReason.get('ShutdownComplete')?.message),
          /^shutdown forced in [\d.]+ s \(trigger SIGTERM, exit code 1\)/,
        );
        assert.equal(byReason.get('ConnectionsForcedClosed')?.type, 'Warning');
        assert.match(
          String(byReason.get('ConnectionsForcedClosed')?.message),
          /^1 connection\(s\), stream\(s\) or lease\(s\) were closed by force/,
        );
        assert.equal(byReason.has('ShutdownDeadlineReached'), false, 'the deadline was not reached');
      } finally {
        await k.stop();
      }
    },
  },
  {
    name: 'publishNotReadyAddresses: the endpoint stays ready, the wait runs to propagation.maxMs and its Event says so',
    async run(driver, client) {
      const pod = await driver.createPod({ graceSeconds: 8 });
      const slice = await driver.addEndpoints(pod, { publishNotReadyAddresses: true });
      const { kg } = makeKubegrace();
      const k = await kg.use(kubernetes(integrationOptions(driver, client, pod)));
      try {
        await waitFor(() => k.endpoints.some((e) => e.ready), 'the endpoint to be seen ready');
        const done = kg.shutdown('SIGTERM');
        await delay(200);
        await driver.markTerminatingStillReady(slice, pod);
        await done;
        assert.equal(kg.propagation?.endedBy, 'max', 'no slice ever showed the pod not ready');
        const events = await waitForEvents(driver, pod, 4);
        const message = String(events.find((e) => e.reason === 'PropagationComplete')?.message);
        assert.match(
          message,
          /^propagation wait ended after 3\.0 s: reached propagation\.maxMs without evidence that traffic had moved away$/,
        );
        assert.doesNotMatch(message, /quiet|removed/, 'neither a silence nor the slice ended it');
      } finally {
        await k.stop();
      }
    },
  },
  {
    name: 'Events are posted one at a time, each after the previous was answered, even when the API is slow',
    fakeOnly: true,
    async run(driver, client) {
      const fake = driver.fake;
      assert.ok(fake);
      const pod = await driver.createPod({ graceSeconds: 8 });
      const { kg } = makeKubegrace();
      const k = await kg.use(kubernetes(integrationOptions(driver, client, pod)));
      try {
        await waitFor(() => k.watching.pod, 'the pod watch to open');
        // The first Event is answered slowest: posted side by side, later ones would be stored first.
        let creates = 0;
        fake.setLatency(1000, (r) => r.resource === 'events' && r.verb === 'create' && ++creates === 1);
        kg.lease('report-export'); // never released: a Warning Event follows ShutdownComplete
        await kg.shutdown('SIGTERM');
        await waitForEvents(driver, pod, 5);
      } finally {
        await k.stop();
      }
      const posts = fake.requests.filter((r) => r.resource === 'events' && r.verb === 'create');
      assert.equal(posts.length, 5);
      for (const [i, post] of posts.entries()) {
        assert.equal(post.status, 201);
        assert.deepEqual(post.warnings, [], 'every field known to the server');
        const previous = posts[i - 1];
        if (previous) {
          assert.ok(
            post.at >= (previous.answeredAt ?? Infinity),
            `Event ${i + 1} sent ${(previous.answeredAt ?? 0) - post.at} ms before Event ${i} was answered`,
          );
        }
      }
      // Stored in the order they happened: the creation order and the eventTime order agree.
      const byCreation = fake
        .list('events', driver.namespace)
        .sort(
          (a, b) =>
            Number((a.metadata as Json).resourceVersion) - Number((b.metadata as Json).resourceVersion),
        )
        .map((e) => e.reason);
      assert.deepEqual(
        byCreation,
        (await driver.events(pod)).map((e) => e.reason),
      );
      assert.deepEqual(byCreation, [
        'ShutdownStarted',
        'PropagationComplete',
        'Drained',
        'ShutdownComplete',
        'ConnectionsForcedClosed',
      ]);
    },
  },
];

/**
 * What the API keeps of kubegrace's Events, checked as a reader (kubectl) sees them: whole seconds in
 * first/lastTimestamp, the same second in eventTime with microseconds, the fields core/v1 requires
 * with eventTime, eventTime strictly increasing in the order given, and names that sort the same way
 * (kubectl describe's order when the seconds tie).
 */
function assertApiOrder(events: readonly Json[], pod: ScenarioPod): void {
  for (const e of events) {
    const first = Date.parse(String(e.firstTimestamp));
    assert.equal(first % 1000, 0, `firstTimestamp ${String(e.firstTimestamp)} is whole seconds`);
    assert.equal(Date.parse(String(e.lastTimestamp)), first);
    assert.equal(Math.floor(eventMicros(e) / 1_000_000) * 1000, first, 'eventTime is in that second');
    assert.equal(e.reportingComponent, 'kubegrace');
    assert.equal(e.reportingInstance, pod.name);
    assert.equal(typeof e.action, 'string');
  }
  const times = events.map(eventMicros);
  for (let i = 1; i < times.length; i++) {
    assert.ok((times[i] ?? 0) > (times[i - 1] ?? 0), `eventTime of Event ${i + 1} after Event ${i}`);
  }
  const names = events.map((e) => String((e.metadata as Json).name));
  assert.deepEqual([...names].sort(), names, 'names sort in the order the Events happened');
}

/** Filled by the propagation scenario; printed at the end as the measurement against the bar. */
const measurements: string[] = [];

async function waitFor(predicate: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(10);
  }
}

async function waitForEvents(
  driver: ClusterDriver,
  pod: Parameters<ClusterDriver['events']>[0],
  count: number,
): Promise<Json[]> {
  const until = Date.now() + 5000;
  for (;;) {
    const events = await driver.events(pod);
    if (events.length >= count || Date.now() > until) return events;
    await delay(50);
  }
}

for (const cluster of clusters) {
  const runnable = scenarios.filter(
    (s) => (cluster.label.startsWith('fake') || !s.fakeOnly) && (!cluster.preStopOnly || s.preStop),
  );
  const skipped = cluster.unavailable
    ? `${cluster.unavailable}; skipped ${runnable.length} scenarios: ${runnable.map((s) => s.name).join(' | ')}`
    : undefined;
  if (skipped) process.stderr.write(`\n*** SKIPPED ${cluster.label}: ${skipped}\n\n`);
  describe(cluster.label, { skip: skipped ?? false }, () => {
    let client: KubeClientModule;
    before(async () => {
      client = await cluster.client();
    });
    for (const scenario of runnable) {
      it(scenario.name, async () => {
        const driver = await cluster.driver(client);
        try {
          await scenario.run(driver, client);
        } finally {
          await driver.cleanup();
        }
      });
    }
  });
}

after(() => {
  if (measurements.length > 0) process.stderr.write(`measured: ${measurements.join('; ')}\n`);
});
