/**
 * The control plane of the `in-cluster` traffic shape: the in-process fake Kubernetes API
 * (test/support/fake-kube-api.ts, real HTTPS and watches for the real client library) holding each
 * pod and a Service's EndpointSlice. At a pod's SIGTERM the pod is deleted (deletionTimestamp, as the
 * API server does before the kubelet signals) and, `notReadyAfterMs` later, its endpoint turns
 * `ready: false, serving: true, terminating: true`, as the endpointslice controller does within tens
 * of milliseconds; the node tables of the harness drop it only after their own lags. When the pod
 * has exited its endpoint leaves the slice and the pod object goes.
 */
import type { ControlPlane } from '../src/cli/demo/run.js';
import { startFakeKubeApi, type FakeKubeApi, type Json } from '../test/support/fake-kube-api.js';

export interface FakeControlPlane extends ControlPlane {
  readonly api: FakeKubeApi;
  close(): Promise<void>;
}

export interface FakeControlPlaneOptions {
  readonly graceSeconds: number;
  /** After a SIGTERM, the endpoint turns not ready this much later. @default 50 */
  readonly notReadyAfterMs?: number;
}

const NAMESPACE = 'bench';
const SLICE = 'web-bench';

export async function startFakeControlPlane(options: FakeControlPlaneOptions): Promise<FakeControlPlane> {
  const api = await startFakeKubeApi();
  const serviceAccountDir = api.serviceAccountDir(NAMESPACE);
  const notReadyAfterMs = options.notReadyAfterMs ?? 50;
  const uids = new Map<string, string>();
  const timers = new Set<NodeJS.Timeout>();
  let registered = 0;

  api.put('endpointslices', {
    metadata: { name: SLICE, namespace: NAMESPACE, labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    endpoints: [],
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  });

  const editEndpoints = (edit: (endpoints: Json[]) => Json[]): void => {
    api.update('endpointslices', NAMESPACE, SLICE, (slice) => {
      slice.endpoints = edit(slice.endpoints as Json[]);
    });
  };
  const isPod = (uid: string | undefined) => (endpoint: Json) =>
    (endpoint.targetRef as Json | undefined)?.uid === uid;

  return {
    api,
    register(pod) {
      registered += 1;
      const ip = `10.0.${Math.floor(registered / 250)}.${(registered % 250) + 1}`;
      const stored = api.put('pods', {
        metadata: { name: pod, namespace: NAMESPACE, labels: { app: 'web' } },
        spec: {
          terminationGracePeriodSeconds: options.graceSeconds,
          containers: [{ name: 'app', image: 'web:1' }],
        },
        status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
      });
      const uid = (stored.metadata as Json).uid as string;
      uids.set(pod, uid);
      editEndpoints((endpoints) => [
        ...endpoints,
        {
          addresses: [ip],
          conditions: { ready: true, serving: true, terminating: false },
          targetRef: { kind: 'Pod', name: pod, namespace: NAMESPACE, uid },
        },
      ]);
      return Promise.resolve({
        KUBERNETES_SERVICE_HOST: '127.0.0.1',
        KUBERNETES_SERVICE_PORT: String(api.port),
        POD_NAME: pod,
        POD_NAMESPACE: NAMESPACE,
        POD_UID: uid,
        POD_IP: ip,
        BENCH_KUBERNETES: '1',
        BENCH_SERVICE_ACCOUNT_DIR: serviceAccountDir,
      });
    },
    terminating(pod) {
      const uid = uids.get(pod);
      if (uid === undefined) return;
      api.deletePod(NAMESPACE, pod);
      const timer = setTimeout(() => {
        timers.delete(timer);
        editEndpoints((endpoints) =>
          endpoints.map((e) =>
            isPod(uid)(e) ? { ...e, conditions: { ready: false, serving: true, terminating: true } } : e,
          ),
        );
      }, notReadyAfterMs);
      timers.add(timer);
    },
    exited(pod) {
      const uid = uids.get(pod);
      if (uid === undefined) return;
      uids.delete(pod);
      editEndpoints((endpoints) => endpoints.filter((e) => !isPod(uid)(e)));
      api.remove('pods', NAMESPACE, pod);
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await api.close();
    },
  };
}
