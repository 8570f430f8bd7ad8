/**
 * `watchKubernetes(kg)`: the own pod and its EndpointSlices through the API, wired into a kubegrace
 * instance. It gives the lifecycle the kubelet's real kill time, starts the shutdown when the pod is
 * deleted (even while a preStop hook holds SIGTERM back), confirms the propagation wait with the
 * EndpointSlices, and records Events. When the API cannot help (no access, unreachable, slow, broken
 * watches) it says so once and leaves the local strategy in charge; it never makes a shutdown longer.
 */
import { invalidOption, KubegraceError } from '../errors.js';
import { MAX_TIMER_MS } from '../options.js';
import type { Kubegrace } from '../kubegrace.js';
import type { ShutdownSummary } from '../lifecycle.js';
import { createJsonLogger, silentLogger, type Logger } from '../log.js';
import { processEnv } from '../process.js';
import {
  createKubeApi,
  loadClientModule,
  type ApiFailure,
  type KubeApi,
  type KubeClientModule,
  type KubeConfigLike,
} from './client.js';
import {
  detectCluster,
  inClusterConfig,
  podIdentity,
  SERVICE_ACCOUNT_DIR,
  type Env,
  type PodIdentity,
} from './detect.js';
import { createEndpointTracker, endpointConfirmation, type EndpointRef } from './endpoints.js';
import { createEventRecorder, type EventRecorder } from './events.js';
import { createListWatch, type ListWatch } from './list-watch.js';
import {
  budgetMessage,
  deletionTiming,
  formatSeconds,
  graceOf,
  nameOf,
  podBudget,
  preStopOf,
  preStopSeconds,
  selectContainer,
  type DeletionTiming,
  type PodSpecLike,
  type PreStop,
} from './pod-timing.js';
import { describePropagation } from '../propagation/describe.js';
import { forbiddenMessage, qualifiedResource, RBAC_RULES } from './rbac.js';

/** What the integration needs of a kubegrace instance (`createKubegrace` returns one). */
export type KubegraceHost = Pick<
  Kubegrace,
  'settings' | 'lifecycle' | 'on' | 'addParticipant' | 'addPropagationConfirmation' | 'shutdown'
> &
  Partial<Pick<Kubegrace, 'gracePeriodSource' | 'propagation'>>;

export interface KubernetesOptions {
  /**
   * `auto`: on when running in a cluster (or a `kubeConfig` is given); `true`: also outside a
   * cluster, from the default kubeconfig (`KUBECONFIG`, `~/.kube/config`); `false`: off.
   * @default 'auto'
   */
  readonly enabled?: 'auto' | boolean;
  /** A `KubeConfig` from `@kubernetes/client-node` 1.4 or 2.x; default: the in-cluster service account. */
  readonly kubeConfig?: KubeConfigLike;
  /** The client module `kubeConfig` belongs to; default: `import('@kubernetes/client-node')`. */
  readonly client?: KubeClientModule;
  /** @default env POD_NAME, else the hostname */
  readonly podName?: string;
  /** @default env POD_NAMESPACE, else the service account's namespace file, else the kubeconfig context */
  readonly namespace?: string;
  /** @default env POD_UID, else read from the API */
  readonly podUid?: string;
  /** @default env POD_IP, else read from the API */
  readonly podIp?: string;
  /** The container running this process (for its preStop hook). @default the only container, or the one with KUBEGRACE_* env */
  readonly containerName?: string;
  /** Time limit of each API request; a watch must be accepted within it. @default 2000 */
  readonly requestTimeoutMs?: number;
  /** Start the shutdown when the pod's `deletionTimestamp` appears. @default true */
  readonly watchDeletion?: boolean;
  /** Make the adaptive propagation wait for this pod's EndpointSlice endpoints to leave. @default true */
  readonly confirmPropagation?: boolean;
  /** Record Kubernetes Events on the pod. @default true */
  readonly events?: boolean;
  /** Where this integration logs; `false` for nowhere. @default JSON lines on stderr */
  readonly logger?: Logger | false;
  /** @default process.env */
  readonly env?: Env;
  /** @default /var/run/secrets/kubernetes.io/serviceaccount */
  readonly serviceAccountDir?: string;
  /** Retry delays of broken lists and watches. @default { initialMs: 250, maxMs: 8000 } */
  readonly retry?: { readonly initialMs: number; readonly maxMs: number };
}

export interface PodTiming {
  readonly container: string;
  readonly graceSeconds: number;
  readonly preStop: PreStop;
}

export interface KubernetesIntegration {
  /** False outside a cluster (see `reason`) or when turned off. */
  readonly enabled: boolean;
  readonly reason: string;
  readonly identity: PodIdentity;
  /** The own pod as last seen through the API. */
  readonly pod: unknown;
  /** Grace period and preStop from the pod spec, once read. */
  readonly timing: PodTiming | undefined;
  /** The deletion as seen through the API: exact kill time. */
  readonly deletion: DeletionTiming | undefined;
  /** This pod's endpoints in the namespace's EndpointSlices, as last seen. */
  readonly endpoints: readonly EndpointRef[];
  /** Which watches are open right now (false while reconnecting or failing). */
  readonly watching: { readonly pod: boolean; readonly endpointSlices: boolean };
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Connect `kg` to the Kubernetes API. Outside a cluster it resolves at once with `enabled: false`.
 * Resolves once the own pod was read (or the attempt failed, at most `requestTimeoutMs` + 0.5 s later);
 * rejects with `ERR_KUBEGRACE_BUDGET_EXCEEDS_GRACE` when the phases do not fit the pod's real grace
 * period and `budgetCheck` is `error`.
 */
export async function watchKubernetes(
  kg: KubegraceHost,
  options: KubernetesOptions = {},
): Promise<KubernetesIntegration> {
  validate(options);
  const env = options.env ?? processEnv();
  const logger =
    options.logger === false
      ? silentLogger
      : (options.logger ?? createJsonLogger((line) => process.stderr.write(line)));
  const requestTimeoutMs = options.requestTimeoutMs ?? 2000;
  const enabledOption = options.enabled ?? 'auto';
  const detection = detectCluster(env, options.serviceAccountDir ?? SERVICE_ACCOUNT_DIR);

  const baseIdentity = (contextNamespace?: string): PodIdentity =>
    podIdentity({
      env,
      podName: options.podName,
      namespace: options.namespace,
      podUid: options.podUid,
      podIp: options.podIp,
      namespaceFile: detection.inCluster ? detection.namespaceFile : undefined,
      contextNamespace,
    });

  if (enabledOption === false) return disabled('turned off (enabled: false)', baseIdentity());
  if (options.kubeConfig === undefined && !detection.inCluster && enabledOption !== true) {
    logger.info('kubernetes integration off: not running in a cluster', { reason: detection.reason });
    return disabled(`not running in a cluster: ${detection.reason}`, baseIdentity());
  }

  const client = options.client ?? (await loadClientModule());
  let kubeConfig = options.kubeConfig;
  if (kubeConfig === undefined) {
    kubeConfig = new client.KubeConfig();
    if (detection.inCluster) kubeConfig.loadFromOptions(inClusterConfig(detection, undefined));
    else kubeConfig.loadFromDefault();
  }
  const contextNamespace = kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace;
  const initial = baseIdentity(contextNamespace);
  let identity: PodIdentity = {
    ...initial,
    namespace: initial.namespace ?? 'default',
    sources: { ...initial.sources, namespace: initial.sources.namespace ?? 'default' },
  };
  const namespace = identity.namespace as string;
  const api: KubeApi = createKubeApi(client, kubeConfig, { requestTimeoutMs });

  // ---- warnings: one per cause, so a broken API is one line in the log, not one per retry.
  const warned = new Set<string>();
  const warnOnce = (key: string, message: string, fields: Record<string, unknown> = {}): void => {
    if (warned.has(key)) return;
    warned.add(key);
    logger.warn(message, { component: 'kubernetes', ...fields });
  };
  let unavailable: ApiFailure | undefined;
  const fallback =
    'until then kubegrace relies on the local strategy (quiet period, configured grace period)';
  function onFailure(failure: ApiFailure): void {
    const code = {
      status: failure.status,
      verb: failure.verb,
      resource: failure.resource,
      namespace: failure.namespace,
    };
    switch (failure.kind) {
      case 'forbidden':
        warnOnce(`forbidden:${failure.resource}`, forbiddenMessage(failure), code);
        break;
      case 'unauthorized':
        unavailable = failure;
        warnOnce(
          'unauthorized',
          `the Kubernetes API at ${api.server} rejected the service-account token (401 Unauthorized) to ` +
            `${failure.verb} ${qualifiedResource(failure.resource)}: ${failure.detail}; check that the pod mounts ` +
            `a valid token (automountServiceAccountToken) and that the service account exists; ${fallback}`,
          code,
        );
        break;
      case 'unreachable':
      case 'timeout':
        unavailable = failure;
        warnOnce(
          'unavailable',
          failure.kind === 'timeout'
            ? `the Kubernetes API at ${api.server} did not answer ${failure.verb} ${qualifiedResource(failure.resource)} ` +
                `within ${requestTimeoutMs} ms (requestTimeoutMs); retrying in the background; ${fallback}`
            : `the Kubernetes API at ${api.server} is unreachable (${failure.detail}) for ${failure.verb} ` +
                `${qualifiedResource(failure.resource)}; retrying in the background; ${fallback}`,
          code,
        );
        break;
      case 'server':
      case 'rejected':
        warnOnce(
          'api-errors',
          `the Kubernetes API at ${api.server} failed to ${failure.verb} ${qualifiedResource(failure.resource)} in ` +
            `namespace ${failure.namespace} (${failure.status ?? ''} ${failure.detail}); retrying with backoff; ` +
            `while it fails ${RBAC_RULES[failure.resource].without}`,
          code,
        );
        break;
      case 'gone':
      case 'aborted':
        break;
    }
  }
  const healthy = (): void => {
    if (unavailable !== undefined) {
      logger.info('kubernetes API reachable again', { component: 'kubernetes', server: api.server });
      unavailable = undefined;
    }
  };

  // ---- the own pod: spec timing, identity, deletion.
  let pod: unknown;
  let timing: PodTiming | undefined;
  let deletion: DeletionTiming | undefined;
  let shutdownStartedAt: number | undefined;

  function onPod(object: unknown, observedAt: number): void {
    const p = object as {
      metadata?: Record<string, unknown>;
      spec?: PodSpecLike;
      status?: Record<string, unknown>;
    };
    pod = object;
    const uid = typeof p.metadata?.uid === 'string' ? p.metadata.uid : undefined;
    const ip = typeof p.status?.podIP === 'string' && p.status.podIP !== '' ? p.status.podIP : undefined;
    if ((identity.uid === undefined && uid) || (identity.ip === undefined && ip)) {
      identity = {
        ...identity,
        uid: identity.uid ?? uid,
        ip: identity.ip ?? ip,
        sources: {
          ...identity.sources,
          ...(identity.uid === undefined && uid ? { uid: 'api' as const } : {}),
          ...(identity.ip === undefined && ip ? { ip: 'api' as const } : {}),
        },
      };
    }
    if (timing === undefined) {
      const chosen = selectContainer(p.spec, options.containerName);
      if (chosen.container === undefined) {
        warnOnce('container', `containerName: ${chosen.why}; the preStop hook is not taken into account`);
      }
      timing = {
        container: nameOf(chosen.container),
        graceSeconds: graceOf(p.spec).seconds,
        preStop: preStopOf(chosen.container),
      };
    }
    const seen = deletionTiming(p.metadata, p.spec, observedAt);
    if (seen !== undefined && deletion === undefined) onDeletion(seen);
  }

  function onDeletion(seen: DeletionTiming): void {
    deletion = seen;
    logger.info('pod deletion seen', {
      component: 'kubernetes',
      deletionTimestamp: new Date(seen.deletionTimestamp).toISOString(),
      killAt: new Date(seen.killAt).toISOString(),
      graceSeconds: seen.graceSeconds,
    });
    const state = kg.lifecycle.state;
    if (state === 'stopped') return;
    if (state !== 'draining' && options.watchDeletion !== false) {
      void kg.shutdown('deletion', { terminationStartedAt: seen.startedAt });
    }
    // Whatever started the shutdown, the API knows the kill time exactly.
    if (kg.lifecycle.state === 'draining') kg.lifecycle.tightenDeadline(seen.killAt);
  }

  const listWatches: ListWatch[] = [];
  const retry = options.retry ?? { initialMs: 250, maxMs: 8000 };
  const podName = identity.name;
  let podWatch: ListWatch | undefined;
  if (podName === undefined) {
    warnOnce(
      'identity',
      'the pod name is unknown (no POD_NAME, no hostname): set POD_NAME via the Downward API',
    );
  } else {
    let notFoundWarned = false;
    podWatch = createListWatch({
      api,
      resource: 'pods',
      namespace,
      fieldSelector: `metadata.name=${podName}`,
      requestTimeoutMs,
      backoff: retry,
      onReplace(items) {
        healthy();
        const found = items[0];
        if (found === undefined) {
          if (!notFoundWarned) {
            notFoundWarned = true;
            warnOnce(
              'pod-not-found',
              `pod ${namespace}/${podName} not found (name from ${identity.sources.name ?? 'nowhere'}): set POD_NAME ` +
                `and POD_NAMESPACE via the Downward API; without the own pod ${RBAC_RULES.pods.without}`,
            );
          }
          return;
        }
        onPod(found, Date.now());
      },
      onEvent(type, object) {
        if (type === 'DELETED') {
          // Force-deleted (grace 0) or already finished: the kubelet kills now.
          if (deletion === undefined && kg.lifecycle.state !== 'stopped' && options.watchDeletion !== false) {
            void kg.shutdown('deletion');
          }
          return;
        }
        onPod(object, Date.now());
      },
      onFailure,
    });
    listWatches.push(podWatch);
    podWatch.subscribe(() => {
      if (podWatch?.connected) healthy();
    });
  }

  // ---- this pod's EndpointSlices: the propagation confirmation.
  const tracker = createEndpointTracker(() => ({
    uid: identity.uid,
    ip: identity.ip,
    name: identity.name,
    namespace: identity.namespace,
  }));
  const propagation: { confirmedAt?: number; degraded?: string } = {};
  const cleanups: (() => void)[] = [];
  let sliceWatch: ListWatch | undefined;
  if (options.confirmPropagation !== false) {
    const { proxyAllowanceMs, maxMs, strategy } = kg.settings.propagation;
    if (strategy === 'adaptive' && proxyAllowanceMs >= maxMs) {
      warnOnce(
        'allowance',
        `propagation.proxyAllowanceMs (${proxyAllowanceMs} ms) is not shorter than propagation.maxMs (${maxMs} ms): ` +
          'every wait the EndpointSlices confirm runs to maxMs; raise maxMs (and the grace period) or lower the allowance',
      );
    }
    sliceWatch = createListWatch({
      api,
      resource: 'endpointslices',
      namespace,
      // Only slices that belong to a Service carry traffic that kube-proxy and friends route.
      labelSelector: 'kubernetes.io/service-name',
      requestTimeoutMs,
      backoff: retry,
      onReplace: (items) => {
        healthy();
        tracker.replace(items);
      },
      onEvent: (type, object) => tracker.apply(type, object),
      onFailure,
    });
    listWatches.push(sliceWatch);
    const watch = sliceWatch;
    cleanups.push(
      kg.addPropagationConfirmation(
        endpointConfirmation({
          tracker,
          listWatch: watch,
          unknownForMs: requestTimeoutMs,
          identified: () =>
            identity.uid !== undefined || identity.ip !== undefined || identity.name !== undefined,
          onConfirmed: () => {
            propagation.confirmedAt = Date.now();
          },
          onDegraded: (why) => {
            propagation.degraded =
              why === 'unidentified'
                ? 'this pod cannot be recognised in EndpointSlices (no POD_UID, POD_IP or pod name)'
                : why === 'failure'
                  ? `the EndpointSlice watch is failing (${watch.failure?.detail ?? 'unknown'})`
                  : `the EndpointSlice watch gave no answer within ${requestTimeoutMs} ms`;
            if (why === 'unidentified') {
              warnOnce(
                'unidentified',
                `${propagation.degraded}: set them via the Downward API; ${RBAC_RULES.endpointslices.without}`,
              );
            } else if (why === 'no-answer') {
              warnOnce(
                'unavailable',
                `the Kubernetes API at ${api.server} did not answer watch endpointslices.discovery.k8s.io within ` +
                  `${requestTimeoutMs} ms (requestTimeoutMs); retrying in the background; ${fallback}`,
              );
            }
          },
        }),
      ),
    );
  }

  // ---- Events.
  const recorder: EventRecorder | undefined =
    options.events === false
      ? undefined
      : createEventRecorder({
          api,
          pod: () =>
            identity.name === undefined ? undefined : { name: identity.name, namespace, uid: identity.uid },
          onFailure,
        });
  const record = (...args: Parameters<EventRecorder['record']>): void => {
    // While the API is known to be down an Event would only cost the shutdown a time-out.
    if (recorder && unavailable === undefined) void recorder.record(...args);
  };

  cleanups.push(
    kg.on('phase', ({ phase, status, durationMs }) => {
      if (status !== 'end') return;
      if (phase === 'propagate') {
        record('Normal', 'PropagationComplete', propagationMessage(durationMs));
      } else if (phase === 'drain') {
        const deadline = kg.lifecycle.deadline;
        if (deadline !== undefined && Date.now() >= deadline) {
          record('Warning', 'Drained', `drain cut short by the deadline after ${formatSeconds(durationMs)}`);
        } else {
          record('Normal', 'Drained', `drain finished in ${formatSeconds(durationMs)}`);
        }
      }
    }),
  );

  function propagationMessage(durationMs: number): string {
    if (kg.propagation) return describePropagation(kg.propagation);
    const strategy = kg.settings.propagation.strategy;
    if (strategy === 'fixed') return `propagation wait (fixed) ended after ${formatSeconds(durationMs)}`;
    let how: string;
    if (propagation.degraded) how = `${propagation.degraded}; quiet period only`;
    else if (tracker.removedAt !== undefined && shutdownStartedAt !== undefined) {
      how = `endpoints not ready in every EndpointSlice ${formatSeconds(Math.max(0, tracker.removedAt - shutdownStartedAt))} after the start, then the quiet period`;
    } else if (propagation.confirmedAt !== undefined)
      how = 'no EndpointSlice routes to this pod, then the quiet period';
    else how = 'quiet period';
    return `propagation wait ended after ${formatSeconds(durationMs)}: ${how}`;
  }

  const KUBELET_SIGNAL = /^SIG[A-Z0-9]+$/;
  cleanups.push(
    kg.addParticipant({
      name: 'kubernetes',
      unready(ctx) {
        shutdownStartedAt = Date.now();
        // Without the deletion, the pod spec still bounds the kill time: a kubelet signal arrives after
        // the preStop hook, which already spent part of the grace period; an HTTP preStop starts it.
        if (deletion === undefined && timing !== undefined) {
          const graceMs = timing.graceSeconds * 1000;
          if (KUBELET_SIGNAL.test(ctx.trigger)) {
            kg.lifecycle.tightenDeadline(shutdownStartedAt - preStopSeconds(timing.preStop) * 1000 + graceMs);
          } else if (ctx.trigger === 'prestop') {
            kg.lifecycle.tightenDeadline(shutdownStartedAt + graceMs);
          }
        } else if (deletion !== undefined) {
          kg.lifecycle.tightenDeadline(deletion.killAt);
        }
        const deadline = kg.lifecycle.deadline ?? ctx.deadline;
        record(
          'Normal',
          'ShutdownStarted',
          `shutdown started by ${ctx.trigger}; deadline ${new Date(deadline).toISOString()} ` +
            `(${formatSeconds(Math.max(0, deadline - shutdownStartedAt))} from now, ${kg.settings.safetyMarginMs} ms before the kill time)`,
        );
      },
      async exit(ctx) {
        // The exit phase runs even after the deadline (into half the safety margin): the last
        // Events, the deadline Warning among them, go out here.
        const summary = ctx.summary;
        if (summary && recorder && unavailable === undefined) {
          for (const [type, reason, message] of finalEvents(summary)) {
            void recorder.record(type, reason, message, ctx.signal);
          }
          await Promise.race([recorder.settled(), aborted(ctx.signal)]);
        }
        stopWatches();
      },
    }),
  );

  let stopped = false;
  function stopWatches(): void {
    for (const lw of listWatches) lw.stop();
  }
  function stopAll(): void {
    if (stopped) return;
    stopped = true;
    stopWatches();
    for (const cleanup of cleanups) cleanup();
  }
  async function stop(): Promise<void> {
    stopAll();
    if (recorder) await Promise.race([recorder.settled(), aborted(AbortSignal.timeout(requestTimeoutMs))]);
  }

  // ---- start-up: wait for the own pod (bounded), then check the budget against its real spec.
  if (podWatch) await firstAnswer(podWatch, requestTimeoutMs + 500);
  if (timing !== undefined) {
    const t = timing;
    const settings = kg.settings;
    const subject = `pod ${namespace}/${podName ?? '?'} (container ${t.container || '?'})`;
    const mismatches: string[] = [];
    // An explicit option or variable wins; otherwise the pod's own spec beats the 30 s default.
    const graceFromPod = kg.gracePeriodSource === 'default';
    if (graceFromPod) kg.lifecycle.setGracePeriod(t.graceSeconds * 1000);
    if (!graceFromPod && settings.gracePeriodSeconds !== t.graceSeconds) {
      mismatches.push(
        `gracePeriodSeconds (KUBEGRACE_GRACE_PERIOD_SECONDS) is ${settings.gracePeriodSeconds} s but ` +
          `terminationGracePeriodSeconds is ${t.graceSeconds} s: set KUBEGRACE_GRACE_PERIOD_SECONDS=${t.graceSeconds}` +
          (settings.gracePeriodSeconds > t.graceSeconds
            ? ' (the deadline follows the pod)'
            : ' (the deadline stays at the shorter configured one)'),
      );
    }
    const sleep = preStopSeconds(t.preStop);
    if (settings.preStopSleepSeconds !== sleep && Number.isFinite(sleep)) {
      mismatches.push(
        `preStopSleepSeconds (KUBEGRACE_PRE_STOP_SLEEP_SECONDS) is ${settings.preStopSleepSeconds} s but the ` +
          `preStop hook sleeps ${sleep} s: set KUBEGRACE_PRE_STOP_SLEEP_SECONDS=${sleep}`,
      );
    }
    if (mismatches.length > 0) warnOnce('mismatch', `${subject}: ${mismatches.join('; ')}`);
    const budget = podBudget(settings, { graceSeconds: t.graceSeconds, preStop: t.preStop });
    if (!budget.fits && settings.budgetCheck !== 'off') {
      const message = budgetMessage(budget, subject);
      if (settings.budgetCheck === 'error') {
        stopAll();
        throw new KubegraceError('ERR_KUBEGRACE_BUDGET_EXCEEDS_GRACE', message);
      }
      warnOnce('budget', message, { code: 'ERR_KUBEGRACE_BUDGET_EXCEEDS_GRACE' });
    }
  }
  logger.info('kubernetes integration on', {
    component: 'kubernetes',
    server: api.server,
    pod: podName,
    namespace,
    uid: identity.uid,
    ip: identity.ip,
    sources: identity.sources,
    graceSeconds: timing?.graceSeconds,
    preStop: timing?.preStop.kind,
  });

  return {
    enabled: true,
    reason: detection.inCluster ? 'in cluster' : 'kubeconfig',
    get identity() {
      return identity;
    },
    get pod() {
      return pod;
    },
    get timing() {
      return timing;
    },
    get deletion() {
      return deletion;
    },
    get endpoints() {
      return tracker.own();
    },
    get watching() {
      return { pod: podWatch?.connected ?? false, endpointSlices: sliceWatch?.connected ?? false };
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

function finalEvents(
  summary: ShutdownSummary,
): [
  type: 'Normal' | 'Warning',
  reason: 'ShutdownComplete' | 'ShutdownDeadlineReached' | 'ConnectionsForcedClosed' | 'ShutdownHookFailed',
  message: string,
][] {
  const phases = Object.entries(summary.phases)
    .filter(([name]) => name !== 'exit')
    .map(([name, ms]) => `${name} ${formatSeconds(ms ?? 0)}`)
    .join(', ');
  const out: ReturnType<typeof finalEvents> = [
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
      `the shutdown reached its deadline ${new Date(summary.deadlineAt).toISOString()} in its ${phaseAt(summary)} ` +
        'phase, before it finished: what was still open was cut short; raise terminationGracePeriodSeconds or ' +
        'shorten drain.timeoutMs / cleanupTimeoutMs',
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

/** The phase that was running at the deadline, from the phase durations. */
function phaseAt(summary: ShutdownSummary): string {
  let elapsed = 0;
  for (const phase of ['unready', 'propagate', 'drain', 'cleanup'] as const) {
    elapsed += summary.phases[phase] ?? 0;
    if (summary.startedAt + elapsed >= summary.deadlineAt - 5) return phase;
  }
  return 'cleanup';
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/** Resolves when the list-watch synced or failed once, or after `ms`. */
function firstAnswer(listWatch: ListWatch, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      unsubscribe();
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref();
    const unsubscribe = listWatch.subscribe(() => {
      if (listWatch.synced || listWatch.failure !== undefined) done();
    });
    if (listWatch.synced || listWatch.failure !== undefined) done();
  });
}

function disabled(reason: string, identity: PodIdentity): KubernetesIntegration {
  const stop = (): Promise<void> => Promise.resolve();
  return {
    enabled: false,
    reason,
    identity,
    pod: undefined,
    timing: undefined,
    deletion: undefined,
    endpoints: [],
    watching: { pod: false, endpointSlices: false },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

function validate(options: KubernetesOptions): void {
  if (typeof options !== 'object' || options === null) {
    throw invalidOption('kubernetes options', 'an object', options);
  }
  const t = options.requestTimeoutMs;
  if (t !== undefined && (!Number.isInteger(t) || t <= 0 || t > MAX_TIMER_MS)) {
    throw invalidOption('kubernetes requestTimeoutMs', `an integer from 1 to ${MAX_TIMER_MS} (ms)`, t);
  }
  const e = options.enabled;
  if (e !== undefined && e !== 'auto' && e !== true && e !== false) {
    throw invalidOption('kubernetes enabled', "'auto', true or false", e);
  }
  for (const name of ['watchDeletion', 'confirmPropagation', 'events'] as const) {
    const value = options[name];
    if (value !== undefined && typeof value !== 'boolean') {
      throw invalidOption(`kubernetes ${name}`, 'true or false', value);
    }
  }
  for (const name of [
    'podName',
    'namespace',
    'podUid',
    'podIp',
    'containerName',
    'serviceAccountDir',
  ] as const) {
    const value = options[name];
    if (value !== undefined && typeof value !== 'string') {
      throw invalidOption(`kubernetes ${name}`, 'a string', value);
    }
  }
  const retry = options.retry;
  if (retry !== undefined) {
    if (typeof retry !== 'object' || retry === null) {
      throw invalidOption('kubernetes retry', '{ initialMs, maxMs }', retry);
    }
    for (const key of ['initialMs', 'maxMs'] as const) {
      if (!Number.isInteger(retry[key]) || retry[key] <= 0 || retry[key] > MAX_TIMER_MS) {
        throw invalidOption(
          `kubernetes retry.${key}`,
          `an integer from 1 to ${MAX_TIMER_MS} (ms)`,
          retry[key],
        );
      }
    }
    if (retry.initialMs > retry.maxMs) {
      throw invalidOption(
        `kubernetes retry.initialMs`,
        `at most retry.maxMs (${retry.maxMs})`,
        retry.initialMs,
      );
    }
  }
  const logger = options.logger;
  if (
    logger !== undefined &&
    logger !== false &&
    (typeof logger !== 'object' ||
      logger === null ||
      !(['info', 'warn', 'error'] as const).every((level) => typeof logger[level] === 'function'))
  ) {
    throw invalidOption(
      'kubernetes logger',
      'false or an object with info, warn and error functions',
      logger,
    );
  }
  if (options.env !== undefined && (typeof options.env !== 'object' || options.env === null)) {
    throw invalidOption('kubernetes env', 'an object of environment variables', options.env);
  }
  const kubeConfig = options.kubeConfig as Partial<KubeConfigLike> | null | undefined;
  if (kubeConfig !== undefined && (typeof kubeConfig !== 'object' || kubeConfig === null)) {
    throw invalidOption('kubernetes kubeConfig', 'a KubeConfig from @kubernetes/client-node', kubeConfig);
  }
  if (kubeConfig !== undefined && typeof kubeConfig.makeApiClient !== 'function') {
    throw new KubegraceError(
      'ERR_KUBEGRACE_INVALID_OPTION',
      'kubernetes kubeConfig must be a KubeConfig from @kubernetes/client-node, received an object without makeApiClient',
    );
  }
  // Only its shape: the module must not be touched before it is known to be needed.
  if (options.client !== undefined && (typeof options.client !== 'object' || options.client === null)) {
    throw invalidOption(
      'kubernetes client',
      "the @kubernetes/client-node module (await import('@kubernetes/client-node'))",
      options.client,
    );
  }
}
