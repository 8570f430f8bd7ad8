/**
 * When the process will be killed, and when the shutdown must therefore be over: the one owner of
 * the grace period, the kill time, the deadline and where each came from. Pure values and functions
 * (no timers, no clock): the lifecycle keeps the current `Timing` and arms its timer from it; metrics,
 * Events, the budget check and `kubegrace check` read it.
 *
 *   kill time   = when the kubelet's clock started + the grace period, or a tighter kill time the
 *                 API or the pod spec gave (never a later one)
 *   deadline    = kill time − safety margin, or `fatal`'s own deadline when sooner
 *   reportUntil = deadline + margin/2     the exit phase (log line, Events, push) is cut here
 *   hardExitAt  = reportUntil + min(100 ms, margin/4)   the watchdog ends the process here
 */

/** Where the grace period in force came from. */
export type GracePeriodSource = 'option' | 'env' | 'default' | 'pod';

/** Where the kill time in force came from. */
export type KillTimeSource =
  /** The shutdown's start plus the grace period. */
  | 'grace-period'
  /** The pod spec: the kubelet's signal came after the preStop hook, or an HTTP preStop started it. */
  | 'pod-spec'
  /** The pod's `deletionTimestamp` as the API reported it. */
  | 'deletion';

/** What started a shutdown. The label names it in logs, the summary, metrics and Events. */
export type Trigger =
  | { readonly kind: 'signal'; readonly signal: NodeJS.Signals }
  /** `GET`/`POST /prestop` on the management port. */
  | { readonly kind: 'prestop' }
  /** The pod's deletion, seen through the API (`kubegrace/kubernetes`). */
  | { readonly kind: 'deletion' }
  /** `fatal(error)` or an uncaught error. */
  | { readonly kind: 'fatal' }
  /** `kg.shutdown(reason)`. */
  | { readonly kind: 'manual'; readonly reason: string };

export type TriggerKind = Trigger['kind'];

/** The text that names a trigger: the signal, the reason of a manual shutdown, else the kind. */
export function triggerLabel(trigger: Trigger): string {
  if (trigger.kind === 'signal') return trigger.signal;
  if (trigger.kind === 'manual') return trigger.reason;
  return trigger.kind;
}

/** A shutdown's timing; `undefined` fields are not known until the shutdown begins. */
export interface Timing {
  readonly gracePeriodMs: number;
  readonly gracePeriodSource: GracePeriodSource;
  readonly safetyMarginMs: number;
  /** Epoch ms when the kubelet's clock started (a preStop hook's start, else the trigger). */
  readonly startedAt: number | undefined;
  /** Epoch ms the process is expected to be killed. */
  readonly killAt: number | undefined;
  readonly killAtSource: KillTimeSource | undefined;
  /** Epoch ms by which every phase must be over. */
  readonly deadlineAt: number | undefined;
  /** `fatal` set the deadline (its own, shorter budget) rather than the kill time. */
  readonly deadlineByFatal: boolean;
  /** The exit phase (last log line, Events, push) is cut here. */
  readonly reportUntil: number | undefined;
  /** The watchdog ends the process here if the event loop is blocked. */
  readonly hardExitAt: number | undefined;
}

/** The watchdog acts at most this long after the report slice ends (less with a small margin). */
const HARD_EXIT_AFTER_REPORT_MS = 100;

/** Internal state behind a `Timing`: the inputs the derived times are computed from. */
interface Inputs {
  readonly gracePeriodMs: number;
  readonly gracePeriodSource: GracePeriodSource;
  readonly safetyMarginMs: number;
  readonly startedAt?: number;
  /** The tightest kill time anything but the grace period gave, and its source. */
  readonly tightKill?: { readonly at: number; readonly source: Exclude<KillTimeSource, 'grace-period'> };
  readonly fatalDeadlineAt?: number;
}

const inputs = new WeakMap<Timing, Inputs>();

function derive(input: Inputs): Timing {
  let killAt: number | undefined;
  let killAtSource: KillTimeSource | undefined;
  if (input.startedAt !== undefined) {
    killAt = input.startedAt + input.gracePeriodMs;
    killAtSource = 'grace-period';
  }
  if (input.tightKill !== undefined && (killAt === undefined || input.tightKill.at < killAt)) {
    killAt = input.tightKill.at;
    killAtSource = input.tightKill.source;
  }
  let deadlineAt = killAt === undefined ? undefined : killAt - input.safetyMarginMs;
  let deadlineByFatal = false;
  if (
    input.fatalDeadlineAt !== undefined &&
    (deadlineAt === undefined || input.fatalDeadlineAt < deadlineAt)
  ) {
    deadlineAt = input.fatalDeadlineAt;
    deadlineByFatal = true;
  }
  const times = deadlineAt === undefined ? undefined : deadlineTimes(deadlineAt, input.safetyMarginMs);
  const timing: Timing = Object.freeze({
    gracePeriodMs: input.gracePeriodMs,
    gracePeriodSource: input.gracePeriodSource,
    safetyMarginMs: input.safetyMarginMs,
    startedAt: input.startedAt,
    killAt,
    killAtSource,
    deadlineAt,
    deadlineByFatal,
    reportUntil: times?.reportUntil,
    hardExitAt: times?.hardExitAt,
  });
  inputs.set(timing, input);
  return timing;
}

function inputsOf(timing: Timing): Inputs {
  const found = inputs.get(timing);
  if (found === undefined) throw new TypeError('not a Timing made by createTiming()');
  return found;
}

/** Timing before any shutdown: the configured grace period and safety margin. */
export function createTiming(options: {
  readonly gracePeriodMs: number;
  readonly gracePeriodSource: GracePeriodSource;
  readonly safetyMarginMs: number;
}): Timing {
  return derive({ ...options });
}

/** The shutdown began; the kubelet's clock started at `startedAt`. Only the first call counts. */
export function beginShutdown(timing: Timing, startedAt: number): Timing {
  const input = inputsOf(timing);
  if (input.startedAt !== undefined) return timing;
  return derive({ ...input, startedAt });
}

/**
 * Use another grace period (the pod's own `terminationGracePeriodSeconds` when none was configured).
 * During a shutdown the kill time moves with it, earlier or later, but never past a tighter kill
 * time the API or the pod spec gave.
 */
export function adoptGracePeriod(timing: Timing, gracePeriodMs: number, source: GracePeriodSource): Timing {
  if (!Number.isFinite(gracePeriodMs) || gracePeriodMs <= 0) {
    throw new RangeError(`a grace period must be a positive number of ms, received ${gracePeriodMs}`);
  }
  return derive({ ...inputsOf(timing), gracePeriodMs, gracePeriodSource: source });
}

/** A better-known kill time: kept only when it is earlier than the one in force. */
export function tightenKillTime(
  timing: Timing,
  killAt: number,
  source: Exclude<KillTimeSource, 'grace-period'>,
): Timing {
  const input = inputsOf(timing);
  if (input.tightKill !== undefined && input.tightKill.at <= killAt) return timing;
  return derive({ ...input, tightKill: { at: killAt, source } });
}

/** `fatal(error)`: the phases must be over by `deadlineAt` (its own budget), if that is sooner. */
export function tightenForFatal(timing: Timing, deadlineAt: number): Timing {
  const input = inputsOf(timing);
  if (input.fatalDeadlineAt !== undefined && input.fatalDeadlineAt <= deadlineAt) return timing;
  return derive({ ...input, fatalDeadlineAt: deadlineAt });
}

/** The report slice and the watchdog's hard exit for a deadline; see the timeline at the top. */
export function deadlineTimes(
  deadlineAt: number,
  safetyMarginMs: number,
): { readonly deadlineAt: number; readonly reportUntil: number; readonly hardExitAt: number } {
  const reportUntil = deadlineAt + safetyMarginMs / 2;
  return {
    deadlineAt,
    reportUntil,
    hardExitAt: reportUntil + Math.min(HARD_EXIT_AFTER_REPORT_MS, safetyMarginMs / 4),
  };
}

/** What the pod spec says about the kill time. */
export interface PodSpecTiming {
  readonly graceSeconds: number;
  /** How long the preStop hook holds the signal back (0: none, or a hook that does not sleep). */
  readonly preStopSeconds: number;
}

/**
 * The kill time the pod spec implies for a shutdown that began at `startedAt` (epoch ms), or
 * undefined when the trigger says nothing about the kubelet's clock:
 * - a signal comes after the preStop hook, which already spent part of the grace period;
 * - an HTTP preStop (`/prestop`) runs at the start of the grace period.
 */
export function killTimeFromPodSpec(
  trigger: TriggerKind,
  startedAt: number,
  pod: PodSpecTiming,
): number | undefined {
  const graceMs = pod.graceSeconds * 1000;
  if (trigger === 'signal') return startedAt - pod.preStopSeconds * 1000 + graceMs;
  if (trigger === 'prestop') return startedAt + graceMs;
  return undefined;
}
