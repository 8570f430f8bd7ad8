/**
 * How the registry participant calls a registry: each call with its own time limit (settling when
 * the limit or the budget ends even if the adapter ignores its signal), retried with backoff until
 * one succeeds, the retries run out or the caller stops.
 */
import { backoffDelay, settlePromise, sleep, timeLimitedSignal } from '../wait.js';
import { registryError, type RegistryCall } from './registry.js';

/** Longest pause between two registry calls. */
const MAX_RETRY_BACKOFF_MS = 5000;

/** A call's time limit and the option that set it (named in the timeout error). */
export interface CallLimit {
  readonly ms: number;
  readonly option: string;
}

export type RetryResult<T> = { ok: true; value: T } | { ok: false; error: unknown; attempts: number };

export interface RegistryCaller {
  /** One call with its own time limit; settles on abort even if the adapter ignores the signal. */
  attempt<T>(
    op: (call: RegistryCall) => Promise<T>,
    parent: AbortSignal,
    limit: CallLimit,
    deadlineCap?: number,
  ): Promise<T>;
  /** Attempts with backoff until one succeeds, the retries run out, `signal` fires or `keepGoing` says no. */
  withRetries<T>(
    op: (call: RegistryCall) => Promise<T>,
    callParent: AbortSignal,
    pauseSignal: AbortSignal,
    limit: CallLimit,
    deadlineCap?: number,
    keepGoing?: () => boolean,
  ): Promise<RetryResult<T>>;
}

export function createRegistryCaller(
  label: string,
  retry: { readonly retries: number; readonly backoffMs: number },
): RegistryCaller {
  const backoff = { initialMs: retry.backoffMs, maxMs: MAX_RETRY_BACKOFF_MS } as const;

  async function attempt<T>(
    op: (call: RegistryCall) => Promise<T>,
    parent: AbortSignal,
    limit: CallLimit,
    deadlineCap = Infinity,
  ): Promise<T> {
    const call = timeLimitedSignal(parent, limit.ms);
    const deadline = Math.min(Date.now() + limit.ms, deadlineCap);
    try {
      return await settleBy(
        Promise.resolve().then(() => op({ signal: call.signal, deadline })),
        call.signal,
        () =>
          registryError(
            'ERR_KUBEGRACE_REGISTRY_TIMEOUT',
            parent.aborted
              ? `${label}: the budget ran out before the registry answered`
              : `${label}: no answer within ${limit.ms} ms (${limit.option})`,
          ),
      );
    } finally {
      call.dispose();
    }
  }

  async function withRetries<T>(
    op: (call: RegistryCall) => Promise<T>,
    callParent: AbortSignal,
    pauseSignal: AbortSignal,
    limit: CallLimit,
    deadlineCap = Infinity,
    keepGoing: () => boolean = () => true,
  ): Promise<RetryResult<T>> {
    let error: unknown;
    let attempts = 0;
    for (let i = 0; i <= retry.retries; i++) {
      if (callParent.aborted || !keepGoing()) break;
      attempts++;
      try {
        return { ok: true, value: await attempt(op, callParent, limit, deadlineCap) };
      } catch (e) {
        error = e;
      }
      if (i < retry.retries && !(await pause(backoffDelay(i, backoff), pauseSignal))) break;
    }
    return { ok: false, error, attempts };
  }

  return { attempt, withRetries };
}

/** Wait `ms`; resolves false early when `signal` fires. The timer is unref'd: it only paces. */
export const pause = (ms: number, signal: AbortSignal): Promise<boolean> =>
  sleep(ms, signal).then(() => !signal.aborted);

/** `promise`, or a rejection with `reason()` as soon as `signal` fires, whichever comes first. */
export async function settleBy<T>(promise: Promise<T>, signal: AbortSignal, reason: () => Error): Promise<T> {
  if ((await settlePromise(promise, { signal })) === 'aborted') throw reason();
  try {
    return await promise;
  } catch (error) {
    throw error instanceof Error ? error : new Error(String(error));
  }
}
