import type { PropagationReport } from './adaptive.js';

const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** What set the silence needed, in words (`PropagationReport.silenceBasis`). */
export const SILENCE_BASIS: Readonly<Record<NonNullable<PropagationReport['silenceBasis']>, string>> = {
  rate: 'by the rate',
  gap: 'twice the longest gap between new connections',
  'quiet-period': 'the quiet period',
  idle: 'the quiet period, as the pod was idle',
  'proxy-allowance': 'capped at the proxy allowance once confirmed',
};

/**
 * One sentence on what ended a propagation wait, for the `PropagationComplete` Event: the same facts
 * as the summary line's `propagation` field, in words.
 */
export function describePropagation(report: PropagationReport): string {
  const head = `propagation wait ended after ${s(report.waitedMs)}`;
  const rate =
    report.ratePerSecond === undefined || report.ratePerSecond === 0
      ? ''
      : ` at ${report.ratePerSecond} new connections/s`;
  const api = report.confirmationUnavailable ? '; the Kubernetes API could not confirm the removal' : '';
  const confirmed =
    report.confirmedAfterMs === undefined
      ? ''
      : `the EndpointSlices showed the pod removed ${s(report.confirmedAfterMs)} after the start`;
  switch (report.endedBy) {
    case 'fixed':
      return `${head}: fixed delay (propagation.delayMs)`;
    case 'deadline':
      return `${head}: cut short by the shutdown deadline`;
    case 'aborted':
      return `${head}: cut short before its end (the shutdown's propagation budget ran out, e.g. after fatal)`;
    case 'max':
      return `${head}: reached propagation.maxMs without evidence that traffic had moved away${confirmed === '' ? '' : ` (${confirmed})`}${api}`;
    case 'min':
      return `${head}: propagation.minMs${confirmed === '' ? '' : ` (${confirmed})`}`;
    case 'confirmed':
      return `${head}: ${confirmed}, then the proxy allowance (propagation.proxyAllowanceMs)`;
    case 'quiet':
      return `${head}: no new connection for ${s(report.silenceMs ?? 0)}${rate}${
        report.requiredSilenceMs === undefined
          ? ''
          : ` (needed ${s(report.requiredSilenceMs)}${report.silenceBasis === undefined ? '' : `, ${SILENCE_BASIS[report.silenceBasis]}`})`
      }${confirmed === '' ? '' : `, counted after ${confirmed}`}${api}`;
  }
}
