/**
 * What the primary and its workers say to each other over the `node:cluster` IPC channel. Every
 * message carries `kubegrace: 'cluster'`, so the app's own messages on the same channel pass by.
 */
import type { LifecycleState } from '../lifecycle.js';
import type { PropagationReport } from '../propagation/adaptive.js';
import type { GracePeriodSource, KillTimeSource, Trigger } from '../timing.js';

/** The figures a worker needs to keep the primary's deadline, not one of its own. */
export interface TimingMessage {
  readonly startedAt: number;
  readonly gracePeriodMs: number;
  readonly gracePeriodSource: GracePeriodSource;
  readonly killAt: number;
  readonly killAtSource: KillTimeSource;
}

export type PrimaryMessage =
  /** The pod's shutdown began: start yours (readiness, `beforeShutdown`, `Connection: close`). */
  | {
      readonly kubegrace: 'cluster';
      readonly type: 'shutdown';
      readonly trigger: Trigger;
      readonly timing: TimingMessage;
    }
  /** The kill time moved (the API's deletion timestamp, the pod's own grace period). */
  | { readonly kubegrace: 'cluster'; readonly type: 'timing'; readonly timing: TimingMessage }
  /** Traffic has moved away from the pod: drain now. */
  | {
      readonly kubegrace: 'cluster';
      readonly type: 'propagated';
      readonly report: PropagationReport | undefined;
    }
  /** Questions for the pod's probes and `/metrics`, answered by `answer` with the same `id`. */
  | { readonly kubegrace: 'cluster'; readonly type: 'ask'; readonly id: number; readonly about: Question };

/** `readiness`: the worker's state and its own readiness checks; `metrics`: its registry's text. */
export type Question = 'readiness' | 'metrics';

/** A worker's answer: ready or not (with why), or its metrics text (empty without kubegrace/metrics). */
export interface Answer {
  readonly ready?: boolean;
  readonly reason?: string;
  readonly text?: string;
}

export type WorkerMessage =
  | { readonly kubegrace: 'cluster'; readonly type: 'state'; readonly state: LifecycleState }
  /** New connections on the worker since its last message. */
  | { readonly kubegrace: 'cluster'; readonly type: 'connections'; readonly count: number }
  /** The worker was signalled itself (a signal to the whole process group): the pod is leaving. */
  | { readonly kubegrace: 'cluster'; readonly type: 'shutdown'; readonly trigger: Trigger }
  | { readonly kubegrace: 'cluster'; readonly type: 'answer'; readonly id: number; readonly answer: Answer }
  /** Its metrics as it leaves (the shutdown's figures recorded): the primary serves them until it exits. */
  | { readonly kubegrace: 'cluster'; readonly type: 'final-metrics'; readonly text: string };

type Tagged = { readonly kubegrace: 'cluster'; readonly type: string };

function isTagged(message: unknown): message is Tagged {
  return (
    typeof message === 'object' &&
    message !== null &&
    (message as { kubegrace?: unknown }).kubegrace === 'cluster' &&
    typeof (message as { type?: unknown }).type === 'string'
  );
}

export function isPrimaryMessage(message: unknown): message is PrimaryMessage {
  return isTagged(message) && ['shutdown', 'timing', 'propagated', 'ask'].includes(message.type);
}

export function isWorkerMessage(message: unknown): message is WorkerMessage {
  return (
    isTagged(message) &&
    ['state', 'connections', 'shutdown', 'answer', 'final-metrics'].includes(message.type)
  );
}
