/**
 * What kubegrace's own integrations (`kubegrace/kubernetes`, `kubegrace/metrics`,
 * `kubegrace/registry`, `kubegrace/express`) reach inside an instance for: the seams that are not part
 * of the public `Kubegrace` interface. Private to the package: not exported from any entry point.
 *
 * An integration is a value made by one of those subpaths and handed to `kg.use(integration)`; `use`
 * gives it this host. One way in for every integration, each with the instance's logger.
 */
import type { CheckSet } from './probes/checks.js';
import type { RouteHandler } from './probes/handler.js';
import type { DrainObserver } from './drain/observer.js';
import type { Lifecycle, Participant } from './lifecycle.js';
import type { Kubegrace } from './kubegrace.js';
import type { Logger } from './log.js';
import type { ResolvedSettings } from './options.js';
import type { PropagationConfirmation, PropagationReport } from './propagation/adaptive.js';
import { describe, KubegraceError } from './errors.js';

/** How a registry deregistration went; metrics record it. */
export type DeregistrationOutcome = 'success' | 'failed' | 'timeout';

export interface DeregistrationReport {
  readonly registry: string;
  readonly outcome: DeregistrationOutcome;
  readonly seconds: number;
}

export interface Host {
  readonly settings: ResolvedSettings;
  /** The instance's logger: integrations write here, never to a logger of their own. */
  readonly logger: Logger;
  /** State, phase, timing (kill time, deadline, grace period) and their changes. */
  readonly lifecycle: Lifecycle;
  /** `/livez`, `/readyz`, `/startupz`, for hosting them on the app's own port. */
  readonly probeRoutes: ReadonlyMap<string, RouteHandler>;
  /** How the last propagation wait ended, once it did. */
  readonly propagation: PropagationReport | undefined;
  addParticipant(participant: Participant): () => void;
  /** `kg.attach`: drain this server; returns the detacher (`kubegrace/fastify` attaches the app's). */
  readonly attach: Kubegrace['attach'];
  /** `kg.trackRequest`: count a request in flight; true when kubegrace answered it (503 in the drain). */
  readonly trackRequest: Kubegrace['trackRequest'];
  /** Another condition the adaptive propagation wait must see before it ends. */
  addPropagationConfirmation(confirmation: PropagationConfirmation): () => void;
  /** `kg.addReadinessCheck` (`kubegrace/cluster`: the pod is ready when every worker is). */
  readonly addReadinessCheck: Kubegrace['addReadinessCheck'];
  /**
   * A new connection on another process of the pod (a `kubegrace/cluster` worker), noted now: the
   * propagation decision judges the silence of the whole pod, not of this process alone.
   */
  noteConnection(): void;
  /**
   * Let another process decide when traffic has moved away (a cluster worker follows its primary):
   * the propagate phase awaits `wait` instead of this instance's own strategy; the report it returns
   * is this instance's propagation report. The phase's budget is then the leader's (`unreadyTimeoutMs`
   * and the propagation budget, as this instance's settings give them) and a second more, so `wait`'s
   * signal aborts only when the leader stopped answering, or at the deadline.
   */
  followPropagation(wait: (signal: AbortSignal) => Promise<PropagationReport | undefined>): void;
  addObserver(observer: DrainObserver): () => void;
  /** The observer the drainers report to (metrics and the open-connection count): `kubegrace/grpc` reports its sessions here. */
  readonly observer: DrainObserver;
  /** Fails with `ERR_KUBEGRACE_INVALID_STATE` when the management server is disabled. */
  addManagementRoute(path: string, handler: RouteHandler): () => void;
  /** Fields for the one `shutdown complete` log line; the core's own win on a clash. */
  addSummaryFields(fields: () => Readonly<Record<string, unknown>>): () => void;
  /** A registry integration reports each deregistration here… */
  reportDeregistration(report: DeregistrationReport): void;
  /** …and metrics listen. */
  onDeregistration(listener: (report: DeregistrationReport) => void): () => void;
  /** Integrations installed once per instance (metrics) mark themselves here. */
  readonly installed: Set<string>;
  /** This process's readiness checks (`kubegrace/cluster`: a worker runs its own for the primary's `/readyz`). */
  readonly readinessChecks: Pick<CheckSet, 'run'>;
  /** Where `kubegrace/metrics` and `kubegrace/cluster` meet (a primary serves its workers' metrics). */
  readonly exposition: MetricsExposition;
}

/** The metrics endpoint's text, for `kubegrace/cluster`; both slots are empty until an integration fills them. */
export interface MetricsExposition {
  /** Set by `kubegrace/metrics`: this process's registry in the Prometheus text format. */
  collect: (() => Promise<string>) | undefined;
  /** Set by `clusterPrimary()`: what `/metrics` serves, given this process's own text. */
  extend: ((own: string) => Promise<string>) | undefined;
}

declare const integrationBrand: unique symbol;

/**
 * Something `kg.use()` plugs in: made by `kubernetes()`, `metrics()` or `registry()`. `use` returns
 * what the integration gives back (`T`): a handle to inspect or stop it.
 */
export interface Integration<T> {
  /** Names the integration in errors and logs. */
  readonly name: string;
  /** Not part of the API: the integrations' factories set it. */
  readonly [integrationBrand]?: T;
}

const installers = new WeakMap<object, (host: Host) => unknown>();

/** Make an integration: `install` runs once, when it is given to `kg.use()`. */
export function defineIntegration<T>(name: string, install: (host: Host) => T): Integration<T> {
  const integration: Integration<T> = Object.freeze({ name });
  installers.set(integration, install);
  return integration;
}

/** Run an integration's install against a host; a value not made by `defineIntegration` is refused. */
export function installIntegration<T>(integration: Integration<T>, host: Host): T {
  const install =
    typeof integration === 'object' && integration !== null ? installers.get(integration) : undefined;
  if (install === undefined) {
    // The usual slip: the factory itself, not what calling it returns.
    const uncalled =
      typeof integration === 'function'
        ? ` (call it: kg.use(${(integration as { name?: string }).name || 'factory'}(…)))`
        : '';
    throw new KubegraceError(
      'ERR_KUBEGRACE_INVALID_OPTION',
      'use(integration) takes what an integration factory returns: kubernetes(), metrics(), ' +
        'registry(…), grpc(server), fastifyApp(app), socketIo(io), clusterPrimary() or clusterWorker(), ' +
        `received ${describe(integration)}${uncalled}`,
      { option: 'integration' },
    );
  }
  return install(host) as T;
}

const hosts = new WeakMap<object, Host>();

export function setHost(instance: object, host: Host): void {
  hosts.set(instance, host);
}

/** The host behind a kubegrace instance; for the package's own helpers (`kubegrace/express`). */
export function hostOf(instance: unknown, caller: string): Host {
  const host = typeof instance === 'object' && instance !== null ? hosts.get(instance) : undefined;
  if (host === undefined) {
    throw new KubegraceError(
      'ERR_KUBEGRACE_INVALID_OPTION',
      `${caller} takes the instance createKubegrace() returned, received ${describe(instance)}`,
      { option: 'kg' },
    );
  }
  return host;
}
