/**
 * What a scenario needs from a cluster, so the same scenario runs against the fake API
 * (test/support/fake-kube-api.ts) and, opt-in, a real cluster. Both drivers go through the real
 * client: pods are created over the wire, so the fake's validation (as the version it plays) and a
 * real server's apply alike, and each driver asks the server for its version and picks the preStop
 * handler by it, as the chart's `preStop.action: auto` does. Moments are epoch ms taken around the
 * API call that makes them.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type * as k8s1 from '@kubernetes/client-node';
import type { KubeClientModule, KubeConfigLike } from '../../src/kubernetes/client.js';
import { parseMicroTime, type FakeKubeApi, type Json } from './fake-kube-api.js';

export interface ServerVersion {
  readonly gitVersion: string;
  readonly major: number;
  readonly minor: number;
}

/** A pod created for a scenario. */
export interface ScenarioPod {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
  readonly ip: string;
  /** The preStop handler it was created with. */
  readonly preStop: Json | undefined;
}

export interface ScenarioPodSpec {
  readonly graceSeconds: number;
  /** A preStop hook that holds SIGTERM back this long: the sleep action or `exec sleep`, by version. */
  readonly preStopSleepSeconds?: number;
}

export interface ClusterDriver {
  readonly name: string;
  /** `fake`: every failure switch is available; `real`: only what a real cluster does by itself. */
  readonly kind: 'fake' | 'real';
  readonly namespace: string;
  /** The server's `/version`, read through the client. */
  readonly serverVersion: ServerVersion;
  /** The fake itself, for what only it can show (its request log); undefined on a real cluster. */
  readonly fake: FakeKubeApi | undefined;
  /** How far a "moment" measured here can be off the API server's own clock and latency. */
  readonly clockToleranceMs: number;
  /** A KubeConfig of `client` (either major) pointing at this cluster. */
  kubeConfig(client: KubeClientModule): KubeConfigLike;
  createPod(spec: ScenarioPodSpec): Promise<ScenarioPod>;
  /**
   * A Service's EndpointSlice listing the pod as ready (and, on the fake, one other endpoint). With
   * `publishNotReadyAddresses` the Service publishes endpoints whatever their readiness.
   */
  addEndpoints(pod: ScenarioPod, options?: { readonly publishNotReadyAddresses?: boolean }): Promise<string>;
  /** Mark the pod's endpoint `ready: false, terminating: true`; resolves with the moment it happened. */
  markNotReady(slice: string, pod: ScenarioPod): Promise<number>;
  /**
   * Mark it terminating but still `ready: true`, as the EndpointSlice controller does for a Service
   * with `publishNotReadyAddresses: true`; resolves with the moment.
   */
  markTerminatingStillReady(slice: string, pod: ScenarioPod): Promise<number>;
  /** Remove the pod's endpoint from the slice; resolves with the moment. */
  removeEndpoint(slice: string, pod: ScenarioPod): Promise<number>;
  /** Delete the pod with this grace; `killAt` is the kubelet's SIGKILL moment (exact on the fake). */
  deletePod(
    pod: ScenarioPod,
    graceSeconds?: number,
  ): Promise<{ readonly deletedAt: number; readonly killAt: number }>;
  /** kubegrace's Events on the pod, in the order they happened (`orderEvents`). */
  events(pod: ScenarioPod): Promise<Json[]>;
  cleanup(): Promise<void>;
}

/** The server's version through the client's VersionApi (`GET /version`), either major. */
export async function readServerVersion(
  client: KubeClientModule,
  kubeConfig: KubeConfigLike,
): Promise<ServerVersion> {
  const k8s = client as unknown as typeof k8s1;
  const api = kubeConfig.makeApiClient(k8s.VersionApi as never) as k8s1.VersionApi;
  const info = await api.getCode();
  // Managed clusters say minor "25+"; the gitVersion is the reliable part.
  const m = /^v?(\d+)\.(\d+)/.exec(info.gitVersion);
  const major = m ? Number(m[1]) : Number.parseInt(info.major, 10);
  const minor = m ? Number(m[2]) : Number.parseInt(info.minor, 10);
  if (!Number.isInteger(major) || !Number.isInteger(minor))
    throw new Error(`cannot read the server version from ${JSON.stringify(info)}`);
  return { gitVersion: info.gitVersion, major, minor };
}

const atLeast = (v: ServerVersion, minor: number): boolean =>
  v.major > 1 || (v.major === 1 && v.minor >= minor);

/**
 * The preStop handler `charts/kubegrace`'s `preStop.action: auto` would pick on this version: the
 * sleep action from 1.30 (zero seconds from 1.33), else an exec hook (`sleep N`, which kubegrace
 * reads as the same hold-back).
 */
export function preStopFor(seconds: number, version: ServerVersion): Json {
  const sleepSupported = atLeast(version, 30) && (seconds > 0 || atLeast(version, 33));
  return sleepSupported ? { sleep: { seconds } } : { exec: { command: ['sleep', String(seconds)] } };
}

/** An Event's moment in µs: its `eventTime`, else its `firstTimestamp` (whole seconds). */
export function eventMicros(event: Json): number {
  const micro =
    event.eventTime === undefined || event.eventTime === null ? undefined : parseMicroTime(event.eventTime);
  if (typeof micro === 'number') return micro;
  return Date.parse(String(event.firstTimestamp)) * 1000;
}

/**
 * Events in the order they happened, by what the API keeps of each: `eventTime` to the µs
 * (`firstTimestamp` is whole seconds). A stable sort, so equal times keep the list's order.
 */
export function orderEvents(events: readonly Json[]): Json[] {
  return [...events].sort((a, b) => eventMicros(a) - eventMicros(b));
}

function podBody(spec: ScenarioPodSpec, version: ServerVersion, generateName: string, labels: Json): Json {
  const preStop =
    spec.preStopSleepSeconds === undefined ? undefined : preStopFor(spec.preStopSleepSeconds, version);
  return {
    metadata: { generateName, labels },
    spec: {
      terminationGracePeriodSeconds: spec.graceSeconds,
      containers: [
        {
          name: 'app',
          image: 'registry.k8s.io/pause:3.10',
          env: [{ name: 'KUBEGRACE_GRACE_PERIOD_SECONDS', value: String(spec.graceSeconds) }],
          ...(preStop ? { lifecycle: { preStop } } : {}),
          // Admitted by Pod Security "restricted" (pause runs as 65535 by itself).
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 65535,
            allowPrivilegeEscalation: false,
            capabilities: { drop: ['ALL'] },
            seccompProfile: { type: 'RuntimeDefault' },
          },
        },
      ],
    },
  };
}

function endpointsWith(endpoints: Json[], pod: ScenarioPod, edit: (e: Json) => Json | undefined): Json[] {
  return endpoints.flatMap((e) => {
    if ((e.targetRef as Json | undefined)?.uid !== pod.uid) return [e];
    const next = edit(e);
    return next === undefined ? [] : [next];
  });
}

type EndpointEdits = Pick<ClusterDriver, 'markNotReady' | 'markTerminatingStillReady' | 'removeEndpoint'>;

/** The endpoint changes a scenario makes, on top of a driver's way to edit a slice. */
function endpointEdits(
  editSlice: (slice: string, edit: (endpoints: Json[]) => Json[]) => Promise<number>,
): EndpointEdits {
  const setConditions = (slice: string, pod: ScenarioPod, conditions: Json): Promise<number> =>
    editSlice(slice, (endpoints) => endpointsWith(endpoints, pod, (e) => ({ ...e, conditions })));
  return {
    markNotReady: (slice, pod) =>
      setConditions(slice, pod, { ready: false, serving: true, terminating: true }),
    markTerminatingStillReady: (slice, pod) =>
      setConditions(slice, pod, { ready: true, serving: true, terminating: true }),
    removeEndpoint: (slice, pod) =>
      editSlice(slice, (endpoints) => endpointsWith(endpoints, pod, () => undefined)),
  };
}

/** An EndpointSlice of `service` listing the pod as ready (then `others`). */
function sliceBody(
  name: string,
  namespace: string,
  service: string,
  pod: ScenarioPod,
  labels: Json,
  others: readonly Json[] = [],
): Json {
  return {
    metadata: { name, namespace, labels: { ...labels, 'kubernetes.io/service-name': service } },
    addressType: 'IPv4',
    endpoints: [
      {
        addresses: [pod.ip],
        conditions: { ready: true, serving: true, terminating: false },
        targetRef: { kind: 'Pod', name: pod.name, namespace, uid: pod.uid },
      },
      ...others,
    ],
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
}

// ------------------------------------------------------------------ the fake

export async function fakeDriver(
  fake: FakeKubeApi,
  name: string,
  client: KubeClientModule,
  namespace = 'shop',
): Promise<ClusterDriver> {
  const k8s = client as unknown as typeof k8s1;
  const kc = new client.KubeConfig();
  kc.loadFromOptions(fake.kubeConfigOptions(namespace));
  const core = kc.makeApiClient(k8s.CoreV1Api as never) as k8s1.CoreV1Api;
  const serverVersion = await readServerVersion(client, kc);
  let counter = 0;

  async function editSlice(slice: string, edit: (endpoints: Json[]) => Json[]): Promise<number> {
    const at = Date.now();
    fake.update('endpointslices', namespace, slice, (s) => {
      s.endpoints = edit(s.endpoints as Json[]);
    });
    return at;
  }

  return {
    name: `${name} (${serverVersion.gitVersion})`,
    kind: 'fake',
    namespace,
    serverVersion,
    fake,
    clockToleranceMs: 0,
    kubeConfig(c) {
      const config = new c.KubeConfig();
      config.loadFromOptions(fake.kubeConfigOptions(namespace));
      return config;
    },
    async createPod(spec) {
      counter += 1;
      const body = podBody(spec, serverVersion, 'web-7d4b9c-', { app: 'web' });
      // A sidecar without KUBEGRACE_* env: the integration must pick the app container.
      ((body.spec as Json).containers as Json[]).unshift({ name: 'istio-proxy', image: 'proxy' });
      const created = await core.createNamespacedPod({ namespace, body });
      const podName = created.metadata?.name as string;
      const ip = `10.1.${counter}.${10 + counter}`;
      // The scheduler's and the kubelet's part: the pod is bound to a node, runs and has an IP.
      fake.update('pods', namespace, podName, (p) => {
        (p.spec as Json).nodeName = 'node-1';
        p.status = { phase: 'Running', podIP: ip, podIPs: [{ ip }] };
      });
      const container = created.spec?.containers.find((c) => c.name === 'app');
      return {
        name: podName,
        namespace,
        uid: created.metadata?.uid as string,
        ip,
        preStop: container?.lifecycle?.preStop as Json | undefined,
      };
    },
    async addEndpoints(pod, options = {}) {
      const service = 'web';
      if (!fake.get('services', namespace, service)) {
        fake.put('services', {
          metadata: { name: service, namespace },
          spec: {
            ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
            publishNotReadyAddresses: options.publishNotReadyAddresses ?? false,
          },
        });
      }
      const sliceName = `web-${randomBytes(3).toString('hex').slice(0, 5)}`;
      fake.put(
        'endpointslices',
        sliceBody(
          sliceName,
          namespace,
          service,
          pod,
          { 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' },
          [
            {
              addresses: ['10.9.9.9'],
              conditions: { ready: true, serving: true, terminating: false },
              targetRef: { kind: 'Pod', name: 'web-other', namespace, uid: randomUUID() },
            },
          ],
        ),
      );
      return sliceName;
    },
    ...endpointEdits(editSlice),
    async deletePod(pod, graceSeconds) {
      const deleted = fake.deletePod(
        pod.namespace,
        pod.name,
        graceSeconds === undefined ? {} : { graceSeconds },
      );
      return { deletedAt: deleted.deletedAt, killAt: deleted.killAt };
    },
    async events(pod) {
      return orderEvents(
        fake.list('events', namespace).filter((e) => (e.involvedObject as Json | undefined)?.uid === pod.uid),
      );
    },
    cleanup: () => fake.close(),
  };
}

// ------------------------------------------------------------------ a real cluster (opt-in)

/**
 * Runs the scenarios in a real cluster (KUBECONFIG): a `pause` pod per scenario, a selector-less
 * Service with a hand-written EndpointSlice that lists the pod (so the test decides when the endpoint
 * leaves), deletions through the API. The process under test runs here, watching that pod by name.
 * Namespace: KUBEGRACE_TEST_NAMESPACE, else the kubeconfig context's, else `default`. Everything it
 * creates is deleted by `cleanup`, kubegrace's Events on its pods included.
 */
export async function realClusterDriver(client: KubeClientModule): Promise<ClusterDriver> {
  const k8s = client as unknown as typeof k8s1;
  const kc = new k8s.KubeConfig();
  kc.loadFromDefault();
  const namespace =
    process.env.KUBEGRACE_TEST_NAMESPACE ||
    kc.getContextObject(kc.getCurrentContext())?.namespace ||
    'default';
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const discovery = kc.makeApiClient(k8s.DiscoveryV1Api);
  const serverVersion = await readServerVersion(client, kc);
  const undo: (() => Promise<unknown>)[] = [];
  const graceOf = new Map<string, number>();
  const suffix = (): string => Math.random().toString(36).slice(2, 7);
  const toJson = (value: unknown): Json => JSON.parse(JSON.stringify(value)) as Json;

  async function editSlice(slice: string, edit: (endpoints: Json[]) => Json[]): Promise<number> {
    const current = toJson(await discovery.readNamespacedEndpointSlice({ name: slice, namespace }));
    current.endpoints = edit((current.endpoints as Json[] | undefined) ?? []);
    const before = Date.now();
    await discovery.replaceNamespacedEndpointSlice({ name: slice, namespace, body: current as never });
    return Math.round((before + Date.now()) / 2);
  }

  return {
    name: `real (${serverVersion.gitVersion})`,
    kind: 'real',
    namespace,
    serverVersion,
    fake: undefined,
    // Moments are taken on this machine around an API round trip; the API server stamps its own clock.
    clockToleranceMs: 1000,
    kubeConfig(c) {
      const config = new c.KubeConfig();
      config.loadFromDefault();
      return config;
    },
    async createPod(spec) {
      const body = podBody(spec, serverVersion, 'kubegrace-e2e-', { app: 'kubegrace-e2e' });
      const created = await core.createNamespacedPod({ namespace, body });
      const name = created.metadata?.name as string;
      graceOf.set(name, spec.graceSeconds);
      undo.push(async () => {
        await core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 }).catch(() => undefined);
        // Events outlive their pod (the API server's --event-ttl, 1 h by default): remove ours.
        const uid = created.metadata?.uid;
        if (uid) {
          await core
            .deleteCollectionNamespacedEvent({ namespace, fieldSelector: `involvedObject.uid=${uid}` })
            .catch(() => undefined);
        }
      });
      const until = Date.now() + 120_000;
      for (;;) {
        const pod = await core.readNamespacedPod({ name, namespace });
        if (pod.status?.phase === 'Running' && pod.status.podIP) {
          return {
            name,
            namespace,
            uid: pod.metadata?.uid as string,
            ip: pod.status.podIP,
            preStop: pod.spec?.containers[0]?.lifecycle?.preStop as Json | undefined,
          };
        }
        if (Date.now() > until) throw new Error(`pod ${namespace}/${name} not Running after 120 s`);
        await delay(500);
      }
    },
    async addEndpoints(pod, options = {}) {
      const service = `kubegrace-e2e-${suffix()}`;
      await core.createNamespacedService({
        namespace,
        body: {
          metadata: { name: service, labels: { app: 'kubegrace-e2e' } },
          spec: {
            ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
            publishNotReadyAddresses: options.publishNotReadyAddresses ?? false,
          },
        },
      });
      undo.push(() => core.deleteNamespacedService({ name: service, namespace }).catch(() => undefined));
      const slice = `${service}-manual`;
      await discovery.createNamespacedEndpointSlice({
        namespace,
        body: sliceBody(slice, namespace, service, pod, {
          app: 'kubegrace-e2e',
          'endpointslice.kubernetes.io/managed-by': 'kubegrace-e2e',
        }) as never,
      });
      undo.push(() =>
        discovery.deleteNamespacedEndpointSlice({ name: slice, namespace }).catch(() => undefined),
      );
      return slice;
    },
    ...endpointEdits(editSlice),
    async deletePod(pod, graceSeconds) {
      const grace = graceSeconds ?? graceOf.get(pod.name) ?? 30;
      const before = Date.now();
      await core.deleteNamespacedPod({
        name: pod.name,
        namespace,
        ...(graceSeconds === undefined ? {} : { gracePeriodSeconds: graceSeconds }),
      });
      const deletedAt = Math.round((before + Date.now()) / 2);
      return { deletedAt, killAt: deletedAt + grace * 1000 };
    },
    async events(pod) {
      const list = await core.listNamespacedEvent({
        namespace,
        fieldSelector: `involvedObject.uid=${pod.uid}`,
      });
      return orderEvents(
        list.items.map(toJson).filter((e) => (e.source as Json | undefined)?.component === 'kubegrace'),
      );
    },
    async cleanup() {
      for (const step of undo.reverse()) await step();
    },
  };
}
