/**
 * Kubernetes Events on the own pod (core/v1: `kubectl describe pod` and `kubectl get events` show
 * them, and the pod's last shutdown stays visible after the pod is gone). Posting never throws and
 * never outlives its time limit: an Event is a report, not a step of the shutdown.
 */
import { randomBytes } from 'node:crypto';
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
  record(type: EventType, reason: EventReason, message: string, signal?: AbortSignal): Promise<boolean>;
  /** Resolves when every Event posted so far has been answered or given up on. */
  settled(): Promise<void>;
  /** Events posted successfully, for tests and the summary. */
  readonly posted: number;
}

const EVENT_COMPONENT = 'kubegrace';

export function createEventRecorder(options: {
  readonly api: KubeApi;
  readonly pod: () => PodRef | undefined;
  readonly onFailure: (failure: ApiFailure) => void;
  readonly now?: () => number;
}): EventRecorder {
  const now = options.now ?? Date.now;
  const pending = new Set<Promise<boolean>>();
  let posted = 0;
  let disabledBy: ApiFailure | undefined;

  async function post(
    type: EventType,
    reason: EventReason,
    message: string,
    signal?: AbortSignal,
  ): Promise<boolean> {
    const pod = options.pod();
    if (!pod || disabledBy) return false;
    const at = new Date(now());
    const body = {
      metadata: {
        // kubectl's shape: <object>.<unique hex>, unique without a round trip for generateName.
        name: `${pod.name}.${at.getTime().toString(16)}${randomBytes(2).toString('hex')}`,
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
      // The API server caps messages at 1024 bytes; say the important part first.
      message: message.length > 1000 ? `${message.slice(0, 999)}…` : message,
      type,
      source: { component: EVENT_COMPONENT },
      reportingComponent: EVENT_COMPONENT,
      reportingInstance: pod.name,
      firstTimestamp: at,
      lastTimestamp: at,
      count: 1,
    };
    const result = await options.api.createEvent(pod.namespace, body, signal);
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
      const promise = post(type, reason, message, signal).catch(() => false);
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
