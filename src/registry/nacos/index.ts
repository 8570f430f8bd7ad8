/**
 * `kubegrace/registry/nacos`: Nacos 2.x's v2 HTTP Open API, no client library. The instance is
 * ephemeral: Nacos marks it unhealthy 15 s and deletes it 30 s after the last beat, so a pod that
 * dies without deregistering still goes away.
 *
 * Beats are "light" (no `beat` body): a full beat re-creates an instance the server does not know,
 * which is how a deregistered instance comes back when a beat races the removal. Beats also stop
 * before the removal. Nacos ≥ 3.2 no longer ships the v1/v2 HTTP APIs (use its legacy adapter).
 */
import { invalidOption } from '../../errors.js';
import { processEnv } from '../../process.js';
import { parseJson, rejected, send, type HttpResponse } from '../http.js';
import {
  INSTANCE_OPTION_KEYS,
  resolveInstanceIdentity,
  type InstanceIdentity,
  type InstanceOptions,
} from '../identity.js';
import type { HeartbeatResult, Registry, RegistryCall } from '../registry.js';
import { createSettingReader } from '../../settings.js';

export interface NacosRegistryOptions extends InstanceOptions {
  /**
   * Nacos server URL with its context path, `http://nacos:8848/nacos`; a URL without a path gets
   * `/nacos`. Env `KUBEGRACE_REGISTRY_NACOS_URL`. Required.
   */
  readonly url?: string;
  /** Namespace id. Env `KUBEGRACE_REGISTRY_NACOS_NAMESPACE`. @default 'public' */
  readonly namespace?: string;
  /** Group. Env `KUBEGRACE_REGISTRY_NACOS_GROUP`. @default 'DEFAULT_GROUP' */
  readonly group?: string;
  /** Cluster. Env `KUBEGRACE_REGISTRY_NACOS_CLUSTER`. @default 'DEFAULT' */
  readonly cluster?: string;
  /** Instance weight, 0 to 10000. @default 1 */
  readonly weight?: number;
  /** A fixed access token (`accessToken` query parameter). Env `KUBEGRACE_REGISTRY_NACOS_ACCESS_TOKEN`. */
  readonly accessToken?: string;
  /**
   * Log in with these (`POST /v1/auth/login`) and renew the token before it expires.
   * Env `KUBEGRACE_REGISTRY_NACOS_USERNAME`, `KUBEGRACE_REGISTRY_NACOS_PASSWORD`.
   */
  readonly username?: string;
  readonly password?: string;
  /** Beat interval until the server names one (`clientBeatInterval`). @default 5000 */
  readonly heartbeatIntervalMs?: number;
  /** See `Registry.clientCacheMs`. Subscribed clients get pushes; set it for clients that poll. @default 0 */
  readonly clientCacheMs?: number;
}

export interface NacosRegistry extends Registry {
  readonly identity: InstanceIdentity;
  /** `group@@serviceName`, as Nacos stores it. */
  readonly groupedServiceName: string;
}

/** Nacos' answer to a beat for an instance it does not know. */
const RESOURCE_NOT_FOUND = 20404;

/** Option names, so a misspelt one is refused rather than ignored; the compiler keeps them whole. */
const OPTION_KEYS = Object.keys({
  ...INSTANCE_OPTION_KEYS,
  url: true,
  namespace: true,
  group: true,
  cluster: true,
  weight: true,
  accessToken: true,
  username: true,
  password: true,
  heartbeatIntervalMs: true,
  clientCacheMs: true,
} as const satisfies Record<keyof NacosRegistryOptions, true>);

export function createNacosRegistry(options: NacosRegistryOptions = {}): NacosRegistry {
  createSettingReader({}).object('nacos options', options, 'an object', OPTION_KEYS);
  const read = createSettingReader(options.env ?? processEnv());
  const identity = resolveInstanceIdentity(options, 'nacos', read);
  const base = read.required(
    read.url('nacos.url', options.url, 'KUBEGRACE_REGISTRY_NACOS_URL', false),
    'nacos.url',
    'KUBEGRACE_REGISTRY_NACOS_URL',
    'an http:// or https:// URL of the Nacos server, such as http://nacos:8848/nacos',
  );
  if (base.pathname === '/' || base.pathname === '') base.pathname = '/nacos';
  const namespace =
    read.string('nacos.namespace', options.namespace, 'KUBEGRACE_REGISTRY_NACOS_NAMESPACE') ?? 'public';
  const group =
    read.string('nacos.group', options.group, 'KUBEGRACE_REGISTRY_NACOS_GROUP') ?? 'DEFAULT_GROUP';
  const cluster =
    read.string('nacos.cluster', options.cluster, 'KUBEGRACE_REGISTRY_NACOS_CLUSTER') ?? 'DEFAULT';
  const weight = options.weight ?? 1;
  if (typeof weight !== 'number' || !(weight >= 0 && weight <= 10000)) {
    throw invalidOption('nacos.weight', 'a number from 0 to 10000', weight);
  }
  const fixedToken = read.string(
    'nacos.accessToken',
    options.accessToken,
    'KUBEGRACE_REGISTRY_NACOS_ACCESS_TOKEN',
  );
  const username = read.string('nacos.username', options.username, 'KUBEGRACE_REGISTRY_NACOS_USERNAME');
  const password = read.string('nacos.password', options.password, 'KUBEGRACE_REGISTRY_NACOS_PASSWORD');
  if ((username === undefined) !== (password === undefined)) {
    throw username === undefined
      ? invalidOption(
          'nacos.username (or KUBEGRACE_REGISTRY_NACOS_USERNAME)',
          'set together with the password',
          undefined,
        )
      : invalidOption(
          'nacos.password (or KUBEGRACE_REGISTRY_NACOS_PASSWORD)',
          'set together with the username',
          undefined,
        );
  }
  let heartbeatIntervalMs =
    read.integer(
      'nacos.heartbeatIntervalMs',
      options.heartbeatIntervalMs,
      'KUBEGRACE_REGISTRY_NACOS_HEARTBEAT_INTERVAL_MS',
      100,
    ) ?? 5000;
  const clientCacheMs =
    read.integer('nacos.clientCacheMs', options.clientCacheMs, 'KUBEGRACE_REGISTRY_CLIENT_CACHE_MS', 0) ?? 0;
  const groupedServiceName = `${group}@@${identity.serviceName}`;
  const root = base.pathname.replace(/\/$/, '');

  let login: { token: string; renewAt: number } | undefined;

  async function token(call: RegistryCall, renew = false): Promise<string | undefined> {
    if (fixedToken !== undefined) return fixedToken;
    if (username === undefined || password === undefined) return undefined;
    if (!renew && login && Date.now() < login.renewAt) return login.token;
    const response = await send('nacos', 'login', {
      method: 'POST',
      url: new URL(`${root}/v1/auth/login`, base),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username, password }).toString(),
      signal: call.signal,
    });
    const body = parseJson(response.text) as { accessToken?: unknown; tokenTtl?: unknown } | undefined;
    if (response.status !== 200 || typeof body?.accessToken !== 'string')
      throw rejected('nacos', 'login', response);
    const ttlMs = typeof body.tokenTtl === 'number' ? body.tokenTtl * 1000 : 18_000_000;
    // Renew at 90 % of the token's life, so a beat never goes out with an expired one.
    login = { token: body.accessToken, renewAt: Date.now() + ttlMs * 0.9 };
    return login.token;
  }

  /** One call; a 403 with a login configured renews the token once and tries again. */
  async function request(
    what: string,
    method: 'POST' | 'PUT' | 'DELETE',
    path: string,
    params: Record<string, string>,
    call: RegistryCall,
  ): Promise<HttpResponse> {
    const attemptOnce = async (renew: boolean): Promise<HttpResponse> => {
      const accessToken = await token(call, renew);
      const all = new URLSearchParams({ ...params, ...(accessToken ? { accessToken } : {}) });
      const url = new URL(`${root}${path}`, base);
      // Form body for POST, as the Open API documents; query string for PUT and DELETE.
      if (method !== 'POST') url.search = all.toString();
      return send('nacos', what, {
        method,
        url,
        ...(method === 'POST'
          ? { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: all.toString() }
          : {}),
        signal: call.signal,
      });
    };
    const response = await attemptOnce(false);
    if (response.status === 403 && username !== undefined) return attemptOnce(true);
    return response;
  }

  const instanceParams = {
    namespaceId: namespace,
    groupName: group,
    serviceName: identity.serviceName,
    clusterName: cluster,
    ip: identity.address,
    port: String(identity.port),
    ephemeral: 'true',
  };

  /** v2 answers `{ code, message, data }`; `code` 0 is success even when the HTTP status is 200. */
  function expectSuccess(what: string, response: HttpResponse): void {
    const body = parseJson(response.text) as { code?: unknown } | undefined;
    if (response.status === 200 && (body?.code === 0 || response.text.trim() === 'ok')) return;
    throw rejected('nacos', what, response);
  }

  return {
    name: 'nacos',
    identity,
    groupedServiceName,
    clientCacheMs,
    get heartbeatIntervalMs() {
      return heartbeatIntervalMs;
    },

    async register(call) {
      const response = await request(
        'register',
        'POST',
        '/v2/ns/instance',
        {
          ...instanceParams,
          weight: String(weight),
          enabled: 'true',
          healthy: 'true',
          metadata: JSON.stringify(identity.metadata),
        },
        call,
      );
      expectSuccess('register', response);
    },

    async heartbeat(call): Promise<HeartbeatResult> {
      const response = await request(
        'beat',
        'PUT',
        '/v2/ns/instance/beat',
        {
          namespaceId: namespace,
          // The beat endpoint wants the grouped name (`group@@service`), unlike register and deregister.
          serviceName: groupedServiceName,
          clusterName: cluster,
          ip: identity.address,
          port: String(identity.port),
        },
        call,
      );
      if (response.status !== 200) throw rejected('nacos', 'beat', response);
      const body = parseJson(response.text) as { code?: unknown; clientBeatInterval?: unknown } | undefined;
      if (typeof body?.clientBeatInterval === 'number' && body.clientBeatInterval >= 100) {
        heartbeatIntervalMs = body.clientBeatInterval;
      }
      return body?.code === RESOURCE_NOT_FOUND ? 'lost' : 'ok';
    },

    async deregister(call) {
      const response = await request('deregister', 'DELETE', '/v2/ns/instance', instanceParams, call);
      expectSuccess('deregister', response);
    },
  };
}
