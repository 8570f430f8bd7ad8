/**
 * Kubernetes Events on the own pod (core/v1: `kubectl describe pod` and `kubectl get events` show
 * them, and the pod's last shutdown stays visible after the pod is gone). Posting never throws and
 * never outlives its time limit: an Event is a report, not a step of the shutdown.
 *
 * Order. The API server stores `firstTimestamp`/`lastTimestamp` in whole seconds, and the steps of a
 * shutdown are often less than a second apart. So Events are posted one at a time, each after the
 * previous one was answered (or given up), and each carries `eventTime` (a MicroTime, microseconds),
 * strictly increasing in the order the moments happened, plus a name that sorts the same way (what
 * `kubectl describe pod` falls back to when the seconds tie). The queue never delays a shutdown: an
 * Event's time limit (`requestTimeoutMs`) counts from the moment it was recorded, queueing included.
 */
import { randomInt } from 'node:crypto';
import type { ApiFailure, KubeApi } from './client.js';

export type EventType = 'Normal' | 'Warning';

/** The reasons kubegrace records, one per moment of a shutdown. */
export type EventReason =
  | 'ShutdownStarted'
  | 'PropagationComplete'
  | 'Drained'
  | 'ShutdownComplete'
  | 'ShutdownDeadlineReached'
  | 'ConnectionsForcedClosed'
  | 'ShutdownHookFailed';

export interface PodRef {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string | undefined;
}

export interface EventRecorder {
  /**
   * Queue an Event; resolves true once the API accepted it. `signal` abandons it (not sent if it
   * has not been sent yet).
   */
  record(type: EventType, reason: EventReason, message: string, signal?: AbortSignal): Promise<boolean>;
  /** Resolves when every Event recorded so far has been answered or given up on. */
  settled(): Promise<void>;
  /** Events posted successfully, for tests and the summary. */
  readonly posted: number;
}

const EVENT_COMPONENT = 'kubegrace';

/** What the API server allows once `eventTime` is set (legacyValidateEvent, pkg/apis/core/validation). */
export const EVENT_LIMITS = {
  /** `reportingInstance`, in bytes. */
  reportingInstance: 128,
  /** `message`, in bytes (the Go validation counts UTF-8 bytes). */
  messageBytes: 1024,
} as const;

/** `action` (required with `eventTime`): what kubegrace was doing when the moment happened. */
const ACTIONS: Readonly<Record<EventReason, string>> = {
  ShutdownStarted: 'Shutdown',
  PropagationComplete: 'Propagate',
  Drained: 'Drain',
  ShutdownComplete: 'Shutdown',
  ShutdownDeadlineReached: 'Shutdown',
  ConnectionsForcedClosed: 'Drain',
  ShutdownHookFailed: 'Shutdown',
};

/** metav1.MicroTime as the API server reads it: RFC 3339 with exactly six fractional digits. */
export function microTime(micros: number): string {
  const seconds = Math.floor(micros / 1_000_000);
  const fraction = String(micros - seconds * 1_000_000).padStart(6, '0');
  return `${new Date(seconds * 1000).toISOString().slice(0, 19)}.${fraction}Z`;
}

/** Cut a message to the API's byte limit at a character boundary, marking the cut. */
export function limitMessage(message: string, maxBytes: number = EVENT_LIMITS.messageBytes): string {
  if (Buffer.byteLength(message) <= maxBytes) return message;
  const ellipsis = '…';
  const budget = maxBytes - Buffer.byteLength(ellipsis);
  let bytes = 0;
  let end = 0;
  for (const char of message) {
    const size = Buffer.byteLength(char);
    if (bytes + size > budget) break;
    bytes += size;
    end += char.length;
  }
  return `${message.slice(0, end)}${ellipsis}`;
}

export function createEventRecorder(options: {
  readonly api: KubeApi;
  readonly pod: () => PodRef | undefined;
  readonly onFailure: (failure: ApiFailure) => void;
  /** Epoch ms. @default Date.now */
  readonly now?: () => number;
}): EventRecorder {
  const now = options.now ?? Date.now;
  const pending = new Set<Promise<boolean>>();
  let tail: Promise<unknown> = Promise.resolve();
  let lastMicros = 0;
  let posted = 0;
  let disabledBy: ApiFailure | undefined;

  /** The moment, in µs: never equal to or before the previous one, so the order survives a tie. */
  function stamp(): number {
    lastMicros = Math.max(Math.floor(now() * 1000), lastMicros + 1);
    return lastMicros;
  }

  async function post(
    type: EventType,
    reason: EventReason,
    message: string,
    micros: number,
    recordedAt: number,
    signal: AbortSignal | undefined,
  ): Promise<boolean> {
    const pod = options.pod();
    if (!pod || disabledBy || signal?.aborted) return false;
    const at = new Date(Math.floor(micros / 1000)).toISOString();
    const body = {
      metadata: {
        // client-go's shape, <object>.<hex nanoseconds>: names sort in the order the moments
        // happened; the last three digits only keep two containers of one pod apart.
        name: `${pod.name}.${(BigInt(micros) * 1000n + BigInt(randomInt(1000))).toString(16)}`,
        namespace: pod.namespace,
      },
      involvedObject: {
        apiVersion: 'v1',
        kind: 'Pod',
        name: pod.name,
        namespace: pod.namespace,
        ...(pod.uid === undefined ? {} : { uid: pod.uid }),
      },
      reason,
      message: limitMessage(message),
      type,
      action: ACTIONS[reason],
      eventTime: microTime(micros),
      // core/v1 spells reportingController this way on the wire.
      reportingComponent: EVENT_COMPONENT,
      reportingInstance: pod.name.slice(0, EVENT_LIMITS.reportingInstance),
      source: { component: EVENT_COMPONENT },
      // Stored to the second; kept because `kubectl describe` sorts and ages by them.
      firstTimestamp: at,
      lastTimestamp: at,
      count: 1,
    };
    const result = await options.api.createEvent(pod.namespace, body, signal, {
      waitedMs: Math.max(0, now() - recordedAt),
    });
    if (result.ok) {
      posted += 1;
      return true;
    }
    // Without permission every later Event would fail the same way: stop asking.
    if (result.failure.kind === 'forbidden' || result.failure.kind === 'unauthorized')
      disabledBy = result.failure;
    if (result.failure.kind !== 'aborted') options.onFailure(result.failure);
    return false;
  }

  return {
    record(type, reason, message, signal) {
      const recordedAt = now();
      const micros = stamp();
      const previous = tail;
      const promise = previous
        .then(() => post(type, reason, message, micros, recordedAt, signal))
        .catch(() => false);
      tail = promise;
      pending.add(promise);
      void promise.finally(() => pending.delete(promise));
      return promise;
    },
    async settled() {
      while (pending.size > 0) await Promise.all([...pending]);
    },
    get posted() {
      return posted;
    },
  };
}
