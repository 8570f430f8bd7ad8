import type { Participant } from '../lifecycle.js';
import { sleep } from './wait.js';

/** Keep serving for a fixed delay after readiness fails: the classic preStop `sleep`, inside the process. */
export function createFixedPropagation(delayMs: number): Participant {
  return {
    name: 'propagation:fixed',
    propagate: (ctx) => sleep(delayMs, ctx.signal),
  };
}
