/**
 * Am I in a cluster, and who am I? Read from the places Kubernetes puts them: the service-account
 * volume and `KUBERNETES_SERVICE_*` for the API, the Downward API variables for the pod's identity.
 */
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export type Env = Readonly<Record<string, string | undefined>>;

export interface ClusterDetection {
  readonly inCluster: boolean;
  /** Why not, naming what is missing. */
  readonly reason: string;
  /** `https://host:port` of the API from `KUBERNETES_SERVICE_HOST` / `_PORT`. */
  readonly server?: string;
  readonly tokenFile: string;
  readonly caFile: string;
  readonly namespaceFile: string;
}

/** In a cluster when the API address is in the environment and a service-account token is mounted. */
export function detectCluster(
  env: Env,
  serviceAccountDir: string = SERVICE_ACCOUNT_DIR,
  exists: (path: string) => boolean = existsSync,
): ClusterDetection {
  const tokenFile = join(serviceAccountDir, 'token');
  const caFile = join(serviceAccountDir, 'ca.crt');
  const namespaceFile = join(serviceAccountDir, 'namespace');
  const files = { tokenFile, caFile, namespaceFile };
  const host = env.KUBERNETES_SERVICE_HOST;
  if (host === undefined || host === '') {
    return { inCluster: false, reason: 'KUBERNETES_SERVICE_HOST is not set', ...files };
  }
  if (!exists(tokenFile)) {
    return {
      inCluster: false,
      reason: `no service-account token at ${tokenFile} (automountServiceAccountToken: false?)`,
      ...files,
    };
  }
  const port = env.KUBERNETES_SERVICE_PORT_HTTPS || env.KUBERNETES_SERVICE_PORT || '443';
  // As client-node's loadFromCluster: plain HTTP only on the insecure ports, IPv6 in brackets.
  const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https';
  const shownHost = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return { inCluster: true, reason: 'in cluster', server: `${scheme}://${shownHost}:${port}`, ...files };
}

/** The KubeConfig options `loadFromCluster` would build, from an explicit directory and env. */
export function inClusterConfig(
  detection: ClusterDetection,
  namespace: string | undefined,
): Record<string, unknown> {
  return {
    clusters: [
      { name: 'inCluster', server: detection.server, caFile: detection.caFile, skipTLSVerify: false },
    ],
    // client-node re-reads a tokenFile (the kubelet rotates the projected token) instead of caching it.
    users: [
      {
        name: 'inClusterUser',
        authProvider: { name: 'tokenFile', config: { tokenFile: detection.tokenFile } },
      },
    ],
    contexts: [
      {
        name: 'inClusterContext',
        cluster: 'inCluster',
        user: 'inClusterUser',
        ...(namespace ? { namespace } : {}),
      },
    ],
    currentContext: 'inClusterContext',
  };
}

export type IdentitySource =
  'option' | 'env' | 'hostname' | 'service-account' | 'kubeconfig' | 'api' | 'default';

export interface PodIdentity {
  readonly name: string | undefined;
  readonly namespace: string | undefined;
  readonly uid: string | undefined;
  readonly ip: string | undefined;
  /** Where each known field came from. */
  readonly sources: Readonly<Partial<Record<'name' | 'namespace' | 'uid' | 'ip', IdentitySource>>>;
}

export interface IdentityInputs {
  readonly env: Env;
  readonly podName?: string | undefined;
  readonly namespace?: string | undefined;
  readonly podUid?: string | undefined;
  readonly podIp?: string | undefined;
  readonly namespaceFile?: string | undefined;
  /** The namespace of the kubeconfig's current context, when one was given. */
  readonly contextNamespace?: string | undefined;
  readonly hostname?: () => string;
  readonly readFile?: (path: string) => string;
}

/**
 * Option, then Downward API variable (`POD_NAME`, `POD_NAMESPACE`, `POD_UID`, `POD_IP`), then:
 * the hostname for the name (a pod's hostname is its name unless `spec.hostname` is set), the
 * service-account namespace file or the kubeconfig context for the namespace. UID and IP have no
 * fallback here; the pod read through the API fills them in.
 */
export function podIdentity(inputs: IdentityInputs): PodIdentity {
  const { env } = inputs;
  const sources: Partial<Record<'name' | 'namespace' | 'uid' | 'ip', IdentitySource>> = {};
  const pick = (
    field: 'name' | 'namespace' | 'uid' | 'ip',
    option: string | undefined,
    envName: string,
  ): string | undefined => {
    if (option !== undefined && option !== '') {
      sources[field] = 'option';
      return option;
    }
    const value = env[envName]?.trim();
    if (value !== undefined && value !== '') {
      sources[field] = 'env';
      return value;
    }
    return undefined;
  };
  let name = pick('name', inputs.podName, 'POD_NAME');
  if (name === undefined) {
    const host = (inputs.hostname ?? hostname)();
    if (host !== '') {
      name = host;
      sources.name = 'hostname';
    }
  }
  let namespace = pick('namespace', inputs.namespace, 'POD_NAMESPACE');
  if (namespace === undefined && inputs.namespaceFile !== undefined) {
    try {
      const value = (inputs.readFile ?? ((p: string) => readFileSync(p, 'utf8')))(
        inputs.namespaceFile,
      ).trim();
      if (value !== '') {
        namespace = value;
        sources.namespace = 'service-account';
      }
    } catch {
      // No namespace file: not a mounted service account; the kubeconfig may know.
    }
  }
  if (namespace === undefined && inputs.contextNamespace) {
    namespace = inputs.contextNamespace;
    sources.namespace = 'kubeconfig';
  }
  const uid = pick('uid', inputs.podUid, 'POD_UID');
  const ip = pick('ip', inputs.podIp, 'POD_IP');
  return { name, namespace, uid, ip, sources };
}

/** The env block to paste into the container spec: the Downward API fields kubegrace reads. */
export const DOWNWARD_API_ENV = `env:
  - name: POD_NAME
    valueFrom: { fieldRef: { fieldPath: metadata.name } }
  - name: POD_NAMESPACE
    valueFrom: { fieldRef: { fieldPath: metadata.namespace } }
  - name: POD_UID
    valueFrom: { fieldRef: { fieldPath: metadata.uid } }
  - name: POD_IP
    valueFrom: { fieldRef: { fieldPath: status.podIP } }`;
