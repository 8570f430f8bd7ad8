/** The text of the Events kubegrace records on its pod, from the shutdown's facts. */
import type { ShutdownSummary } from '../lifecycle.js';
import { describePropagation } from '../propagation/describe.js';
import type { PropagationReport } from '../propagation/adaptive.js';
import type { Timing } from '../timing.js';
import type { EventReason, EventType } from './events.js';
import { formatSeconds } from './pod-timing.js';

export type EventLine = [type: EventType, reason: EventReason, message: string];

const KILL_TIME_FROM = {
  'grace-period': 'the grace period',
  'pod-spec': "the pod's spec",
  deletion: "the pod's deletion",
} as const;

/** `ShutdownStarted`: what started it and when it must be over. */
export function shutdownStartedEvent(trigger: string, timing: Timing, now: number): EventLine {
  const deadline = timing.deadlineAt ?? now;
  const margin = timing.deadlineByFatal
    ? 'the deadline of fatal(error)'
    : `${timing.safetyMarginMs} ms before the kill time, from ${KILL_TIME_FROM[timing.killAtSource ?? 'grace-period']}`;
  return [
    'Normal',
    'ShutdownStarted',
    `shutdown started by ${trigger}; deadline ${new Date(deadline).toISOString()} ` +
      `(${formatSeconds(Math.max(0, deadline - now))} from now, ${margin})`,
  ];
}

/** `PropagationComplete`: what ended the wait. */
export function propagationEvent(report: PropagationReport | undefined, durationMs: number): EventLine {
  return [
    'Normal',
    'PropagationComplete',
    report ? describePropagation(report) : `propagation wait ended after ${formatSeconds(durationMs)}`,
  ];
}

/** `Drained`: finished, or cut short by the deadline. */
export function drainedEvent(durationMs: number, deadlineAt: number | undefined, now: number): EventLine {
  return deadlineAt !== undefined && now >= deadlineAt
    ? ['Warning', 'Drained', `drain cut short by the deadline after ${formatSeconds(durationMs)}`]
    : ['Normal', 'Drained', `drain finished in ${formatSeconds(durationMs)}`];
}

/** The Events of the exit phase: the outcome, and a Warning for each thing that went wrong. */
export function finalEvents(summary: ShutdownSummary): EventLine[] {
  const phases = Object.entries(summary.phases)
    .filter(([name]) => name !== 'exit')
    .map(([name, ms]) => `${name} ${formatSeconds(ms ?? 0)}`)
    .join(', ');
  const out: EventLine[] = [
    [
      summary.outcome === 'clean' ? 'Normal' : 'Warning',
      'ShutdownComplete',
      `shutdown ${summary.outcome} in ${formatSeconds(summary.durationMs)} (trigger ${summary.trigger}, exit code ${summary.exitCode}): ${phases}`,
    ],
  ];
  if (summary.outcome === 'deadline') {
    out.push([
      'Warning',
      'ShutdownDeadlineReached',
      `the shutdown reached its deadline ${new Date(summary.deadlineAt).toISOString()} in its ` +
        `${summary.deadlinePhase ?? 'cleanup'} phase, before it finished: what was still open was cut short; ` +
        'raise terminationGracePeriodSeconds or shorten drain.timeoutMs / cleanupTimeoutMs',
    ]);
  }
  if (summary.forced > 0) {
    out.push([
      'Warning',
      'ConnectionsForcedClosed',
      `${summary.forced} connection(s), stream(s) or lease(s) were closed by force at the end of their budget`,
    ]);
  }
  if (summary.failures.length > 0) {
    out.push([
      'Warning',
      'ShutdownHookFailed',
      `failed or overran: ${summary.failures.map((f) => `${f.name} (${f.phase}, ${f.status})`).join(', ')}`,
    ]);
  }
  return out;
}
