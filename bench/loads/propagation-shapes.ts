/**
 * Traffic shapes for the adaptive propagation rule (src/propagation/evidence.ts), as arrival times,
 * and the simulation that walks the rule's own `decide` over them the way the participant does. Used
 * by `npm run bench:propagation` (bench/propagation.ts) and by test/propagation/evidence.test.ts.
 *
 * Each run: a minute of history, SIGTERM at 0 (the wait starts then), new connections keep arriving
 * while some router still lists the pod, and the last router drops it at a removal time R drawn from
 * 0.5–8 s. A run loses a request when a new connection arrives after the wait ended and before R.
 */
import { seededRandom } from '../../src/cli/demo/load.js';
import { decide, type DecisionInput } from '../../src/propagation/evidence.js';

export type Rnd = () => number;
/** Arrival times (ms, sorted) for one run: history from −60 s, the removal at `removal`. */
export type Shape = (rnd: Rnd, removal: number) => number[];

const HISTORY_MS = 60_000;

/** kubegrace's defaults for the wait (quiet period 1 s, maxMs 10 s, allowance 3 s), starting at 0. */
export const waitDefaults: Omit<DecisionInput, 'now' | 'arrivals'> = {
  waitStart: 0,
  observedFrom: -HISTORY_MS,
  quietPeriodMs: 1000,
  minMs: 0,
  maxMs: 10_000,
  proxyAllowanceMs: 3000,
  idle: false,
  confirmation: { kind: 'none' },
};

/** Arrival times (ms) of a Poisson process of `perSecond` from `from` to `to`. */
export function poisson(rnd: Rnd, perSecond: number, from: number, to: number): number[] {
  const out: number[] = [];
  if (perSecond <= 0) return out;
  let t = from;
  for (;;) {
    t += (-Math.log(1 - rnd()) / perSecond) * 1000;
    if (t >= to) return out;
    out.push(t);
  }
}

/** A renewal process: gaps drawn by `gap` (ms), kept with probability `share(t)` (a router's choice). */
function renewal(
  rnd: Rnd,
  gap: () => number,
  share: (t: number) => number,
  from: number,
  to: number,
): number[] {
  const out: number[] = [];
  let t = from + gap() * rnd();
  while (t < to) {
    if (rnd() < share(t)) out.push(t);
    t += gap();
  }
  return out;
}

/** Clients on a clock behind a round-robin router: every `beforeMs` until `until`, then every `afterMs` until `to`. */
function clock(
  rnd: Rnd,
  beforeMs: number,
  from: number,
  until: number,
  afterMs: number,
  to: number,
): number[] {
  const out: number[] = [];
  let t = from + rnd() * beforeMs;
  for (; t < until; t += beforeMs) out.push(t);
  for (; t < to; t += afterMs) out.push(t);
  return out;
}

const halved = (before: number) => (t: number) => (t < 0 ? before : before / 2);
const sorted = (xs: number[]): number[] => xs.sort((a, b) => a - b);

/**
 * ON/OFF sessions from `from` to `to`: ON periods (exponential, mean `onMs`) of Poisson `perSecond`,
 * OFF periods (exponential, mean `offMs`) of nothing, started at a random point of the alternation;
 * after SIGTERM each connection reaches this pod with 1/2 (the surge pod joined).
 */
function onOff(rnd: Rnd, perSecond: number, onMs: number, offMs: number, from: number, to: number): number[] {
  const out: number[] = [];
  let on = rnd() < onMs / (onMs + offMs);
  for (let t = from; t < to; on = !on) {
    const length = -Math.log(1 - rnd()) * (on ? onMs : offMs);
    if (on) {
      for (const x of poisson(rnd, perSecond, t, Math.min(t + length, to)))
        if (x < 0 || rnd() < 0.5) out.push(x);
    }
    t += length;
  }
  return out;
}

/** Standard normal by Box–Muller. */
function normal(rnd: Rnd): number {
  return Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
}

/**
 * A pod of bench/rolling's steady shape, routed from `routedAt`: 8 pooled clients open at once, then
 * a new client every 150 ms until SIGTERM. After it, `round-robin` (the bench: one more endpoint,
 * every 200 ms) or `random` (the twin: the same history, but one replica behind a random choice that
 * the surge pod now shares, so each 150 ms tick lands here with 1/2). Either way each pooled client
 * reconnects after each 50 ms request and lands here again with 1/4, else it is gone to another pod.
 */
function steadyPod(rnd: Rnd, r: number, routedAt: number, after: 'round-robin' | 'random'): number[] {
  const out = Array.from({ length: 8 }, () => routedAt + rnd() * 20);
  const phase = rnd() * 150;
  let t = routedAt + phase;
  for (; t < 0; t += 150) out.push(t);
  if (after === 'round-robin') for (let u = phase; u < r; u += 200) out.push(u);
  else for (; t < r; t += 150) if (rnd() < 0.5) out.push(t);
  for (let c = 0; c < 8; c++) {
    for (let u = 50 + rnd() * 50; u < r && rnd() < 0.25; u += 50 + rnd() * 10) out.push(u);
  }
  return sorted(out.filter((u) => u < r));
}

/** Every shape `npm run bench:propagation` runs, by name. */
export interface ShapeSpec {
  readonly about: string;
  readonly shape: Shape;
  /** History before SIGTERM (ms), when not a minute: the pod became ready this long before it. */
  readonly historyMs?: number;
}

export const shapes: Record<string, ShapeSpec> = {
  'poisson-20': {
    about: 'Poisson 20/s, halved at SIGTERM (the surge pod joined)',
    shape: (rnd, r) => [...poisson(rnd, 20, -HISTORY_MS, 0), ...poisson(rnd, 10, 0, r)],
  },
  'poisson-10': {
    about: 'Poisson 10/s, halved at SIGTERM',
    shape: (rnd, r) => [...poisson(rnd, 10, -HISTORY_MS, 0), ...poisson(rnd, 5, 0, r)],
  },
  'poisson-2': {
    about: 'Poisson 2/s, halved at SIGTERM',
    shape: (rnd, r) => [...poisson(rnd, 2, -HISTORY_MS, 0), ...poisson(rnd, 1, 0, r)],
  },
  reconnects: {
    about: '10/s; from SIGTERM every response says Connection: close: 16 at once, then 50/s',
    shape: (rnd, r) =>
      sorted([
        ...poisson(rnd, 10, -HISTORY_MS, 0),
        ...Array.from({ length: 16 }, () => rnd() * 50).filter((t) => t < r),
        ...poisson(rnd, 50, 50, r),
      ]),
  },
  'bench-steady': {
    about:
      "bench/rolling's steady shape: ready 1 s before SIGTERM, 8 pooled opens at once, a new client every 150 ms (every 200 ms after SIGTERM), pooled clients coming back after Connection: close with 1/4",
    historyMs: 1000,
    shape: (rnd, r) => steadyPod(rnd, r, -1000, 'round-robin'),
  },
  'young-steady': {
    about:
      'bench-steady as side by side: ready 2.7 s before SIGTERM, routed only 1.1 s before it (the routers took 1.6 s to add it)',
    historyMs: 2700,
    shape: (rnd, r) => steadyPod(rnd, r, -1100, 'round-robin'),
  },
  'bench-steady-twin': {
    about:
      'bench-steady before SIGTERM, then a random choice (one replica behind iptables): each 150 ms tick lands here with 1/2',
    historyMs: 1000,
    shape: (rnd, r) => steadyPod(rnd, r, -1000, 'random'),
  },
  'young-poisson': {
    about: 'ready 5 s before SIGTERM, routed 0.5-4.5 s after that; Poisson 5/s, halved at SIGTERM',
    historyMs: 5000,
    shape: (rnd, r) => {
      const routedAt = -4500 + rnd() * 4000;
      return [...poisson(rnd, 5, routedAt, 0), ...poisson(rnd, 2.5, 0, r)];
    },
  },
  'young-clump': {
    about:
      'ready 5 s before SIGTERM, routed 0.5-4.5 s after that: 30 pooled opens at once, then Poisson 1/s halved',
    historyMs: 5000,
    shape: (rnd, r) => {
      const routedAt = -4500 + rnd() * 4000;
      return sorted([
        ...Array.from({ length: 30 }, () => routedAt + rnd() * 40),
        ...poisson(rnd, 1, routedAt, 0),
        ...poisson(rnd, 0.5, 0, r),
      ]);
    },
  },
  'on-off': {
    about: 'sessions: ON (exp. 1 s) at Poisson 10/s, OFF (exp. 2 s) silent; halved at SIGTERM',
    shape: (rnd, r) => onOff(rnd, 10, 1000, 2000, -HISTORY_MS, r),
  },
  'on-off-young': {
    about: 'on-off on a pod ready 6 s before SIGTERM',
    historyMs: 6000,
    shape: (rnd, r) => onOff(rnd, 10, 1000, 2000, -6000, r),
  },
  'pareto-young': {
    about: 'pareto on a pod ready 5 s before SIGTERM',
    historyMs: 5000,
    shape: (rnd, r) => renewal(rnd, () => (100 / 3) * (1 - rnd()) ** (-1 / 1.5), halved(1), -5000, r),
  },
  'quarter-share': {
    about: 'Poisson 10/s, a quarter of it after SIGTERM (maxSurge above 100 %)',
    shape: (rnd, r) => [...poisson(rnd, 10, -HISTORY_MS, 0), ...poisson(rnd, 2.5, 0, r)],
  },
  clumps: {
    about: 'clumps of 1-30 connections (within 40 ms) at 1 clump/s, halved at SIGTERM',
    shape: (rnd, r) =>
      sorted(
        [...poisson(rnd, 1, -HISTORY_MS, 0), ...poisson(rnd, 0.5, 0, r)].flatMap((t) =>
          Array.from({ length: 1 + Math.floor(rnd() * 30) }, () => t + rnd() * 40).filter((x) => x < r),
        ),
      ),
  },
  cron: {
    about: '100 clients on a 10 s timer (each to this pod with 1/2, 1/4 after SIGTERM) + 2/s halved',
    shape: (rnd, r) => {
      const phase = rnd() * 10_000;
      const out = [...poisson(rnd, 2, -HISTORY_MS, 0), ...poisson(rnd, 1, 0, r)];
      for (let tick = -HISTORY_MS + phase; tick < r; tick += 10_000) {
        const share = tick < 0 ? 1 / 2 : 1 / 4;
        for (let c = 0; c < 100; c++) {
          const t = tick + rnd() * 20;
          if (t < r && rnd() < share) out.push(t);
        }
      }
      return sorted(out);
    },
  },
  'clump-at-sigterm': {
    about: '0.5/s, and 200 pooled clients reconnecting within 50 ms of SIGTERM',
    shape: (rnd, r) =>
      sorted([
        ...poisson(rnd, 0.5, -HISTORY_MS, 0),
        ...Array.from({ length: 200 }, () => rnd() * 50).filter((t) => t < r),
        ...poisson(rnd, 0.5, 50, r),
      ]),
  },
  storm: {
    about: '4/s halved at SIGTERM, and 200 reconnects decaying from it (time constant 0.5 s)',
    shape: (rnd, r) =>
      sorted([
        ...poisson(rnd, 4, -HISTORY_MS, 0),
        ...poisson(rnd, 2, 0, r),
        ...Array.from({ length: 200 }, () => -Math.log(1 - rnd()) * 500).filter((t) => t < r),
      ]),
  },
  'storm-1000': {
    about: '2/s halved at SIGTERM, and 1,000 reconnects decaying from it (time constant 0.5 s)',
    shape: (rnd, r) =>
      sorted([
        ...poisson(rnd, 2, -HISTORY_MS, 0),
        ...poisson(rnd, 1, 0, r),
        ...Array.from({ length: 1000 }, () => -Math.log(1 - rnd()) * 500).filter((t) => t < r),
      ]),
  },
  'batch-ends': {
    about: '1/s, and a batch of 20/s that stops at a random moment of the wait (halved at SIGTERM)',
    shape: (rnd, r) => {
      const stop = rnd() * r;
      return sorted([
        ...poisson(rnd, 1, -HISTORY_MS, 0),
        ...poisson(rnd, 0.5, 0, r),
        ...poisson(rnd, 20, -HISTORY_MS, 0),
        ...poisson(rnd, 10, 0, stop),
      ]);
    },
  },
  pareto: {
    about: 'heavy-tailed gaps (Pareto, shape 1.5, mean 100 ms), halved at SIGTERM',
    shape: (rnd, r) => renewal(rnd, () => (100 / 3) * (1 - rnd()) ** (-1 / 1.5), halved(1), -HISTORY_MS, r),
  },
  lognormal: {
    about: 'heavy-tailed gaps (lognormal, sigma 1.5, mean 100 ms), halved at SIGTERM',
    shape: (rnd, r) =>
      renewal(rnd, () => 100 * Math.exp(1.5 * normal(rnd) - 1.5 ** 2 / 2), halved(1), -HISTORY_MS, r),
  },
  'fall-before': {
    about: '30/s until 5 s before SIGTERM, then 1/s (halved at SIGTERM)',
    shape: (rnd, r) => [
      ...poisson(rnd, 30, -HISTORY_MS, -5000),
      ...poisson(rnd, 1, -5000, 0),
      ...poisson(rnd, 0.5, 0, r),
    ],
  },
  'fall-before-extreme': {
    about: '30/s until 5 s before SIGTERM, then 0.5/s (halved at SIGTERM)',
    shape: (rnd, r) => [
      ...poisson(rnd, 30, -HISTORY_MS, -5000),
      ...poisson(rnd, 0.5, -5000, 0),
      ...poisson(rnd, 0.25, 0, r),
    ],
  },
  'clock-5': {
    about: 'clients on a clock, 5/s (every 200 ms) behind a round-robin router; every 400 ms after SIGTERM',
    shape: (rnd, r) => clock(rnd, 200, -HISTORY_MS, 0, 400, r),
  },
  'clock-random-surge': {
    about:
      'a 5/s clock to a single replica; from SIGTERM a random choice (kube-proxy iptables) sends each tick here with 1/2',
    shape: (rnd, r) => clock(rnd, 200, -HISTORY_MS, 0, 200, r).filter((t) => t < 0 || rnd() < 0.5),
  },
  'clock-masks-router': {
    about:
      'a 5/s clock through a round-robin router that drops the pod at a random moment before R, and Poisson 0.5/s through one that drops it at R',
    shape: (rnd, r) =>
      sorted([...clock(rnd, 200, -HISTORY_MS, 0, 200, rnd() * r), ...poisson(rnd, 0.5, -HISTORY_MS, r)]),
  },
  'clock10-masks-router': {
    about: 'clock-masks-router with a 10/s clock (every 100 ms)',
    shape: (rnd, r) =>
      sorted([...clock(rnd, 100, -HISTORY_MS, 0, 100, rnd() * r), ...poisson(rnd, 0.5, -HISTORY_MS, r)]),
  },
  'lagging-router': {
    about: '10 routers at 2/s each; 9 drop the pod within 2 s (or before R), the tenth at R',
    shape: (rnd, r) => {
      const out = [...poisson(rnd, 20, -HISTORY_MS, 0), ...poisson(rnd, 1, 0, r)];
      for (let i = 1; i < 10; i++) out.push(...poisson(rnd, 1, 0, rnd() * Math.min(2000, r)));
      return sorted(out);
    },
  },
  'routers-one-by-one': {
    about: '10 routers at 2/s each; each drops the pod at a random moment before R (the last at R)',
    shape: (rnd, r) => {
      const out = poisson(rnd, 20, -HISTORY_MS, 0);
      for (let i = 0; i < 10; i++) out.push(...poisson(rnd, 1, 0, i === 0 ? r : rnd() * r));
      return sorted(out);
    },
  },
};

/** Walks the decision from the start of the wait as the participant does; returns when it ended. */
export function endOf(all: readonly number[], historyMs: number = HISTORY_MS): number {
  let now = 0;
  let seen = 0;
  for (let i = 0; i < 10_000; i++) {
    while (seen < all.length && (all[seen] ?? Infinity) <= now) seen++;
    const d = decide({
      ...waitDefaults,
      shutdownAt: 0,
      observedFrom: -historyMs,
      now,
      arrivals: all.slice(0, seen),
    });
    if (d.done) return now;
    now = d.wakeAt;
  }
  throw new Error('the decision never ended');
}

export interface SimulationResult {
  readonly runs: number;
  /** Runs in which a new connection arrived after the wait ended and before the removal. */
  readonly lost: number;
  /** Exit minus removal (ms), sorted. */
  readonly overMs: readonly number[];
  /** The same for the runs that lost nothing, sorted. */
  readonly cleanOverMs: readonly number[];
}

/**
 * When a wait that ends on a fixed silence ends: the first moment `silenceMs` has passed since the
 * shutdown (at 0) or the last new connection after it. Not kubegrace's rule: the yardstick that
 * `npm run bench:propagation -- --fixed-silence` holds traffic shapes to, to show what any silence
 * long enough for one shape costs another.
 */
export function endAfterSilence(arrivals: readonly number[], silenceMs: number): number {
  let last = 0;
  for (const t of arrivals) {
    if (t < last) continue;
    if (t - last >= silenceMs) break;
    last = t;
  }
  return last + silenceMs;
}

/**
 * `runs` rollouts of `shape`, seeded (a failing one can be replayed), each ended by `end` — the
 * rule's own `decide` unless another is given.
 */
export function simulate(
  spec: ShapeSpec,
  runs: number,
  seed: number,
  end: (arrivals: readonly number[], historyMs: number | undefined) => number = endOf,
): SimulationResult {
  const { shape, historyMs } = spec;
  const rnd = seededRandom(seed);
  let lost = 0;
  const overMs: number[] = [];
  const cleanOverMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const removal = 500 + rnd() * 7500;
    const arrivals = shape(rnd, removal);
    const endsAt = end(arrivals, historyMs);
    if (arrivals.some((t) => t > endsAt && t <= removal)) lost++;
    else cleanOverMs.push(endsAt - removal);
    overMs.push(endsAt - removal);
  }
  overMs.sort((a, b) => a - b);
  cleanOverMs.sort((a, b) => a - b);
  return { runs, lost, overMs, cleanOverMs };
}
