import type { Participant } from '../lifecycle.js';
import type { TrafficActivity } from './activity.js';
import { afterPendingIo, sleep } from './wait.js';

/**
 * Something that must also agree that traffic has moved away, e.g. the EndpointSlices showing this
 * pod removed. Resolves when it agrees; it is given the phase's signal and must stop waiting on abort.
 */
export type PropagationConfirmation = (signal: AbortSignal) => Promise<void>;

export interface AdaptivePropagationOptions {
  readonly quietPeriodMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly activity: TrafficActivity;
  /** Extra conditions, read when the wait starts. */
  readonly confirmations?: () => readonly PropagationConfirmation[];
  readonly now?: () => number;
}

/**
 * Ends the propagation wait once no new connection has arrived for the quiet period (counted from
 * the start of the wait at the earliest, so the wait is never shorter than the quiet period) and
 * every confirmation agrees; never before `minMs`, never after `maxMs`.
 */
export function createAdaptivePropagation(options: AdaptivePropagationOptions): Participant {
  const { quietPeriodMs, minMs, maxMs, activity } = options;
  const now = options.now ?? Date.now;
  return {
    name: 'propagation:adaptive',
    async propagate(ctx) {
      const start = now();
      const bound = AbortSignal.any([ctx.signal, AbortSignal.timeout(maxMs)]);
      let confirmed = false;
      const confirmations = options.confirmations?.() ?? [];
      const confirmedAll = Promise.all(confirmations.map((confirm) => confirm(bound))).then(
        () => {
          confirmed = true;
        },
        (error: unknown) => {
          ctx.warn(`confirmation failed, relying on the quiet period: ${String(error)}`);
          confirmed = true;
        },
      );
      if (confirmations.length === 0) confirmed = true;
      while (!bound.aborted) {
        const t = now();
        const quietSince = Math.max(activity.lastConnectionAt, start);
        const quietLeft = quietSince + quietPeriodMs - t;
        const minLeft = start + minMs - t;
        if (quietLeft <= 0 && minLeft <= 0 && confirmed) {
          // Quiet as far as this turn knows: after a stalled loop, connections may be waiting to be
          // accepted. Take them in; if there were any, the quiet period starts over.
          const seen = activity.lastConnectionAt;
          await afterPendingIo();
          if (activity.lastConnectionAt === seen) return;
          continue;
        }
        if (quietLeft <= 0 && minLeft <= 0) {
          await Promise.race([confirmedAll, sleep(maxMs, bound)]);
          continue;
        }
        await sleep(Math.max(quietLeft, minLeft, 1), bound);
      }
      if (!ctx.signal.aborted) {
        ctx.warn(
          `traffic did not settle within propagation.maxMs (${maxMs} ms)` +
            (confirmed ? '; new connections kept arriving' : '; not confirmed by every source'),
        );
      }
    },
  };
}
