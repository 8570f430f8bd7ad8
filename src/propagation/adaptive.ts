import { phaseEndCause, type Participant } from '../lifecycle.js';
import type { TrafficActivity } from './activity.js';
import {
  decide,
  type ConfirmationState,
  type Decision,
  type PropagationEnd,
  type SilenceNeed,
} from './evidence.js';
import { SILENCE_BASIS } from './describe.js';
import { afterPendingIo, monotonicNow } from '../wait.js';

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
  /**
   * The silence that counted as evidence at that rate — after a confirmation, the one applied (capped at
   * the proxy allowance); absent when no traffic allowed a conclusion.
   */
  readonly requiredSilenceMs?: number;
  /**
   * What set `requiredSilenceMs` (with it): `rate` (long enough at the arrival rate), `gap` (twice the
   * longest gap seen between new connections), `quiet-period` (the floor), `idle` (no traffic and
   * nothing open: the quiet period suffices), `proxy-allowance` (confirmed: the need was longer and is
   * capped at `proxyAllowanceMs`).
   */
  readonly silenceBasis?: Exclude<SilenceNeed['basis'], 'no-traffic'>;
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
  let totalAtShutdown = 0;
  return {
    name: 'propagation:adaptive',
    ready() {
      readyAt ??= now();
    },
    unready() {
      if (shutdownAt !== undefined) return;
      shutdownAt = now();
      totalAtShutdown = activity.total;
    },
    async propagate(ctx) {
      const waitStart = now();
      const shutdownStart = shutdownAt ?? waitStart;
      if (shutdownAt === undefined) totalAtShutdown = activity.total;
      const observedFrom = Math.max(readyAt ?? createdAt, shutdownStart - options.rateWindowMs);
      const bound = AbortSignal.any([ctx.signal, AbortSignal.timeout(options.maxMs)]);
      const idleAfterMs = Math.max(options.rateWindowMs, IDLE_AFTER_MS);

      let confirmation: ConfirmationState = { kind: 'none' };
      let unavailable = false;
      const confirmations = options.confirmations?.() ?? [];
      let confirmationSettled: Promise<void> | undefined;
      if (confirmations.length > 0) {
        confirmation = { kind: 'pending' };
        // A confirmation that throws at once is a failed one, not the end of the wait.
        const answers = confirmations.map((confirm) => Promise.resolve().then(() => confirm(bound)));
        confirmationSettled = Promise.all(answers).then(
          (results) => {
            if (results.some((answer) => answer === false)) {
              unavailable = true;
              confirmation = { kind: 'none' };
            } else {
              confirmation = { kind: 'confirmed', at: now() };
            }
          },
          (error: unknown) => {
            ctx.warn(`a propagation confirmation failed, relying on the silence alone: ${String(error)}`);
            unavailable = true;
            confirmation = { kind: 'none' };
          },
        );
      }

      const look = (): Decision => {
        const t = now();
        const arrivals = activity.arrivalsSince(observedFrom);
        // A full ring dropped older arrivals: the history starts at the oldest one kept.
        const from = arrivals.length >= activity.capacity ? (arrivals[0] ?? observedFrom) : observedFrom;
        const last = activity.lastConnectionAt;
        const idle = (options.openConnections?.() ?? 1) === 0 && (last === 0 || t - last >= idleAfterMs);
        return decide({
          now: t,
          waitStart,
          observedFrom: from,
          arrivals,
          idle,
          quietPeriodMs: options.quietPeriodMs,
          minMs: options.minMs,
          maxMs: options.maxMs,
          proxyAllowanceMs: options.proxyAllowanceMs,
          confirmation,
          shutdownAt: shutdownStart,
        });
      };

      /** Until `ms` passed, the wait is aborted, or a pending confirmation settles; leaves nothing behind. */
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
          // Only while pending: a settled promise would wake every later nap at once (a spin).
          if (confirmation.kind === 'pending') void confirmationSettled?.then(done);
        });

      let decision = look();
      for (;;) {
        if (decision.done) {
          if (decision.ended !== 'max' && !ctx.signal.aborted) {
            // Done as far as this turn knows: after a stalled loop, connections may be waiting to be
            // accepted. Take them in; if there were any, look again. Not once the phase is cut: the
            // lifecycle gives an aborted participant one turn, which this look would spend, and the
            // phase would end before the wait reported (the drain takes late connections in anyway).
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

      const end = now();
      const cause = phaseEndCause(ctx, end);
      const endedBy: PropagationEnd = decision.done
        ? decision.ended
        : end - waitStart >= options.maxMs - 5 || cause === 'budget'
          ? 'max'
          : cause === 'deadline'
            ? 'deadline'
            : 'aborted';
      const report = buildReport(endedBy, decision.need, end);
      if (endedBy === 'max')
        ctx.warn(maxMessage(report, decision.need, confirmation, waitStart, unavailable));
      options.onEnd?.(report);

      function buildReport(ended: PropagationEnd, need: SilenceNeed, at: number): PropagationReport {
        const last = activity.lastConnectionAt;
        const confirmedAt = confirmation.kind === 'confirmed' ? confirmation.at : undefined;
        return {
          strategy: 'adaptive',
          endedBy: ended,
          waitedMs: Math.round(at - waitStart),
          newConnections: activity.total - totalAtShutdown,
          ratePerSecond: round(need.ratePerSecond),
          ...(Number.isFinite(need.requiredMs) && need.basis !== 'no-traffic'
            ? { requiredSilenceMs: Math.round(need.requiredMs), silenceBasis: need.basis }
            : {}),
          silenceMs: Math.round(at - Math.max(last, waitStart)),
          ...(confirmedAt === undefined
            ? {}
            : { confirmedAfterMs: Math.round(Math.max(0, confirmedAt - waitStart)) }),
          ...(unavailable ? { confirmationUnavailable: true } : {}),
        };
      }
    },
  };

  function maxMessage(
    report: PropagationReport,
    need: SilenceNeed,
    confirmation: ConfirmationState,
    waitStart: number,
    unavailable: boolean,
  ): string {
    const cap = `propagation wait reached propagation.maxMs (${options.maxMs} ms)`;
    if (confirmation.kind === 'pending') {
      return `${cap}: a propagation confirmation did not agree in time (in a cluster: the EndpointSlices still list this pod as ready; check the Service, publishNotReadyAddresses, and that the pod is recognised)`;
    }
    const api = unavailable ? '; the Kubernetes API could not confirm the removal' : '';
    const silenceMs = report.silenceMs ?? 0;
    if (confirmation.kind === 'confirmed' && options.proxyAllowanceMs >= options.maxMs) {
      return `${cap}: the removal was confirmed, but propagation.proxyAllowanceMs (${options.proxyAllowanceMs} ms) is not shorter than propagation.maxMs`;
    }
    if (confirmation.kind === 'confirmed') {
      // With no new connection after it, the wait needed the allowance after the confirmation, or the
      // quiet period if longer (the silence counted from it is capped at the longer of the two).
      const { proxyAllowanceMs, quietPeriodMs } = options;
      const confirmedAfterMs = Math.max(0, confirmation.at - waitStart);
      if (confirmedAfterMs + Math.max(proxyAllowanceMs, quietPeriodMs) > options.maxMs) {
        const what =
          proxyAllowanceMs >= quietPeriodMs
            ? `propagation.proxyAllowanceMs (${proxyAllowanceMs} ms)`
            : `propagation.quietPeriodMs (${quietPeriodMs} ms, longer than the allowance)`;
        return `${cap}: the removal was confirmed ${seconds(confirmedAfterMs)} s after the start, too late for ${what} to pass within it; if the EndpointSlices change this late as a rule, raise propagation.maxMs (and the grace period)`;
      }
    }
    if (silenceMs < options.quietPeriodMs) {
      return `${cap}: new connections were still arriving ${seconds(silenceMs)} s before the end, so a router still sends traffic here; raise propagation.maxMs (and the grace period) above that router's lag${api}`;
    }
    const silence = `${seconds(silenceMs)} s without a new connection`;
    if (need.basis === 'no-traffic') {
      return `${cap}: too few new connections before and during the shutdown to judge a silence (${silence}); clients that only use pooled connections give no such evidence, so the wait runs to its maximum${api}`;
    }
    if (!Number.isFinite(need.requiredMs)) {
      return `${cap}: new connections had fallen away before the last one (${silence}), too few of late to judge a silence by, so the wait runs to its maximum${api}`;
    }
    return `${cap}: ${silence}, but at ${round(need.ratePerSecond)} new connections/s a silence of ${seconds(need.requiredMs)} s was needed (${SILENCE_BASIS[need.basis]})${api}`;
  }
}

/** A pod counts as idle only after this long without a new connection (and none open). */
const IDLE_AFTER_MS = 10 * 60_000;

const round = (n: number): number => Math.round(n * 100) / 100;
const seconds = (ms: number): string => (Number.isFinite(ms) ? (ms / 1000).toFixed(1) : '∞');
