/**
 * At start-up, the own pod's spec against the settings: adopt its grace period when none was
 * configured, warn about settings that disagree with it, and check that the phase budgets fit.
 */
import { KubegraceError } from '../errors.js';
import type { Host } from '../host.js';
import { budgetMessage, podBudget, preStopSeconds } from './pod-timing.js';
import type { PodTiming } from './own-pod.js';
import type { ApiWarnings } from './warnings.js';

/**
 * Throws `ERR_KUBEGRACE_BUDGET_EXCEEDS_GRACE` when the budgets do not fit and `budgetCheck` is `error`.
 * `late`: the pod was first read after `kg.use` had resolved (the API was unavailable at start-up);
 * a start that already succeeded cannot be refused any more, so the same message is logged as an error.
 */
export function checkPodSpec(
  host: Host,
  pod: PodTiming,
  subject: string,
  warnings: ApiWarnings,
  late = false,
): void {
  const { settings, lifecycle } = host;
  const mismatches: string[] = [];
  // An explicit option or variable wins; otherwise the pod's own spec beats the 30 s default.
  const graceFromPod = lifecycle.timing.gracePeriodSource === 'default';
  if (graceFromPod && (!late || pod.graceSeconds > 0))
    lifecycle.adoptGracePeriod(pod.graceSeconds * 1000, 'pod');
  if (!graceFromPod && settings.gracePeriodSeconds !== pod.graceSeconds) {
    mismatches.push(
      `gracePeriodSeconds (KUBEGRACE_GRACE_PERIOD_SECONDS) is ${settings.gracePeriodSeconds} s but ` +
        `terminationGracePeriodSeconds is ${pod.graceSeconds} s: set KUBEGRACE_GRACE_PERIOD_SECONDS=${pod.graceSeconds}` +
        (settings.gracePeriodSeconds > pod.graceSeconds
          ? ' (the deadline follows the pod)'
          : ' (the deadline stays at the shorter configured one)'),
    );
  }
  const sleep = preStopSeconds(pod.preStop);
  if (settings.preStopSleepSeconds !== sleep && Number.isFinite(sleep)) {
    mismatches.push(
      `preStopSleepSeconds (KUBEGRACE_PRE_STOP_SLEEP_SECONDS) is ${settings.preStopSleepSeconds} s but the ` +
        `preStop hook sleeps ${sleep} s: set KUBEGRACE_PRE_STOP_SLEEP_SECONDS=${sleep}`,
    );
  }
  if (mismatches.length > 0) warnings.warnOnce('mismatch', `${subject}: ${mismatches.join('; ')}`);
  const budget = podBudget(settings, { graceSeconds: pod.graceSeconds, preStop: pod.preStop });
  if (budget.fits || settings.budgetCheck === 'off') return;
  const message = budgetMessage(budget, subject);
  if (settings.budgetCheck === 'error' && late) {
    host.logger.error(
      `${message} (read after start-up: the Kubernetes API was unavailable when kg.use(kubernetes()) ran, ` +
        'so the start could not be refused; a shutdown now is cut short by the deadline)',
      { component: 'kubernetes', code: 'ERR_KUBEGRACE_BUDGET_EXCEEDS_GRACE' },
    );
    return;
  }
  if (settings.budgetCheck === 'error') {
    throw new KubegraceError('ERR_KUBEGRACE_BUDGET_EXCEEDS_GRACE', message);
  }
  warnings.warnOnce('budget', message, { code: 'ERR_KUBEGRACE_BUDGET_EXCEEDS_GRACE' });
}
