/**
 * `kubegrace/registry/consul`: plain HTTP against Consul's API, no client library.
 *
 * `agent` mode talks to a Consul client agent (`/v1/agent/...`): the service is registered with a TTL
 * check that kubegrace passes, and the shutdown first puts it in maintenance mode (it leaves DNS and
 * health queries at once, and stays out even if the deregister call then fails), then deregisters.
 * `catalog` mode is for Consul on Kubernetes without client agents (consul-k8s ≥ 1.0, Consul
 * Dataplane): register and deregister go straight to the catalog; no agent runs checks there, so
 * nothing expires an entry a crashed pod left behind.
 */
import { hostname } from 'node:os';
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

export interface ConsulRegistryOptions extends InstanceOptions {
  /**
   * Consul HTTP API address. Env `KUBEGRACE_REGISTRY_CONSUL_URL`, else Consul's own `CONSUL_HTTP_ADDR`
   * (`host:port` is read as `http://host:port`). Required.
   */
  readonly url?: string;
  /** ACL token, sent as `X-Consul-Token`. Env `KUBEGRACE_REGISTRY_CONSUL_TOKEN`, else `CONSUL_HTTP_TOKEN`. */
  readonly token?: string;
  /** `agent` (a client agent runs on the node) or `catalog` (agentless). Env `KUBEGRACE_REGISTRY_CONSUL_MODE`. @default 'agent' */
  readonly mode?: 'agent' | 'catalog';
  /** Service tags. Env `KUBEGRACE_REGISTRY_CONSUL_TAGS` (comma-separated). */
  readonly tags?: readonly string[];
  /**
   * Agent mode: TTL of the check kubegrace keeps passing (every third of it); 0 registers no check.
   * Env `KUBEGRACE_REGISTRY_CONSUL_CHECK_TTL_SECONDS`. @default 10
   */
  readonly checkTtlSeconds?: number;
  /**
   * Agent mode: the agent removes the service after its check has been critical this long (a pod that
   * died without deregistering). Consul's minimum is 60. Env
   * `KUBEGRACE_REGISTRY_CONSUL_DEREGISTER_CRITICAL_AFTER_SECONDS`. @default 60
   */
  readonly deregisterCriticalAfterSeconds?: number;
  /** Catalog mode: the node to register on. Env `KUBEGRACE_REGISTRY_CONSUL_NODE`. @default `NODE_NAME`, else the hostname */
  readonly node?: string;
  /** Catalog mode: the node's address, if the node does not exist yet. Env `KUBEGRACE_REGISTRY_CONSUL_NODE_ADDRESS`. @default the instance address */
  readonly nodeAddress?: string;
  /** Datacenter (`?dc=`). Env `KUBEGRACE_REGISTRY_CONSUL_DATACENTER`. @default the agent's */
  readonly datacenter?: string;
  /** Reason recorded with maintenance mode. Env `KUBEGRACE_REGISTRY_CONSUL_MAINTENANCE_REASON`. @default 'kubegrace: shutting down' */
  readonly maintenanceReason?: string;
  /** See `Registry.clientCacheMs` (blocking queries and DNS with the default TTL of 0 see changes at once). @default 0 */
  readonly clientCacheMs?: number;
}

export interface ConsulRegistry extends Registry {
  readonly identity: InstanceIdentity;
  readonly mode: 'agent' | 'catalog';
  /** The TTL check's id (`service:<id>`), when one is registered. */
  readonly checkId: string | undefined;
}

/** Option names, so a misspelt one is refused rather than ignored; the compiler keeps them whole. */
const OPTION_KEYS = Object.keys({
  ...INSTANCE_OPTION_KEYS,
  url: true,
  token: true,
  mode: true,
  tags: true,
  checkTtlSeconds: true,
  deregisterCriticalAfterSeconds: true,
  node: true,
  nodeAddress: true,
  datacenter: true,
  maintenanceReason: true,
  clientCacheMs: true,
} as const satisfies Record<keyof ConsulRegistryOptions, true>);

export function createConsulRegistry(options: ConsulRegistryOptions = {}): ConsulRegistry {
  createSettingReader({}).object('consul options', options, 'an object', OPTION_KEYS);
  const read = createSettingReader(options.env ?? processEnv());
  const identity = resolveInstanceIdentity(options, 'consul', read);
  const fromConsulEnv = withScheme(nonEmpty(read.env.CONSUL_HTTP_ADDR));
  const base = read.required(
    read.url('consul.url', options.url, 'KUBEGRACE_REGISTRY_CONSUL_URL', false) ??
      (fromConsulEnv === undefined
        ? undefined
        : createSettingReader({ CONSUL_HTTP_ADDR: fromConsulEnv }).url(
            'consul.url',
            undefined,
            'CONSUL_HTTP_ADDR',
            false,
          )),
    'consul.url',
    'KUBEGRACE_REGISTRY_CONSUL_URL',
    'an http:// or https:// URL of the Consul HTTP API',
  );
  const token =
    read.string('consul.token', options.token, 'KUBEGRACE_REGISTRY_CONSUL_TOKEN') ??
    read.string('consul.token', undefined, 'CONSUL_HTTP_TOKEN');
  const mode =
    read.oneOf('consul.mode', options.mode, 'KUBEGRACE_REGISTRY_CONSUL_MODE', [
      'agent',
      'catalog',
    ] as const) ?? 'agent';
  const tags = read.list('consul.tags', options.tags, 'KUBEGRACE_REGISTRY_CONSUL_TAGS') ?? [];
  const checkTtlSeconds =
    read.integer(
      'consul.checkTtlSeconds',
      options.checkTtlSeconds,
      'KUBEGRACE_REGISTRY_CONSUL_CHECK_TTL_SECONDS',
      0,
    ) ?? 10;
  const deregisterAfter =
    read.integer(
      'consul.deregisterCriticalAfterSeconds',
      options.deregisterCriticalAfterSeconds,
      'KUBEGRACE_REGISTRY_CONSUL_DEREGISTER_CRITICAL_AFTER_SECONDS',
      60,
    ) ?? 60;
  const node =
    read.string('consul.node', options.node, 'KUBEGRACE_REGISTRY_CONSUL_NODE') ??
    read.string('consul.node', undefined, 'NODE_NAME') ??
    hostname();
  const nodeAddress =
    read.string('consul.nodeAddress', options.nodeAddress, 'KUBEGRACE_REGISTRY_CONSUL_NODE_ADDRESS') ??
    identity.address;
  const datacenter = read.string(
    'consul.datacenter',
    options.datacenter,
    'KUBEGRACE_REGISTRY_CONSUL_DATACENTER',
  );
  const reason =
    read.string(
      'consul.maintenanceReason',
      options.maintenanceReason,
      'KUBEGRACE_REGISTRY_CONSUL_MAINTENANCE_REASON',
    ) ?? 'kubegrace: shutting down';
  const clientCacheMs =
    read.integer('consul.clientCacheMs', options.clientCacheMs, 'KUBEGRACE_REGISTRY_CLIENT_CACHE_MS', 0) ?? 0;

  const id = identity.instanceId;
  const checkId = mode === 'agent' && checkTtlSeconds > 0 ? `service:${id}` : undefined;
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    ...(token ? { 'x-consul-token': token } : {}),
  };
  let maintenanceTried = false;

  function url(path: string, query: Record<string, string> = {}): URL {
    const u = new URL(`${base.pathname.replace(/\/$/, '')}${path}`, base);
    for (const [k, v] of Object.entries({ ...query, ...(datacenter ? { dc: datacenter } : {}) }))
      u.searchParams.set(k, v);
    return u;
  }

  function put(
    what: string,
    path: string,
    call: RegistryCall,
    body?: unknown,
    query?: Record<string, string>,
  ): Promise<HttpResponse> {
    return send('consul', what, {
      method: 'PUT',
      url: url(path, query),
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: call.signal,
    });
  }

  const path = encodeURIComponent(id);
  const agent: Pick<Registry, 'register' | 'deregister'> & { heartbeat?: Registry['heartbeat'] } = {
    async register(call) {
      const response = await put(
        'register',
        '/v1/agent/service/register',
        call,
        {
          ID: id,
          Name: identity.serviceName,
          Address: identity.address,
          Port: identity.port,
          Tags: tags,
          Meta: identity.metadata,
          ...(checkId
            ? {
                Check: {
                  CheckID: checkId,
                  Name: `kubegrace TTL for ${id}`,
                  TTL: `${checkTtlSeconds}s`,
                  // A TTL check starts critical; the instance is ready when this runs, so start passing.
                  Status: 'passing',
                  DeregisterCriticalServiceAfter: `${deregisterAfter}s`,
                },
              }
            : {}),
        },
        { 'replace-existing-checks': 'true' },
      );
      if (response.status !== 200) throw rejected('consul', 'register', response);
    },
    ...(checkId
      ? {
          async heartbeat(call: RegistryCall): Promise<HeartbeatResult> {
            const response = await put(
              'check pass',
              `/v1/agent/check/pass/${encodeURIComponent(checkId)}`,
              call,
            );
            if (response.status === 200) return 'ok';
            // The agent forgot the check (restarted without its data dir, or the service was removed).
            if (response.status === 404 || /unknown check/i.test(response.text)) return 'lost';
            throw rejected('consul', 'check pass', response);
          },
        }
      : {}),
    async deregister(call) {
      // Maintenance first, tried once per shutdown: retries go straight to the deregistration.
      if (!maintenanceTried) {
        maintenanceTried = true;
        // A refusal (404: the agent does not know the service) is no reason to skip the deregistration.
        await put('maintenance', `/v1/agent/service/maintenance/${path}`, call, undefined, {
          enable: 'true',
          reason,
        }).catch((error: unknown) => {
          if (call.signal.aborted) throw error;
        });
      }
      const response = await put('deregister', `/v1/agent/service/deregister/${path}`, call);
      if (response.status === 200 || response.status === 404) return;
      throw rejected('consul', 'deregister', response);
    },
  };

  const catalog: Pick<Registry, 'register' | 'deregister'> = {
    async register(call) {
      const response = await put('catalog register', '/v1/catalog/register', call, {
        Node: node,
        Address: nodeAddress,
        ...(datacenter ? { Datacenter: datacenter } : {}),
        // Leave an existing node (a consul-k8s virtual node, say) as it is.
        SkipNodeUpdate: true,
        Service: {
          ID: id,
          Service: identity.serviceName,
          Address: identity.address,
          Port: identity.port,
          Tags: tags,
          Meta: identity.metadata,
        },
      });
      if (response.status !== 200) throw rejected('consul', 'catalog register', response);
    },
    async deregister(call) {
      const response = await put('catalog deregister', '/v1/catalog/deregister', call, {
        Node: node,
        ServiceID: id,
        ...(datacenter ? { Datacenter: datacenter } : {}),
      });
      if (response.status === 200 || response.status === 404) return;
      throw rejected('consul', 'catalog deregister', response);
    },
  };

  return {
    name: 'consul',
    identity,
    mode,
    checkId,
    clientCacheMs,
    ...(checkId ? { heartbeatIntervalMs: Math.max(500, Math.floor((checkTtlSeconds * 1000) / 3)) } : {}),
    ...(mode === 'agent' ? agent : catalog),
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/** `CONSUL_HTTP_ADDR` is often `host:port` without a scheme, as the consul CLI accepts it. */
function withScheme(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
}
