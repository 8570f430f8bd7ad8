/**
 * `kg.use(kubernetes())`: the own pod and its EndpointSlices through the API, wired into a kubegrace
 * instance. It gives the lifecycle the kubelet's real kill time, starts the shutdown when the pod is
 * deleted (even while a preStop hook holds SIGTERM back), confirms the propagation wait with the
 * EndpointSlices, and records Events. When the API cannot help (no access, unreachable, slow, broken
 * watches) it says so once and leaves the local strategy in charge; it never makes a shutdown longer.
 *
 * The parts: `options.ts` (the options), `warnings.ts` (what it says when the API cannot help),
 * `own-pod.ts` (identity, spec timing, deletion), `slices.ts` (the propagation confirmation),
 * `spec-check.ts` (grace period and budgets at start-up), `event-messages.ts` (Event texts),
 * `events.ts` (posting them). This file wires them to the instance.
 */
import { defineIntegration, type Host, type Integration } from '../host.js';
import { killTimeFromPodSpec, type TriggerKind } from '../timing.js';
import { settle, settlePromise } from '../wait.js';
import { createKubeApi, loadClientModule, type KubeApi, type KubeConfigLike } from './client.js';
import {
  detectCluster,
  inClusterConfig,
  podIdentity,
  SERVICE_ACCOUNT_DIR,
  type PodIdentity,
} from './detect.js';
import type { EndpointRef } from './endpoints.js';
import {
  drainedEvent,
  finalEvents,
  propagationEvent,
  shutdownStartedEvent,
  type EventLine,
} from './event-messages.js';
import { createEventRecorder, type EventRecorder } from './events.js';
import type { ListWatch } from './list-watch.js';
import {
  resolveKubernetesOptions,
  type KubernetesOptions,
  type ResolvedKubernetesOptions,
} from './options.js';
import { watchOwnPod, type PodTiming } from './own-pod.js';
import { preStopSeconds, type DeletionTiming } from './pod-timing.js';
import { watchSlices, type SliceWatch } from './slices.js';
import { checkPodSpec } from './spec-check.js';
import { createApiWarnings } from './warnings.js';

export type { KubernetesOptions } from './options.js';
export type { PodTiming } from './own-pod.js';

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
 * The Kubernetes integration, for `kg.use()`. Options are checked here, at once. `kg.use` returns a
 * promise: outside a cluster it resolves at once with `enabled: false`; otherwise once the own pod
 * was read (or the attempt failed, at most `requestTimeoutMs` + 0.5 s later). It rejects with
 * `ERR_KUBEGRACE_BUDGET_EXCEEDS_GRACE` when the phases do not fit the pod's real grace period and
 * `budgetCheck` is `error`.
 */
export function kubernetes(options: KubernetesOptions = {}): Integration<Promise<KubernetesIntegration>> {
  const resolved = resolveKubernetesOptions(options);
  return defineIntegration('kubernetes', (host) => connect(host, resolved));
}

async function connect(host: Host, o: ResolvedKubernetesOptions): Promise<KubernetesIntegration> {
  const { logger, lifecycle } = host;
  const detection = detectCluster(o.env, o.serviceAccountDir ?? SERVICE_ACCOUNT_DIR);
  const baseIdentity = (contextNamespace?: string): PodIdentity =>
    podIdentity({
      env: o.env,
      podName: o.podName,
      namespace: o.namespace,
      podUid: o.podUid,
      podIp: o.podIp,
      namespaceFile: detection.inCluster ? detection.namespaceFile : undefined,
      contextNamespace,
    });

  if (o.enabled === false) return disabled('turned off (enabled: false)', baseIdentity());
  if (o.kubeConfig === undefined && !detection.inCluster && o.enabled !== true) {
    logger.info('kubernetes integration off: not running in a cluster', { reason: detection.reason });
    return disabled(`not running in a cluster: ${detection.reason}`, baseIdentity());
  }

  const client = o.client ?? (await loadClientModule());
  let kubeConfig: KubeConfigLike | undefined = o.kubeConfig;
  if (kubeConfig === undefined) {
    const loaded = new client.KubeConfig();
    if (detection.inCluster) loaded.loadFromOptions(inClusterConfig(detection, undefined));
    else loaded.loadFromDefault();
    kubeConfig = loaded;
  }
  const contextNamespace = kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace;
  const initial = baseIdentity(contextNamespace);
  const namespace = initial.namespace ?? 'default';
  const identity: PodIdentity = {
    ...initial,
    namespace,
    sources: { ...initial.sources, namespace: initial.sources.namespace ?? 'default' },
  };
  const api: KubeApi = createKubeApi(client, kubeConfig, { requestTimeoutMs: o.requestTimeoutMs });
  const warnings = createApiWarnings(logger, api.server, o.requestTimeoutMs);
  const listWatches: ListWatch[] = [];
  const cleanups: (() => void)[] = [];
  /** `kg.use` has resolved: a pod spec read from now on is checked without refusing the start. */
  let started = false;
  /** The shutdown this integration took part in, once its unready phase ran. */
  let running: { readonly triggerKind: TriggerKind; readonly startedAt: number } | undefined;
  const subjectOf = (timing: PodTiming): string =>
    `pod ${namespace}/${identity.name ?? '?'} (container ${timing.container || '?'})`;

  // ---- the own pod: spec timing, identity, deletion.
  const ownPod = watchOwnPod({
    api,
    namespace,
    identity,
    containerName: o.containerName,
    requestTimeoutMs: o.requestTimeoutMs,
    retry: o.retry,
    warnings,
    onDeletion(seen, again) {
      logger.info(again ? 'pod deletion shortened' : 'pod deletion seen', {
        component: 'kubernetes',
        deletionTimestamp: new Date(seen.deletionTimestamp).toISOString(),
        killAt: new Date(seen.killAt).toISOString(),
        graceSeconds: seen.graceSeconds,
      });
      if (lifecycle.state === 'stopped') return;
      if (lifecycle.state !== 'draining' && o.watchDeletion) {
        void lifecycle.shutdown({ kind: 'deletion' }, { terminationStartedAt: seen.startedAt });
      }
      // Whatever started the shutdown, the API knows the kill time exactly.
      if (lifecycle.state === 'draining') lifecycle.tightenKillTime(seen.killAt, 'deletion');
    },
    onGone() {
      // Force-deleted (grace 0) or already finished: the kubelet kills now.
      if (lifecycle.state !== 'stopped' && o.watchDeletion) void lifecycle.shutdown({ kind: 'deletion' });
    },
    onTiming(timing) {
      // Read only after start-up (the API was unavailable then): adopt and check it as at start-up.
      if (!started) return;
      logger.info('own pod read after start-up', {
        component: 'kubernetes',
        graceSeconds: timing.graceSeconds,
        preStop: timing.preStop.kind,
      });
      checkPodSpec(host, timing, subjectOf(timing), warnings, true);
      // A shutdown is running: the grace period just adopted counts from when the kubelet began, which
      // a preStop sleep puts before this shutdown's start (unready() could not bound it: no spec then).
      if (running !== undefined && ownPod.deletion === undefined) {
        const killAt = killTimeFromPodSpec(running.triggerKind, running.startedAt, {
          graceSeconds: timing.graceSeconds,
          preStopSeconds: preStopSeconds(timing.preStop),
        });
        if (killAt !== undefined) lifecycle.tightenKillTime(killAt, 'pod-spec');
      }
    },
  });
  if (ownPod.listWatch) listWatches.push(ownPod.listWatch);

  // ---- this pod's EndpointSlices: the propagation confirmation.
  let slices: SliceWatch | undefined;
  if (o.confirmPropagation) {
    const { proxyAllowanceMs, maxMs, strategy } = host.settings.propagation;
    if (strategy === 'adaptive' && proxyAllowanceMs >= maxMs) {
      warnings.warnOnce(
        'allowance',
        `propagation.proxyAllowanceMs (${proxyAllowanceMs} ms) is not shorter than propagation.maxMs (${maxMs} ms): ` +
          'every wait the EndpointSlices confirm runs to maxMs; raise maxMs (and the grace period) or lower the allowance',
      );
    }
    slices = watchSlices({
      api,
      namespace,
      identity: () => ownPod.identity,
      requestTimeoutMs: o.requestTimeoutMs,
      retry: o.retry,
      warnings,
    });
    listWatches.push(slices.listWatch);
    cleanups.push(host.addPropagationConfirmation(slices.confirmation));
  }

  // ---- Events.
  const recorder: EventRecorder | undefined = o.events
    ? createEventRecorder({
        api,
        pod: () => {
          const { name, uid } = ownPod.identity;
          return name === undefined ? undefined : { name, namespace, uid };
        },
        onFailure: (failure) => warnings.onFailure(failure),
      })
    : undefined;
  const record = ([type, reason, message]: EventLine, signal?: AbortSignal): void => {
    // While the API is known to be down an Event would only cost the shutdown a time-out.
    if (recorder && !warnings.unavailable) void recorder.record(type, reason, message, signal);
  };

  cleanups.push(
    lifecycle.on('phase', ({ phase, status, durationMs }) => {
      if (status !== 'end') return;
      if (phase === 'propagate') record(propagationEvent(host.propagation, durationMs));
      else if (phase === 'drain') record(drainedEvent(durationMs, lifecycle.timing.deadlineAt, Date.now()));
    }),
    host.addParticipant({
      name: 'kubernetes',
      unready(ctx) {
        const startedAt = Date.now();
        running = { triggerKind: ctx.triggerKind, startedAt };
        // Without the deletion, the pod spec still bounds the kill time (see killTimeFromPodSpec).
        const { deletion, timing } = ownPod;
        if (deletion !== undefined) {
          lifecycle.tightenKillTime(deletion.killAt, 'deletion');
        } else if (timing !== undefined) {
          const killAt = killTimeFromPodSpec(ctx.triggerKind, startedAt, {
            graceSeconds: timing.graceSeconds,
            preStopSeconds: preStopSeconds(timing.preStop),
          });
          if (killAt !== undefined) lifecycle.tightenKillTime(killAt, 'pod-spec');
        }
        record(shutdownStartedEvent(ctx.trigger, lifecycle.timing, startedAt));
      },
      async exit(ctx) {
        // The exit phase runs even after the deadline (into half the safety margin): the last
        // Events, the deadline Warning among them, go out here.
        if (ctx.summary && recorder && !warnings.unavailable) {
          for (const line of finalEvents(ctx.summary)) record(line, ctx.signal);
          await settlePromise(recorder.settled(), { signal: ctx.signal });
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
    if (recorder) await settlePromise(recorder.settled(), { timeoutMs: o.requestTimeoutMs });
  }

  // ---- start-up: wait for the own pod (bounded), then check the budget against its real spec.
  const podWatch = ownPod.listWatch;
  if (podWatch) {
    const answered = (): boolean => podWatch.synced || podWatch.failure !== undefined;
    await settle({
      isDone: answered,
      subscribe: (onChange) => podWatch.subscribe(onChange),
      timeoutMs: o.requestTimeoutMs + 500,
    });
  }
  const podName = identity.name;
  if (ownPod.timing !== undefined) {
    try {
      checkPodSpec(host, ownPod.timing, subjectOf(ownPod.timing), warnings);
    } catch (error) {
      stopAll();
      throw error;
    }
  }
  started = true;
  logger.info('kubernetes integration on', {
    component: 'kubernetes',
    server: api.server,
    pod: podName,
    namespace,
    uid: ownPod.identity.uid,
    ip: ownPod.identity.ip,
    sources: ownPod.identity.sources,
    graceSeconds: ownPod.timing?.graceSeconds,
    preStop: ownPod.timing?.preStop.kind,
  });

  return {
    enabled: true,
    reason: detection.inCluster ? 'in cluster' : 'kubeconfig',
    get identity() {
      return ownPod.identity;
    },
    get pod() {
      return ownPod.pod;
    },
    get timing() {
      return ownPod.timing;
    },
    get deletion() {
      return ownPod.deletion;
    },
    get endpoints() {
      return slices?.tracker.own() ?? [];
    },
    get watching() {
      return {
        pod: podWatch?.connected ?? false,
        endpointSlices: slices?.listWatch.connected ?? false,
      };
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
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
