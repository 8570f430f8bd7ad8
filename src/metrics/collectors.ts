/**
 * The prom-client collectors of docs/metrics.md, created once per registry and shared: a second
 * lifecycle, a second copy of this module (hot reload) or a second `instrument()` finds the
 * metrics by name and adds to them instead of crashing on a duplicate registration.
 *
 * Counters and histograms are shared as they are: every instance adds its own observations.
 * Gauges describe the present, so each instance registers a *contribution* read at scrape time;
 * the gauge shows the sum (or the maximum) over the live contributions, and an instance that
 * detaches stops counting. The contributions live on the metric object under a `Symbol.for` key,
 * so copies of this module loaded side by side still see one set.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { KubegraceError } from '../errors.js';
import { PHASES, type LifecycleState, type ShutdownOutcome } from '../lifecycle.js';
import type { CloseReason, ConnectionProtocol, PacedProtocol } from '../drain/observer.js';
import type { PacedStep } from '../drain/pacer.js';

/**
 * Seconds. prom-client's default buckets stop at 10 s; shutdowns last up to the grace period
 * (30 s by default, 120 s for slow drains), and the short end keeps the unready phase and hooks
 * readable.
 */
export const DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 45, 60, 90, 120,
]);

/**
 * Shares of the grace period. Fixed steps of a tenth, so that "took more than 80 %" is a bucket
 * boundary, exact for any grace period: seconds buckets end at 120 s and grow 10 s wide near the
 * default 28 s, and a quantile interpolated in them cannot say it.
 */
export const GRACE_SHARE_BUCKETS: readonly number[] = Object.freeze([
  0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1,
]);

export const STATES: readonly LifecycleState[] = ['starting', 'ready', 'draining', 'stopped'];
export const OUTCOMES: readonly ShutdownOutcome[] = ['clean', 'deadline', 'forced', 'failed'];
export const PROTOCOLS: readonly ConnectionProtocol[] = ['http1', 'http2', 'websocket', 'grpc'];
export const CLOSE_REASONS: readonly CloseReason[] = [
  'response_boundary',
  'idle',
  'goaway',
  'websocket_1001',
  'websocket_1012',
  'event_stream_end',
  'forced',
];
export const PACED_PROTOCOLS: readonly PacedProtocol[] = ['websocket', 'http2', 'event_stream', 'socket_io'];
export const PACED_STEPS: readonly PacedStep[] = ['paced', 'window_end'];
/** Outcome of one hook: the participant's status. */
export type HookOutcome = 'ok' | 'error' | 'timeout';
/** Outcome of one deregistration, in the registry participants' own words. */
export type DeregistrationOutcome = 'success' | 'failed' | 'timeout';
export const DEREGISTRATION_OUTCOMES: readonly DeregistrationOutcome[] = ['success', 'failed', 'timeout'];

interface MetricSpec {
  readonly name: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly help: string;
  readonly labelNames: readonly string[];
}

/** Every metric kubegrace exports: the contract with `dashboards/` and `alerts/`. */
export const METRICS = {
  lifecycleState: {
    name: 'kubegrace_lifecycle_state',
    type: 'gauge',
    help: 'Lifecycle state: 1 for the current state (summed over kubegrace instances in the process).',
    labelNames: ['state'],
  },
  gracePeriod: {
    name: 'kubegrace_grace_period_seconds',
    type: 'gauge',
    help: "The grace period in force: the configured terminationGracePeriodSeconds, or the pod's own once kubegrace/kubernetes adopted it.",
    labelNames: [],
  },
  graceUsed: {
    name: 'kubegrace_shutdown_grace_used_ratio',
    type: 'histogram',
    help: 'Share of the grace period gone when each shutdown reached its exit phase, counted from when the kubelet began terminating (its kill time minus the grace period in force): the preStop sleep and a shortened delete count.',
    labelNames: [],
  },
  phaseDuration: {
    name: 'kubegrace_shutdown_phase_duration_seconds',
    type: 'histogram',
    help: 'Duration of each shutdown phase.',
    labelNames: ['phase'],
  },
  shutdownDuration: {
    name: 'kubegrace_shutdown_duration_seconds',
    type: 'histogram',
    help: 'Duration of the shutdown from its start to the exit phase, by outcome.',
    labelNames: ['outcome'],
  },
  inflightRequests: {
    name: 'kubegrace_inflight_requests',
    type: 'gauge',
    help: 'Requests being served now.',
    labelNames: [],
  },
  openConnections: {
    name: 'kubegrace_open_connections',
    type: 'gauge',
    help: 'Open client connections, by protocol.',
    labelNames: ['protocol'],
  },
  requestsDuringShutdown: {
    name: 'kubegrace_requests_during_shutdown_total',
    type: 'counter',
    help: 'Requests that arrived after the shutdown began, by the phase they arrived in.',
    labelNames: ['phase'],
  },
  connectionsClosed: {
    name: 'kubegrace_connections_closed_total',
    type: 'counter',
    help: 'Connections kubegrace closed, by how: at a response boundary, idle, GOAWAY, WebSocket 1001 or 1012, an event stream ended at a message boundary, or forced.',
    labelNames: ['reason'],
  },
  pacedCloses: {
    name: 'kubegrace_paced_closes_total',
    type: 'counter',
    help: 'Long-lived connections the paced drain closed, by protocol and step: in their slot of the window (paced) or at its end or at once (window_end).',
    labelNames: ['protocol', 'step'],
  },
  propagationWait: {
    name: 'kubegrace_propagation_wait_seconds',
    type: 'histogram',
    help: 'How long the shutdown kept serving after readiness failed, by propagation strategy and what ended the wait (quiet, confirmed, min, max, fixed, deadline, aborted; unknown for a strategy that reports nothing).',
    labelNames: ['strategy', 'ended_by'],
  },
  deregistrationDuration: {
    name: 'kubegrace_registry_deregistration_duration_seconds',
    type: 'histogram',
    help: 'Time to deregister from a service registry, by registry and outcome (success, failed, timeout).',
    labelNames: ['registry', 'outcome'],
  },
  hookDuration: {
    name: 'kubegrace_hook_duration_seconds',
    type: 'histogram',
    help: 'Duration of each shutdown participant (hooks included) in each phase, by participant and outcome (ok, error, timeout).',
    labelNames: ['participant', 'outcome'],
  },
  shutdowns: {
    name: 'kubegrace_shutdowns_total',
    type: 'counter',
    help: 'Shutdowns, by trigger and outcome.',
    labelNames: ['trigger', 'outcome'],
  },
} as const satisfies Record<string, MetricSpec>;

/** The names in `METRICS`, for checks of dashboards and rules. */
export const METRIC_NAMES: readonly string[] = Object.values(METRICS).map((m) => m.name);

type Labels = Record<string, string>;
/** Called at scrape time; reports this instance's value for each label set it knows. */
export type Contribution = (add: (labels: Labels, value: number) => void) => void;

interface ContributionSet {
  readonly aggregate: 'sum' | 'max';
  readonly contributions: Set<Contribution>;
}

const kContributions = Symbol.for('kubegrace.metrics.contributions');

type ContributedGauge = Gauge & { [kContributions]?: ContributionSet };

export interface Collectors {
  readonly phaseDuration: Histogram<'phase'>;
  readonly shutdownDuration: Histogram<'outcome'>;
  readonly graceUsed: Histogram;
  readonly requestsDuringShutdown: Counter<'phase'>;
  readonly connectionsClosed: Counter<'reason'>;
  readonly pacedCloses: Counter<'protocol' | 'step'>;
  readonly propagationWait: Histogram<'strategy' | 'ended_by'>;
  readonly deregistrationDuration: Histogram<'registry' | 'outcome'>;
  readonly hookDuration: Histogram<'participant' | 'outcome'>;
  readonly shutdowns: Counter<'trigger' | 'outcome'>;
  /** Adds this instance to a gauge; returns the function that takes it away again. */
  contribute(
    gauge: 'lifecycleState' | 'gracePeriod' | 'inflightRequests' | 'openConnections',
    contribution: Contribution,
  ): () => void;
}

/** Finds kubegrace's metrics on `registry`, creating the missing ones. */
export function getCollectors(registry: Registry): Collectors {
  // Zeroing a histogram replaces its counts: only the call that creates it may do that.
  const created = new Set<string>();
  const histogram = <L extends string>(spec: MetricSpec, buckets = DURATION_BUCKETS): Histogram<L> => {
    const found = existing<Histogram<L>>(registry, spec);
    if (found) return found;
    created.add(spec.name);
    return new Histogram<L>({
      name: spec.name,
      help: spec.help,
      labelNames: spec.labelNames as L[],
      buckets: [...buckets],
      registers: [registry],
    });
  };
  const counter = <L extends string>(spec: MetricSpec): Counter<L> =>
    existing(registry, spec) ??
    new Counter<L>({
      name: spec.name,
      help: spec.help,
      labelNames: spec.labelNames as L[],
      registers: [registry],
    });

  const gauges = {
    lifecycleState: contributedGauge(registry, METRICS.lifecycleState, 'sum'),
    // Two instances in one process with different grace periods: the process dies at the earlier
    // kill time, but the alert compares against what the workload was given, the larger figure.
    gracePeriod: contributedGauge(registry, METRICS.gracePeriod, 'max'),
    inflightRequests: contributedGauge(registry, METRICS.inflightRequests, 'sum'),
    openConnections: contributedGauge(registry, METRICS.openConnections, 'sum'),
  };

  const collectors: Collectors = {
    phaseDuration: histogram(METRICS.phaseDuration),
    shutdownDuration: histogram(METRICS.shutdownDuration),
    // Without labels: prom-client exports its series at 0 from the start.
    graceUsed: histogram(METRICS.graceUsed, GRACE_SHARE_BUCKETS),
    requestsDuringShutdown: counter(METRICS.requestsDuringShutdown),
    connectionsClosed: counter(METRICS.connectionsClosed),
    pacedCloses: counter(METRICS.pacedCloses),
    propagationWait: histogram(METRICS.propagationWait),
    deregistrationDuration: histogram(METRICS.deregistrationDuration),
    hookDuration: histogram(METRICS.hookDuration),
    shutdowns: counter(METRICS.shutdowns),
    contribute(name, contribution) {
      const set = gauges[name];
      set.contributions.add(contribution);
      return () => set.contributions.delete(contribution);
    },
  };
  zeroKnownSeries(collectors, created);
  return collectors;
}

/**
 * Series for label values known in advance exist from the start at 0. Without them a pod's only
 * shutdown turns a series from absent into 1 in its last scrape, and `increase()` — which needs
 * two samples — never sees it: the deadline alert would miss exactly the pods it is about.
 */
function zeroKnownSeries(c: Collectors, created: ReadonlySet<string>): void {
  for (const phase of PHASES) {
    if (created.has(METRICS.phaseDuration.name)) c.phaseDuration.zero({ phase });
    // Adding 0 creates the series when missing and changes nothing otherwise.
    c.requestsDuringShutdown.inc({ phase }, 0);
  }
  if (created.has(METRICS.shutdownDuration.name)) {
    for (const outcome of OUTCOMES) c.shutdownDuration.zero({ outcome });
  }
  for (const reason of CLOSE_REASONS) c.connectionsClosed.inc({ reason }, 0);
  for (const protocol of PACED_PROTOCOLS) {
    for (const step of PACED_STEPS) c.pacedCloses.inc({ protocol, step }, 0);
  }
}

function existing<M>(registry: Registry, spec: MetricSpec): M | undefined {
  const found = registry.getSingleMetric(spec.name) as unknown as
    { type?: unknown; labelNames?: readonly string[] } | undefined;
  if (found === undefined) return undefined;
  const labels = [...(found.labelNames ?? [])].sort().join(',');
  if (found.type !== spec.type || labels !== [...spec.labelNames].sort().join(',')) {
    throw new KubegraceError(
      'ERR_KUBEGRACE_INVALID_STATE',
      `${spec.name} is already registered as a ${String(found.type)} with labels [${labels}]; ` +
        `kubegrace needs a ${spec.type} with labels [${spec.labelNames.join(',')}]`,
    );
  }
  return found as M;
}

function contributedGauge(registry: Registry, spec: MetricSpec, aggregate: 'sum' | 'max'): ContributionSet {
  const found = existing<ContributedGauge>(registry, spec);
  if (found) {
    const set = found[kContributions];
    if (!set) {
      throw new KubegraceError(
        'ERR_KUBEGRACE_INVALID_STATE',
        `${spec.name} is already registered by something other than kubegrace`,
      );
    }
    return set;
  }
  const set: ContributionSet = { aggregate, contributions: new Set() };
  const gauge: ContributedGauge = new Gauge({
    name: spec.name,
    help: spec.help,
    labelNames: [...spec.labelNames],
    registers: [registry],
    collect(this: Gauge) {
      const totals = new Map<string, { labels: Labels; value: number }>();
      for (const contribution of set.contributions) {
        try {
          contribution((labels, value) => {
            const key = JSON.stringify(Object.entries(labels).sort());
            const seen = totals.get(key);
            if (!seen) totals.set(key, { labels, value });
            else seen.value = set.aggregate === 'sum' ? seen.value + value : Math.max(seen.value, value);
          });
        } catch {
          // One broken instance must not take the whole scrape down.
        }
      }
      // Rebuilt from scratch each scrape, so a detached instance's series disappear with it.
      this.reset();
      for (const { labels, value } of totals.values()) {
        if (spec.labelNames.length === 0) this.set(value);
        else this.set(labels, value);
      }
    },
  });
  gauge[kContributions] = set;
  return set;
}
