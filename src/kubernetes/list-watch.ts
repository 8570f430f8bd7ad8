/**
 * A resumable list-then-watch loop, the way client-go's reflector does it: list once, watch from the
 * list's resourceVersion with bookmarks, resume from the last resourceVersion seen after a dropped or
 * timed-out watch, relist only on 410 Gone, and back off on failures without ever giving up (RBAC can
 * be fixed while the pod runs). It reports its state so callers can tell "not yet known" from "known".
 */
import { backoffDelay, sleep } from '../wait.js';
import type { ApiFailure, KubeApi, WatchHandle } from './client.js';

export interface ListWatchOptions {
  readonly api: KubeApi;
  readonly resource: 'pods' | 'endpointslices';
  readonly namespace: string;
  readonly fieldSelector?: string;
  readonly labelSelector?: string;
  /** A watch must be accepted within this; a list must complete within it (per page). */
  readonly requestTimeoutMs: number;
  /** Server-side watch timeout; a silent connection is also dropped after it (half-open TCP). @default 290 */
  readonly watchTimeoutSeconds?: number;
  /** Retry delays: doubled per failure from `initialMs` up to `maxMs`, with jitter (`backoffDelay`). */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  /** The full set, after each (re)list. */
  onReplace(items: readonly unknown[]): void;
  onEvent(type: 'ADDED' | 'MODIFIED' | 'DELETED', object: unknown): void;
  /** Each failed attempt. */
  onFailure(failure: ApiFailure): void;
}

export interface ListWatchState {
  /** A list succeeded at least once: the set is known (possibly stale while reconnecting). */
  readonly synced: boolean;
  /** A watch is open now: changes arrive as they happen. */
  readonly connected: boolean;
  /** The last attempt failed and nothing has succeeded since. */
  readonly failure: ApiFailure | undefined;
  readonly resourceVersion: string | undefined;
  /**
   * Epoch ms the last watch was accepted: a watch cut short since (a middlebox, a proxy's timeout) and
   * resumed still shows the API answering.
   */
  readonly acceptedAt: number | undefined;
}

export interface ListWatch extends ListWatchState {
  /** Called after every state change and every event. */
  subscribe(listener: () => void): () => void;
  stop(): void;
}

const DEFAULT_BACKOFF = { initialMs: 250, maxMs: 8000 };

type WatchOutcome =
  | { readonly kind: 'closed'; readonly delivered: boolean }
  | { readonly kind: 'gone' }
  | { readonly kind: 'failed'; readonly failure: ApiFailure };

export function createListWatch(options: ListWatchOptions): ListWatch {
  const { api, resource, namespace, requestTimeoutMs } = options;
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  const watchTimeoutSeconds = options.watchTimeoutSeconds ?? 290;
  const selectors = {
    ...(options.fieldSelector === undefined ? {} : { fieldSelector: options.fieldSelector }),
    ...(options.labelSelector === undefined ? {} : { labelSelector: options.labelSelector }),
  };
  const listeners = new Set<() => void>();
  let synced = false;
  let connected = false;
  let failure: ApiFailure | undefined;
  let resourceVersion: string | undefined;
  let acceptedAt: number | undefined;
  let stopped = false;
  let current: WatchHandle | undefined;
  const stopController = new AbortController();

  const notify = (): void => {
    for (const listener of [...listeners]) {
      try {
        listener();
      } catch {
        // A listener's failure must not stop the watch.
      }
    }
  };

  function fail(next: ApiFailure): void {
    failure = next;
    connected = false;
    options.onFailure(next);
    notify();
  }

  /** Waits `ms` (or until stopped); the timer does not hold the process open. */
  const pause = (ms: number): Promise<void> => sleep(ms, stopController.signal);

  function watchOnce(from: string): Promise<WatchOutcome> {
    return new Promise((resolve) => {
      let settled = false;
      let delivered = false;
      const settle = (outcome: WatchOutcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(acceptTimer);
        clearTimeout(silenceTimer);
        handle.abort();
        current = undefined;
        if (connected) {
          connected = false;
          notify();
        }
        resolve(outcome);
      };
      // A connection that goes silent (half-open TCP, a proxy that swallowed the FIN) is dropped
      // after the server's own timeout plus slack, and resumed.
      let silenceTimer: NodeJS.Timeout | undefined;
      const armSilence = (): void => {
        clearTimeout(silenceTimer);
        silenceTimer = setTimeout(
          () => settle({ kind: 'closed', delivered }),
          (watchTimeoutSeconds + 30) * 1000,
        );
        silenceTimer.unref();
      };
      const acceptTimer = setTimeout(() => {
        settle({
          kind: 'failed',
          failure: {
            kind: 'timeout',
            verb: 'watch',
            resource,
            namespace,
            detail: `no answer within ${requestTimeoutMs} ms`,
          },
        });
      }, requestTimeoutMs);
      acceptTimer.unref();
      // Its callbacks only ever run asynchronously, after this assignment.
      const handle: WatchHandle = api.watch(
        resource,
        { namespace, resourceVersion: from, timeoutSeconds: watchTimeoutSeconds, ...selectors },
        {
          onEvent(type, object) {
            if (settled) return;
            armSilence();
            const rv = (object as { metadata?: { resourceVersion?: unknown } } | null)?.metadata
              ?.resourceVersion;
            if (type === 'BOOKMARK') {
              if (typeof rv === 'string' && rv !== '') resourceVersion = rv;
              // The server answered: a watch that ends after this is no server closing it at once.
              delivered = true;
              return;
            }
            if (type === 'ERROR') {
              const status = object as { code?: unknown; message?: unknown; reason?: unknown };
              if (status.code === 410 || status.reason === 'Expired' || status.reason === 'Gone') {
                settle({ kind: 'gone' });
              } else {
                settle({
                  kind: 'failed',
                  failure: {
                    kind: status.code === 403 ? 'forbidden' : status.code === 401 ? 'unauthorized' : 'server',
                    verb: 'watch',
                    resource,
                    namespace,
                    ...(typeof status.code === 'number' ? { status: status.code } : {}),
                    detail: typeof status.message === 'string' ? status.message : 'watch ERROR event',
                  },
                });
              }
              return;
            }
            if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED') return;
            if (typeof rv === 'string' && rv !== '') resourceVersion = rv;
            delivered = true;
            options.onEvent(type, object);
            notify();
          },
          onEnd(endFailure) {
            if (endFailure === undefined) settle({ kind: 'closed', delivered });
            else if (endFailure.kind === 'gone') settle({ kind: 'gone' });
            else settle({ kind: 'failed', failure: endFailure });
          },
        },
      );
      current = handle;
      void handle.opened.then((opened) => {
        if (!opened || settled) return;
        clearTimeout(acceptTimer);
        armSilence();
        acceptedAt = Date.now();
        connected = true;
        failure = undefined;
        notify();
      });
    });
  }

  async function run(): Promise<void> {
    let failures = 0;
    let quickCloses = 0;
    while (!stopped) {
      if (resourceVersion === undefined) {
        const listed = await api.list(resource, { namespace, ...selectors }, stopController.signal);
        if (stopped) return;
        if (!listed.ok) {
          if (listed.failure.kind !== 'aborted') fail(listed.failure);
          await pause(delay(++failures, listed.failure));
          continue;
        }
        resourceVersion = listed.value.resourceVersion;
        synced = true;
        failure = undefined;
        options.onReplace(listed.value.items);
        notify();
      }
      const startedAt = Date.now();
      const outcome = await watchOnce(resourceVersion);
      if (stopped) return;
      switch (outcome.kind) {
        case 'gone':
          // The resourceVersion was compacted away: only a fresh list can tell what changed.
          resourceVersion = undefined;
          failures = 0;
          break;
        case 'failed':
          fail(outcome.failure);
          await pause(delay(++failures, outcome.failure));
          break;
        case 'closed':
          failures = 0;
          // A server that closes every watch at once would otherwise be hammered in a tight loop.
          quickCloses = !outcome.delivered && Date.now() - startedAt < 1000 ? quickCloses + 1 : 0;
          if (quickCloses > 0) await pause(backoffDelay(quickCloses - 1, backoff));
          break;
      }
    }
  }

  function delay(attempt: number, reason: ApiFailure): number {
    // RBAC, credentials and the kubeconfig are fixed by people, not by retrying: retry those slowly.
    const maxMs =
      reason.kind === 'forbidden' || reason.kind === 'unauthorized' || reason.kind === 'misconfigured'
        ? Math.max(backoff.maxMs, 30_000)
        : backoff.maxMs;
    return backoffDelay(attempt - 1, { initialMs: backoff.initialMs, maxMs });
  }

  void run();

  return {
    get synced() {
      return synced;
    },
    get connected() {
      return connected;
    },
    get failure() {
      return failure;
    },
    get resourceVersion() {
      return resourceVersion;
    },
    get acceptedAt() {
      return acceptedAt;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      stopController.abort();
      current?.abort();
      listeners.clear();
    },
  };
}
