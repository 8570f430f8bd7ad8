import type { Participant } from '../lifecycle.js';
import type { TrafficActivity } from './activity.js';
import {
  decide,
  type ConfirmationState,
  type Decision,
  type PropagationEnd,
  type SilenceNeed,
} from './evidence.js';
import { afterPendingIo, monotonicNow } from './wait.js';

/**
 * Something that must also agree that traffic has moved away, e.g. the EndpointSlices showing this
 * pod removed. Resolves `true` (or nothing) when it agrees, `false` when it cannot tell (the API is
 * unreachable, the pod cannot be recognised), which leaves the decision to the silence alone. It is
 * given the phase's signal and must stop waiting on abort.
 */
export type PropagationConfirmation = (signal: AbortSignal) => Promise<boolean | void>;

/** How a propagation wait ended, for the summary line, the Event and the metric label. */
export interface PropagationReport {
  readonly strategy: 'adaptive' | 'fixed';
  readonly endedBy: PropagationEnd;
  readonly waitedMs: number;
  /** New connections that arrived during the shutdown (from its start to the end of the wait). */
  readonly newConnections?: number;
  /** New connections per second while routed, measured over the rate window. */
  readonly ratePerSecond?: number;
  /** The silence that counted as evidence at that rate; absent when no traffic allowed a conclusion. */
  readonly requiredSilenceMs?: number;
  /** Silence since the last new connection when the wait ended. */
  readonly silenceMs?: number;
  /** When every confirmation agreed, after the start of the wait. */
  readonly confirmedAfterMs?: number;
  /** Why the confirmation could not be used, when it could not. */
  readonly confirmationUnavailable?: boolean;
}

export interface AdaptivePropagationOptions {
  readonly quietPeriodMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  /** After the confirmation: time for node proxies to reprogram. */
  readonly proxyAllowanceMs: number;
  /** How far back before the shutdown the arrival rate is measured. */
  readonly rateWindowMs: number;
  readonly activity: TrafficActivity;
  /** Connections open now on the attached servers (an idle pod needs no long wait). */
  readonly openConnections?: () => number;
  /** Extra conditions, read when the wait starts. */
  readonly confirmations?: () => readonly PropagationConfirmation[];
  /** Told how each wait ended. */
  readonly onEnd?: (report: PropagationReport) => void;
  readonly now?: () => number;
}

/**
 * Keeps serving until the silence since the last new connection is evidence, at the arrival rate the
 * pod was getting, that no router still sends it traffic; in a cluster, until the EndpointSlices show
 * the removal plus an allowance for node proxies. Bounded by `minMs` and `maxMs`. See `decide`.
 */
export function createAdaptivePropagation(options: AdaptivePropagationOptions): Participant {
  const { activity } = options;
  const now = options.now ?? monotonicNow;
  const createdAt = now();
  let readyAt: number | undefined;
  let shutdownAt: number | undefined;
  return {
    name: 'propagation:adaptive',
    ready() {
      readyAt ??= now();
    },
    unready() {
      shutdownAt ??= now();
    },
    async propagate(ctx) {
      const waitStart = now();
      const shutdownStart = shutdownAt ?? waitStart;
      const observedFrom = Math.max(readyAt ?? createdAt, shutdownStart - options.rateWindowMs);
      const bound = AbortSignal.any([ctx.signal, AbortSignal.timeout(options.maxMs)]);

      let confirmation: ConfirmationState = { kind: 'none' };
      let unavailable = false;
      const confirmations = options.confirmations?.() ?? [];
      let confirmationSettled: Promise<void> = new Promise(() => undefined);
      if (confirmations.length > 0) {
        confirmation = { kind: 'pending' };
        confirmationSettled = Promise.all(confirmations.map((confirm) => confirm(bound))).then(
          (answers) => {
            if (answers.some((answer) => answer === false)) {
              unavailable = true;
              confirmation = { kind: 'none' };
            } else {
              confirmation = { kind: 'confirmed', at: now() };
            }
          },
          (error: unknown) => {
            ctx.warn(`confirmation failed, relying on the silence alone: ${String(error)}`);
            unavailable = true;
            confirmation = { kind: 'none' };
          },
        );
      }

      const look = (): Decision => {
        const arrivals = activity.arrivalsSince(observedFrom);
        // A full ring dropped older arrivals: the history starts at the oldest one kept.
        const from = arrivals.length >= activity.capacity ? (arrivals[0] ?? observedFrom) : observedFrom;
        return decide({
          now: now(),
          waitStart,
          observedFrom: from,
          arrivals,
          openConnections: options.openConnections?.() ?? 1,
          quietPeriodMs: options.quietPeriodMs,
          minMs: options.minMs,
          maxMs: options.maxMs,
          proxyAllowanceMs: options.proxyAllowanceMs,
          confirmation,
        });
      };

      /** Until `ms` passed, the wait is aborted, or a confirmation settles; leaves no listener behind. */
      const nap = (ms: number): Promise<void> =>
        new Promise((resolve) => {
          const done = (): void => {
            clearTimeout(timer);
            bound.removeEventListener('abort', done);
            resolve();
          };
          const timer = setTimeout(done, ms);
          timer.unref();
          bound.addEventListener('abort', done, { once: true });
          if (bound.aborted) done();
          void confirmationSettled.then(done);
        });

      let decision = look();
      for (;;) {
        if (decision.done) {
          if (decision.ended !== 'max') {
            // Done as far as this turn knows: after a stalled loop, connections may be waiting to be
            // accepted. Take them in; if there were any, look again.
            const seen = activity.lastConnectionAt;
            await afterPendingIo();
            if (activity.lastConnectionAt !== seen) {
              decision = look();
              continue;
            }
          }
          break;
        }
        if (bound.aborted) break;
        await nap(Math.max(1, decision.wakeAt - now()));
        decision = look();
        if (!decision.done && bound.aborted) break;
      }

      const endedBy: PropagationEnd = decision.done
        ? decision.ended
        : ctx.signal.aborted
          ? 'deadline'
          : 'max';
      const report = buildReport(endedBy, decision.need);
      if (endedBy === 'max') ctx.warn(maxMessage(report, decision.need, confirmation, unavailable));
      options.onEnd?.(report);

      function buildReport(ended: PropagationEnd, need: SilenceNeed): PropagationReport {
        const end = now();
        const last = activity.lastConnectionAt;
        const confirmedAt = confirmation.kind === 'confirmed' ? confirmation.at : undefined;
        return {
          strategy: 'adaptive',
          endedBy: ended,
          waitedMs: end - waitStart,
          newConnections: activity.arrivalsSince(shutdownStart).length,
          ratePerSecond: round(need.ratePerSecond),
          ...(Number.isFinite(need.requiredMs) ? { requiredSilenceMs: Math.round(need.requiredMs) } : {}),
          silenceMs: Math.round(end - Math.max(last, waitStart)),
          ...(confirmedAt === undefined ? {} : { confirmedAfterMs: Math.max(0, confirmedAt - waitStart) }),
          ...(unavailable ? { confirmationUnavailable: true } : {}),
        };
      }
    },
  };

  function maxMessage(
    report: PropagationReport,
    need: SilenceNeed,
    confirmation: ConfirmationState,
    unavailable: boolean,
  ): string {
    const cap = `propagation wait reached propagation.maxMs (${options.maxMs} ms)`;
    if (confirmation.kind === 'pending') {
      return `${cap}: the EndpointSlices still list this pod as ready (check the Service, publishNotReadyAddresses, and that the pod is recognised)`;
    }
    const silence = `${seconds(report.silenceMs ?? 0)} s without a new connection`;
    const api = unavailable ? '; the Kubernetes API could not confirm the removal' : '';
    if (need.basis === 'no-traffic') {
      return `${cap}: too few new connections before and during the shutdown to judge a silence (${silence}); clients that only use pooled connections give no such evidence, so the wait runs to its maximum${api}`;
    }
    return `${cap}: ${silence}, but at ${round(need.ratePerSecond)} new connections/s a silence of ${seconds(need.requiredMs)} s was needed (${need.basis === 'gap' ? 'the longest gap seen between new connections' : 'the arrival rate'})${api}`;
  }
}

const round = (n: number): number => Math.round(n * 100) / 100;
const seconds = (ms: number): string => (Number.isFinite(ms) ? (ms / 1000).toFixed(1) : '∞');
