/**
 * `kubegrace/registry/etcd`: the instance is a key bound to a lease; the etcd3 client keeps the lease
 * alive, and deregistering revokes it, which deletes the key in the same step. If the process dies
 * without deregistering, the key disappears one TTL after the last keep-alive.
 *
 * `etcd3` is an optional peer dependency, loaded on first use.
 */
import type { Etcd3, IOptions, Lease } from 'etcd3';
import { invalidOption, KubegraceError } from '../../errors.js';
import { processEnv } from '../../process.js';
import {
  INSTANCE_OPTION_KEYS,
  resolveInstanceIdentity,
  type InstanceIdentity,
  type InstanceOptions,
} from '../identity.js';
import { registryError, type HeartbeatResult, type Registry, type RegistryCall } from '../registry.js';
import { createSettingReader } from '../../settings.js';

export interface EtcdRegistryOptions extends InstanceOptions {
  /**
   * Client URLs, `http(s)://host:port`. Env `KUBEGRACE_REGISTRY_ETCD_ENDPOINTS` (comma-separated).
   * Required unless `client` is given.
   */
  readonly endpoints?: readonly string[];
  /** Keys are `<prefix><serviceName>/<instanceId>`. Env `KUBEGRACE_REGISTRY_ETCD_PREFIX`. @default '/services/' */
  readonly prefix?: string;
  /** The whole key, instead of prefix + name + id. Env `KUBEGRACE_REGISTRY_ETCD_KEY`. */
  readonly key?: string;
  /**
   * Lease TTL: how long the key outlives a process that died without deregistering. etcd raises
   * anything below its minimum (2 s with default settings). Env `KUBEGRACE_REGISTRY_ETCD_TTL_SECONDS`.
   * @default 10
   */
  readonly ttlSeconds?: number;
  /** The key's value. @default JSON `{ name, id, address, port, metadata }` */
  readonly value?: string | ((identity: InstanceIdentity) => string);
  /** Username for etcd authentication. Env `KUBEGRACE_REGISTRY_ETCD_USERNAME`. */
  readonly username?: string;
  /** Password for etcd authentication. Env `KUBEGRACE_REGISTRY_ETCD_PASSWORD`. */
  readonly password?: string;
  /** More etcd3 client options (TLS `credentials`, `grpcOptions`, …). */
  readonly clientOptions?: Omit<IOptions, 'hosts'>;
  /** Use this client instead of creating one; it is not closed by kubegrace. */
  readonly client?: Etcd3;
  /** See `Registry.clientCacheMs`. Watchers see the delete at once. @default 0 */
  readonly clientCacheMs?: number;
}

export interface EtcdRegistry extends Registry {
  /** The key this instance is registered under. */
  readonly key: string;
  readonly identity: InstanceIdentity;
}

/** Option names, so a misspelt one is refused rather than ignored; the compiler keeps them whole. */
const OPTION_KEYS = Object.keys({
  ...INSTANCE_OPTION_KEYS,
  endpoints: true,
  prefix: true,
  key: true,
  ttlSeconds: true,
  value: true,
  username: true,
  password: true,
  clientOptions: true,
  client: true,
  clientCacheMs: true,
} as const satisfies Record<keyof EtcdRegistryOptions, true>);

/** etcd3's own options, less `hosts`: the endpoints replace it, so one given here would be dropped. */
const CLIENT_OPTION_KEYS = Object.keys({
  credentials: true,
  grpcOptions: true,
  auth: true,
  defaultCallOptions: true,
  dialTimeout: true,
  faultHandling: true,
} as const satisfies Record<keyof NonNullable<EtcdRegistryOptions['clientOptions']>, true>);

export function createEtcdRegistry(options: EtcdRegistryOptions = {}): EtcdRegistry {
  const check = createSettingReader({});
  check.object('etcd options', options, 'an object', OPTION_KEYS);
  check.object('etcd.clientOptions', options.clientOptions, 'an object of etcd3 options', CLIENT_OPTION_KEYS);
  const read = createSettingReader(options.env ?? processEnv());
  const identity = resolveInstanceIdentity(options, 'etcd', read);
  const endpoints = read.list('etcd.endpoints', options.endpoints, 'KUBEGRACE_REGISTRY_ETCD_ENDPOINTS');
  const endpointsFrom =
    options.endpoints !== undefined ? 'etcd.endpoints' : 'KUBEGRACE_REGISTRY_ETCD_ENDPOINTS';
  for (const endpoint of endpoints ?? []) {
    if (!/^https?:\/\/[^/\s]+/.test(endpoint))
      throw invalidOption(endpointsFrom, 'a list of http:// or https:// URLs', endpoint);
  }
  if (options.client === undefined) {
    read.required(
      endpoints,
      'etcd.endpoints',
      'KUBEGRACE_REGISTRY_ETCD_ENDPOINTS',
      'a non-empty list of http(s) URLs',
    );
  }
  let prefix = read.string('etcd.prefix', options.prefix, 'KUBEGRACE_REGISTRY_ETCD_PREFIX') ?? '/services/';
  if (!prefix.endsWith('/')) prefix += '/';
  const key =
    read.string('etcd.key', options.key, 'KUBEGRACE_REGISTRY_ETCD_KEY') ??
    `${prefix}${identity.serviceName}/${identity.instanceId}`;
  const ttlSeconds =
    read.integer('etcd.ttlSeconds', options.ttlSeconds, 'KUBEGRACE_REGISTRY_ETCD_TTL_SECONDS', 1) ?? 10;
  const username = read.string('etcd.username', options.username, 'KUBEGRACE_REGISTRY_ETCD_USERNAME');
  const password = read.string('etcd.password', options.password, 'KUBEGRACE_REGISTRY_ETCD_PASSWORD');
  const clientCacheMs =
    read.integer('etcd.clientCacheMs', options.clientCacheMs, 'KUBEGRACE_REGISTRY_CLIENT_CACHE_MS', 0) ?? 0;
  const value =
    typeof options.value === 'function'
      ? options.value(identity)
      : (options.value ??
        JSON.stringify({
          name: identity.serviceName,
          id: identity.instanceId,
          address: identity.address,
          port: identity.port,
          metadata: identity.metadata,
        }));

  let client: Promise<Etcd3> | undefined;
  let current: Lease | undefined;
  let lost = false;

  function getClient(): Promise<Etcd3> {
    client ??= options.client
      ? Promise.resolve(options.client)
      : loadEtcd3().then(
          ({ Etcd3 }) =>
            new Etcd3({
              ...options.clientOptions,
              hosts: [...(endpoints ?? [])],
              ...(username !== undefined && password !== undefined ? { auth: { username, password } } : {}),
              // The participant owns retries, backoff and time limits; etcd3's own retry policy and
              // circuit breaker would stretch a call past its budget or fail it before it was tried.
              faultHandling: {
                host: () => passThrough,
                global: passThrough,
                ...options.clientOptions?.faultHandling,
              },
            }),
        );
    return client;
  }

  const grpcDeadline = (call: RegistryCall): { deadline: Date } => ({ deadline: new Date(call.deadline) });

  return {
    name: 'etcd',
    key,
    identity,
    clientCacheMs,
    // etcd3 keeps the lease alive by itself; this only notices a lost lease, to register again.
    heartbeatIntervalMs: Math.max(500, (ttlSeconds * 1000) / 2),

    async register(call) {
      const etcd = await getClient();
      const lease = etcd.lease(ttlSeconds, grpcDeadline(call));
      lease.on('lost', () => {
        if (current === lease) lost = true;
      });
      try {
        await lease.put(key).value(value).options(grpcDeadline(call));
        if (call.signal.aborted)
          throw registryError('ERR_KUBEGRACE_REGISTRY_TIMEOUT', 'etcd register: put outlived its call');
      } catch (error) {
        // A lease whose put failed must not keep beating: revoke it (and any key it did get).
        lease.revoke().catch(() => undefined);
        throw wrap('register', error);
      }
      const previous = current;
      current = lease;
      lost = false;
      previous?.revoke().catch(() => undefined);
    },

    heartbeat(): Promise<HeartbeatResult> {
      return Promise.resolve(lost || current === undefined || current.revoked() ? 'lost' : 'ok');
    },

    stopHeartbeats() {
      // End the keep-alive stream now: if the revoke below fails, the key still expires after one TTL.
      current?.release();
    },

    async deregister(call) {
      try {
        if (current) {
          await current.revoke(grpcDeadline(call));
        } else {
          // Registered by someone else (register: false), or never registered: delete the key itself.
          const etcd = await getClient();
          await etcd.delete().key(key).options(grpcDeadline(call));
        }
      } catch (error) {
        throw wrap('deregister', error);
      }
      current = undefined;
    },

    async close() {
      if (!options.client && client) (await client).close();
    },
  };
}

/** A fault-handling policy that runs the call once, as is (the shape etcd3's cockatiel policies have). */
const passThrough = {
  execute: <T>(
    fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T,
    signal?: AbortSignal,
  ): Promise<T> => Promise.resolve().then(() => fn({ signal: signal ?? new AbortController().signal })),
  onSuccess: () => ({ dispose() {} }),
  onFailure: () => ({ dispose() {} }),
} as unknown as NonNullable<IOptions['faultHandling']>['global'] & object;

async function loadEtcd3(): Promise<typeof import('etcd3')> {
  try {
    const mod = (await import('etcd3')) as typeof import('etcd3') & { default?: typeof import('etcd3') };
    return mod.Etcd3 ? mod : (mod.default ?? mod);
  } catch (error) {
    throw registryError(
      'ERR_KUBEGRACE_MISSING_PEER',
      'kubegrace/registry/etcd needs the etcd3 package (an optional peer dependency): npm install etcd3',
      error,
    );
  }
}

function wrap(what: string, error: unknown): Error {
  if (error instanceof KubegraceError) return error;
  const text = error instanceof Error ? error.name : 'error';
  const timedOut = /deadline|timeout|Timeout/.test(`${text} ${error instanceof Error ? error.message : ''}`);
  return registryError(
    timedOut ? 'ERR_KUBEGRACE_REGISTRY_TIMEOUT' : 'ERR_KUBEGRACE_REGISTRY_UNAVAILABLE',
    `etcd ${what} failed (${text})`,
    error,
  );
}
