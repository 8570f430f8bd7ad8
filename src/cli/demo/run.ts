/**
 * One scenario: replicas behind the endpoint table, keep-alive load, a rolling update (each old pod
 * replaced by a ready new one, then terminated with the endpoint removal lagging the SIGTERM), and
 * the figures: failed requests by kind, and each old pod's exit time against the ideal.
 */
import { createEndpointTable, type EndpointChoice, type EndpointTable } from './endpoint-table.js';
import {
  preciseNow,
  startLoad,
  type ArrivalProcess,
  type Load,
  type LoadOptions,
  type RequestRecord,
} from './load.js';
import { startPod, type Pod, type PodExit } from './pod.js';
import type { TimedPodEvent } from './pod-events.js';
import type { ReportPhase } from './report-html.js';

export interface ScenarioOptions {
  /** `kubegrace`, `naive`, `kubegrace-cluster` or `naive-cluster` (the demo's services), or a label for `script`. */
  readonly service: string;
  /** The service module the pods run (benchmarks); default: the demo's own for `service`. */
  readonly script?: string;
  /** More environment for every pod (`KUBEGRACE_*` is set for `service: 'kubegrace'`). */
  readonly env?: Readonly<Record<string, string>>;
  /** Old pods; each is replaced and terminated in turn (maxSurge 1, maxUnavailable 0). */
  readonly replicas: number;
  /** Propagation lag: the endpoint leaves the table this long after the SIGTERM. */
  readonly lagMs: number;
  readonly requestMs: number;
  /** Share (0..1) of requests that take `longMs`. */
  readonly longShare: number;
  readonly longMs: number;
  readonly concurrency: number;
  /** New clients per second, each on a fresh connection (connection churn). */
  readonly newConnectionsPerSecond: number;
  /** How the new clients arrive. @default 'clock' */
  readonly arrivals?: ArrivalProcess;
  /** How the Service picks an endpoint for a new connection. @default 'round-robin' */
  readonly endpointChoice?: EndpointChoice;
  /** Nodes with their own table; node i of n drops a removed endpoint after lag·i/n. @default 1 */
  readonly nodes?: number;
  /**
   * The Kubernetes API the pods watch (`kubegrace` services that run the integration): it registers
   * each pod and is told of each SIGTERM and exit.
   */
  readonly controlPlane?: ControlPlane;
  /** kubegrace's propagation settings; each one left out keeps kubegrace's default. */
  readonly strategy?: 'adaptive' | 'fixed';
  readonly quietPeriodMs?: number;
  /** Fixed strategy only. */
  readonly delayMs?: number;
  readonly graceSeconds: number;
  /** Load before the first SIGTERM, so pooled connections exist on every pod. */
  readonly warmupMs: number;
  /** Load after the last old pod exited. */
  readonly tailMs: number;
  readonly seed?: number;
  /**
   * Start the replacement pods with the old ones, before the load, instead of one by one during
   * the rollout; each is still added to the table just before its old pod's SIGTERM, now
   * `rolloutStepMs` apart. Benchmarks that run several rollouts side by side use it, so that no
   * pod's start-up CPU lands in the middle of the shutdowns being measured.
   */
  readonly startReplacementsEarly?: boolean;
  /** With `startReplacementsEarly`: time between two rollout steps (a replacement's readiness). @default 1000 */
  readonly rolloutStepMs?: number;
}

/** What the harness tells the cluster's control plane, for pods that watch it. */
export interface ControlPlane {
  /** A pod is starting: store it (and a ready endpoint); resolves with the environment that points it at the API. */
  register(pod: string): Promise<Readonly<Record<string, string>>>;
  /** The pod got its SIGTERM: the control plane marks its endpoint terminating, at its own pace. */
  terminating(pod: string): void;
  /** The pod exited: its endpoint leaves the EndpointSlice. */
  exited(pod: string): void;
}

export type RunEvent =
  | { readonly type: 'pod'; readonly pod: string; readonly event: TimedPodEvent }
  | { readonly type: 'ready'; readonly at: number; readonly pod: string }
  | {
      readonly type: 'endpoint';
      readonly at: number;
      readonly pod: string;
      readonly change: 'added' | 'removed';
    }
  | { readonly type: 'sigterm'; readonly at: number; readonly pod: string }
  | { readonly type: 'exit'; readonly pod: string; readonly exit: PodExit }
  | { readonly type: 'load'; readonly at: number; readonly change: 'started' | 'stopped' }
  | { readonly type: 'request'; readonly record: RequestRecord };

export interface PodResult {
  readonly pod: string;
  /** SIGTERM to exit, measured here. */
  readonly shutdownMs: number;
  /** Earliest safe exit after the SIGTERM: max(lag, end of the last request that started before removal). */
  readonly idealMs: number;
  /** When the endpoint left the table (the last node's), after the SIGTERM. */
  readonly removedMs: number;
  /**
   * New connections per second that reached this pod before its SIGTERM, over `arrivalWindowMs`
   * (the last 5 s, or the whole load if shorter).
   */
  readonly arrivalsPerSecond: number;
  readonly arrivalWindowMs: number;
  readonly exitCode: number;
  readonly signal: string | null;
  /** SIGKILLed at the grace period. */
  readonly killed: boolean;
  /** Phase durations from the service's own summary line (kubegrace only). */
  readonly phases: Readonly<Record<string, number>>;
  readonly outcome: string | undefined;
  /** How the pod's propagation wait ended, from its `shutdown complete` log line (kubegrace only). */
  readonly propagation?: Readonly<Record<string, unknown>>;
  /** Requests this pod's sockets carried, and how many of them failed. */
  readonly requests: number;
  readonly failed: number;
  /** Epoch ms of the SIGTERM. */
  readonly sigtermAt: number;
  /** When each phase ran, in ms after the SIGTERM (for a naive pod: its `server.close()` wait). */
  readonly timeline: readonly PhaseSpan[];
}

/** A phase's span in ms after the SIGTERM: the same shape the `--report` page draws. */
export type PhaseSpan = ReportPhase;

export interface ScenarioResult {
  readonly service: string;
  readonly scenario: ScenarioOptions;
  readonly requests: number;
  readonly failed: number;
  /** Failed requests by kind. */
  readonly failures: Readonly<Record<string, number>>;
  /** Worst over the terminated pods: the first non-zero exit code, else 0. */
  readonly exitCode: number;
  /** Longest SIGTERM-to-exit over the terminated pods. */
  readonly shutdownMs: number;
  readonly idealMs: number;
  /** Longest duration of each phase over the terminated pods. */
  readonly phases: Readonly<Record<string, number>>;
  readonly killed: boolean;
  readonly pods: readonly PodResult[];
  readonly durationMs: number;
}

/**
 * Starts the clients. The default is HTTP/1 keep-alive through the table's agents; a benchmark may
 * bring its own that records the same way and routes every new connection through the table: its
 * `freshAgent` (WebSocket) or `table.connect()` (HTTP/2).
 */
export type LoadFactory = (options: LoadOptions, table: EndpointTable) => Load;

export interface ScenarioRun {
  readonly result: ScenarioResult;
  readonly records: readonly RequestRecord[];
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The window before a SIGTERM over which the pod's arrival rate is measured. */
const ARRIVAL_WINDOW_MS = 5000;

function serviceEnv(options: ScenarioOptions): Record<string, string> {
  // kubegrace-cluster: the bench's multi-process pod (a node:cluster primary with kubegrace/cluster).
  if (options.service !== 'kubegrace' && options.service !== 'kubegrace-cluster') return { ...options.env };
  const setting = (name: string, value: string | number | undefined): Record<string, string> =>
    value === undefined ? {} : { [name]: String(value) };
  return {
    ...options.env,
    KUBEGRACE_PROBES_PORT: '0',
    KUBEGRACE_PROBES_HOST: '127.0.0.1',
    KUBEGRACE_GRACE_PERIOD_SECONDS: String(options.graceSeconds),
    ...setting('KUBEGRACE_PROPAGATION_STRATEGY', options.strategy),
    ...setting('KUBEGRACE_PROPAGATION_QUIET_PERIOD_MS', options.quietPeriodMs),
    ...setting('KUBEGRACE_PROPAGATION_DELAY_MS', options.delayMs),
    // A short --grace must still run the scenario; the deadline then shows what it costs.
    KUBEGRACE_BUDGET_CHECK: 'warn',
  };
}

export async function runScenario(
  options: ScenarioOptions,
  onEvent: (event: RunEvent) => void = () => {},
  startClients: LoadFactory = (loadOptions) => startLoad(loadOptions),
): Promise<ScenarioRun> {
  const startedAt = preciseNow();
  const table = createEndpointTable({
    ...(options.endpointChoice === undefined ? {} : { choice: options.endpointChoice }),
    ...(options.nodes === undefined ? {} : { nodes: options.nodes }),
    ...(options.seed === undefined ? {} : { seed: options.seed }),
  });
  const pods: Pod[] = [];
  const removedAt = new Map<string, number>();
  let load: Load | undefined;
  let loadStartedAt = startedAt;

  table.on(({ type, endpoint, at }) => {
    if (type === 'removed') removedAt.set(endpoint.name, at);
    if (type === 'added' || type === 'removed')
      onEvent({ type: 'endpoint', at, pod: endpoint.name, change: type });
  });

  async function launch(name: string): Promise<Pod> {
    const apiEnv = (await options.controlPlane?.register(name)) ?? {};
    const pod = await startPod({
      name,
      kind: options.service,
      ...(options.script === undefined ? {} : { script: options.script }),
      env: { ...serviceEnv(options), ...apiEnv },
      graceSeconds: options.graceSeconds,
      // Dozens of pods start at once in a side-by-side benchmark, some loading the Kubernetes client:
      // on a busy machine that takes seconds. The bound only turns a hang into an error.
      startTimeoutMs: 60_000,
      onEvent: (event) => onEvent({ type: 'pod', pod: name, event }),
    });
    pods.push(pod);
    // Only the kubelet's terminations are news; the harness's own teardown kills are not.
    void pod.exited.then((exit) => {
      if (pod.sigtermAt === undefined) return;
      options.controlPlane?.exited(name);
      onEvent({ type: 'exit', pod: name, exit });
    });
    await pod.waitReady();
    onEvent({ type: 'ready', at: preciseNow(), pod: name });
    return pod;
  }

  try {
    const starting = (prefix: string): Promise<Pod[]> =>
      Promise.all(Array.from({ length: options.replicas }, (_, i) => launch(`${prefix}-${i + 1}`)));
    const [old, early] = await Promise.all([
      starting('old'),
      options.startReplacementsEarly === true ? starting('new') : undefined,
    ]);
    for (const pod of old) table.add(pod.endpoint);

    // The pods' arrival history starts with the load (the pooled clients' first connections included).
    loadStartedAt = preciseNow();
    // The load bounds itself: even if a pod never exits, it stops after the worst case.
    const longest = Math.max(options.requestMs, options.longShare > 0 ? options.longMs : 0);
    load = startClients(
      {
        agent: table.agent,
        freshAgent: table.freshAgent,
        newConnectionsPerSecond: options.newConnectionsPerSecond,
        ...(options.arrivals === undefined ? {} : { arrivals: options.arrivals }),
        endpointOf: table.endpointOf,
        concurrency: options.concurrency,
        requestMs: options.requestMs,
        longShare: options.longShare,
        longMs: options.longMs,
        maxDurationMs:
          options.warmupMs +
          options.replicas * 15_000 +
          options.graceSeconds * 1000 +
          options.tailMs +
          longest,
        ...(options.seed === undefined ? {} : { seed: options.seed }),
        onRecord: (record) => onEvent({ type: 'request', record }),
      },
      table,
    );
    onEvent({ type: 'load', at: preciseNow(), change: 'started' });
    await sleep(options.warmupMs);

    const terminations: Promise<unknown>[] = [];
    for (const [index, pod] of old.entries()) {
      if (early !== undefined && index > 0) await sleep(options.rolloutStepMs ?? 1000);
      const replacement = early?.[index] ?? (await launch(`new-${index + 1}`));
      table.add(replacement.endpoint);
      // The kubelet's SIGTERM and the control plane's endpoint removal start at the same moment.
      const exit = pod.terminate();
      options.controlPlane?.terminating(pod.name);
      onEvent({ type: 'sigterm', at: pod.sigtermAt ?? preciseNow(), pod: pod.name });
      terminations.push(Promise.all([exit, table.remove(pod.endpoint, options.lagMs)]));
    }
    await Promise.all(terminations);
    await sleep(options.tailMs);
    await load.stop();
    onEvent({ type: 'load', at: preciseNow(), change: 'stopped' });

    const records = load.records;
    const results: PodResult[] = [];
    for (const pod of old) {
      const exit = await pod.exited;
      const sigtermAt = pod.sigtermAt ?? exit.exitedAt;
      const windowMs = Math.min(ARRIVAL_WINDOW_MS, sigtermAt - loadStartedAt);
      const arrivals = {
        perSecond:
          windowMs > 0
            ? (table.connectionsOpened(pod.endpoint, sigtermAt - windowMs, sigtermAt) * 1000) / windowMs
            : 0,
        windowMs: Math.round(windowMs),
      };
      results.push(podResult(pod, exit, removedAt.get(pod.name) ?? exit.exitedAt, records, arrivals));
    }
    return { result: summarize(options, results, records, preciseNow() - startedAt), records };
  } finally {
    load?.abort();
    table.destroy();
    for (const pod of pods) pod.kill();
  }
}

function podResult(
  pod: Pod,
  exit: PodExit,
  removedAt: number,
  records: readonly RequestRecord[],
  arrivals: { readonly perSecond: number; readonly windowMs: number },
): PodResult {
  const sigtermAt = pod.sigtermAt ?? exit.exitedAt;
  const served = records.filter((r) => r.endpoint === pod.name);
  // Only answered requests count: a request cut short by the pod's death marks no work the pod had to do.
  const lastEnd = served
    .filter((r) => r.failure === undefined && r.startedAt < removedAt)
    .reduce((latest, r) => Math.max(latest, r.endedAt), removedAt);
  const summary = pod.events.find((e) => e.event === 'summary');
  return {
    pod: pod.name,
    shutdownMs: Math.round(exit.exitedAt - sigtermAt),
    idealMs: Math.round(Math.max(removedAt, lastEnd) - sigtermAt),
    removedMs: Math.round(removedAt - sigtermAt),
    arrivalsPerSecond: Math.round(arrivals.perSecond * 10) / 10,
    arrivalWindowMs: arrivals.windowMs,
    exitCode: exit.exitCode,
    signal: exit.signal,
    killed: exit.killed,
    phases: summary?.event === 'summary' ? summary.phases : {},
    outcome: summary?.event === 'summary' ? summary.outcome : undefined,
    ...propagationOf(pod),
    requests: served.length,
    failed: served.filter((r) => r.failure !== undefined).length,
    sigtermAt: Math.round(sigtermAt),
    timeline: phaseSpans(pod, sigtermAt, exit.exitedAt),
  };
}

function propagationOf(pod: Pod): { propagation?: Readonly<Record<string, unknown>> } {
  for (const e of pod.events) {
    if (e.event !== 'log' || e.msg !== 'shutdown complete') continue;
    const report = e.fields?.['propagation'];
    if (typeof report === 'object' && report !== null) return { propagation: { ...report } };
  }
  return {};
}

function phaseSpans(pod: Pod, sigtermAt: number, exitedAt: number): PhaseSpan[] {
  const at = (t: number): number => Math.round(t - sigtermAt);
  if (pod.kind === 'naive') return [{ name: 'server.close()', startMs: 0, endMs: at(exitedAt) }];
  if (pod.kind === 'naive-cluster')
    return [{ name: 'primary forwards SIGTERM, exits', startMs: 0, endMs: at(exitedAt) }];
  if (!pod.events.some((e) => e.event === 'phase'))
    return [{ name: 'shutdown', startMs: 0, endMs: at(exitedAt) }];
  const spans: PhaseSpan[] = [];
  const started = new Map<string, number>();
  for (const e of pod.events) {
    if (e.event !== 'phase') continue;
    if (e.status === 'start') started.set(e.phase, e.at);
    else
      spans.push({
        name: e.phase,
        startMs: at(started.get(e.phase) ?? e.at - e.durationMs),
        endMs: at(e.at),
      });
  }
  return spans;
}

function summarize(
  options: ScenarioOptions,
  pods: readonly PodResult[],
  records: readonly RequestRecord[],
  durationMs: number,
): ScenarioResult {
  const failures: Record<string, number> = {};
  for (const r of records) if (r.failure !== undefined) failures[r.failure] = (failures[r.failure] ?? 0) + 1;
  const phases: Record<string, number> = {};
  for (const pod of pods) {
    for (const [phase, ms] of Object.entries(pod.phases)) phases[phase] = Math.max(phases[phase] ?? 0, ms);
  }
  return {
    service: options.service,
    scenario: options,
    requests: records.length,
    failed: records.filter((r) => r.failure !== undefined).length,
    failures,
    exitCode: pods.find((p) => p.exitCode !== 0)?.exitCode ?? 0,
    shutdownMs: Math.max(0, ...pods.map((p) => p.shutdownMs)),
    idealMs: Math.max(0, ...pods.map((p) => p.idealMs)),
    phases,
    killed: pods.some((p) => p.killed),
    pods,
    durationMs: Math.round(durationMs),
  };
}
