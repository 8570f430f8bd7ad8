/**
 * Epoch ms from a monotonic clock: an NTP step of the wall clock must not make a silence look longer
 * (ending a propagation wait early) or shorter.
 */
export const monotonicNow = (): number => performance.timeOrigin + performance.now();

/** Resolves after `ms`, or at once when `signal` aborts. Never rejects; the timer does not hold the process. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted || ms <= 0) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref();
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Resolves after the event loop's next poll phase. A loop stalled past a timer (a CPU-bound request)
 * runs that timer before it accepts the connections that queued up meanwhile; closing the listener
 * then would reset them. Awaiting this takes them in first.
 */
export function afterPendingIo(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
