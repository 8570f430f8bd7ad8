import { phaseEndCause, type Participant } from '../lifecycle.js';
import type { PropagationReport } from './adaptive.js';
import { sleep } from '../wait.js';

/** Keep serving for a fixed delay after readiness fails: the classic preStop `sleep`, inside the process. */
export function createFixedPropagation(
  delayMs: number,
  onEnd?: (report: PropagationReport) => void,
  now: () => number = Date.now,
): Participant {
  return {
    name: 'propagation:fixed',
    async propagate(ctx) {
      const start = now();
      await sleep(delayMs, ctx.signal);
      const end = now();
      const waitedMs = Math.round(end - start);
      // The phase budget is the delay itself, counted from the phase's start: its timer may abort the
      // signal before ours fires (by more than a moment on a loaded machine, when this began late).
      const cause = phaseEndCause(ctx, end);
      const cut = ctx.signal.aborted && cause !== 'budget' && waitedMs < delayMs - 5;
      onEnd?.({
        strategy: 'fixed',
        endedBy: !cut ? 'fixed' : cause === 'deadline' ? 'deadline' : 'aborted',
        waitedMs,
      });
    },
  };
}
