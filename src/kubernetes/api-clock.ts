/**
 * How far the API server's clock is from this node's, read from the `Date` header of its answers.
 * `deletionTimestamp` is stamped on the API server's clock while the kubelet times the grace period
 * on the node's: without this, clocks a few seconds apart move the deadline past the kill time (API
 * clock ahead) or cut the drain short (behind).
 *
 * A `Date` header has whole seconds, so one answer only bounds the offset: the server wrote it at a
 * moment between sending the request and receiving the answer, when its clock read [Date, Date + 1 s).
 * The bounds of several answers intersect.
 */

export interface ApiClock {
  /** One answer: its `Date` header and when (epoch ms, this clock) the request went out and the answer came. */
  sample(date: string | undefined, sentAt: number, receivedAt: number): void;
  /**
   * API clock minus node clock, in ms, as far as the answers prove it: 0 when they allow 0 (or there
   * are none); else the bound nearest 0, so it never claims more skew than there is.
   */
  readonly skewMs: number;
  /** The bounds the answers allow, undefined before the first. */
  readonly bounds: { readonly lo: number; readonly hi: number } | undefined;
}

/** Answers kept: a clock stepped since (NTP) must not stay contradicted by old ones for ever. */
const SAMPLES = 8;

export function createApiClock(): ApiClock {
  const samples: { lo: number; hi: number }[] = [];

  function bounds(): { lo: number; hi: number } | undefined {
    let lo = Number.NEGATIVE_INFINITY;
    let hi = Number.POSITIVE_INFINITY;
    // Newest first: when the older ones contradict it (a clock stepped), the newer ones win.
    for (let i = samples.length - 1; i >= 0; i--) {
      const s = samples[i] as { lo: number; hi: number };
      const nextLo = Math.max(lo, s.lo);
      const nextHi = Math.min(hi, s.hi);
      if (nextLo > nextHi) break;
      lo = nextLo;
      hi = nextHi;
    }
    return samples.length === 0 ? undefined : { lo, hi };
  }

  return {
    sample(date, sentAt, receivedAt) {
      const at = date === undefined ? Number.NaN : Date.parse(date);
      if (Number.isNaN(at) || receivedAt < sentAt) return;
      samples.push({ lo: at - receivedAt, hi: at + 1000 - sentAt });
      if (samples.length > SAMPLES) samples.shift();
    },
    get skewMs() {
      const b = bounds();
      if (b === undefined) return 0;
      return b.lo > 0 ? b.lo : b.hi < 0 ? b.hi : 0;
    },
    get bounds() {
      return bounds();
    },
  };
}
