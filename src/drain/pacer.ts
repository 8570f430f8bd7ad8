/**
 * The paced drain of long-lived connections (WebSockets, HTTP/2 sessions, event streams, Socket.IO):
 * closing tens of thousands at once sends every client to the surviving pods in the same second
 * (TLS, auth, resubscription), the reconnect storm of issue 18. The pacer spreads the closes over a
 * window instead, as Envoy's gradual drain does:
 *
 * - window = min(`drain.pacing.windowMs`, half the drain budget left, count / MIN_RATE_PER_SECOND):
 *   a pod with a few connections closes them at once, as before; the other half of the budget is
 *   left for the close handshakes and what the closes start;
 * - oldest first (the order the drainer saw them connect): no per-message bookkeeping, and the
 *   newest clients, which may have just resubscribed, get the longest;
 * - jitter: connection i closes at a random point of its own slot, (i + r) · window / count, so the
 *   rate stays even (at most one slot's worth ahead) yet no two pods close in step;
 * - what is still open when the window ends is closed at once; the phase signal (budget or
 *   deadline) ends the pacing at once, and the drainer forces what is left.
 */
import { sleep } from '../wait.js';

/**
 * Below this many closes a second the pacer does not bother: a pod with n connections spreads them
 * over at most n / 100 s (10 connections: 100 ms), so a small pod drains as fast as it did.
 */
export const MIN_RATE_PER_SECOND = 100;

/** Closes due within this much of each other go out in one batch: one timer, not one per close. */
const BATCH_MS = 10;

/** How a paced close came about: in its slot, or at the end of the window (or at once). */
export type PacedStep = 'paced' | 'window_end';

export interface PacingOptions {
  /** Upper bound of the window; 0 closes everything at once. */
  readonly windowMs: number;
  /** The drain phase's budget: the window never takes more than half of what is left of it. */
  readonly budgetMs: number;
  /** Source of the jitter, in [0, 1). @default Math.random */
  readonly random?: () => number;
  /** The clock, epoch ms. @default Date.now */
  readonly now?: () => number;
}

export interface PaceContext {
  /** Fires at the phase budget or the deadline: stop pacing. */
  readonly signal?: AbortSignal;
  /** Epoch ms of the shutdown deadline. */
  readonly deadline?: number;
  /** Where the pacer says that the window is too short for the connections, or was not kept. */
  readonly warn?: (message: string) => void;
}

/**
 * From this many reconnects in a second the window is too short for the connections: the surviving
 * pods take them from this pod alone. At the defaults (5 s): 2,500 connections.
 */
export const WARN_RATE_PER_SECOND = 500;

/** A window's end that closes more than this share of the connections at once is a burst worth a warning. */
const WARN_WINDOW_END_SHARE = 0.05;
/** A close this much past its turn counts as the pacer falling behind (a few batches' worth). */
const LATE_MS = 5 * BATCH_MS;

/**
 * The window for `count` connections when the drain began at `startedAt` (epoch ms): see the top.
 * Pure, for the drainers and their tests.
 */
export function pacingWindow(
  count: number,
  options: Pick<PacingOptions, 'windowMs' | 'budgetMs'>,
  startedAt: number,
  now: number,
  deadline?: number,
): number {
  if (count <= 1 || options.windowMs <= 0) return 0;
  let budgetEnd = startedAt + options.budgetMs;
  if (deadline !== undefined && Number.isFinite(deadline)) budgetEnd = Math.min(budgetEnd, deadline);
  const left = Math.max(0, budgetEnd - now);
  const window = Math.min(options.windowMs, left / 2, (count / MIN_RATE_PER_SECOND) * 1000);
  return Math.max(0, Math.floor(window));
}

/** When each of `count` closes falls, in ms from the start of a window: one jittered point per slot. */
export function closeSchedule(count: number, windowMs: number, random: () => number = Math.random): number[] {
  if (windowMs <= 0) return new Array<number>(count).fill(0);
  const slot = windowMs / count;
  const times: number[] = [];
  for (let i = 0; i < count; i++) times.push(Math.min(windowMs, (i + random()) * slot));
  return times;
}

export interface Pacer {
  /**
   * Closes `items` (oldest first, as given) over the window; `close` gets each item and whether it
   * closed in its slot or at the window's end, and returns false when there was nothing left to close
   * (the item closed meanwhile). Resolves once every item was handed to `close`, or when the signal
   * fires.
   */
  pace<T>(items: readonly T[], close: (item: T, step: PacedStep) => boolean, ctx: PaceContext): Promise<void>;
  /** The window the pacer would use for `count` connections now (0: at once). */
  windowFor(count: number, ctx: PaceContext): number;
}

/** One pacer per drainer; `startedAt` is when its drain began (the budget is counted from there). */
export function createPacer(options: PacingOptions): Pacer {
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  let startedAt: number | undefined;

  function windowFor(count: number, ctx: PaceContext): number {
    startedAt ??= now();
    return pacingWindow(count, options, startedAt, now(), ctx.deadline);
  }

  async function pace<T>(
    items: readonly T[],
    close: (item: T, step: PacedStep) => boolean,
    ctx: PaceContext,
  ): Promise<void> {
    const window = windowFor(items.length, ctx);
    if (window === 0) {
      for (const item of items) close(item, 'window_end');
      return;
    }
    const rate = (items.length / window) * 1000;
    // What the survivors take in the busiest second: a short window over a few connections is no storm.
    if (Math.min(items.length, rate) >= WARN_RATE_PER_SECOND) {
      ctx.warn?.(
        `paced drain: ${items.length} connections over a ${window} ms window is ${Math.round(rate)} closes a second, ` +
          `each a reconnect to the surviving pods; for this many, size drain.pacingWindowMs and drain.timeoutMs ` +
          `(docs/drain.md, "Sizing for thousands of connections")`,
      );
    }
    const times = closeSchedule(items.length, window, random);
    const began = now();
    let next = 0;
    while (next < items.length) {
      if (ctx.signal?.aborted) return;
      const due = (times[next] as number) - (now() - began);
      if (due > 0) await sleep(Math.max(due, BATCH_MS), ctx.signal);
      if (ctx.signal?.aborted) return;
      const elapsed = now() - began;
      if (elapsed >= window) {
        // Behind: still open although due well before the window's end. The last batch or two are
        // only as late as any timer (BATCH_MS and the timer's own delay), not a sign of falling behind.
        let behind = 0;
        for (; next < items.length; next++) {
          const closed = close(items[next] as T, 'window_end');
          if (closed && (times[next] as number) < window - LATE_MS) behind++;
        }
        if (behind > Math.max(1, items.length * WARN_WINDOW_END_SHARE)) {
          ctx.warn?.(
            `paced drain: ${behind} of ${items.length} connections were still open ${LATE_MS} ms or more after ` +
              `their turn when the ${window} ms window ended, and were closed at once: the process fell behind ` +
              `the schedule (a busy event loop or CPU)`,
          );
        }
        return;
      }
      for (; next < items.length && (times[next] as number) <= elapsed; next++) {
        close(items[next] as T, 'paced');
      }
    }
  }

  return { pace, windowFor };
}
