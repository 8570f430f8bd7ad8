/**
 * The traffic shapes of bench/rolling, each once against a real kubegrace service (bench/services/
 * kubegrace.ts, on kubegrace's defaults) behind the demo's endpoint table: across the shutdown, no
 * client may see a failed request. Each shape is set up so that a silence of more than a second
 * comes while the endpoint is still listed, followed by a new client routed to the pod: a wait that
 * ends after a fixed second of quiet closes the listener before that client comes and refuses it.
 *
 * Where new clients come (sparse, random, nodes, in-cluster), the arrival times and routing draws are
 * seeded, and the seed is chosen below from the schedule itself, so every run has the same gap and
 * the same late client. The pod saw seconds of the shape's traffic before its SIGTERM (its rate
 * history), and the gaps after the chosen one stay short, so a wait that judges silence against the
 * pod's arrival rate has the evidence it needs.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startFakeControlPlane, type FakeControlPlane } from '../../bench/control-plane.js';
import { connectionDraws, type EndpointChoice } from '../../src/cli/demo/endpoint-table.js';
import { arrivalOffsets, type ArrivalProcess, type RequestRecord } from '../../src/cli/demo/load.js';
import { killAllPods } from '../../src/cli/demo/pod.js';
import { runScenario, type ScenarioOptions, type ScenarioRun } from '../../src/cli/demo/run.js';

const SERVICE = fileURLToPath(new URL('../../bench/services/kubegrace.ts', import.meta.url));
/** Load before the SIGTERM: the pod's rate history. */
const WARMUP_MS = 5000;
/**
 * No new client reaches the old pod for this long after its SIGTERM: today's rule leaves within it
 * (a second after the pooled clients' reconnects, which take a few hundred ms).
 */
const GAP_MS = 2200;
/** A late client lands at least this long before the endpoint leaves (timer slack on a busy machine). */
const MARGIN_MS = 400;
/** After the gap, new clients keep reaching the old pod at least this often until it leaves the table. */
const MAX_LATER_GAP_MS = 2500;

after(killAllPods);

const base = {
  service: 'kubegrace',
  script: SERVICE,
  env: { BENCH_PROTOCOL: 'http1' },
  replicas: 1,
  requestMs: 50,
  longShare: 0,
  longMs: 3000,
  concurrency: 4,
  graceSeconds: 30,
  warmupMs: WARMUP_MS,
  tailMs: 300,
  startReplacementsEarly: true,
} as const satisfies Partial<ScenarioOptions>;

interface NewClientShape {
  readonly newConnectionsPerSecond: number;
  readonly arrivals: ArrivalProcess;
  readonly endpointChoice: EndpointChoice;
  readonly nodes: number;
  readonly lagMs: number;
}

/**
 * Where each new client after the SIGTERM goes, in ms after it: `old` surely to the old pod, `maybe`
 * to the old pod unless a node's removal timer ran a little early or late, `other` elsewhere. Round
 * robin's turn also moves with the pooled clients' reconnects, so with it every client is `maybe`.
 */
function newClientsAfterSigterm(
  shape: NewClientShape,
  seed: number,
): { readonly at: number; readonly to: 'old' | 'maybe' | 'other' }[] {
  const offsets = arrivalOffsets(shape.newConnectionsPerSecond, shape.arrivals, seed);
  const draws = connectionDraws({ choice: shape.endpointChoice, nodes: shape.nodes, seed }, 'new-client');
  const removedAt = (node: number): number => (shape.lagMs * (node + 1)) / shape.nodes;
  const out: { at: number; to: 'old' | 'maybe' | 'other' }[] = [];
  for (const offset of offsets) {
    const at = offset - WARMUP_MS;
    if (at > shape.lagMs) break;
    const { node, draw } = draws();
    if (at <= 0) continue;
    // The table lists [old, new] on a node until its removal, then [new].
    const pickedOld = draw === undefined || Math.floor(draw * 2) === 0;
    const listed = at < removedAt(node);
    const nearRemoval = Math.abs(at - removedAt(node)) < 150;
    const to =
      draw === undefined ? 'maybe' : !pickedOld ? 'other' : nearRemoval ? 'maybe' : listed ? 'old' : 'other';
    out.push({ at, to });
  }
  return out;
}

/** New clients in the warm-up: the old pod's history (it is the only endpoint until its SIGTERM). */
function clientsBeforeSigterm(shape: NewClientShape, seed: number): number {
  let n = 0;
  for (const offset of arrivalOffsets(shape.newConnectionsPerSecond, shape.arrivals, seed)) {
    if (offset > WARMUP_MS) break;
    n++;
  }
  return n;
}

/**
 * The first seed whose schedule has: a warm-up with at least 70 % of the clients the rate promises
 * (a history that does not understate the rate); no new client that may reach the old pod within `GAP_MS` of
 * the SIGTERM; then a late one surely reaching it (for round robin, two clients in a row, one of
 * which reaches it) inside `window`; later gaps at the old pod under `MAX_LATER_GAP_MS` until the
 * endpoint leaves.
 */
interface Plan {
  /** @default GAP_MS */
  readonly gapMs?: number;
  /** ms after the SIGTERM within which the late client(s) must come. */
  readonly window: readonly [number, number];
  /** Late clients surely reaching the old pod in the window (random choice). @default 1 */
  readonly lateClients?: number;
}

function seedWithLateClient(shape: NewClientShape, plan: Plan): number {
  const gapMs = plan.gapMs ?? GAP_MS;
  const window = plan.window;
  const roundRobin = shape.endpointChoice === 'round-robin';
  const expected = (shape.newConnectionsPerSecond * WARMUP_MS) / 1000;
  for (let seed = 1; seed < 20_000; seed++) {
    if (clientsBeforeSigterm(shape, seed) < 0.7 * expected) continue;
    const clients = newClientsAfterSigterm(shape, seed);
    const mayReach = clients.filter((c) => c.to !== 'other');
    if (mayReach.some((c) => c.at <= gapMs)) continue;
    const first = mayReach[0];
    if (first === undefined || first.at > gapMs + 800) continue;
    const inWindow = (c: { at: number }): boolean => c.at > window[0] && c.at < window[1];
    const late = roundRobin
      ? clients.filter(inWindow).length >= 2
      : clients.filter((c) => c.to === 'old' && inWindow(c)).length >= (plan.lateClients ?? 1);
    if (!late) continue;
    const reaching = roundRobin ? clients.filter((_, i) => i % 2 === 0) : mayReach;
    const times = [...reaching.map((c) => c.at), shape.lagMs];
    const longest = Math.max(...times.slice(1).map((t, i) => t - (times[i] as number)));
    if (longest > MAX_LATER_GAP_MS * (roundRobin ? 2 : 1)) continue;
    return seed;
  }
  throw new Error('no seed gives the schedule this test needs');
}

function describeRun(run: ScenarioRun): string {
  const pods = run.result.pods.map(
    (p) =>
      `${p.pod}: ${p.arrivalsPerSecond} new conn/s before SIGTERM, exit ${p.shutdownMs} ms after it, ` +
      `endpoint gone at ${p.removedMs} ms, propagate ${p.phases.propagate ?? '?'} ms`,
  );
  return `failures ${JSON.stringify(run.result.failures)}; ${pods.join('; ')}`;
}

function assertClean(run: ScenarioRun): void {
  assert.equal(run.result.failed, 0, describeRun(run));
  for (const pod of run.result.pods) {
    assert.equal(pod.exitCode, 0, `${pod.pod} exit code; ${describeRun(run)}`);
    assert.equal(pod.killed, false);
  }
}

/** The premise held: a new client reached the old pod after the gap (whether it was served or refused). */
function assertLateClient(run: ScenarioRun, pod: string, afterMs: number): void {
  const sigtermAt = run.result.pods.find((p) => p.pod === pod)?.sigtermAt ?? 0;
  const late = run.records.filter(
    (r: RequestRecord) => r.loop === -1 && r.endpoint === pod && r.startedAt > sigtermAt + afterMs,
  );
  assert.ok(late.length > 0, `a new client reached ${pod} after ${afterMs} ms; ${describeRun(run)}`);
}

async function newClientScenario(
  shape: NewClientShape,
  plan: Plan,
  controlPlane?: FakeControlPlane,
): Promise<ScenarioRun> {
  const seed = seedWithLateClient(shape, plan);
  const run = await runScenario({
    ...base,
    ...shape,
    seed,
    ...(controlPlane === undefined ? {} : { controlPlane }),
  });
  assertLateClient(run, 'old-1', plan.gapMs ?? GAP_MS);
  return run;
}

// Two at a time: each shape waits out seconds of its traffic and, with sparse evidence, up to maxMs.
describe('traffic shapes: no failed request across a shutdown', { timeout: 240_000, concurrency: 2 }, () => {
  it(
    'pooled: keep-alive clients only, 10 % long requests; the next pod of the rollout sends its clients back through the Service',
    { timeout: 90_000 },
    async () => {
      // old-1 gets SIGTERM, its pool moves away and it goes quiet; 4 s later old-2 gets SIGTERM and its
      // clients reconnect through the Service while old-1 is still listed (until 7 s).
      const run = await runScenario({
        ...base,
        replicas: 2,
        concurrency: 32,
        longShare: 0.1,
        longMs: 2000,
        newConnectionsPerSecond: 0,
        lagMs: 7000,
        rolloutStepMs: 4000,
        seed: 1,
      });
      const old1 = run.result.pods.find((p) => p.pod === 'old-1');
      const old2 = run.result.pods.find((p) => p.pod === 'old-2');
      assert.ok(old1 && old2, describeRun(run));
      const reconnects = run.records.filter(
        (r) => r.endpoint === 'old-1' && !r.reusedSocket && r.startedAt > old2.sigtermAt,
      );
      assert.ok(reconnects.length > 0, `old-2's clients reconnected to old-1; ${describeRun(run)}`);
      assertClean(run);
    },
  );

  it('sparse: Poisson new clients (1/s) beside pooled ones, round robin', { timeout: 60_000 }, async () => {
    const shape = {
      newConnectionsPerSecond: 1,
      arrivals: 'poisson',
      endpointChoice: 'round-robin',
      nodes: 1,
      lagMs: 5000,
    } as const;
    assertClean(await newClientScenario(shape, { window: [GAP_MS, shape.lagMs - MARGIN_MS] }));
  });

  it(
    'random: iptables-style random endpoint per new connection (2 new clients/s)',
    { timeout: 60_000 },
    async () => {
      const shape = {
        newConnectionsPerSecond: 2,
        arrivals: 'clock',
        endpointChoice: 'random',
        nodes: 1,
        lagMs: 5000,
      } as const;
      assertClean(await newClientScenario(shape, { window: [GAP_MS, shape.lagMs - MARGIN_MS] }));
    },
  );

  it('nodes: three nodes with their own lags; the slowest decides', { timeout: 60_000 }, async () => {
    const shape = {
      newConnectionsPerSecond: 2,
      arrivals: 'clock',
      endpointChoice: 'random',
      nodes: 3,
      lagMs: 6000,
    } as const;
    // The late client comes after the two faster nodes dropped the endpoint: only the slowest routes it.
    assertClean(
      await newClientScenario(shape, { window: [(shape.lagMs * 2) / 3 + 200, shape.lagMs - MARGIN_MS] }),
    );
  });

  it(
    'in-cluster: the EndpointSlice turns not ready at 50 ms, node tables follow after 1, 2 and 3 s',
    { timeout: 90_000 },
    async (t) => {
      const controlPlane = await startFakeControlPlane({ graceSeconds: base.graceSeconds });
      t.after(() => controlPlane.close());
      const shape = {
        newConnectionsPerSecond: 2,
        arrivals: 'poisson',
        endpointChoice: 'random',
        nodes: 3,
        lagMs: 3000,
      } as const;
      // Node 3 drops the endpoint at 3 s: a shorter gap and two late clients leave room for slow timers.
      const run = await newClientScenario(
        shape,
        { gapMs: 1800, window: [1800, shape.lagMs - 250], lateClients: 2 },
        controlPlane,
      );
      // The pods ran the Kubernetes integration against the API.
      const old = run.result.pods.find((p) => p.pod === 'old-1');
      assert.ok(old, describeRun(run));
      assertClean(run);
      assert.ok(
        controlPlane.api.requests.some((r) => r.resource === 'endpointslices' && r.verb === 'watch'),
        'the pods watched the EndpointSlices',
      );
    },
  );
});
