/**
 * The adaptive propagation rule as pure functions of times (no timers, no sockets): how long a
 * silence must last before it is evidence that no router still sends this pod new connections, and
 * when the wait may end given that, the EndpointSlice confirmation and the bounds.
 *
 * The model (docs/lifecycle.md, "How the adaptive wait decides"): while some router still lists the
 * pod, new connections reach it at some rate λ; a silence of S then has probability about e^(−λS),
 * and a wait of up to `maxMs` offers about λ·maxMs such gaps. λ is measured from the new connections
 * the pod saw (before the shutdown and during the wait) by how many 100 ms bins saw one, so a clump
 * of connections counts once (see `occupancyRate`), and taken at a conservative lower bound, so a
 * short history asks for a longer silence, never a shorter one. Gaps that are not Poisson's
 * (heavy-tailed, traffic on a timer) are guarded by the longest gap seen between two new connections
 * while routed: a silence must outlast twice it.
 */

/** The chance we accept that the pod is still routed although it saw no new connection for the silence. */
export const MISS_PROBABILITY = 0.01;
/** Confidence of the lower bound on the arrival rate (the bins' occupancy). */
export const RATE_CONFIDENCE = 0.9;

export interface SilenceNeed {
  /** New connections per second while routed, from the bins' occupancy (see `occupancyRate`). */
  readonly ratePerSecond: number;
  /** The lower confidence bound on that rate, which the silence is sized from. */
  readonly rateLowPerSecond: number;
  /** Longest gap between two consecutive new connections in the window (the silence outlasts twice it). */
  readonly longestGapMs: number;
  /** The silence that is evidence; Infinity when the traffic seen allows no conclusion. */
  readonly requiredMs: number;
  /**
   * Which term set `requiredMs`; `idle`: no traffic at all, nothing to lose (see `requiredSilence`);
   * `proxy-allowance`: after a confirmation, the silence is capped at the proxy allowance (see `decide`).
   */
  readonly basis: 'quiet-period' | 'rate' | 'gap' | 'no-traffic' | 'idle' | 'proxy-allowance';
}

/**
 * A rolling update adds the replacement pod to the endpoints just before it terminates this one: with
 * N endpoints this pod's share of new connections falls to N/(N+1) of what it was, at worst (N = 1)
 * half, right at SIGTERM — too soon for the trailing windows to see. The rate measured over the whole
 * window is taken at this share.
 */
export const SURGE_SHARE = 0.5;

/**
 * Confidence of the bound on the rate since the shutdown, which lifts the surge share once the
 * connections since SIGTERM show the pod kept more than it. Stricter than RATE_CONFIDENCE: an
 * overestimate here is the one that could shorten the silence below what the halved rate needs.
 */
export const SHARE_CONFIDENCE = 0.99;

/** Width of the time bins in which every rate is measured (see `occupancyRate`). */
const BIN_MS = 100;

/**
 * How many times the longest gap seen between two new connections a silence must last. Gaps that
 * are not Poisson's (heavy-tailed, or traffic on a timer) are guarded by the longest one seen; but
 * of the n gaps seen and the m a wait offers, the longest is among the new ones with probability
 * m/(n+m) whatever their distribution — about 8 % for a minute of 10/s and a 5 s wait. Twice the
 * longest seen brought heavy-tailed gaps (Pareto 1.5, lognormal 1.5) under 1 % in simulation
 * (`npm run bench:propagation`); Poisson traffic rarely reaches it, its rate term is longer.
 */
const GAP_MARGIN = 2;

/** Trailing windows, ending at the last new connection, in which a fall of the rate is looked for. */
export const RECENT_WINDOWS_MS = [2000, 5000, 15_000] as const;
/** How unlikely a trailing window's count must be at the whole window's rate to count as a fall. */
const FALL_SIGNIFICANCE = 0.05;

export interface SilenceContext {
  /** Start of the traffic history (epoch ms). */
  readonly observedFrom: number;
  readonly quietPeriodMs: number;
  /** How long the wait may last (`maxMs`): the number of gaps it offers. */
  readonly horizonMs: number;
  /**
   * Nothing open and no new connection for a long while (the caller's judgement): there is neither
   * evidence nor a client whose reconnect could be refused, so the quiet period suffices.
   */
  readonly idle: boolean;
  /**
   * When the shutdown began (epoch ms): the rate since then is tested for a fall too — a rollout
   * adds the replacement pod just before it terminates this one, so the share of new connections
   * this pod gets can drop right at SIGTERM.
   */
  readonly shutdownAt?: number;
}

/**
 * How long a silence must last, given the new connections seen since `observedFrom` (sorted epoch ms).
 * Never shorter than `quietPeriodMs`. Too few new connections to measure a rate ask for an endless
 * silence (the wait runs to its maximum), unless the pod is idle.
 *
 * The rate is the whole window's, unless a trailing window (2, 5 or 15 s up to the last new
 * connection) saw significantly fewer than that rate predicts — traffic that fell before or during
 * the shutdown (a batch ended, routers already dropped the pod one by one): then the lowest such
 * rate sizes the silence, since the routers left are the ones that send it.
 */
export function requiredSilence(arrivals: readonly number[], context: SilenceContext): SilenceNeed {
  const { observedFrom, quietPeriodMs, horizonMs } = context;
  const last = arrivals.at(-1);
  if (last === undefined && context.idle) {
    return {
      ratePerSecond: 0,
      rateLowPerSecond: 0,
      longestGapMs: 0,
      requiredMs: quietPeriodMs,
      basis: 'idle',
    };
  }
  // The span ends at the last arrival, the last moment the pod is known to have been routed; that
  // arrival is not counted, since the span was chosen to end on it.
  let longestGapMs = 0;
  for (let i = 1; i < arrivals.length; i++) {
    longestGapMs = Math.max(longestGapMs, (arrivals[i] ?? 0) - (arrivals[i - 1] ?? 0));
  }
  const whole = last === undefined ? undefined : occupancyRate(arrivals, observedFrom, last, RATE_CONFIDENCE);
  if (last === undefined || whole === undefined || whole.occupied <= 0) {
    return { ratePerSecond: 0, rateLowPerSecond: 0, longestGapMs, requiredMs: Infinity, basis: 'no-traffic' };
  }
  let ratePerSecond = whole.perSecond;
  // The whole window's rate stands for what the pod got before a rollout's replacement joined.
  let rateLowPerSecond = whole.lowPerSecond * SURGE_SHARE;
  let referencePerSecond = whole.lowPerSecond;
  const spanMs = last - observedFrom;
  let liftedAt: number | undefined;
  const { shutdownAt } = context;
  const sinceShutdownMs = shutdownAt !== undefined && last > shutdownAt ? last - shutdownAt : 0;
  if (sinceShutdownMs > 0 && shutdownAt !== undefined) {
    // The surge share is an assumption for the moment of SIGTERM; the connections since then measure
    // what the pod gets now — often more than before, since every HTTP/1 response of the shutdown
    // says `Connection: close` and each pooled client comes back through the Service. Once they
    // show, at a strict confidence, more than the assumed share, they size the silence, and the
    // trailing windows look for a fall from that rate. The later half and the last quarter of that
    // time must show it too: a wave of reconnects that dies away (a neighbour's clients arriving at
    // once) is not a rate the pod keeps getting, and a large wave's tail still fills the later half.
    const all = occupancyRate(arrivals, shutdownAt, last, SHARE_CONFIDENCE);
    const half = occupancyRate(arrivals, last - sinceShutdownMs / 2, last, SHARE_CONFIDENCE);
    const quarter = occupancyRate(arrivals, last - sinceShutdownMs / 4, last, SHARE_CONFIDENCE);
    const measured = [all, half, quarter].reduce((a, b) => (b.lowPerSecond < a.lowPerSecond ? b : a));
    if (measured.lowPerSecond > rateLowPerSecond) {
      liftedAt = shutdownAt;
      rateLowPerSecond = measured.lowPerSecond;
      referencePerSecond = measured.lowPerSecond;
      ratePerSecond = Math.max(measured.lowPerSecond, measured.perSecond);
    }
  }
  const windows: number[] = [...RECENT_WINDOWS_MS];
  if (sinceShutdownMs > 0) windows.push(sinceShutdownMs);
  for (const windowMs of windows) {
    if (windowMs >= spanMs || windowMs < BIN_MS) continue;
    const recent = occupancyRate(arrivals, last - windowMs, last, RATE_CONFIDENCE);
    // How likely so few occupied bins are at the rate measured, taken at its lower bound (before the
    // surge share): with most bins of a short history full, the point rate is a guess any later
    // window falls short of, and a short window's weak bound would then size the silence.
    // P(X ≤ occupied), X ~ Binomial(bins, q).
    const expectedShare = 1 - Math.exp((-referencePerSecond * BIN_MS) / 1000);
    if (1 - binomialTail(recent.occupied + 1, recent.bins, expectedShare) >= FALL_SIGNIFICANCE) continue;
    if (recent.lowPerSecond < rateLowPerSecond) {
      rateLowPerSecond = recent.lowPerSecond;
      ratePerSecond = recent.perSecond;
    }
  }
  // Every gap between two connections while still routed is a chance to mistake a gap for the end:
  // about rate × horizon of them in a wait. Size the silence so that all of them together stay within
  // MISS_PROBABILITY: e^(−λS) ≤ p / (λ × horizon).
  const chances = Math.max(1, (rateLowPerSecond * horizonMs) / 1000);
  const byRate =
    rateLowPerSecond > 0 ? (Math.log(chances / MISS_PROBABILITY) / rateLowPerSecond) * 1000 : Infinity;
  const byGap = GAP_MARGIN * (liftedAt === undefined ? longestGapMs : longestGap(arrivals, liftedAt));
  const requiredMs = Math.max(quietPeriodMs, byRate, byGap);
  const basis = requiredMs === quietPeriodMs ? 'quiet-period' : byGap > byRate ? 'gap' : 'rate';
  return { ratePerSecond, rateLowPerSecond, longestGapMs, requiredMs, basis };
}

/**
 * The rate of new connections from `from` to `to`, measured by how many BIN_MS bins saw at least
 * one, not by how many arrived. Clients do not open connections independently of each other: a
 * pool reconnects in a wave when its connections close, clients on a timer fire together, a burst
 * of work opens many at once. Such a clump says the pod was routed at that moment, but not how often
 * it will see the next one — and a silence is only likely or not by how often clumps come. A clump
 * fills one or two bins; a steady stream fills bins in proportion to its rate: a bin holds a
 * connection with probability 1 − e^(−λ·bin). The occupancy is bounded below at `confidence`
 * (exact binomial bound) and turned back into a rate, so Poisson traffic is measured at its rate
 * and clumped traffic at the rate of its clumps.
 */
function occupancyRate(
  arrivals: readonly number[],
  from: number,
  to: number,
  confidence: number,
): {
  readonly perSecond: number;
  readonly lowPerSecond: number;
  readonly bins: number;
  readonly occupied: number;
} {
  // Whole bins only, ending before the last arrival: the span was chosen to end on it.
  const bins = Math.floor((to - from) / BIN_MS);
  if (bins <= 0) return { perSecond: 0, lowPerSecond: 0, bins: 0, occupied: 0 };
  const end = from + bins * BIN_MS;
  let occupied = 0;
  let lastBin = -1;
  for (let i = arrivals.length - countSince(arrivals, from); i < arrivals.length; i++) {
    const t = arrivals[i] ?? end;
    if (t >= end) break;
    const bin = Math.floor((t - from) / BIN_MS);
    if (bin !== lastBin) {
      occupied++;
      lastBin = bin;
    }
  }
  const toRate = (share: number): number => (share >= 1 ? Infinity : (-Math.log(1 - share) / BIN_MS) * 1000);
  const low = binomialShareLowerBound(occupied, bins, confidence);
  // All bins full: the point rate is unbounded; the bound still is finite.
  return {
    perSecond: toRate(Math.min(occupied / bins, 1 - 1 / (2 * bins))),
    lowPerSecond: toRate(low),
    bins,
    occupied,
  };
}

/** Lower one-sided bound on a binomial share after `k` of `n`: the p at which P(X ≥ k) = 1 − confidence. */
function binomialShareLowerBound(k: number, n: number, confidence: number): number {
  if (k <= 0) return 0;
  const alpha = 1 - confidence;
  let low = 0;
  let high = k / n;
  for (let i = 0; i < 40; i++) {
    const p = (low + high) / 2;
    if (binomialTail(k, n, p) < alpha) low = p;
    else high = p;
  }
  return low;
}

/** P(X ≥ k) for X ~ Binomial(n, p), summed term by term in log space over the shorter side. */
function binomialTail(k: number, n: number, p: number): number {
  if (k <= 0) return 1;
  if (k > n || p <= 0) return 0;
  if (p >= 1) return 1;
  const odds = Math.log(p / (1 - p));
  if (k <= n - k) {
    // 1 − P(X ≤ k − 1), from X = 0 up.
    let logTerm = n * Math.log(1 - p);
    let below = 0;
    for (let i = 0; i < k; i++) {
      below += Math.exp(logTerm);
      logTerm += Math.log((n - i) / (i + 1)) + odds;
    }
    return Math.max(0, 1 - below);
  }
  // P(X ≥ k) directly, from X = n down.
  let logTerm = n * Math.log(p);
  let above = 0;
  for (let i = n; i >= k; i--) {
    above += Math.exp(logTerm);
    logTerm += Math.log(i / (n - i + 1)) - odds;
  }
  return Math.min(1, above);
}

/** The longest gap between two consecutive `arrivals` at or after `from`. */
function longestGap(arrivals: readonly number[], from: number): number {
  let longest = 0;
  for (let i = Math.max(1, arrivals.length - countSince(arrivals, from) + 1); i < arrivals.length; i++) {
    longest = Math.max(longest, (arrivals[i] ?? 0) - (arrivals[i - 1] ?? 0));
  }
  return longest;
}

/** How many of the sorted `arrivals` are at or after `from` (binary search). */
function countSince(arrivals: readonly number[], from: number): number {
  let low = 0;
  let high = arrivals.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if ((arrivals[mid] ?? 0) < from) low = mid + 1;
    else high = mid;
  }
  return arrivals.length - low;
}

/** What ended a propagation wait: the label on `kubegrace_propagation_wait_seconds` and in the summary. */
export type PropagationEnd = 'quiet' | 'confirmed' | 'min' | 'max' | 'fixed' | 'deadline' | 'aborted';

export type ConfirmationState =
  /** No confirmation source (no API), or it cannot tell (watch failing): the silence decides alone. */
  | { readonly kind: 'none' }
  | { readonly kind: 'pending' }
  /** Every source agreed, at epoch ms `at`. */
  | { readonly kind: 'confirmed'; readonly at: number };

export interface DecisionInput {
  readonly now: number;
  /** Epoch ms when the propagation wait began. */
  readonly waitStart: number;
  /** Start of the traffic history (readiness, or the rate window before the shutdown). */
  readonly observedFrom: number;
  /** New connections since `observedFrom`, sorted. */
  readonly arrivals: readonly number[];
  /** Nothing open and no new connection for a long while (see `SilenceContext.idle`). */
  readonly idle: boolean;
  readonly quietPeriodMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly proxyAllowanceMs: number;
  readonly confirmation: ConfirmationState;
  /** When the shutdown began (before the wait: the unready phase); see `SilenceContext.shutdownAt`. */
  readonly shutdownAt?: number;
}

export type Decision =
  | { readonly done: false; readonly wakeAt: number; readonly need: SilenceNeed }
  | {
      readonly done: true;
      readonly ended: Exclude<PropagationEnd, 'fixed' | 'deadline'>;
      readonly need: SilenceNeed;
    };

/**
 * Whether the wait may end now, and if not, when to look again (a new connection only ever moves the
 * end later, so nothing but a confirmation needs to wake the wait sooner).
 *
 * - Without a confirmation: end once the silence since the last new connection (or the start of the
 *   wait) reaches the required silence.
 * - With one confirmed at C: end at C + `proxyAllowanceMs` (node proxies reprogram after they see the
 *   change), and only after a silence counted from C, or the last new connection after it, of the
 *   required silence capped at the allowance: routers that keep sending connections keep the pod.
 * - While a confirmation is pending: wait for it (the silence alone does not end the wait).
 * - Never before `minMs`; at `maxMs` in any case.
 */
export function decide(input: DecisionInput): Decision {
  const { now, waitStart, arrivals, confirmation } = input;
  const measured = requiredSilence(arrivals, {
    observedFrom: input.observedFrom,
    quietPeriodMs: input.quietPeriodMs,
    horizonMs: input.maxMs,
    idle: input.idle,
    ...(input.shutdownAt === undefined ? {} : { shutdownAt: input.shutdownAt }),
  });
  // After a confirmation the silence is capped at the proxy allowance (never under the quiet period):
  // the need carries the silence actually applied, so the report does not cite one it did not wait for.
  const need = confirmation.kind === 'confirmed' ? afterConfirmation(measured, input) : measured;
  const last = arrivals.at(-1) ?? -Infinity;
  const maxEnd = waitStart + input.maxMs;
  const minEnd = waitStart + input.minMs;
  let endAt: number;
  let ended: 'quiet' | 'confirmed';
  if (confirmation.kind === 'pending') {
    endAt = Infinity;
    ended = 'quiet';
  } else if (confirmation.kind === 'confirmed') {
    const allowanceEnd = confirmation.at + input.proxyAllowanceMs;
    const quietEnd = Math.max(last, confirmation.at, waitStart) + need.requiredMs;
    endAt = Math.max(allowanceEnd, quietEnd);
    ended = allowanceEnd >= quietEnd ? 'confirmed' : 'quiet';
  } else {
    endAt = Math.max(last, waitStart) + need.requiredMs;
    ended = 'quiet';
  }
  if (endAt < minEnd) {
    endAt = minEnd;
    if (now >= endAt && now < maxEnd) return { done: true, ended: 'min', need };
  }
  if (now >= maxEnd && endAt > maxEnd) return { done: true, ended: 'max', need };
  if (now >= endAt) return { done: true, ended, need };
  // Look again within a quiet period: connections that arrive meanwhile may turn "no rate yet" into
  // one, and so shorten the silence needed.
  return { done: false, wakeAt: Math.min(endAt, maxEnd, now + Math.max(input.quietPeriodMs, 50)), need };
}

/**
 * The silence that counts after a confirmation: the measured need (never under the quiet period),
 * capped at the proxy allowance or the quiet period, whichever is longer. The basis changes only when
 * the cap applied, so an idle pod stays `idle` whatever the allowance.
 */
function afterConfirmation(need: SilenceNeed, input: DecisionInput): SilenceNeed {
  const { quietPeriodMs, proxyAllowanceMs } = input;
  const capMs = Math.max(proxyAllowanceMs, quietPeriodMs);
  if (need.requiredMs <= capMs) return need;
  return {
    ...need,
    requiredMs: capMs,
    basis: proxyAllowanceMs > quietPeriodMs ? 'proxy-allowance' : 'quiet-period',
  };
}
