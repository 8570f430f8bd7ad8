/**
 * The bar of `npm run bench:rolling` (issue 12), per scenario over its runs: what the matrix's last
 * column says. Apart from rolling.ts so it can be tested.
 */
import type { PodResult, ScenarioResult } from '../src/cli/demo/run.js';
import { LATE_CONNECTION_GRACE_MS } from '../src/drain/http.js';
import { defaults } from '../src/options.js';
import { median } from './report.js';

/** The bar's line between busy and quiet pods: new connections per second before the SIGTERM. */
export const BUSY_ARRIVALS_PER_SECOND = 10;
/** Busy pods: exit no later than this after the ideal exit. */
export const BUSY_OVER_IDEAL_MS = 1200;
const MAX_MS = defaults.propagation.maxMs;
/** A wait that ended at `maxMs` measures a little more: the timer and the phase events run late on a busy machine. */
const MAX_MS_SLACK = 250;
/**
 * After a wait that ran to `maxMs`, the pod leaves once what it still serves is done: by the ideal
 * exit, or a request begun just before the wait ended. This is the allowance for closing sockets,
 * the cleanup phase and the exit itself, on a busy machine.
 */
const LEAVE_SLACK_MS = 750;

/** One tool's run of a scenario, as far as the bar reads it. */
export interface BarRun {
  readonly tool: string;
  readonly result: Pick<ScenarioResult, 'failed' | 'killed' | 'pods'>;
  /**
   * The longest request the scenario's clients send, in ms: its long requests when it has any, a
   * gRPC stream's whole length (ticks × the work time), else the work time.
   */
  readonly longestRequestMs: number;
}

const s = (ms: number): string => (ms / 1000).toFixed(2);
const exitMs = (result: BarRun['result']): number => median(result.pods.map((p) => p.shutdownMs));

/**
 * The bar, per scenario over every run: kubegrace loses nothing, and every old pod of it exits by
 * itself with code 0; each of its old pods that got at least 10 new connections/s before its SIGTERM
 * leaves within ideal + 1.2 s; every other one leaves no later than the fastest other tool that lost
 * nothing in any run and was never SIGKILLed (median exit), or else at the latest when the
 * propagation wait's cap says so: its propagate phase no longer than `maxMs` (give or take
 * `MAX_MS_SLACK`), and the exit no later than what it still served let it (see `podMiss`). A pod
 * that met it only by the cap, where a clean tool was faster, is named ("strictly missed"): the bar
 * can be read as the fastest clean tool wherever there is one.
 */
export function barVerdict(results: readonly BarRun[]): string {
  const ours = results.filter((r) => r.tool === 'kubegrace');
  if (ours.length === 0) return '-';
  const ourFailed = ours.reduce((n, r) => n + r.result.failed, 0);
  if (ourFailed > 0) return `MISSED: kubegrace lost ${ourFailed}`;
  const unclean = ours
    .flatMap((r) => r.result.pods)
    .filter((pod) => pod.killed || pod.exitCode !== 0)
    .map((pod) => `${pod.pod} ${pod.killed ? 'SIGKILLed' : `exit code ${pod.exitCode}`}`);
  if (ours.some((r) => r.result.killed) && unclean.length === 0) unclean.push('a pod SIGKILLed');
  if (unclean.length > 0) return `MISSED: ${unclean.join('; ')}`;
  const cleanOthers: number[] = [];
  for (const tool of new Set(results.map((r) => r.tool))) {
    if (tool === 'kubegrace') continue;
    const runs = results.filter((r) => r.tool === tool);
    if (runs.every((r) => r.result.failed === 0 && !r.result.killed)) {
      cleanOthers.push(median(runs.map((r) => exitMs(r.result))));
    }
  }
  const fastestClean = cleanOthers.length === 0 ? undefined : Math.min(...cleanOthers);
  const pods = ours.flatMap((r) => r.result.pods.map((pod) => ({ pod, longest: r.longestRequestMs })));
  const missed = pods
    .map(({ pod, longest }) => podMiss(pod, fastestClean, longest))
    .filter((m) => m !== undefined);
  if (missed.length > 0) return `MISSED: ${missed.join('; ')}`;
  // Read strictly, "no later than the fastest tool that lost nothing, or maxMs" means the fastest
  // clean tool wherever there is one; the verdict above takes either. Say where the two differ.
  const strict = pods
    .map(({ pod }) => pod)
    .filter((pod) => pod.arrivalsPerSecond < BUSY_ARRIVALS_PER_SECOND)
    .filter((pod) => fastestClean !== undefined && pod.shutdownMs > fastestClean)
    .map((pod) => `${pod.pod} exit ${s(pod.shutdownMs)} > fastest clean tool ${s(fastestClean ?? 0)} s`);
  return strict.length === 0 ? 'met' : `met within maxMs; strictly missed: ${strict.join('; ')}`;
}

/**
 * Why one kubegrace pod misses the bar, or undefined. A pod that is not busy and was not out first
 * among the clean tools meets it through the cap only when its propagation wait ran no longer than
 * `maxMs` and it then left once what it still served was done: no later than its ideal exit (which
 * already includes the last request begun before the removal) or the last moment a request may
 * begin (the end of the wait plus the drain's `LATE_CONNECTION_GRACE_MS`, which keeps a young idle
 * keep-alive socket open that long) plus the longest request, whichever is later, plus
 * `LEAVE_SLACK_MS`. A drain that hung past that is a miss, whatever the wait did.
 */
export function podMiss(
  pod: PodResult,
  fastestClean: number | undefined,
  longestRequest: number,
): string | undefined {
  const rate = `${pod.arrivalsPerSecond.toFixed(1)} conn/s`;
  if (pod.arrivalsPerSecond >= BUSY_ARRIVALS_PER_SECOND) {
    return pod.shutdownMs <= pod.idealMs + BUSY_OVER_IDEAL_MS
      ? undefined
      : `${pod.pod} (${rate}) exit ${s(pod.shutdownMs)} > ideal ${s(pod.idealMs)} + ${s(BUSY_OVER_IDEAL_MS)} s`;
  }
  if (fastestClean !== undefined && pod.shutdownMs <= fastestClean) return undefined;
  const { propagate, unready = 0 } = pod.phases;
  const beyond = fastestClean === undefined ? '' : ` > fastest clean tool ${s(fastestClean)} s`;
  if (propagate === undefined || propagate > MAX_MS + MAX_MS_SLACK) {
    return (
      `${pod.pod} (${rate}) exit ${s(pod.shutdownMs)} s${beyond}` +
      ` and propagate ${propagate === undefined ? '?' : s(propagate)} > maxMs ${s(MAX_MS)} s`
    );
  }
  const waitEnd = unready + propagate;
  const lastStart = waitEnd + LATE_CONNECTION_GRACE_MS;
  const leaveBy = Math.max(pod.idealMs, lastStart + longestRequest) + LEAVE_SLACK_MS;
  if (pod.shutdownMs <= leaveBy) return undefined;
  return (
    `${pod.pod} (${rate}) exit ${s(pod.shutdownMs)} s${beyond} and past the end of its work ` +
    `(max(ideal ${s(pod.idealMs)}, wait end ${s(waitEnd)} + ${s(LATE_CONNECTION_GRACE_MS)} + ${s(longestRequest)}) + ${s(LEAVE_SLACK_MS)} s)`
  );
}
