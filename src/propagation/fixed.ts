import type { Participant } from '../lifecycle.js';
import type { PropagationReport } from './adaptive.js';
import { sleep } from './wait.js';

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
      const waitedMs = now() - start;
      onEnd?.({
        strategy: 'fixed',
        endedBy: ctx.signal.aborted && waitedMs < delayMs ? 'deadline' : 'fixed',
        waitedMs,
      });
    },
  };
}
