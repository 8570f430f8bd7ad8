/**
 * The time primitives, in one place: the monotonic clock, pausing, waiting for something to empty
 * (and forcing what is left when the wait is cut short), and the backoff between retries.
 */

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

/** Wakes whoever waits for a change; the source of `settle`'s `subscribe`. */
export interface Notifier {
  notify(): void;
  /** Returns the function that removes `listener`. */
  subscribe(listener: () => void): () => void;
}

export function createNotifier(): Notifier {
  const listeners = new Set<() => void>();
  return {
    notify() {
      for (const listener of listeners) listener();
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
  };
}

/** How a `settle` wait ended: by itself, by its signal, or by its own time limit. */
export type SettleEnd = 'done' | 'aborted' | 'timeout';

export interface SettleOptions {
  /** True once nothing is left to wait for; read at the start and after every change. */
  readonly isDone: () => boolean;
  /** Calls `onChange` whenever `isDone` may have turned true; returns the unsubscriber. */
  readonly subscribe: (onChange: () => void) => () => void;
  /** Cuts the wait short (the phase budget ran out). */
  readonly signal?: AbortSignal;
  /** Cuts the wait short after this long, with an unref'd timer: it only guards. */
  readonly timeoutMs?: number;
  /** Runs once when the wait is cut short before `isDone`: destroy and report what is left. */
  readonly force?: (end: 'aborted' | 'timeout') => void;
}

/** One `subscribe` for `settle` from several sources: listens to each, and the unsubscriber undoes all. */
export function subscribeAll(
  ...sources: readonly ((onChange: () => void) => () => void)[]
): SettleOptions['subscribe'] {
  return (onChange) => {
    const offs = sources.map((subscribe) => subscribe(onChange));
    return () => {
      for (const off of offs) off();
    };
  };
}

/**
 * Waits until `isDone()`, or the signal fires, or `timeoutMs` passes, then forces; resolves with how
 * it ended. Done wins over a signal that has already fired. Every listener and timer is released when
 * it ends; it rejects only when `force` throws.
 */
export function settle(options: SettleOptions): Promise<SettleEnd> {
  const { isDone, subscribe, signal, timeoutMs, force } = options;
  if (isDone()) return Promise.resolve('done');
  if (signal?.aborted) {
    return new Promise((resolve) => {
      force?.('aborted');
      resolve('aborted');
    });
  }
  return new Promise((resolve, reject) => {
    let ended = false;
    // A subscriber must report later, not from inside subscribe(): nothing changed since isDone().
    let subscribed = false;
    const unsubscribe = subscribe(() => {
      if (subscribed && !ended && isDone()) end('done');
    });
    subscribed = true;
    const onAbort = (): void => end('aborted');
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = timeoutMs === undefined ? undefined : setTimeout(end, timeoutMs, 'timeout').unref();

    function end(how: SettleEnd): void {
      if (ended) return;
      ended = true;
      unsubscribe();
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      try {
        if (how !== 'done') force?.(how);
        resolve(how);
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    }
  });
}

/**
 * `settle` for a wait that is one promise: `'done'` when `promise` settles (either way), else
 * `'aborted'` or `'timeout'` when the limit comes first. Unlike a race with a promise that resolves on
 * abort, nothing stays on the signal afterwards.
 */
export function settlePromise(
  promise: Promise<unknown>,
  limit: Pick<SettleOptions, 'signal' | 'timeoutMs'>,
): Promise<SettleEnd> {
  let settled = false;
  const changed = createNotifier();
  const mark = (): void => {
    settled = true;
    changed.notify();
  };
  promise.then(mark, mark);
  return settle({ isDone: () => settled, subscribe: changed.subscribe, ...limit });
}

/**
 * A signal that fires when `parent` does or after `ms`: the time limit of one call. Built by hand
 * rather than with `AbortSignal.any([parent, AbortSignal.timeout(ms)])`: `dispose()` releases the
 * timer and the listener as soon as the call is over (no listener piles up on a long-lived parent,
 * one per heartbeat), and the timer is held strongly, so it cannot be collected before it fires. It
 * is unref'd: it only guards a call that holds its own handle (a socket) while it is pending.
 */
export function timeLimitedSignal(parent: AbortSignal, ms: number): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(parent.reason);
  if (parent.aborted) controller.abort(parent.reason);
  else parent.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => controller.abort(new Error(`no answer within ${ms} ms`)), ms).unref();
  return {
    signal: controller.signal,
    dispose() {
      clearTimeout(timer);
      parent.removeEventListener('abort', onAbort);
    },
  };
}

export interface BackoffOptions {
  /** Upper bound of the first pause (attempt 0); each later attempt doubles it. */
  readonly initialMs: number;
  /** No pause is longer than this. */
  readonly maxMs: number;
  /** Source of the jitter, in [0, 1). @default Math.random */
  readonly random?: () => number;
}

/**
 * The pause before retry `attempt` (0 for the first): exponential up to `maxMs`, with "equal jitter"
 * — a random point in the upper half of the step. Replicas that failed together spread over half the
 * step and do not retry in step, yet each still waits at least half of it, and no pause exceeds
 * `maxMs` (a budget computed from it holds).
 */
export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const { initialMs, maxMs, random = Math.random } = options;
  // Past 2 ** 30 every cap is maxMs; the clamp keeps the power finite.
  const step = Math.min(initialMs * 2 ** Math.min(Math.max(attempt, 0), 30), maxMs);
  return Math.round(step / 2 + random() * (step / 2));
}
