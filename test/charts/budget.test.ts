/**
 * The arithmetic: over a grid of timing values, preStop modes and Kubernetes versions, the chart's
 * terminationGracePeriodSeconds always covers preStop + unready + propagation + drain + cleanup +
 * safety margin as the library itself adds them up (`shutdownBudget` in src/options.ts, fed the
 * rendered KUBEGRACE_* values through the library's own resolver), and is the smallest whole number of
 * seconds that does; KUBEGRACE_GRACE_PERIOD_SECONDS equals it; and `kubegrace check` agrees.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkBudget, defaults, resolveSettings, shutdownBudget } from '../../src/options.js';
import { check, envOf, podOf, render } from './helm.js';

interface Case {
  readonly kubeVersion: string;
  readonly preStop: {
    readonly enabled: boolean;
    readonly action: 'auto' | 'sleep' | 'exec';
    readonly sleepSeconds: number;
  };
  readonly unreadyTimeoutMs: number;
  readonly strategy: 'adaptive' | 'fixed';
  readonly delayMs: number;
  readonly maxMs: number;
  readonly drainMs: number;
  /** Passed on, never counted: the window is spent inside the drain budget. Unset: the chart's default. */
  readonly pacingWindowMs?: number;
  readonly cleanupMs: number;
  readonly marginMs: number;
  /** An explicit grace period, at least the budget (the grid's overrides always fit). */
  readonly extraGraceSeconds?: number;
}

// A small deterministic PRNG (mulberry32): the same grid on every run and every machine.
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MS = [0, 1, 250, 999, 1000, 1001, 1500, 2000, 4321, 10_000, 45_000, 120_000];
const VERSIONS = ['1.25.0', '1.29.0', '1.30.0', '1.32.0', '1.33.0', '1.34.0'];

function grid(): Case[] {
  const next = random(20_260_421);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)] as T;
  const cases: Case[] = [
    // Edges: nothing but the least margin (grace 1 s), exact seconds, one millisecond over.
    edge({ unreadyTimeoutMs: 0, maxMs: 0, drainMs: 0, cleanupMs: 0, marginMs: 750 }),
    edge({ unreadyTimeoutMs: 0, maxMs: 0, drainMs: 0, cleanupMs: 250, marginMs: 750 }),
    edge({ unreadyTimeoutMs: 0, maxMs: 0, drainMs: 0, cleanupMs: 250, marginMs: 751 }),
    edge({ unreadyTimeoutMs: 1000, maxMs: 1000, drainMs: 1000, cleanupMs: 1000, marginMs: 1000 }),
    edge({ unreadyTimeoutMs: 1000, maxMs: 1000, drainMs: 1000, cleanupMs: 1000, marginMs: 1001 }),
    // A preStop sleep with nothing after it: the API server wants the sleep shorter than the grace.
    edge({
      unreadyTimeoutMs: 0,
      maxMs: 0,
      drainMs: 0,
      cleanupMs: 0,
      marginMs: 750,
      kubeVersion: '1.30.0',
      preStop: { enabled: true, action: 'sleep', sleepSeconds: 9 },
    }),
    // Zero-second sleep from 1.33; 'auto' falls back to exec before that.
    edge({ kubeVersion: '1.33.0', preStop: { enabled: true, action: 'sleep', sleepSeconds: 0 } }),
    edge({ kubeVersion: '1.32.0', preStop: { enabled: true, action: 'auto', sleepSeconds: 0 } }),
    // The cloud load balancer: an hour of drain.
    edge({ strategy: 'fixed', delayMs: 300_000, drainMs: 3_600_000, cleanupMs: 60_000, marginMs: 5000 }),
    // The library's defaults.
    edge({}),
    // docs/drain.md's sizing for 2,500 connections a pod, and a window longer than the library would
    // use (it caps the window at half the drain budget left): the grace period stays the same sum.
    edge({ drainMs: 40_000, pacingWindowMs: 20_000 }),
    edge({ pacingWindowMs: 60_000 }),
  ];
  for (let i = 0; i < 40; i++) {
    const kubeVersion = pick(VERSIONS);
    const mode = pick(['none', 'auto', 'sleep', 'exec'] as const);
    const sleepSeconds = pick([1, 2, 5, 7, 30, 90]);
    cases.push({
      kubeVersion: mode === 'sleep' && Number(kubeVersion.split('.')[1]) < 30 ? '1.30.0' : kubeVersion,
      preStop: { enabled: mode !== 'none', action: mode === 'none' ? 'auto' : mode, sleepSeconds },
      unreadyTimeoutMs: pick(MS),
      strategy: pick(['adaptive', 'fixed'] as const),
      delayMs: pick(MS),
      maxMs: pick(MS),
      drainMs: pick(MS),
      cleanupMs: pick(MS),
      // The library's least margin is 750 ms.
      marginMs: Math.max(750, pick(MS)),
      // Not drawn from the PRNG, so the grid's other values stay those of earlier runs.
      pacingWindowMs: MS[i % MS.length] as number,
      ...(next() < 0.2 ? { extraGraceSeconds: pick([0, 1, 17]) } : {}),
    });
  }
  return cases;
}

function edge(overrides: Partial<Case>): Case {
  return {
    kubeVersion: '1.31.0',
    preStop: { enabled: false, action: 'auto', sleepSeconds: 5 },
    unreadyTimeoutMs: defaults.unreadyTimeoutMs,
    strategy: 'adaptive',
    delayMs: defaults.propagation.delayMs,
    maxMs: defaults.propagation.maxMs,
    drainMs: defaults.drain.timeoutMs,
    cleanupMs: defaults.cleanupTimeoutMs,
    marginMs: defaults.safetyMarginMs,
    ...overrides,
  };
}

const minor = (version: string): number => Number(version.split('.')[1]);

/** What the preStop hook must be on this version: the sleep action, the exec fallback, or none. */
function expectedAction(c: Case): 'none' | 'sleep' | 'exec' {
  if (!c.preStop.enabled) return 'none';
  if (c.preStop.action === 'exec') return 'exec';
  if (c.preStop.action === 'sleep') return 'sleep';
  const sleepOk = minor(c.kubeVersion) >= 30 && (c.preStop.sleepSeconds > 0 || minor(c.kubeVersion) >= 33);
  return sleepOk ? 'sleep' : 'exec';
}

/** The budget from the case's inputs alone, independently of the chart. */
function expectedTotalMs(c: Case): number {
  const sleepMs = expectedAction(c) === 'sleep' ? c.preStop.sleepSeconds * 1000 : 0;
  const propagationMs = c.strategy === 'fixed' ? c.delayMs : c.maxMs;
  return sleepMs + c.unreadyTimeoutMs + propagationMs + c.drainMs + c.cleanupMs + c.marginMs;
}

function label(c: Case): string {
  const preStop = c.preStop.enabled ? `${c.preStop.action} ${c.preStop.sleepSeconds}s` : 'none';
  const grace = c.extraGraceSeconds === undefined ? '' : ` grace=budget+${c.extraGraceSeconds}s`;
  const pacing = c.pacingWindowMs === undefined ? '' : ` (pacing ${c.pacingWindowMs})`;
  return (
    `k8s ${c.kubeVersion}, preStop ${preStop}, unready ${c.unreadyTimeoutMs}, ${c.strategy} ` +
    `${c.strategy === 'fixed' ? c.delayMs : c.maxMs}, drain ${c.drainMs}${pacing}, cleanup ${c.cleanupMs}, margin ${c.marginMs}${grace}`
  );
}

describe("charts/kubegrace: the defaults are the library's", () => {
  it('renders the timing of src/options.ts defaults, 28 s', async () => {
    const { spec, container } = podOf(await render({ showOnly: 'templates/deployment.yaml' }));
    const settings = resolveSettings({}, envOf(container));
    const keys = [
      'unreadyTimeoutMs',
      'propagation',
      'drain',
      'cleanupTimeoutMs',
      'safetyMarginMs',
      'budgetCheck',
      'probes',
    ] as const;
    for (const key of keys) assert.deepEqual(settings[key], defaults[key], key);
    assert.equal(settings.preStopSleepSeconds, 0);
    // Spelled out in the pod spec, not left to the library's fallback.
    assert.equal(envOf(container).KUBEGRACE_DRAIN_PACING_WINDOW_MS, String(defaults.drain.pacingWindowMs));
    assert.equal(spec.terminationGracePeriodSeconds, shutdownBudget(defaults).totalMs / 1000);
    assert.equal(spec.terminationGracePeriodSeconds, 28);
  });
});

describe('charts/kubegrace: the computed grace period over a grid', () => {
  const cases = grid();
  for (const c of cases) {
    it(label(c), async () => {
      const totalMs = expectedTotalMs(c);
      const action = expectedAction(c);
      const minimal = Math.max(
        1,
        Math.ceil(totalMs / 1000),
        action === 'sleep' ? c.preStop.sleepSeconds + 1 : 0,
      );
      const kubegrace: Record<string, unknown> = {
        preStop: c.preStop,
        unreadyTimeoutMs: c.unreadyTimeoutMs,
        propagation: { strategy: c.strategy, delayMs: c.delayMs, maxMs: c.maxMs, minMs: 0 },
        drain: {
          timeoutMs: c.drainMs,
          ...(c.pacingWindowMs === undefined ? {} : { pacingWindowMs: c.pacingWindowMs }),
        },
        cleanupTimeoutMs: c.cleanupMs,
        safetyMarginMs: c.marginMs,
        ...(c.extraGraceSeconds === undefined
          ? {}
          : { terminationGracePeriodSeconds: minimal + c.extraGraceSeconds }),
      };
      const rendered = await render({
        set: { kubegrace },
        kubeVersion: c.kubeVersion,
        showOnly: 'templates/deployment.yaml',
      });
      const { spec, container } = podOf(rendered);
      const grace = spec.terminationGracePeriodSeconds;
      assert.equal(typeof grace, 'number');

      // The library, fed what the pod gets, finds the same budget and accepts the grace period.
      const env = envOf(container);
      assert.equal(env.KUBEGRACE_GRACE_PERIOD_SECONDS, String(grace));
      const settings = resolveSettings({}, env);
      const budget = shutdownBudget(settings);
      assert.equal(budget.totalMs, totalMs, 'the KUBEGRACE_* values carry the inputs');
      assert.equal(settings.drain.pacingWindowMs, c.pacingWindowMs ?? defaults.drain.pacingWindowMs);
      assert.equal(budget.graceMs, (grace as number) * 1000);
      assert.ok(budget.totalMs <= budget.graceMs, `budget ${budget.totalMs} ms > grace ${grace} s`);
      assert.doesNotThrow(() => checkBudget(settings));
      assert.equal(grace, minimal + (c.extraGraceSeconds ?? 0), 'the smallest grace period that fits');

      // The hook matches the version, and the library knows the sleep it spends.
      const preStop = container.lifecycle?.preStop;
      if (action === 'sleep') assert.deepEqual(preStop, { sleep: { seconds: c.preStop.sleepSeconds } });
      else if (action === 'exec') assert.deepEqual(Object.keys(preStop ?? {}), ['exec']);
      else assert.equal(preStop, undefined);
      assert.equal(settings.preStopSleepSeconds, action === 'sleep' ? c.preStop.sleepSeconds : 0);

      // And kubegrace check, reading the manifest as a reviewer's CI would, agrees.
      const result = await check(rendered.text);
      assert.equal(result.errors, 0, JSON.stringify(result.containers[0]?.findings));
      assert.equal(result.containers[0]?.timing.totalMs, totalMs);
      assert.ok((result.containers[0]?.timing.spareMs ?? -1) >= 0);
    });
  }
});
