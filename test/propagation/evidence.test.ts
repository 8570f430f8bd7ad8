import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  endAfterSilence,
  poisson,
  shapes,
  simulate as simulateShape,
  waitDefaults,
} from '../../bench/loads/propagation-shapes.js';
import { seededRandom } from '../../src/cli/demo/load.js';
import {
  decide,
  MISS_PROBABILITY,
  requiredSilence,
  type ConfirmationState,
  type DecisionInput,
} from '../../src/propagation/evidence.js';

/** Seeded, so a failing simulation can be replayed. */
const random = seededRandom;

const base = waitDefaults;

/** Walks the decision from the start of the wait as the participant does; returns when and how it ended. */
function run(all: readonly number[], input: Partial<DecisionInput> = {}): { endAt: number; ended: string } {
  let now = input.waitStart ?? base.waitStart;
  for (let i = 0; i < 10_000; i++) {
    const arrivals = all.filter((t) => t <= now);
    const d = decide({ ...base, ...input, now, arrivals });
    if (d.done) return { endAt: now, ended: d.ended };
    now = d.wakeAt;
  }
  throw new Error('the decision never ended');
}

const ctx = (observedFrom: number) => ({ observedFrom, quietPeriodMs: 1000, horizonMs: 10_000, idle: false });

describe('requiredSilence', () => {
  const rnd = random(7);

  it('steady traffic of 20 new connections/s over a minute needs no more than the quiet period', () => {
    const need = requiredSilence(poisson(rnd, 20, -60_000, 0), ctx(-60_000));
    assert.equal(need.requiredMs, 1000);
    assert.equal(need.basis, 'quiet-period');
    assert.ok(Math.abs(need.ratePerSecond - 20) < 2, `rate ${need.ratePerSecond}`);
  });

  it('sparse traffic (0.5/s) needs a silence sized from the rate, well above 1 s', () => {
    const need = requiredSilence(poisson(rnd, 0.5, -60_000, 0), ctx(-60_000));
    const atTrueRate = Math.log(1 / MISS_PROBABILITY) / 0.5;
    assert.ok(need.requiredMs / 1000 > atTrueRate * 0.8, `required ${need.requiredMs} ms`);
    assert.equal(need.basis, 'rate');
  });

  it('a short history asks for a longer silence than a long one at the same rate', () => {
    const long = requiredSilence(poisson(random(1), 7, -60_000, 0), ctx(-60_000));
    const short = requiredSilence(poisson(random(1), 7, -2000, 0), ctx(-2000));
    assert.ok(short.requiredMs > long.requiredMs, `short ${short.requiredMs} vs long ${long.requiredMs}`);
  });

  it('bursts (8 connections every 3 s) need a silence longer than the gap between bursts', () => {
    const arrivals: number[] = [];
    for (let t = -60_000; t < 0; t += 3000) for (let k = 0; k < 8; k++) arrivals.push(t + k * 5);
    const need = requiredSilence(arrivals, ctx(-60_000));
    assert.ok(need.requiredMs >= 2965, `required ${need.requiredMs} ms`);
  });

  it('steady traffic with one long pause: twice the pause, not the rate, sets the silence', () => {
    // 20/s for a minute, except that nothing came for 4 s half-way: the rate asks for about the quiet
    // period, the pause for twice itself.
    const arrivals = [...poisson(random(11), 20, -60_000, -34_000), ...poisson(random(12), 20, -30_000, 0)];
    const need = requiredSilence(arrivals, ctx(-60_000));
    assert.ok(need.longestGapMs >= 4000, `longest gap ${need.longestGapMs} ms`);
    assert.equal(need.basis, 'gap');
    assert.equal(need.requiredMs, 2 * need.longestGapMs);
  });

  it('no traffic: endless unless the pod is idle, then the quiet period', () => {
    assert.equal(requiredSilence([], ctx(-60_000)).requiredMs, Infinity);
    assert.equal(requiredSilence([-500], ctx(-60_000)).requiredMs, Infinity, 'one arrival is no rate');
    const idle = requiredSilence([], { ...ctx(-60_000), idle: true });
    assert.equal(idle.requiredMs, 1000);
    assert.equal(idle.basis, 'idle');
  });
});

describe('decide', () => {
  it('without a confirmation: ends the required silence after the last new connection', () => {
    // Still routed for 2.2 s into the wait, then no more connections.
    const arrivals = poisson(random(3), 20, -60_000, 2200);
    const { endAt, ended } = run(arrivals);
    assert.equal(ended, 'quiet');
    assert.equal(endAt, (arrivals.at(-1) ?? 0) + 1000);
  });

  it('a pending confirmation holds the wait to maxMs, and the end says so', () => {
    const arrivals = poisson(random(4), 20, -60_000, 0);
    const { endAt, ended } = run(arrivals, { confirmation: { kind: 'pending' } });
    assert.equal(ended, 'max');
    assert.equal(endAt, 10_000);
  });

  it('confirmed: the proxy allowance after the confirmation, counted from it', () => {
    const arrivals = poisson(random(5), 20, -60_000, 100);
    const confirmation: ConfirmationState = { kind: 'confirmed', at: 50 };
    const { endAt, ended } = run(arrivals, { confirmation });
    assert.equal(ended, 'confirmed');
    assert.equal(endAt, 3050);
  });

  it('confirmed, but new connections keep coming (a slow router): the quiet after the last one decides', () => {
    const arrivals = poisson(random(6), 20, -60_000, 3800);
    const { endAt, ended } = run(arrivals, { confirmation: { kind: 'confirmed', at: 50 } });
    assert.equal(ended, 'quiet');
    // The silence the rate asks for (20/s: about the quiet period, or twice the longest gap seen),
    // capped at the allowance, after the last new connection.
    const need = requiredSilence(arrivals, ctx(-60_000)).requiredMs;
    assert.ok(need >= 1000 && need < 3000, `required ${need} ms`);
    assert.equal(endAt, (arrivals.at(-1) ?? 0) + need);
  });

  it('confirmed with pooled-only clients (no rate): the allowance ends it, not maxMs', () => {
    const { endAt, ended } = run([], { confirmation: { kind: 'confirmed', at: 200 } });
    assert.equal(ended, 'confirmed');
    assert.equal(endAt, 3200);
  });

  it('confirmed: the need it reports is the silence it applied — capped at the allowance, never under the quiet period', () => {
    // Sparse traffic (0.5/s) asks for a silence far above the 3 s allowance; once confirmed, the
    // allowance is what the wait counts, and the need says so rather than citing the uncapped one.
    const sparse = poisson(random(13), 0.5, -60_000, 0);
    const uncapped = requiredSilence(sparse, ctx(-60_000));
    assert.ok(uncapped.requiredMs > 3000, `uncapped ${uncapped.requiredMs} ms`);
    const at = { ...base, now: 100, arrivals: sparse, confirmation: { kind: 'confirmed', at: 50 } } as const;
    const capped = decide(at).need;
    assert.equal(capped.requiredMs, 3000);
    assert.equal(capped.basis, 'proxy-allowance');
    assert.equal(capped.ratePerSecond, uncapped.ratePerSecond, 'the rate is still the measured one');
    assert.deepEqual(decide({ ...at, now: 4000 }), { done: true, ended: 'confirmed', need: capped });
    // An allowance under the quiet period: the quiet period is the floor, and the basis.
    const short = decide({ ...at, proxyAllowanceMs: 500 }).need;
    assert.equal(short.requiredMs, 1000);
    assert.equal(short.basis, 'quiet-period');
    // An idle pod stays idle whatever the allowance: the quiet period it needs is within the cap.
    const idle = { ...at, arrivals: [], idle: true };
    assert.equal(decide({ ...idle, proxyAllowanceMs: 500 }).need.basis, 'idle');
    assert.equal(decide(idle).need.basis, 'idle');
    // Pooled-only clients (no rate at all): the allowance, not "no traffic".
    assert.equal(decide({ ...at, arrivals: [] }).need.basis, 'proxy-allowance');
    // A need under the allowance is kept as measured.
    const steady = poisson(random(14), 20, -60_000, 0);
    assert.deepEqual(decide({ ...at, arrivals: steady }).need, requiredSilence(steady, ctx(-60_000)));
    // Without a confirmation nothing is capped.
    assert.equal(decide({ ...at, confirmation: { kind: 'none' } }).need.requiredMs, uncapped.requiredMs);
  });

  it('pooled-only clients without a confirmation: nothing to learn from silence, so maxMs', () => {
    // Reconnects after Connection: close, in a short burst at the start of the wait.
    const { endAt, ended } = run([10, 12, 15, 60, 62]);
    assert.equal(ended, 'max');
    assert.equal(endAt, 10_000);
  });

  it('minMs holds a wait that would end sooner, and says so', () => {
    const arrivals = poisson(random(8), 20, -60_000, 0);
    const { endAt, ended } = run(arrivals, { minMs: 2500 });
    assert.equal(ended, 'min');
    assert.equal(endAt, 2500);
  });
});

/**
 * The rule's promise, checked by simulation: routed at rate λ until a removal R after the start of the
 * wait, then no more connections. A run loses a request when a new connection arrives after the wait
 * ended and before R (the listener is closed while a router still sends traffic).
 */
describe('the rule under simulated traffic', () => {
  function simulate(
    label: string,
    arrivalsOf: (rnd: () => number, from: number, to: number) => number[],
    runs: number,
    seed: number,
    endOf: (arrivals: readonly number[]) => number = (arrivals) => run(arrivals).endAt,
  ): { lost: number; runs: number; medianOverRemovalMs: number } {
    const rnd = random(seed);
    let lost = 0;
    const over: number[] = [];
    for (let i = 0; i < runs; i++) {
      const removal = 500 + rnd() * 7500;
      const routed = arrivalsOf(rnd, -60_000, removal);
      const endAt = endOf(routed);
      if (routed.some((t) => t > endAt && t <= removal)) lost++;
      over.push(endAt - removal);
    }
    over.sort((a, b) => a - b);
    const result = { lost, runs, medianOverRemovalMs: over[Math.floor(runs / 2)] ?? 0 };
    return Object.assign(result, { label });
  }

  it('control: the former rule (1 s without a new connection) loses requests in this simulation', () => {
    const formerRule = (arrivals: readonly number[]): number => {
      // The first gap of 1 s after the start of the wait.
      let quietFrom = 0;
      for (const t of arrivals) {
        if (t <= quietFrom) continue;
        if (t - quietFrom >= 1000) break;
        quietFrom = t;
      }
      return quietFrom + 1000;
    };
    const r = simulate('former', (rnd, from, to) => poisson(rnd, 1, from, to), 400, 1, formerRule);
    assert.ok(r.lost / r.runs > 0.2, `the former rule lost in only ${r.lost} of ${r.runs} runs`);
  });

  for (const rate of [0.3, 1, 3, 10, 30]) {
    it(`Poisson ${rate}/s: a request is lost in at most 1 % of rollouts`, () => {
      const r = simulate(
        `poisson ${rate}`,
        (rnd, from, to) => poisson(rnd, rate, from, to),
        400,
        rate * 1000,
      );
      assert.ok(r.lost / r.runs <= 0.01, `lost in ${r.lost} of ${r.runs} runs`);
    });
  }

  it('bursty clients (bursts of 1–10 connections at 0.5 bursts/s): a request is lost in at most 1 %', () => {
    const r = simulate(
      'bursts',
      (rnd, from, to) =>
        poisson(rnd, 0.5, from, to).flatMap((t) => {
          const n = 1 + Math.floor(rnd() * 10);
          return Array.from({ length: n }, (_, k) => t + k * 3).filter((x) => x < to);
        }),
      400,
      99,
    );
    assert.ok(r.lost / r.runs <= 0.01, `lost in ${r.lost} of ${r.runs} runs`);
  });

  it("a rollout that halves the pod's share at SIGTERM (the surge pod joined): lost in at most 1 %", () => {
    for (const rate of [3, 5, 10, 13]) {
      const r = simulate(
        `surge ${rate}`,
        (rnd, from, to) => [...poisson(rnd, rate, from, 0), ...poisson(rnd, rate / 2, 0, to)],
        300,
        rate * 7,
      );
      assert.ok(r.lost / r.runs <= 0.01, `${rate}/s halved: lost in ${r.lost} of ${r.runs} runs`);
    }
  });

  /** As `simulate`, with the shutdown at 0 and a history of `historyMs` before it. */
  function simulateFromShutdown(
    arrivalsOf: (rnd: () => number, removal: number) => number[],
    historyMs: number,
    runs: number,
    seed: number,
  ): { lost: number; medianOverRemovalMs: number } {
    const rnd = random(seed);
    let lost = 0;
    const over: number[] = [];
    for (let i = 0; i < runs; i++) {
      const removal = 500 + rnd() * 7500;
      const routed = arrivalsOf(rnd, removal);
      const { endAt } = run(routed, { observedFrom: -historyMs, shutdownAt: 0 });
      if (routed.some((t) => t > endAt && t <= removal)) lost++;
      over.push(endAt - removal);
    }
    over.sort((a, b) => a - b);
    return { lost, medianOverRemovalMs: over[Math.floor(runs / 2)] ?? 0 };
  }

  it('pooled clients sent back by `Connection: close` are evidence: 10/s before, 5× after SIGTERM', () => {
    // Every HTTP/1 response of the shutdown closes its connection, so each pooled client comes back
    // through the Service: the pod sees more new connections while routed, not fewer.
    for (const historyMs of [1000, 60_000]) {
      const r = simulateFromShutdown(
        (rnd, removal) => [...poisson(rnd, 10, -historyMs, 0), ...poisson(rnd, 50, 0, removal)],
        historyMs,
        300,
        historyMs + 3,
      );
      assert.ok(r.lost / 300 <= 0.01, `history ${historyMs} ms: lost in ${r.lost} of 300 runs`);
      // Measured since the shutdown, 50/s asks for no more than the quiet period (1 s); taken from
      // the window at half (5/s) it would ask for about 2.3 s.
      assert.ok(r.medianOverRemovalMs <= 1100, `history ${historyMs} ms: median ${r.medianOverRemovalMs} ms`);
    }
  });

  it('a clump of reconnects at SIGTERM is not a rate: 16 at once, then 0.5–1/s, lost in at most 1 %', () => {
    for (const rate of [0.5, 1]) {
      for (const historyMs of [5000, 60_000]) {
        const r = simulateFromShutdown(
          (rnd, removal) => [
            ...poisson(rnd, rate, -historyMs, 0),
            ...Array.from({ length: 16 }, () => rnd() * 50).sort((a, b) => a - b),
            ...poisson(rnd, rate, 50, removal),
          ],
          historyMs,
          400,
          rate * 10 + historyMs,
        );
        assert.ok(r.lost / 400 <= 0.01, `${rate}/s, history ${historyMs} ms: lost in ${r.lost} of 400 runs`);
      }
    }
  });

  it('a periodic client every 2.5 s: never lost', () => {
    const r = simulate(
      'periodic',
      (rnd, from, to) => {
        const phase = rnd() * 2500;
        const out: number[] = [];
        for (let t = from + phase; t < to; t += 2500) out.push(t);
        return out;
      },
      200,
      5,
    );
    assert.equal(r.lost, 0, `lost in ${r.lost} of ${r.runs} runs`);
  });

  it('at 30/s the wait ends within about the quiet period of the removal', () => {
    const r = simulate('fast', (rnd, from, to) => poisson(rnd, 30, from, to), 200, 11);
    assert.ok(r.medianOverRemovalMs <= 1200, `median ${r.medianOverRemovalMs} ms after the removal`);
  });

  // Shapes an adversarial read found the former rule losing in (it counted connections one by one
  // over the whole window, and a silence had only to outlast the longest gap seen once). With these
  // 600 seeded runs the former rule lost in 21 (cron), 38 (clumps), 1 (clump at SIGTERM: 0.6 % in
  // 4,000), 25 (storm), 10 (a storm of 1,000), 19 (Pareto) and 9 (lognormal); this one in 0, 0, 0, 0,
  // 4, 5 and 1. The bound is 1 % (6 of 600); 9 for Pareto, whose share is 1.0 % in 4,000 runs (95 %
  // bound 1.3 %, `npm run bench:propagation`).
  for (const [name, most] of [
    ['cron', 6],
    ['clumps', 6],
    ['clump-at-sigterm', 6],
    ['storm', 6],
    ['storm-1000', 6],
    ['pareto', 9],
    ['lognormal', 6],
    ['young-steady', 6],
    ['young-poisson', 6],
    ['young-clump', 6],
    ['on-off', 6],
    // Sizing a clock's silence by its gaps (tried and withdrawn, bench/RESULTS.md §1.4) lost here in
    // 72 of these 600 (12.8 % of 2,000): a random choice after the surge makes the gaps multiples of
    // the tick.
    ['clock-random-surge', 6],
    ['clock-5', 0],
    ['bench-steady-twin', 6],
  ] as const) {
    const shape = shapes[name];
    it(`${name} (${shape?.about ?? '?'}): lost in at most ${most} of 600 rollouts`, () => {
      assert.ok(shape, name);
      const r = simulateShape(shape, 600, 4242);
      assert.ok(r.lost <= most, `lost in ${r.lost} of ${r.runs} runs`);
    });
  }

  // Bursty traffic on a pod only seconds old is a documented limit, above the 1 % bound
  // (docs/lifecycle.md: 2.9 % and 6.5 % in 4,000 rollouts). These hold it where it is: with these 600
  // seeded runs the rule loses in 15 (on-off-young) and 37 (pareto-young). Measuring a young pod's
  // rate from its first new connection, tried and withdrawn (7b773b0), loses in 26 and 38 of these
  // (rebuilt in the simulation by an outside reader): the on-off-young guard fails on it; the
  // pareto-young one, whose shape is noisier, does not.
  // A clock masking a sparse router slower than its own is one too (docs/lifecycle.md): with these
  // runs a 5/s clock loses in 45 and a 10/s clock, whose every 100 ms bin is full, in 158. Telling
  // regular traffic from Poisson traffic, tried and withdrawn (bench/RESULTS.md §1.4), took the 5/s
  // clock to 173.
  for (const [name, most] of [
    ['on-off-young', 22],
    ['pareto-young', 45],
    ['clock-masks-router', 60],
    ['clock10-masks-router', 175],
  ] as const) {
    const shape = shapes[name];
    it(`${name} (${shape?.about ?? '?'}), a documented limit: lost in at most ${most} of 600 rollouts`, () => {
      assert.ok(shape, name);
      const r = simulateShape(shape, 600, 4242);
      assert.ok(r.lost <= most, `lost in ${r.lost} of ${r.runs} runs`);
    });
  }
});

describe('the busy-pod exit bar against a pod with the same history (bench/RESULTS.md §1.4)', () => {
  it('endAfterSilence: the wait ends once the silence has passed since SIGTERM or the last new connection', () => {
    assert.equal(endAfterSilence([], 1000), 1000);
    // History before SIGTERM does not count; connections that come while the silence runs restart it.
    assert.equal(endAfterSilence([-500, 200, 900, 1700], 1000), 2700);
    // A gap of the silence exactly ends the wait at its end; what comes at that moment is after it.
    assert.equal(endAfterSilence([300, 1300, 1400], 1000), 1300);
    assert.equal(endAfterSilence([300, 1299, 1400], 1000), 2400);
  });

  it('no fixed silence lets every bench-steady pod meet it and loses in at most 1 % of bench-steady-twin rollouts', () => {
    // The two shapes are alike until SIGTERM; after it the bench's round robin keeps a clock, the
    // twin's random choice thins it. A silence short enough for the bench's pods to leave within
    // R + 1.2 s is one the twin's thinned clock outlasts while still routed.
    const steady = shapes['bench-steady'];
    const twin = shapes['bench-steady-twin'];
    assert.ok(steady && twin);
    const rows: string[] = [];
    for (let silenceMs = 800; silenceMs <= 2400; silenceMs += 100) {
      const end = (arrivals: readonly number[]) => endAfterSilence(arrivals, silenceMs);
      const a = simulateShape(steady, 2000, 29, end);
      const b = simulateShape(twin, 2000, 29, end);
      const within = a.cleanOverMs.filter((ms) => ms <= 1200).length;
      rows.push(`${silenceMs} ms: bench-steady ${within} within, twin lost ${b.lost}`);
      assert.ok(b.lost > 20 || within < 2000, `a silence of ${silenceMs} ms meets both:\n${rows.join('\n')}`);
    }
    // And the figures are not vacuous: some silence brings every bench-steady pod within the bar, and
    // some keeps the twin within 1 %.
    assert.match(rows.join('\n'), /bench-steady 2000 within/);
    assert.ok(
      rows.some((r) => Number(/twin lost (\d+)/.exec(r)?.[1]) <= 20),
      rows.join('\n'),
    );
  });
});
