/** The options of `kubernetes()`, read through the one settings reader (`src/settings.ts`). */
import { invalidOption, KubegraceError } from '../errors.js';
import { processEnv } from '../process.js';
import { createSettingReader } from '../settings.js';
import type { KubeClientModule, KubeConfigLike } from './client.js';
import type { Env } from './detect.js';

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
  /** @default process.env */
  readonly env?: Env;
  /** @default /var/run/secrets/kubernetes.io/serviceaccount */
  readonly serviceAccountDir?: string;
  /** Retry delays of broken lists and watches. @default { initialMs: 250, maxMs: 8000 } */
  readonly retry?: { readonly initialMs: number; readonly maxMs: number };
}

/** Every option with its default in place (the identity options stay optional: they have fallbacks). */
export interface ResolvedKubernetesOptions {
  readonly enabled: 'auto' | boolean;
  readonly kubeConfig: KubeConfigLike | undefined;
  readonly client: KubeClientModule | undefined;
  readonly podName: string | undefined;
  readonly namespace: string | undefined;
  readonly podUid: string | undefined;
  readonly podIp: string | undefined;
  readonly containerName: string | undefined;
  readonly serviceAccountDir: string | undefined;
  readonly requestTimeoutMs: number;
  readonly watchDeletion: boolean;
  readonly confirmPropagation: boolean;
  readonly events: boolean;
  readonly env: Env;
  readonly retry: { readonly initialMs: number; readonly maxMs: number };
}

const KNOWN = [
  'enabled',
  'kubeConfig',
  'client',
  'podName',
  'namespace',
  'podUid',
  'podIp',
  'containerName',
  'requestTimeoutMs',
  'watchDeletion',
  'confirmPropagation',
  'events',
  'env',
  'serviceAccountDir',
  'retry',
];

/** Checks every option before anything uses one; errors name the option (`kubernetes <name>`). */
export function resolveKubernetesOptions(options: KubernetesOptions = {}): ResolvedKubernetesOptions {
  const read = createSettingReader({});
  if (typeof options === 'object' && options !== null && 'logger' in options) {
    throw new KubegraceError(
      'ERR_KUBEGRACE_INVALID_OPTION',
      'kubernetes logger is not an option any more: the integration writes to the kubegrace instance’s logger (createKubegrace({ logger }))',
      { option: 'kubernetes logger' },
    );
  }
  read.object('kubernetes options', options, 'an object', KNOWN);
  const o = options;
  const string = (name: keyof KubernetesOptions): string | undefined => {
    const value = o[name];
    if (value !== undefined && typeof value !== 'string') {
      // Identity options hold no secrets, but the reader's own check would also accept '' as unset.
      read.string(`kubernetes ${name}`, value, undefined);
    }
    return value as string | undefined;
  };
  const requestTimeoutMs = read.ms('kubernetes requestTimeoutMs', o.requestTimeoutMs, undefined, 1) ?? 2000;
  const retry = read.object<{ initialMs: unknown; maxMs: unknown }>(
    'kubernetes retry',
    o.retry,
    '{ initialMs, maxMs }',
  );
  const retryMs = (key: 'initialMs' | 'maxMs', fallback: number): number => {
    if (retry === undefined) return fallback;
    const name = `kubernetes retry.${key}`;
    // Given as an object, both are required: `read.ms` treats undefined as "not set".
    return read.ms(name, retry[key] === undefined ? null : retry[key], undefined, 1) as number;
  };
  const initialMs = retryMs('initialMs', 250);
  const maxMs = retryMs('maxMs', 8000);
  if (initialMs > maxMs) {
    throw invalidOption('kubernetes retry.initialMs', `at most retry.maxMs (${maxMs})`, initialMs);
  }
  const kubeConfig = read.object<KubeConfigLike>(
    'kubernetes kubeConfig',
    o.kubeConfig,
    'a KubeConfig from @kubernetes/client-node',
  );
  if (kubeConfig !== undefined && typeof kubeConfig.makeApiClient !== 'function') {
    throw new KubegraceError(
      'ERR_KUBEGRACE_INVALID_OPTION',
      'kubernetes kubeConfig must be a KubeConfig from @kubernetes/client-node, received an object without makeApiClient',
      { option: 'kubernetes kubeConfig' },
    );
  }
  // Only its shape: the module must not be touched before it is known to be needed.
  const client = read.object<KubeClientModule>(
    'kubernetes client',
    o.client,
    "the @kubernetes/client-node module (await import('@kubernetes/client-node'))",
  );
  return {
    enabled: read.oneOf('kubernetes enabled', o.enabled, undefined, ['auto', true, false] as const) ?? 'auto',
    kubeConfig,
    client,
    podName: string('podName'),
    namespace: string('namespace'),
    podUid: string('podUid'),
    podIp: string('podIp'),
    containerName: string('containerName'),
    serviceAccountDir: string('serviceAccountDir'),
    requestTimeoutMs,
    watchDeletion: read.boolean('kubernetes watchDeletion', o.watchDeletion, undefined) ?? true,
    confirmPropagation:
      read.boolean('kubernetes confirmPropagation', o.confirmPropagation, undefined) ?? true,
    events: read.boolean('kubernetes events', o.events, undefined) ?? true,
    env: read.object<Env>('kubernetes env', o.env, 'an object of environment variables') ?? processEnv(),
    retry: { initialMs, maxMs },
  };
}
