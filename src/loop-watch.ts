/**
 * When a trigger (a signal, a `/prestop` request) arrived, as early as it plausibly could have. The
 * event loop handles it only once it is free, and a CPU-bound request can hold the loop for seconds
 * that the kubelet's clock already counted: a kill time reckoned from when JavaScript saw the signal
 * lands after the real one.
 *
 * A timer notes the clock and the loop's idle time (`eventLoopUtilization().idle`, the time it spent
 * waiting for events) every `intervalMs`. Between two timer callbacks the loop always polls for
 * events once, so a trigger handled now arrived after the note before the last one (it would have
 * been handled at that poll otherwise). And had it arrived while the loop waited, it would have ended
 * that wait at once: all the idle time since that note came before it. So it arrived no earlier than
 * that note plus the idle time since — a bound that is never later than the real arrival, and earlier
 * only by the time the loop was busy since that note before the arrival (none for a loop that was idle
 * until it blocked; at most about 2 × `intervalMs` × its utilization).
 *
 * The cost is one unref'd timer callback per `intervalMs` (it never keeps the process alive).
 */
import { performance } from 'node:perf_hooks';

export interface LoopWatch {
  /** Epoch ms: the earliest time a trigger handled now could have arrived. */
  earliestArrival(): number;
  stop(): void;
}

/** Four wake-ups a second for an idle process; a busy one errs early by at most 0.5 s × its utilization. */
const DEFAULT_INTERVAL_MS = 250;

interface Note {
  readonly at: number;
  readonly idle: number;
}

export function createLoopWatch(intervalMs = DEFAULT_INTERVAL_MS): LoopWatch {
  const note = (): Note => ({ at: Date.now(), idle: performance.eventLoopUtilization().idle });
  let last = note();
  let beforeLast = last;
  const timer = setTimeout(() => {
    beforeLast = last;
    last = note();
    timer.refresh();
  }, intervalMs);
  timer.unref();
  return {
    earliestArrival() {
      const now = note();
      return Math.min(now.at, Math.floor(beforeLast.at + (now.idle - beforeLast.idle)));
    },
    stop() {
      clearTimeout(timer);
    },
  };
}
