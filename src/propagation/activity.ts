/** Where new connections are noted, so the adaptive strategy can tell when traffic has moved away. */
export interface TrafficActivity {
  /** Epoch ms of the latest new connection on any attached server; 0 before the first. */
  readonly lastConnectionAt: number;
  noteConnection(): void;
}

export function createTrafficActivity(now: () => number = Date.now): TrafficActivity {
  let lastConnectionAt = 0;
  return {
    get lastConnectionAt() {
      return lastConnectionAt;
    },
    noteConnection() {
      lastConnectionAt = now();
    },
  };
}
