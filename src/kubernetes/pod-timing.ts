/**
 * Timing facts read from a pod spec: the grace period, what the preStop hook holds back, which
 * container is ours, the kill time a deletion implies, and the budget arithmetic against all of it.
 * Pure: used by the live integration (the own pod through the API) and by `kubegrace check` (manifests).
 */
import { settingSpecs, shutdownBudget, type BudgetTerm, type ResolvedSettings } from '../options.js';

/** `terminationGracePeriodSeconds` when a pod spec leaves it out. */
export const DEFAULT_GRACE_SECONDS = 30;

export interface EnvVarLike {
  readonly name?: unknown;
  readonly value?: unknown;
  readonly valueFrom?: unknown;
}

export interface HandlerLike {
  readonly sleep?: { readonly seconds?: unknown } | null;
  readonly exec?: { readonly command?: unknown } | null;
  readonly httpGet?: { readonly path?: unknown; readonly port?: unknown } | null;
  readonly tcpSocket?: unknown;
}

export interface ProbeLike extends HandlerLike {
  readonly grpc?: unknown;
}

export interface ContainerLike {
  readonly name?: unknown;
  readonly env?: unknown;
  readonly lifecycle?: { readonly preStop?: HandlerLike | null } | null;
  readonly livenessProbe?: ProbeLike | null;
  readonly readinessProbe?: ProbeLike | null;
  readonly startupProbe?: ProbeLike | null;
}

export interface PodSpecLike {
  readonly terminationGracePeriodSeconds?: unknown;
  readonly containers?: unknown;
}

/** What the preStop hook does before SIGTERM, as far as a spec can tell. */
export type PreStop =
  | { readonly kind: 'none' }
  | { readonly kind: 'sleep'; readonly seconds: number; readonly source: string }
  | {
      readonly kind: 'exec-sleep';
      readonly seconds: number;
      readonly source: string;
      readonly command: string;
    }
  | { readonly kind: 'exec'; readonly source: string; readonly command: string }
  | { readonly kind: 'http'; readonly source: string; readonly path: string };

/** Seconds the preStop hook is known to hold SIGTERM back (0 when unknown or none). */
export function preStopSeconds(preStop: PreStop): number {
  return preStop.kind === 'sleep' || preStop.kind === 'exec-sleep' ? preStop.seconds : 0;
}

export function preStopOf(container: ContainerLike | undefined): PreStop {
  const handler = container?.lifecycle?.preStop;
  if (!handler) return { kind: 'none' };
  const sleepSeconds = handler.sleep?.seconds;
  if (
    handler.sleep &&
    typeof sleepSeconds === 'number' &&
    Number.isFinite(sleepSeconds) &&
    sleepSeconds >= 0
  ) {
    return { kind: 'sleep', seconds: sleepSeconds, source: 'lifecycle.preStop.sleep.seconds' };
  }
  const command = handler.exec?.command;
  if (Array.isArray(command) && command.every((c) => typeof c === 'string')) {
    const words = command as readonly string[];
    const seconds = sleepSecondsOf(words);
    const shown = words.join(' ');
    return seconds === undefined
      ? { kind: 'exec', source: 'lifecycle.preStop.exec.command', command: shown }
      : { kind: 'exec-sleep', seconds, source: 'lifecycle.preStop.exec.command', command: shown };
  }
  if (handler.httpGet) {
    const path = typeof handler.httpGet.path === 'string' ? handler.httpGet.path : '/';
    return { kind: 'http', source: 'lifecycle.preStop.httpGet', path };
  }
  return { kind: 'none' };
}

const SHELLS = new Set(['sh', 'bash', 'ash', 'dash', 'zsh', 'busybox']);

/**
 * Seconds an exec preStop sleeps: `sleep 5`, `/bin/sleep 5s`, `sh -c "sleep 10 && nginx -s quit"`
 * (every `sleep` in a shell script adds up). GNU suffixes s/m/h/d and several operands are summed
 * as sleep(1) does. Undefined when the command does not sleep a known time.
 */
export function sleepSecondsOf(command: readonly string[]): number | undefined {
  const [program, ...args] = command;
  if (program === undefined) return undefined;
  const base = program.split('/').pop() ?? program;
  if (base === 'sleep') return sleepOperands(args);
  if (SHELLS.has(base)) {
    const scriptIndex = args.indexOf('-c');
    const script = scriptIndex === -1 ? undefined : args[scriptIndex + 1];
    if (script === undefined) return undefined;
    let total: number | undefined;
    for (const match of script.matchAll(
      /(?:^|[\s;&|(])(?:\/\S*\/)?sleep((?:\s+[0-9.]+[smhd]?|\s+infinity)+)/g,
    )) {
      const seconds = sleepOperands((match[1] ?? '').trim().split(/\s+/));
      if (seconds !== undefined) total = (total ?? 0) + seconds;
    }
    return total;
  }
  return undefined;
}

function sleepOperands(operands: readonly string[]): number | undefined {
  if (operands.length === 0) return undefined;
  let total = 0;
  for (const operand of operands) {
    if (operand === 'infinity') return Number.POSITIVE_INFINITY;
    const m = /^(\d+(?:\.\d+)?)([smhd]?)$/.exec(operand);
    if (!m) return undefined;
    const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
    total += Number(m[1]) * unit;
  }
  return total;
}

export function graceOf(spec: PodSpecLike | undefined): {
  readonly seconds: number;
  readonly explicit: boolean;
} {
  const value = spec?.terminationGracePeriodSeconds;
  return typeof value === 'number' && Number.isFinite(value) && value >= 0
    ? { seconds: value, explicit: true }
    : { seconds: DEFAULT_GRACE_SECONDS, explicit: false };
}

function containersOf(spec: PodSpecLike | undefined): readonly ContainerLike[] {
  const list = spec?.containers;
  return Array.isArray(list)
    ? (list.filter((c) => typeof c === 'object' && c !== null) as ContainerLike[])
    : [];
}

/** The container name; `''` when it has none. */
export function nameOf(container: ContainerLike | undefined): string {
  return typeof container?.name === 'string' ? container.name : '';
}

/** `KUBEGRACE_*` (and every other) plain env value of a container; `valueFrom` entries are listed apart. */
export function envOf(container: ContainerLike | undefined): {
  readonly values: Readonly<Record<string, string>>;
  readonly indirect: readonly string[];
} {
  const values: Record<string, string> = {};
  const indirect: string[] = [];
  const list = container?.env;
  if (Array.isArray(list)) {
    for (const entry of list as EnvVarLike[]) {
      if (typeof entry?.name !== 'string') continue;
      const value = entry.value;
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
        values[entry.name] = String(value);
      } else if (value !== undefined && value !== null) values[entry.name] = JSON.stringify(value);
      else if (entry.valueFrom !== undefined) indirect.push(entry.name);
      else values[entry.name] = '';
    }
  }
  return { values, indirect };
}

/**
 * Which container of the pod runs kubegrace: the named one; the only one; the one whose env sets
 * `KUBEGRACE_*`; else the first.
 */
export function selectContainer(
  spec: PodSpecLike | undefined,
  name?: string,
): { readonly container: ContainerLike | undefined; readonly why: string } {
  const containers = containersOf(spec);
  if (name !== undefined && name !== '') {
    const named = containers.find((c) => nameOf(c) === name);
    return named
      ? { container: named, why: `named ${name}` }
      : { container: undefined, why: `no container named ${JSON.stringify(name)} in the pod` };
  }
  if (containers.length <= 1) return { container: containers[0], why: 'the only container' };
  const configured = containers.find((c) =>
    Object.keys(envOf(c).values).some((k) => k.startsWith('KUBEGRACE_')),
  );
  if (configured) return { container: configured, why: 'the container with KUBEGRACE_* variables' };
  return { container: containers[0], why: 'the first container (set containerName to pick another)' };
}

/** Epoch ms of an API time (a `Date` from a typed list, or the RFC 3339 string of a watch event). */
function timeMs(value: unknown): number | undefined {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value.getTime();
  if (typeof value === 'string' && value !== '') {
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? undefined : ms;
  }
  return undefined;
}

export interface DeletionTiming {
  /** Epoch ms at which the kubelet sends SIGKILL. */
  readonly killAt: number;
  /** Epoch ms the termination began (the delete): `killAt` minus the deletion grace period. */
  readonly startedAt: number;
  readonly graceSeconds: number;
  /** `metadata.deletionTimestamp` as shown by the API. */
  readonly deletionTimestamp: number;
}

/**
 * The kill time a deletion implies. The kubelet counts the grace period on the node's clock from when
 * it sees the deletion, which is about when this watch sees it: `observedAt + grace` is the estimate.
 * The API server stamps `deletionTimestamp` = delete time + grace on *its* clock, in whole seconds
 * (truncated), so on the node's clock the kill time lies in [deletionTimestamp − skew,
 * deletionTimestamp − skew + 1 s), `skew` being how far the API clock is ahead (`apiSkewMs`, from
 * the `Date` headers). That window only ever lowers the estimate — a deletion seen late (after a
 * watch gap, a restart) is brought back to the window's upper edge — and never raises it: without
 * skew the estimate cannot fall below the window (the timestamp is truncated), so an estimate below
 * it means the clocks differ by more than `apiSkewMs` shows, and the later of the two would overrun.
 */
export function deletionTiming(
  metadata:
    { readonly deletionTimestamp?: unknown; readonly deletionGracePeriodSeconds?: unknown } | undefined,
  spec: PodSpecLike | undefined,
  observedAt: number,
  apiSkewMs = 0,
): DeletionTiming | undefined {
  const deletionTimestamp = timeMs(metadata?.deletionTimestamp);
  if (deletionTimestamp === undefined) return undefined;
  const declared = metadata?.deletionGracePeriodSeconds;
  const graceSeconds = typeof declared === 'number' && declared >= 0 ? declared : graceOf(spec).seconds;
  const graceMs = graceSeconds * 1000;
  const killAt = Math.min(observedAt + graceMs, deletionTimestamp - apiSkewMs + 999);
  return { killAt, startedAt: killAt - graceMs, graceSeconds, deletionTimestamp };
}

/**
 * A deletion seen again with a shorter grace period (`kubectl delete --grace-period=3` on a pod
 * already terminating, an eviction, a force delete): the API server moves `deletionTimestamp` to the
 * first delete plus the new grace period, and the kubelet starts the termination again with the new
 * period from when it sees the change. So the kill time is `observedAt + grace` — or the one already
 * known, whichever is earlier. Undefined when the grace period did not get shorter.
 */
export function shortenedDeletion(
  previous: DeletionTiming,
  metadata:
    { readonly deletionTimestamp?: unknown; readonly deletionGracePeriodSeconds?: unknown } | undefined,
  observedAt: number,
): DeletionTiming | undefined {
  const deletionTimestamp = timeMs(metadata?.deletionTimestamp);
  const declared = metadata?.deletionGracePeriodSeconds;
  if (deletionTimestamp === undefined || typeof declared !== 'number' || declared < 0) return undefined;
  if (declared >= previous.graceSeconds && deletionTimestamp >= previous.deletionTimestamp) return undefined;
  const graceSeconds = Math.min(declared, previous.graceSeconds);
  const killAt = Math.min(previous.killAt, observedAt + graceSeconds * 1000);
  return { killAt, startedAt: killAt - graceSeconds * 1000, graceSeconds, deletionTimestamp };
}

/** A budget term with where its value comes from: an option, an env variable, a pod field. */
export interface SourcedTerm extends BudgetTerm {
  readonly source: string;
}

export interface PodBudget {
  readonly terms: readonly SourcedTerm[];
  readonly totalMs: number;
  readonly graceMs: number;
  readonly fits: boolean;
}

/**
 * The shutdown budget of `settings` with the grace period and the preStop sleep taken from the pod,
 * each term naming where it comes from.
 */
export function podBudget(
  settings: ResolvedSettings,
  pod: { readonly graceSeconds: number; readonly preStop: PreStop },
): PodBudget {
  const { terms, totalMs, graceMs } = shutdownBudget({
    ...settings,
    gracePeriodSeconds: pod.graceSeconds,
    preStopSleepSeconds: preStopSeconds(pod.preStop),
  });
  const sourced = terms.map((term): SourcedTerm => {
    if (term.option === 'preStopSleepSeconds') {
      const source = pod.preStop.kind === 'none' ? 'no preStop hook' : pod.preStop.source;
      return { ...term, source };
    }
    const env = settingSpecs.find((s) => s.path === term.option)?.env;
    return { ...term, source: env === undefined ? term.option : `${term.option} / ${env}` };
  });
  return { terms: sourced, totalMs, graceMs, fits: totalMs <= graceMs };
}

export function formatSeconds(ms: number): string {
  if (!Number.isFinite(ms)) return '∞ s';
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(s < 10 ? 2 : 1)} s`;
}

/** `preStop sleep 5 s (lifecycle.preStop.sleep.seconds) + unready 2 s (unreadyTimeoutMs / …) + …` */
export function formatTerms(terms: readonly SourcedTerm[]): string {
  return terms
    .filter((t) => t.ms > 0)
    .map((t) => `${t.name} ${formatSeconds(t.ms)} (${t.source})`)
    .join(' + ');
}

/** One sentence naming every term, the total, the grace period and the fix. */
export function budgetMessage(budget: PodBudget, subject: string): string {
  const needed = Math.ceil(budget.totalMs / 1000);
  return (
    `shutdown budget ${formatSeconds(budget.totalMs)} exceeds terminationGracePeriodSeconds ` +
    `${formatSeconds(budget.graceMs)} of ${subject}: ${formatTerms(budget.terms)} = ${formatSeconds(budget.totalMs)}. ` +
    `Raise terminationGracePeriodSeconds to at least ${needed} and set KUBEGRACE_GRACE_PERIOD_SECONDS=${needed}, ` +
    `or shorten the largest terms.`
  );
}
