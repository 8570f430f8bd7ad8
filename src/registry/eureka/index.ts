/**
 * `kubegrace/registry/eureka`: Eureka's REST API over plain HTTP, no client library.
 *
 * Shutdown order: heartbeats stop first (a renewal racing the removal would be answered 404 at best),
 * then the instance is marked OUT_OF_SERVICE (clients that refresh now stop picking it even if the
 * removal below fails), then it is deleted. Eureka clients cache the registry for 30 s by default
 * (`registryFetchInterval`), so the propagation wait is held open that long after the removal.
 */
import { processEnv } from '../../process.js';
import { send, rejected, type HttpResponse } from '../http.js';
import {
  INSTANCE_OPTION_KEYS,
  resolveInstanceIdentity,
  type InstanceIdentity,
  type InstanceOptions,
} from '../identity.js';
import type { HeartbeatResult, Registry, RegistryCall } from '../registry.js';
import { createSettingReader } from '../../settings.js';

export interface EurekaRegistryOptions extends InstanceOptions {
  /**
   * Eureka service URL up to and including its context: `http://eureka:8761/eureka` (Spring Cloud) or
   * `http://eureka:8080/eureka/v2` (Netflix). Credentials in the URL are sent as HTTP Basic auth.
   * Env `KUBEGRACE_REGISTRY_EUREKA_URL`. Required.
   */
  readonly url?: string;
  /** Application name; Eureka upper-cases it. Env `KUBEGRACE_REGISTRY_EUREKA_APP`. @default serviceName */
  readonly app?: string;
  /** Host name clients use. Env `KUBEGRACE_REGISTRY_EUREKA_HOST_NAME`. @default the instance address (pod host names do not resolve) */
  readonly hostName?: string;
  /** VIP address clients look the service up by. Env `KUBEGRACE_REGISTRY_EUREKA_VIP_ADDRESS`. @default serviceName */
  readonly vipAddress?: string;
  /** Heartbeat (lease renewal) interval. Env `KUBEGRACE_REGISTRY_EUREKA_HEARTBEAT_INTERVAL_SECONDS`. @default 30 */
  readonly heartbeatIntervalSeconds?: number;
  /** Lease duration the server evicts after. Env `KUBEGRACE_REGISTRY_EUREKA_LEASE_DURATION_SECONDS`. @default 90 */
  readonly leaseDurationSeconds?: number;
  /** See `Registry.clientCacheMs`: Eureka clients' `registryFetchInterval`. @default 30000 */
  readonly clientCacheMs?: number;
}

export interface EurekaRegistry extends Registry {
  readonly identity: InstanceIdentity;
  /** The upper-cased application name. */
  readonly app: string;
}

/** Option names, so a misspelt one is refused rather than ignored; the compiler keeps them whole. */
const OPTION_KEYS = Object.keys({
  ...INSTANCE_OPTION_KEYS,
  url: true,
  app: true,
  hostName: true,
  vipAddress: true,
  heartbeatIntervalSeconds: true,
  leaseDurationSeconds: true,
  clientCacheMs: true,
} as const satisfies Record<keyof EurekaRegistryOptions, true>);

export function createEurekaRegistry(options: EurekaRegistryOptions = {}): EurekaRegistry {
  createSettingReader({}).object('eureka options', options, 'an object', OPTION_KEYS);
  const read = createSettingReader(options.env ?? processEnv());
  const identity = resolveInstanceIdentity(options, 'eureka', read);
  const base = read.required(
    read.url('eureka.url', options.url, 'KUBEGRACE_REGISTRY_EUREKA_URL'),
    'eureka.url',
    'KUBEGRACE_REGISTRY_EUREKA_URL',
    'an http:// or https:// URL of the Eureka service, such as http://eureka:8761/eureka',
  );
  const app = (
    read.string('eureka.app', options.app, 'KUBEGRACE_REGISTRY_EUREKA_APP') ?? identity.serviceName
  ).toUpperCase();
  const hostName =
    read.string('eureka.hostName', options.hostName, 'KUBEGRACE_REGISTRY_EUREKA_HOST_NAME') ??
    identity.address;
  const vipAddress =
    read.string('eureka.vipAddress', options.vipAddress, 'KUBEGRACE_REGISTRY_EUREKA_VIP_ADDRESS') ??
    identity.serviceName;
  const renewalSeconds =
    read.integer(
      'eureka.heartbeatIntervalSeconds',
      options.heartbeatIntervalSeconds,
      'KUBEGRACE_REGISTRY_EUREKA_HEARTBEAT_INTERVAL_SECONDS',
      1,
    ) ?? 30;
  const leaseSeconds =
    read.integer(
      'eureka.leaseDurationSeconds',
      options.leaseDurationSeconds,
      'KUBEGRACE_REGISTRY_EUREKA_LEASE_DURATION_SECONDS',
      1,
    ) ?? 90;
  const clientCacheMs =
    read.integer('eureka.clientCacheMs', options.clientCacheMs, 'KUBEGRACE_REGISTRY_CLIENT_CACHE_MS', 0) ??
    30_000;

  // fetch refuses URLs with credentials; move them into an Authorization header.
  const authorization =
    base.username !== '' || base.password !== ''
      ? `Basic ${Buffer.from(`${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}`).toString('base64')}`
      : undefined;
  base.username = '';
  base.password = '';
  const appsPath = `${base.pathname.replace(/\/$/, '')}/apps/${encodeURIComponent(app)}`;
  const instancePath = `${appsPath}/${encodeURIComponent(identity.instanceId)}`;
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    ...(authorization ? { authorization } : {}),
  };

  function request(
    what: string,
    method: 'POST' | 'PUT' | 'DELETE',
    path: string,
    call: RegistryCall,
    body?: unknown,
    query: Record<string, string> = {},
  ): Promise<HttpResponse> {
    const url = new URL(path, base);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    return send('eureka', what, {
      method,
      url,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: call.signal,
    });
  }

  let outOfServiceTried = false;

  return {
    name: 'eureka',
    identity,
    app,
    clientCacheMs,
    heartbeatIntervalMs: renewalSeconds * 1000,

    async register(call) {
      const response = await request('register', 'POST', appsPath, call, {
        instance: {
          instanceId: identity.instanceId,
          hostName,
          app,
          ipAddr: identity.address,
          status: 'UP',
          overriddenStatus: 'UNKNOWN',
          port: { $: identity.port, '@enabled': 'true' },
          securePort: { $: 443, '@enabled': 'false' },
          vipAddress,
          secureVipAddress: vipAddress,
          countryId: 1,
          dataCenterInfo: {
            '@class': 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo',
            name: 'MyOwn',
          },
          leaseInfo: { renewalIntervalInSecs: renewalSeconds, durationInSecs: leaseSeconds },
          metadata: identity.metadata,
        },
      });
      if (response.status !== 204 && response.status !== 200) throw rejected('eureka', 'register', response);
    },

    async heartbeat(call): Promise<HeartbeatResult> {
      const response = await request('heartbeat', 'PUT', instancePath, call);
      if (response.status === 200) return 'ok';
      // Evicted (missed renewals) or never replicated to this server: register again.
      if (response.status === 404) return 'lost';
      throw rejected('eureka', 'heartbeat', response);
    },

    async deregister(call) {
      if (!outOfServiceTried) {
        // Tried once per shutdown; whatever it answers, the DELETE below is what must succeed.
        outOfServiceTried = true;
        await request('status OUT_OF_SERVICE', 'PUT', `${instancePath}/status`, call, undefined, {
          value: 'OUT_OF_SERVICE',
        }).catch((error: unknown) => {
          if (call.signal.aborted) throw error;
        });
      }
      const response = await request('deregister', 'DELETE', instancePath, call);
      // 404: not registered (evicted already, or registered elsewhere and gone): the goal is met.
      if (response.status === 200 || response.status === 404) return;
      throw rejected('eureka', 'deregister', response);
    },
  };
}
