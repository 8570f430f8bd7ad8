/**
 * In-process fakes of Consul, Eureka and Nacos that follow their documented HTTP APIs — paths,
 * methods, status codes and error bodies — so the adapters are tested against the wire protocol,
 * not against mocks of themselves. Each fake records every request and can be told to hang, to
 * answer with an error, or to go down (connections refused).
 *
 * Sources: Consul `agent/agent_endpoint.go` and the agent/catalog API docs; Eureka's wiki "Eureka
 * REST operations" and `ApplicationResource`/`InstanceResource`; Nacos `InstanceControllerV2`.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createKubegrace,
  type Kubegrace,
  type KubegraceOptions,
  type ShutdownSummary,
} from '../../src/index.js';
import type { DeregistrationOutcome } from '../../src/registry/index.js';

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
  /** `performance.now()` when it arrived. */
  readonly at: number;
}

/** `hang`: never answer. `{ status, body }`: answer that instead of the real thing. */
export type Fault = 'hang' | { readonly status: number; readonly body: string };

export interface FakeRegistry {
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Apply `fault` to the requests `match` selects (all by default); `undefined` clears it. */
  fault(fault: Fault | undefined, match?: (request: RecordedRequest) => boolean): void;
  /** Stop listening and drop every connection: from now on connections are refused. */
  down(): Promise<void>;
  close(): Promise<void>;
}

type Handler = (request: RecordedRequest) => { status: number; body?: unknown; type?: string };

async function startFake(handle: Handler): Promise<FakeRegistry> {
  const requests: RecordedRequest[] = [];
  let current: { fault: Fault; match: (r: RecordedRequest) => boolean } | undefined;
  const hanging = new Set<ServerResponse>();
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const recorded: RecordedRequest = {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body,
        at: performance.now(),
      };
      requests.push(recorded);
      if (current && current.match(recorded)) {
        if (current.fault === 'hang') {
          hanging.add(res);
          res.on('close', () => hanging.delete(res));
          return;
        }
        res.writeHead(current.fault.status, { 'content-type': 'text/plain' }).end(current.fault.body);
        return;
      }
      let answer: ReturnType<Handler>;
      try {
        answer = handle(recorded);
      } catch (error) {
        answer = { status: 500, body: String(error) };
      }
      const text =
        answer.body === undefined
          ? ''
          : typeof answer.body === 'string'
            ? answer.body
            : JSON.stringify(answer.body);
      const type =
        answer.type ?? (typeof answer.body === 'string' ? 'text/plain; charset=utf-8' : 'application/json');
      res.writeHead(answer.status, { 'content-type': type }).end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closed = false;
  const stop = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    for (const res of hanging) res.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    fault(fault, match = () => true) {
      current = fault === undefined ? undefined : { fault, match };
    },
    down: stop,
    close: stop,
  };
}

// ---------------------------------------------------------------------------------------------
// Consul

export interface ConsulService {
  readonly ID: string;
  readonly Service: string;
  readonly Address: string;
  readonly Port: number;
  readonly Tags: readonly string[];
  readonly Meta: Readonly<Record<string, string>>;
}

export interface FakeConsul extends FakeRegistry {
  /** Services registered with the agent, by id. */
  readonly services: Map<string, ConsulService & { maintenance?: string }>;
  /** Agent checks by id: status, TTL and the service they belong to. */
  readonly checks: Map<
    string,
    { status: string; ttlMs: number; serviceId: string; deregisterAfter: string | undefined }
  >;
  /** Catalog entries: node → services by id. */
  readonly catalog: Map<string, { address: string; services: Map<string, ConsulService> }>;
  /** Ids a `?passing` health query would return: registered, not in maintenance, every check passing. */
  passing(serviceName: string): string[];
}

export async function startFakeConsul(options: { token?: string } = {}): Promise<FakeConsul> {
  const services: FakeConsul['services'] = new Map();
  const checks: FakeConsul['checks'] = new Map();
  const catalog: FakeConsul['catalog'] = new Map();
  const text = (status: number, body: string): { status: number; body: string } => ({ status, body });

  function passing(name: string): string[] {
    return [...services.values()]
      .filter((s) => s.Service === name && s.maintenance === undefined)
      .filter((s) => [...checks.values()].every((c) => c.serviceId !== s.ID || c.status === 'passing'))
      .map((s) => s.ID);
  }

  const fake = await startFake((r) => {
    if (options.token !== undefined && r.headers['x-consul-token'] !== options.token) {
      // What Consul answers to a token that lacks service:write (an unknown token gets "ACL not found").
      return text(403, "Permission denied: token lacks permission 'service:write'");
    }
    const put = (): { status: number; body: string } | undefined =>
      r.method === 'PUT' ? undefined : text(405, `method ${r.method} not allowed`);
    let m: RegExpMatchArray | null;
    if (r.path === '/v1/agent/service/register') {
      const wrong = put();
      if (wrong) return wrong;
      let def: Record<string, unknown>;
      try {
        def = JSON.parse(r.body) as Record<string, unknown>;
      } catch (error) {
        return text(400, `Request decode failed: ${String(error)}`);
      }
      if (typeof def.Name !== 'string' || def.Name === '') return text(400, 'Missing service name');
      const id = typeof def.ID === 'string' && def.ID !== '' ? def.ID : def.Name;
      services.set(id, {
        ID: id,
        Service: def.Name,
        Address: (def.Address as string) ?? '',
        Port: (def.Port as number) ?? 0,
        Tags: (def.Tags as string[]) ?? [],
        Meta: (def.Meta as Record<string, string>) ?? {},
      });
      const check = def.Check as Record<string, unknown> | undefined;
      if (check) {
        const ttl = typeof check.TTL === 'string' ? /^(\d+)s$/.exec(check.TTL) : null;
        if (!ttl) return text(400, 'Invalid check: TTL must be > 0 for TTL checks');
        const after = check.DeregisterCriticalServiceAfter as string | undefined;
        checks.set((check.CheckID as string | undefined) ?? `service:${id}`, {
          // TTL checks start critical unless the definition says otherwise.
          status: (check.Status as string | undefined) ?? 'critical',
          ttlMs: Number(ttl[1]) * 1000,
          serviceId: id,
          deregisterAfter: after,
        });
      }
      return text(200, '');
    }
    if ((m = /^\/v1\/agent\/service\/deregister\/(.+)$/.exec(r.path))) {
      const wrong = put();
      if (wrong) return wrong;
      const id = decodeURIComponent(m[1] as string);
      if (!services.has(id)) {
        return text(
          404,
          `Unknown service ID "${id}". Ensure that the service ID is passed, not the service name.`,
        );
      }
      services.delete(id);
      for (const [checkId, c] of checks) if (c.serviceId === id) checks.delete(checkId);
      return text(200, '');
    }
    if ((m = /^\/v1\/agent\/service\/maintenance\/(.*)$/.exec(r.path))) {
      const wrong = put();
      if (wrong) return wrong;
      const id = decodeURIComponent(m[1] as string);
      if (id === '') return text(400, 'Missing service ID');
      if (!r.query.has('enable')) return text(400, 'Missing value for enable');
      const enable = r.query.get('enable');
      if (enable !== 'true' && enable !== 'false') return text(400, `Invalid value for enable: "${enable}"`);
      const service = services.get(id);
      if (!service) return text(404, `No service registered with ID "${id}"`);
      if (enable === 'true') service.maintenance = r.query.get('reason') ?? '';
      else delete service.maintenance;
      return text(200, '');
    }
    if ((m = /^\/v1\/agent\/check\/pass\/(.+)$/.exec(r.path))) {
      const wrong = put();
      if (wrong) return wrong;
      const id = decodeURIComponent(m[1] as string);
      const check = checks.get(id);
      if (!check)
        return text(404, `Unknown check ID "${id}". Ensure that the check ID is passed, not the check name.`);
      check.status = 'passing';
      return text(200, '');
    }
    if (r.path === '/v1/catalog/register') {
      const wrong = put();
      if (wrong) return wrong;
      const reg = JSON.parse(r.body) as Record<string, unknown>;
      if (typeof reg.Node !== 'string' || reg.Node === '') return text(400, 'Must provide node');
      const existing = catalog.get(reg.Node);
      if (!existing && (typeof reg.Address !== 'string' || reg.Address === ''))
        return text(400, 'Must provide address');
      const node = existing ?? { address: reg.Address as string, services: new Map<string, ConsulService>() };
      catalog.set(reg.Node, node);
      const svc = reg.Service as Record<string, unknown> | undefined;
      if (svc) {
        if (typeof svc.Service !== 'string' || svc.Service === '')
          return text(400, 'Must provide service name');
        const id = (svc.ID as string | undefined) ?? svc.Service;
        node.services.set(id, {
          ID: id,
          Service: svc.Service,
          Address: (svc.Address as string) ?? '',
          Port: (svc.Port as number) ?? 0,
          Tags: (svc.Tags as string[]) ?? [],
          Meta: (svc.Meta as Record<string, string>) ?? {},
        });
      }
      return { status: 200, body: true };
    }
    if (r.path === '/v1/catalog/deregister') {
      const wrong = put();
      if (wrong) return wrong;
      const reg = JSON.parse(r.body) as Record<string, unknown>;
      if (typeof reg.Node !== 'string' || reg.Node === '') return text(400, 'Must provide node');
      const node = catalog.get(reg.Node);
      if (typeof reg.ServiceID === 'string') node?.services.delete(reg.ServiceID);
      else catalog.delete(reg.Node);
      return { status: 200, body: true };
    }
    return text(404, '404 page not found');
  });
  return Object.assign(fake, { services, checks, catalog, passing });
}

// ---------------------------------------------------------------------------------------------
// Eureka

export interface EurekaInstance {
  readonly instanceId: string;
  readonly app: string;
  readonly hostName: string;
  readonly ipAddr: string;
  status: string;
  overriddenStatus: string;
  readonly port: number;
  readonly vipAddress: string;
  readonly leaseInfo: { renewalIntervalInSecs?: number; durationInSecs?: number };
  readonly metadata: Record<string, string>;
  lastRenewal: number;
}

export interface FakeEureka extends FakeRegistry {
  /** Registered instances: app → instance id → instance. */
  readonly apps: Map<string, Map<string, EurekaInstance>>;
}

/** `context`: `/eureka` (Spring Cloud) or `/eureka/v2` (Netflix). `basicAuth`: `user:password`. */
export async function startFakeEureka(
  options: { context?: string; basicAuth?: string } = {},
): Promise<FakeEureka> {
  const context = options.context ?? '/eureka';
  const apps: FakeEureka['apps'] = new Map();
  const fake = await startFake((r) => {
    if (options.basicAuth !== undefined) {
      const expected = `Basic ${Buffer.from(options.basicAuth).toString('base64')}`;
      if (r.headers.authorization !== expected) return { status: 401, body: '' };
    }
    if (!r.path.startsWith(`${context}/apps/`)) return { status: 404, body: '' };
    const parts = r.path.slice(`${context}/apps/`.length).split('/').map(decodeURIComponent);
    // Eureka upper-cases the application name from the path (ApplicationResource).
    const appName = (parts[0] ?? '').toUpperCase();
    const app = apps.get(appName);
    if (parts.length === 1 && r.method === 'POST') {
      if (!/application\/json/.test(r.headers['content-type'] ?? '')) return { status: 415, body: '' };
      const info =
        (
          JSON.parse(r.body) as {
            instance?: {
              instanceId?: string;
              hostName?: string;
              app?: string;
              ipAddr?: string;
              vipAddress?: string;
              status?: string;
              port?: { $?: number };
              dataCenterInfo?: { name?: string };
              leaseInfo?: EurekaInstance['leaseInfo'];
              metadata?: Record<string, string>;
            };
          }
        ).instance ?? {};
      // The order of ApplicationResource.addInstance's validation.
      if (!info.instanceId) return { status: 400, body: 'Missing instanceId' };
      if (!info.hostName) return { status: 400, body: 'Missing hostname' };
      if (!info.ipAddr) return { status: 400, body: 'Missing ip address' };
      if (!info.app) return { status: 400, body: 'Missing appName' };
      if (info.app.toUpperCase() !== appName) {
        return {
          status: 400,
          body: `Mismatched appName, expecting ${appName} but was ${info.app.toUpperCase()}`,
        };
      }
      if (!info.dataCenterInfo) return { status: 400, body: 'Missing dataCenterInfo' };
      if (!info.dataCenterInfo.name) return { status: 400, body: 'Missing dataCenterInfo Name' };
      const instances = app ?? new Map<string, EurekaInstance>();
      apps.set(appName, instances);
      instances.set(info.instanceId, {
        instanceId: info.instanceId,
        app: appName,
        hostName: info.hostName,
        ipAddr: info.ipAddr,
        status: info.status ?? 'UP',
        overriddenStatus: 'UNKNOWN',
        port: Number(info.port?.$ ?? 0),
        vipAddress: info.vipAddress ?? '',
        leaseInfo: info.leaseInfo ?? {},
        metadata: info.metadata ?? {},
        lastRenewal: Date.now(),
      });
      return { status: 204 };
    }
    if (parts.length === 1 && r.method === 'GET') {
      if (!app || app.size === 0) return { status: 404, body: '' };
      return { status: 200, body: { application: { name: appName, instance: [...app.values()] } } };
    }
    const id = parts[1] ?? '';
    const instance = app?.get(id);
    if (parts.length === 2) {
      if (r.method === 'PUT') {
        // Renewal of an unknown instance: 404 tells the client to register again.
        if (!instance) return { status: 404, body: '' };
        instance.lastRenewal = Date.now();
        return { status: 200, body: '' };
      }
      if (r.method === 'DELETE') {
        if (!instance) return { status: 404, body: '' };
        app?.delete(id);
        return { status: 200, body: '' };
      }
      if (r.method === 'GET')
        return instance ? { status: 200, body: { instance } } : { status: 404, body: '' };
    }
    if (parts.length === 3 && parts[2] === 'status') {
      if (!instance) return { status: 404, body: '' };
      if (r.method === 'PUT') {
        const value = r.query.get('value');
        if (!value) return { status: 500, body: '' };
        instance.overriddenStatus = value;
        instance.status = value;
        return { status: 200, body: '' };
      }
      if (r.method === 'DELETE') {
        instance.overriddenStatus = 'UNKNOWN';
        instance.status = r.query.get('value') ?? 'UNKNOWN';
        return { status: 200, body: '' };
      }
    }
    return { status: 405, body: '' };
  });
  return Object.assign(fake, { apps });
}

// ---------------------------------------------------------------------------------------------
// Nacos

export interface NacosInstance {
  readonly namespaceId: string;
  /** `group@@service`. */
  readonly serviceName: string;
  readonly clusterName: string;
  readonly ip: string;
  readonly port: number;
  readonly weight: number;
  readonly ephemeral: boolean;
  readonly metadata: Record<string, string>;
  lastBeat: number;
}

export interface FakeNacos extends FakeRegistry {
  /** Instances by `namespace#group@@service#cluster#ip:port`. */
  readonly instances: Map<string, NacosInstance>;
  /** Access tokens handed out by login, or accepted as configured. */
  readonly tokens: Set<string>;
}

/**
 * `accessToken`: require this token (`accessToken` query parameter). `users`: accept these logins.
 * `beatTimeoutMs`/`deleteTimeoutMs`: expire ephemeral instances without beats (Nacos: 15 s / 30 s).
 */
export async function startFakeNacos(
  options: {
    accessToken?: string;
    users?: Record<string, string>;
    tokenTtlSeconds?: number;
    deleteTimeoutMs?: number;
    clientBeatInterval?: number;
  } = {},
): Promise<FakeNacos> {
  const instances: FakeNacos['instances'] = new Map();
  const tokens = new Set<string>(options.accessToken ? [options.accessToken] : []);
  const authEnabled = options.accessToken !== undefined || options.users !== undefined;
  const ok = { status: 200, body: { code: 0, message: 'success', data: 'ok' } };
  const missing = (name: string): { status: number; body: unknown } => ({
    status: 400,
    body: {
      code: 10000,
      message: 'parameter missing',
      data: `Required parameter '${name}' type String is not present`,
    },
  });

  function expire(): void {
    if (options.deleteTimeoutMs === undefined) return;
    for (const [key, i] of instances) {
      if (i.ephemeral && Date.now() - i.lastBeat > options.deleteTimeoutMs) instances.delete(key);
    }
  }

  const fake = await startFake((r) => {
    expire();
    // POST carries a form body; the server reads parameters from the query string and the form alike.
    const params = new URLSearchParams(r.query);
    if (/application\/x-www-form-urlencoded/.test(r.headers['content-type'] ?? '')) {
      for (const [k, v] of new URLSearchParams(r.body)) params.set(k, v);
    }
    if (r.path === '/nacos/v1/auth/login' && r.method === 'POST') {
      const user = params.get('username') ?? '';
      if (!options.users || options.users[user] !== params.get('password'))
        return { status: 403, body: 'unknown user!' };
      const token = `token-${tokens.size + 1}`;
      tokens.add(token);
      return {
        status: 200,
        body: {
          accessToken: token,
          tokenTtl: options.tokenTtlSeconds ?? 18000,
          globalAdmin: false,
          username: user,
        },
      };
    }
    if (authEnabled && !tokens.has(params.get('accessToken') ?? '')) {
      return { status: 403, body: { code: 403, message: 'token invalid!', data: null } };
    }
    const namespaceId = params.get('namespaceId') || 'public';
    const clusterName = params.get('clusterName') || 'DEFAULT';
    if (r.path === '/nacos/v2/ns/instance/beat' && r.method === 'PUT') {
      const serviceName = params.get('serviceName');
      if (!serviceName) return missing('serviceName');
      if (!serviceName.includes('@@')) {
        return {
          status: 400,
          body: {
            code: 10001,
            message: `Param 'serviceName' is illegal, it should be grouped: ${serviceName}`,
            data: null,
          },
        };
      }
      const beat = params.get('beat');
      const info = beat ? (JSON.parse(beat) as { ip?: string; port?: number; cluster?: string }) : undefined;
      const ip = info?.ip ?? params.get('ip') ?? '';
      const port = Number(info?.port ?? params.get('port') ?? 0);
      const key = `${namespaceId}#${serviceName}#${info?.cluster ?? clusterName}#${ip}:${port}`;
      const instance = instances.get(key);
      const interval = options.clientBeatInterval ?? 5000;
      if (!instance) {
        if (!info)
          return { status: 200, body: { clientBeatInterval: interval, code: 20404, lightBeatEnabled: true } };
        // A full beat for an unknown instance re-creates it: the reason beats must stop before a deregistration.
        instances.set(key, {
          namespaceId,
          serviceName,
          clusterName: info.cluster ?? clusterName,
          ip,
          port,
          weight: 1,
          ephemeral: true,
          metadata: {},
          lastBeat: Date.now(),
        });
      } else {
        instance.lastBeat = Date.now();
      }
      return { status: 200, body: { clientBeatInterval: interval, code: 10200, lightBeatEnabled: true } };
    }
    if (r.path === '/nacos/v2/ns/instance') {
      for (const name of ['serviceName', 'ip', 'port']) if (!params.get(name)) return missing(name);
      const group = params.get('groupName') || 'DEFAULT_GROUP';
      const grouped = `${group}@@${params.get('serviceName')}`;
      const port = Number(params.get('port'));
      const key = `${namespaceId}#${grouped}#${clusterName}#${params.get('ip')}:${port}`;
      if (r.method === 'POST') {
        const weight = Number(params.get('weight') ?? 1);
        if (!(weight >= 0 && weight <= 10000)) {
          return {
            status: 400,
            body: {
              code: 10000,
              message: 'instance format invalid: The weights range from 0.0 to 10000.0',
              data: null,
            },
          };
        }
        instances.set(key, {
          namespaceId,
          serviceName: grouped,
          clusterName,
          ip: params.get('ip') ?? '',
          port,
          weight,
          ephemeral: params.get('ephemeral') !== 'false',
          metadata: params.get('metadata')
            ? (JSON.parse(params.get('metadata') ?? '{}') as Record<string, string>)
            : {},
          lastBeat: Date.now(),
        });
        return ok;
      }
      if (r.method === 'DELETE') {
        instances.delete(key);
        return ok;
      }
    }
    return {
      status: 404,
      body: { timestamp: new Date().toISOString(), status: 404, error: 'Not Found', path: r.path },
    };
  });
  return Object.assign(fake, { instances, tokens });
}

// ---------------------------------------------------------------------------------------------
// A kubegrace as the registry tests use it

/** Budgets for tests, with room for a loaded 2-core machine; the phases add up to BUDGET_SUM_MS. */
export const TEST_BUDGET = {
  env: {},
  gracePeriodSeconds: 10,
  safetyMarginMs: 1000,
  unreadyTimeoutMs: 1500,
  propagation: { strategy: 'fixed', delayMs: 100 },
  drain: { timeoutMs: 300 },
  cleanupTimeoutMs: 1500,
} as const satisfies KubegraceOptions;
export const BUDGET_SUM_MS = 1500 + 100 + 300 + 1500;

export interface Harness {
  readonly kg: Kubegrace;
  readonly exits: number[];
  readonly warnings: string[];
  readonly outcomes: [string, DeregistrationOutcome, number][];
  /** Pass as `onDeregistration`. */
  readonly onDeregistration: (registry: string, outcome: DeregistrationOutcome, seconds: number) => void;
}

export function createHarness(options: Partial<KubegraceOptions> = {}): Harness {
  const exits: number[] = [];
  const warnings: string[] = [];
  const outcomes: Harness['outcomes'] = [];
  const kg = createKubegrace({
    ...TEST_BUDGET,
    ...options,
    exit: (code) => exits.push(code),
    handleSignals: false,
    logger: false,
    managementServer: false,
  });
  kg.on('warning', ({ message }) => warnings.push(message));
  return { kg, exits, warnings, outcomes, onDeregistration: (...args) => outcomes.push(args) };
}

/**
 * What every "registry down / hung / refusing" test asserts: one deregistration report with the
 * expected outcome, a `failed` shutdown with exit code 1, the unready phase within its budget, and
 * the whole shutdown well before the deadline.
 */
export function assertFailedOnBudget(
  summary: ShutdownSummary,
  harness: Harness,
  registry: string,
  outcome: DeregistrationOutcome,
): void {
  assert.equal(harness.outcomes.length, 1, 'onDeregistration is called exactly once');
  assert.equal(harness.outcomes[0]?.[0], registry);
  assert.equal(harness.outcomes[0]?.[1], outcome, `outcome ${harness.outcomes[0]?.[1]}, expected ${outcome}`);
  assert.equal(summary.outcome, 'failed');
  assert.equal(summary.exitCode, 1);
  assert.deepEqual(harness.exits, [1]);
  const failure = summary.failures.find((f) => f.name === `registry:${registry}`);
  assert.ok(failure, 'the registry participant is listed among the failures');
  const unready = summary.phases.unready ?? Infinity;
  assert.ok(unready <= TEST_BUDGET.unreadyTimeoutMs + 250, `unready took ${unready} ms against its budget`);
  assert.ok(summary.durationMs < BUDGET_SUM_MS + 500, `shutdown took ${summary.durationMs} ms`);
  assert.ok(Date.now() < summary.deadlineAt, 'finished before the deadline');
}

/** Poll `predicate` every 20 ms for up to `limitMs`. */
export async function until(
  predicate: () => boolean | Promise<boolean>,
  limitMs: number,
  what: string,
): Promise<void> {
  const start = Date.now();
  while (!(await predicate())) {
    if (Date.now() - start > limitMs) throw new Error(`timed out after ${limitMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Opt-in tests against a real server: the URL from `variable`, or a loud skip reason. These stay
 * opt-in in CI too — the servers are not Debian packages CI can install.
 */
export function realServer(
  variable: string,
  what: string,
): { url: string | undefined; skip: string | false } {
  const url = process.env[variable];
  if (url) return { url, skip: false };
  const reason = `${variable} is not set: the tests against a real ${what} are SKIPPED`;
  process.stderr.write(`\n!! ${reason}\n`);
  return { url: undefined, skip: reason };
}
