/**
 * The adaptive propagation rule as pure functions of times (no timers, no sockets): how long a
 * silence must last before it is evidence that no router still sends this pod new connections, and
 * when the wait may end given that, the EndpointSlice confirmation and the bounds.
 *
 * The model (docs/lifecycle.md, "How the adaptive wait decides"): while some router still lists the
 * pod, new connections reach it at some rate λ; a silence of S then has probability about e^(−λS),
 * and a wait of up to `maxMs` offers about λ·maxMs such gaps. λ is measured from the new connections
 * the pod saw (before the shutdown and during the wait), and taken at a conservative lower bound, so
 * a short history asks for a longer silence, never a shorter one. Traffic that is not Poisson (bursts, periodic clients) is guarded by the longest gap seen
 * between two new connections while routed: a silence must outlast it too.
 */

/** The chance we accept that the pod is still routed although it saw no new connection for the silence. */
export const MISS_PROBABILITY = 0.01;
/** Confidence of the lower bound on the arrival rate. */
export const RATE_CONFIDENCE = 0.9;

/**
 * Lower one-sided confidence bound on a Poisson mean after `n` events: the mean m at which seeing
 * `n` or more events has probability 1 − `confidence`. 0 for n = 0.
 */
export function poissonMeanLowerBound(n: number, confidence: number = RATE_CONFIDENCE): number {
  if (n <= 0) return 0;
  const alpha = 1 - confidence;
  if (n > 50) {
    // Wilson–Hilferty: the bound is half the alpha-quantile of chi-square with 2n degrees of freedom.
    const k = 2 * n;
    const z = normalQuantile(alpha);
    const c = 1 - 2 / (9 * k) + z * Math.sqrt(2 / (9 * k));
    return (k * c * c * c) / 2;
  }
  // P(N ≥ n | m) rises with m: bisect for the m where it equals alpha.
  let low = 0;
  let high = n;
  for (let i = 0; i < 60; i++) {
    const m = (low + high) / 2;
    if (1 - poissonCdf(n - 1, m) < alpha) low = m;
    else high = m;
  }
  return (low + high) / 2;
}

function poissonCdf(k: number, m: number): number {
  if (k < 0) return 0;
  // e^−m underflows past ~745; the normal approximation is close there.
  if (m > 500) return normalCdf((k + 0.5 - m) / Math.sqrt(m));
  let term = Math.exp(-m);
  let sum = term;
  for (let i = 1; i <= k; i++) {
    term *= m / i;
    sum += term;
  }
  return Math.min(1, sum);
}

/** Standard normal CDF (Abramowitz–Stegun 7.1.26 for erf, |error| < 1.5e-7). */
function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf =
    1 -
    t *
      (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) *
      Math.exp(-x * x);
  return z >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

/** Acklam's rational approximation of the standard normal quantile (|error| < 1.2e-9). */
function normalQuantile(p: number): number {
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  const poly = (coefficients: readonly number[], x: number): number =>
    coefficients.reduce((acc, coefficient) => acc * x + coefficient, 0);
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return poly(c, q) / (poly(d, q) * q + 1);
  }
  if (p > 1 - low) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return (poly(a, r) * q) / (poly(b, r) * r + 1);
}

export interface SilenceNeed {
  /** New connections per second while routed: (arrivals − 1) over the time from the window's start to the last. */
  readonly ratePerSecond: number;
  /** The lower confidence bound on that rate, which the silence is sized from. */
  readonly rateLowPerSecond: number;
  /** Longest gap between two consecutive new connections in the window. */
  readonly longestGapMs: number;
  /** The silence that is evidence; Infinity when the traffic seen allows no conclusion. */
  readonly requiredMs: number;
  /** Which term set `requiredMs`; `idle`: no traffic at all, nothing to lose (see `requiredSilence`). */
  readonly basis: 'quiet-period' | 'rate' | 'gap' | 'no-traffic' | 'idle';
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
  const events = arrivals.length - 1;
  const spanMs = last === undefined ? 0 : last - observedFrom;
  let longestGapMs = 0;
  for (let i = 1; i < arrivals.length; i++) {
    longestGapMs = Math.max(longestGapMs, (arrivals[i] ?? 0) - (arrivals[i - 1] ?? 0));
  }
  if (last === undefined || events <= 0 || spanMs <= 0) {
    return { ratePerSecond: 0, rateLowPerSecond: 0, longestGapMs, requiredMs: Infinity, basis: 'no-traffic' };
  }
  let ratePerSecond = (events / spanMs) * 1000;
  // The whole window's rate stands for what the pod got before a rollout's replacement joined.
  let rateLowPerSecond = (poissonMeanLowerBound(events) / spanMs) * 1000 * SURGE_SHARE;
  const { shutdownAt } = context;
  const sinceShutdownMs = shutdownAt !== undefined && last > shutdownAt ? last - shutdownAt : 0;
  if (sinceShutdownMs > 0 && shutdownAt !== undefined) {
    // The surge share is an assumption for the moment of SIGTERM; the connections since then measure
    // what the pod gets now — often more than before, since every HTTP/1 response of the shutdown
    // says `Connection: close` and each pooled client comes back through the Service. Once they
    // show, at a strict confidence, more than the assumed share, they size the silence, and the
    // trailing windows look for a fall from that rate.
    const measured = occupancyRate(arrivals, shutdownAt, last);
    if (measured.lowPerSecond > rateLowPerSecond) {
      rateLowPerSecond = measured.lowPerSecond;
      ratePerSecond = Math.max(measured.lowPerSecond, measured.perSecond);
    }
  }
  const windows: number[] = [...RECENT_WINDOWS_MS];
  if (sinceShutdownMs > 0) windows.push(sinceShutdownMs);
  for (const windowMs of windows) {
    if (windowMs >= spanMs || windowMs <= 0) continue;
    const recent = countSince(arrivals, last - windowMs) - 1;
    const expected = (ratePerSecond * windowMs) / 1000;
    if (poissonCdf(recent, expected) >= FALL_SIGNIFICANCE) continue;
    const low = (poissonMeanLowerBound(recent) / windowMs) * 1000;
    if (low < rateLowPerSecond) {
      rateLowPerSecond = low;
      ratePerSecond = (recent / windowMs) * 1000;
    }
  }
  // Every gap between two connections while still routed is a chance to mistake a gap for the end:
  // about rate × horizon of them in a wait. Size the silence so that all of them together stay within
  // MISS_PROBABILITY: e^(−λS) ≤ p / (λ × horizon).
  const chances = Math.max(1, (rateLowPerSecond * horizonMs) / 1000);
  const byRate =
    rateLowPerSecond > 0 ? (Math.log(chances / MISS_PROBABILITY) / rateLowPerSecond) * 1000 : Infinity;
  const requiredMs = Math.max(quietPeriodMs, byRate, longestGapMs);
  const basis =
    requiredMs === quietPeriodMs
      ? 'quiet-period'
      : requiredMs === longestGapMs && longestGapMs > byRate
        ? 'gap'
        : 'rate';
  return { ratePerSecond, rateLowPerSecond, longestGapMs, requiredMs, basis };
}

/** Width of the time bins in which the rate since the shutdown is measured. */
const BIN_MS = 100;

/**
 * The rate of new connections from `from` to `to`, measured by how many BIN_MS bins saw at least
 * one, not by how many arrived: when the shutdown closes pooled connections they come back in a
 * clump, which says the pod was routed at that moment but little about the rate it will keep
 * getting — a clump fills one or two bins, a steady stream fills bins in proportion to its rate.
 * A bin holds a connection with probability 1 − e^(−λ·bin); the occupancy is bounded below at
 * SHARE_CONFIDENCE (exact binomial bound) and turned back into a rate.
 */
function occupancyRate(
  arrivals: readonly number[],
  from: number,
  to: number,
): { readonly perSecond: number; readonly lowPerSecond: number } {
  // Whole bins only, ending before the last arrival: the span was chosen to end on it.
  const bins = Math.floor((to - from) / BIN_MS);
  if (bins <= 0) return { perSecond: 0, lowPerSecond: 0 };
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
  const low = binomialShareLowerBound(occupied, bins, SHARE_CONFIDENCE);
  // All bins full: the point rate is unbounded; the bound still is finite.
  return { perSecond: toRate(Math.min(occupied / bins, 1 - 1 / (2 * bins))), lowPerSecond: toRate(low) };
}

/** Lower one-sided bound on a binomial share after `k` of `n`: the p at which P(X ≥ k) = 1 − confidence. */
function binomialShareLowerBound(k: number, n: number, confidence: number): number {
  if (k <= 0) return 0;
  const alpha = 1 - confidence;
  let low = 0;
  let high = k / n;
  for (let i = 0; i < 50; i++) {
    const p = (low + high) / 2;
    if (binomialTail(k, n, p) < alpha) low = p;
    else high = p;
  }
  return low;
}

/** P(X ≥ k) for X ~ Binomial(n, p). */
function binomialTail(k: number, n: number, p: number): number {
  if (p <= 0) return 0;
  if (p >= 1) return 1;
  // Sum the lower part P(X ≤ k − 1) in log space, term by term.
  let logTerm = n * Math.log(1 - p);
  let below = 0;
  for (let i = 0; i < k; i++) {
    below += Math.exp(logTerm);
    logTerm += Math.log((n - i) / (i + 1)) + Math.log(p / (1 - p));
  }
  return Math.max(0, 1 - below);
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
  const need = requiredSilence(arrivals, {
    observedFrom: input.observedFrom,
    quietPeriodMs: input.quietPeriodMs,
    horizonMs: input.maxMs,
    idle: input.idle,
    ...(input.shutdownAt === undefined ? {} : { shutdownAt: input.shutdownAt }),
  });
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
    const silenceMs = Math.max(input.quietPeriodMs, Math.min(need.requiredMs, input.proxyAllowanceMs));
    const quietEnd = Math.max(last, confirmation.at, waitStart) + silenceMs;
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
