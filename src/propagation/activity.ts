import { monotonicNow } from '../wait.js';

/**
 * Where new connections are noted, so the adaptive strategy can judge a silence against the rate the
 * pod was getting. The times go into a fixed ring (no allocation per connection); the oldest are
 * overwritten, so with more than `capacity` connections inside the rate window the window is simply
 * shorter, which only makes the estimate rest on the most recent traffic.
 */
export interface TrafficActivity {
  /** Epoch ms of the latest new connection on any attached server; 0 before the first. */
  readonly lastConnectionAt: number;
  noteConnection(): void;
  /** Epoch ms of the new connections noted at or after `from`, oldest first (at most `capacity`). */
  arrivalsSince(from: number): number[];
  /** How many arrival times are kept; when `arrivalsSince` returns this many, older ones were dropped. */
  readonly capacity: number;
  /** New connections noted since creation (not bounded by the ring). */
  readonly total: number;
}

/** Enough for 20 s at 200 new connections/s; each entry is 8 bytes. */
const DEFAULT_CAPACITY = 4096;

export function createTrafficActivity(
  now: () => number = monotonicNow,
  capacity: number = DEFAULT_CAPACITY,
): TrafficActivity {
  const times = new Float64Array(capacity);
  let next = 0;
  let count = 0;
  let lastConnectionAt = 0;
  let total = 0;
  return {
    capacity,
    get lastConnectionAt() {
      return lastConnectionAt;
    },
    get total() {
      return total;
    },
    noteConnection() {
      total++;
      lastConnectionAt = now();
      times[next] = lastConnectionAt;
      next = (next + 1) % capacity;
      if (count < capacity) count++;
    },
    arrivalsSince(from) {
      const found: number[] = [];
      for (let i = count; i > 0; i--) {
        const at = times[(next - i + capacity) % capacity] ?? 0;
        if (at >= from) found.push(at);
      }
      return found;
    },
  };
}
