/**
 * An in-process Kubernetes API server that speaks the real wire protocol to the real
 * `@kubernetes/client-node`: HTTPS with a certificate made by `openssl` at start, bearer tokens read
 * from a token file, list and watch with one global resourceVersion, bookmarks, 410 Gone for a
 * compacted resourceVersion, label and field selectors, pagination, POST/PUT/PATCH/DELETE, and
 * switches for the failures a pod meets in real clusters (401, 403, slowness, dropped watches,
 * an unreachable server).
 *
 * What it models of the kubelet: `deletePod` stamps `deletionTimestamp` the way the API server does
 * (now + grace, serialized at second precision, on the API server's clock, which `clockSkewMs` can set
 * apart from the node's) and records the exact moment the kubelet would SIGKILL (on the node's clock).
 * A second delete with a shorter grace period shortens it as rest.BeforeDelete does; a grace period of
 * 0, or a pod no kubelet runs (no `spec.nodeName`, or finished), is removed at once.
 *
 * What arrives over the wire is held to the rules of a real API server of the configured version
 * (`version`, default the oldest kubegrace supports, 1.25): `GET /version`; Events validated as
 * core/v1 validates them (legacyValidateEvent), `eventTime` parsed as a MicroTime (exactly six
 * fractional digits, else 400), `firstTimestamp`/`lastTimestamp` stored to the second; pods with
 * lifecycle handlers checked as that version does (the preStop `sleep` action: an unknown field before
 * 1.29, dropped in 1.29, accepted from 1.30), unknown fields answered with a `299` Warning header.
 * `put`/`update` are the test's back door (like writing to etcd): they store what they are given.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeClientModule } from '../../src/kubernetes/client.js';
import type { KubernetesOptions } from '../../src/kubernetes/options.js';

export type Json = Record<string, unknown>;

export type Resource = 'pods' | 'endpointslices' | 'events' | 'services';
export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';

interface ResourceInfo {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
}

const RESOURCES: Readonly<Record<Resource, ResourceInfo>> = {
  pods: { group: '', version: 'v1', kind: 'Pod' },
  services: { group: '', version: 'v1', kind: 'Service' },
  events: { group: '', version: 'v1', kind: 'Event' },
  endpointslices: { group: 'discovery.k8s.io', version: 'v1', kind: 'EndpointSlice' },
};

const apiVersionOf = (info: ResourceInfo): string =>
  info.group === '' ? info.version : `${info.group}/${info.version}`;

export interface RequestRecord {
  readonly at: number;
  readonly method: string;
  readonly resource: string;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  readonly verb: Verb | 'unknown';
  readonly query: Readonly<Record<string, string>>;
  readonly token: string | undefined;
  status: number;
  /** Epoch ms of the answer (the headers of a watch). */
  answeredAt: number | undefined;
  /** `Warning` headers sent with the answer (the text of each `299 - "…"`). */
  readonly warnings: string[];
}

export interface DeletedPod {
  /** Epoch ms of the delete request (the last one that changed the deletion). */
  readonly deletedAt: number;
  /**
   * Epoch ms (the node's clock) at which the kubelet would SIGKILL: the delete plus the grace period,
   * exactly; after a shorter second delete, that delete plus its grace period (the kubelet cancels the
   * running termination and starts again with the shorter one).
   */
  readonly killAt: number;
  /** What the API shows: RFC 3339, whole seconds (the API server drops the fraction). */
  readonly deletionTimestamp: string;
  readonly graceSeconds: number;
}

export interface FakeKubeApiOptions {
  /** Bookmark cadence for watches that allow them. @default 250 */
  readonly bookmarkIntervalMs?: number;
  /** The service account the token belongs to, for 403 messages. @default 'system:serviceaccount:default:app' */
  readonly user?: string;
  /** The Kubernetes version it answers `/version` with and whose validation it applies. @default 'v1.25.16' */
  readonly version?: string;
  /**
   * How far the API server's clock is ahead of the node's (negative: behind). It stamps
   * `deletionTimestamp`, `creationTimestamp` and the `Date` header with its own clock; the kubelet's
   * kill time stays on the node's. @default 0
   */
  readonly clockSkewMs?: number;
}

/** The oldest Kubernetes kubegrace supports (charts/kubegrace/Chart.yaml `kubeVersion`). */
export const OLDEST_KUBERNETES = 'v1.25.16';

export interface FakeKubeApi {
  readonly url: string;
  readonly port: number;
  /** The self-signed certificate (PEM); it is its own CA. */
  readonly caPem: string;
  readonly caFile: string;
  /** A service-account style token file; `rotateToken` rewrites it. */
  readonly tokenFile: string;
  /** Every request seen, in order (watches included). */
  readonly requests: RequestRecord[];
  /** The version it plays (`/version`'s gitVersion) and its minor, which picks the validation. */
  readonly version: { readonly gitVersion: string; readonly major: number; readonly minor: number };
  /** Options for `KubeConfig.loadFromOptions`, pointing at this server with the token file. */
  kubeConfigOptions(namespace?: string): Json;
  /** A directory laid out like /var/run/secrets/kubernetes.io/serviceaccount. */
  serviceAccountDir(namespace: string): string;

  put(resource: Resource, object: Json): Json;
  get(resource: Resource, namespace: string, name: string): Json | undefined;
  update(resource: Resource, namespace: string, name: string, mutate: (object: Json) => void): Json;
  remove(resource: Resource, namespace: string, name: string): void;
  list(resource: Resource, namespace?: string): Json[];
  /**
   * Delete a pod the way the API server does when a kubelet runs it: stamped for a graceful delete, or
   * removed at once (grace 0, no `spec.nodeName`, a finished pod). Again with a shorter grace period:
   * shortened (only ever shortened), as rest.BeforeDelete does.
   */
  deletePod(namespace: string, name: string, options?: { readonly graceSeconds?: number }): DeletedPod;
  deletedPod(namespace: string, name: string): DeletedPod | undefined;
  readonly resourceVersion: number;

  /** Tokens the server accepts; by default the one in the token file. */
  rotateToken(options?: { readonly revokeOld?: boolean }): string;
  /** Every request answers 401 while true. */
  setUnauthorized(on: boolean): void;
  /** These verbs on this resource answer 403 (RBAC denies them). */
  forbid(resource: Resource, verbs: readonly Verb[]): void;
  allowAll(): void;
  /** Hold every matching request this long before answering. */
  setLatency(ms: number, filter?: (record: RequestRecord) => boolean): void;
  /** New watches answer with this HTTP status (500, 503...); undefined to stop. */
  failWatches(status: number | undefined): void;
  /** A middlebox that ends every watch this long after it was accepted (a clean end); undefined to stop. */
  cutWatchesAfter(ms: number | undefined): void;
  /** Set the API server's clock apart from the node's (see `clockSkewMs`). */
  setClockSkew(ms: number): void;
  /** Cut every open watch connection (abruptly, like a load balancer reset). */
  dropWatches(options?: { readonly graceful?: boolean }): number;
  /** Forget history up to now: watches resuming from an older resourceVersion get 410 Gone. */
  compact(): void;
  readonly openWatches: number;
  /** Stop listening and cut every connection: the API is unreachable until `up()`. */
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

interface StoredEvent {
  readonly rv: number;
  readonly resource: Resource;
  readonly namespace: string;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: Json;
  readonly previous: Json | undefined;
}

interface Watcher {
  readonly resource: Resource;
  readonly namespace: string | undefined;
  readonly matches: (object: Json) => boolean;
  readonly res: ServerResponse;
  readonly bookmarks: boolean;
  sentRv: number;
  close(graceful: boolean): void;
}

function makeCertificate(dir: string): { cert: string; key: string } {
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '1',
      '-subj',
      '/CN=kubegrace-fake-apiserver',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'ignore' },
  );
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
}

const clone = <T>(value: T): T => structuredClone(value);

/** RFC 3339 at second precision, as metav1.Time serializes. */
export function apiTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** time.RFC3339 as Go parses it (any fraction of a second, or none). */
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** IsQualifiedName: an optional DNS-subdomain prefix and `/`, then a name of at most 63 characters. */
const QUALIFIED_NAME =
  /^(?:[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*\/)?(?=.{1,63}$)[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** path.IsValidPathSegmentName (apimachinery): what a name must not be or hold to sit in a URL path. */
export function pathSegmentErrors(name: string): string[] {
  if (name === '.' || name === '..') return [`may not be '${name}'`];
  return ['/', '%'].filter((c) => name.includes(c)).map((c) => `may not contain '${c}'`);
}

/**
 * metav1.MicroTime's UnmarshalJSON: `time.Parse(RFC3339Micro, …)`, whose layout needs exactly six
 * fractional digits, so JavaScript's `toISOString()` (three) is refused. Epoch µs, or the error.
 */
export function parseMicroTime(value: unknown): number | string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{6})(Z|[+-]\d{2}:\d{2})$/.exec(text);
  if (typeof value !== 'string' || !m) {
    const rest = text.length > 19 ? text.slice(19) : text;
    return `parsing time ${JSON.stringify(text)} as "2006-01-02T15:04:05.000000Z07:00": cannot parse ${JSON.stringify(rest)} as ".000000"`;
  }
  const seconds = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(seconds)) return `parsing time ${JSON.stringify(text)}: out of range`;
  return seconds * 1000 + Number((m[2] as string).slice(1));
}

/** MicroTime as the API server writes it: UTC, six fractional digits. */
export function formatMicroTime(micros: number): string {
  const seconds = Math.floor(micros / 1_000_000);
  return `${new Date(seconds * 1000).toISOString().slice(0, 19)}.${String(micros - seconds * 1_000_000).padStart(6, '0')}Z`;
}

export async function startFakeKubeApi(options: FakeKubeApiOptions = {}): Promise<FakeKubeApi> {
  const dir = mkdtempSync(join(tmpdir(), 'kubegrace-fake-api-'));
  const { cert, key } = makeCertificate(dir);
  const caFile = join(dir, 'ca.crt');
  writeFileSync(caFile, cert);
  const tokenFile = join(dir, 'token');
  let currentToken = `fake-${randomBytes(12).toString('hex')}`;
  writeFileSync(tokenFile, currentToken);
  const accepted = new Set([currentToken]);
  const user = options.user ?? 'system:serviceaccount:default:app';
  const bookmarkIntervalMs = options.bookmarkIntervalMs ?? 250;
  const gitVersion = options.version ?? OLDEST_KUBERNETES;
  const parsedVersion = /^v(\d+)\.(\d+)\.\d+/.exec(gitVersion);
  if (!parsedVersion)
    throw new Error(`fake-kube-api: version must look like v1.25.16, received ${gitVersion}`);
  const version = {
    gitVersion,
    major: Number(parsedVersion[1]),
    minor: Number(parsedVersion[2]),
  };

  let rv = 1000;
  const store = new Map<string, Json>();
  const history: StoredEvent[] = [];
  let compactedThrough = 0;
  const deletions = new Map<string, DeletedPod>();
  const watchers = new Set<Watcher>();
  const sockets = new Set<Socket>();
  const requests: RequestRecord[] = [];
  const forbidden = new Set<string>();
  let unauthorized = false;
  let latency: { ms: number; filter: ((r: RequestRecord) => boolean) | undefined } = {
    ms: 0,
    filter: undefined,
  };
  let watchFailure: number | undefined;
  let watchCutAfterMs: number | undefined;
  let clockSkewMs = options.clockSkewMs ?? 0;
  /** The API server's clock. */
  const apiNow = (): number => Date.now() + clockSkewMs;

  const keyOf = (resource: Resource, namespace: string, name: string): string =>
    `${resource}/${namespace}/${name}`;

  function commit(
    resource: Resource,
    type: StoredEvent['type'],
    object: Json,
    previous: Json | undefined,
  ): Json {
    rv += 1;
    const meta = object.metadata as Json;
    meta.resourceVersion = String(rv);
    const namespace = meta.namespace as string;
    const name = meta.name as string;
    if (type === 'DELETED') store.delete(keyOf(resource, namespace, name));
    else store.set(keyOf(resource, namespace, name), object);
    const event: StoredEvent = { rv, resource, namespace, type, object: clone(object), previous };
    history.push(event);
    for (const watcher of watchers) deliver(watcher, event);
    return clone(object);
  }

  function deliver(watcher: Watcher, event: StoredEvent): void {
    if (watcher.resource !== event.resource) return;
    if (watcher.namespace !== undefined && watcher.namespace !== event.namespace) return;
    if (event.rv <= watcher.sentRv) return;
    // A selector-filtered watch sees an object enter or leave the selection as ADDED or DELETED.
    const now = event.type !== 'DELETED' && watcher.matches(event.object);
    const before = event.previous !== undefined && watcher.matches(event.previous);
    let type: string | undefined;
    if (event.type === 'DELETED') type = before ? 'DELETED' : undefined;
    else if (now && before) type = 'MODIFIED';
    else if (now) type = 'ADDED';
    else if (before) type = 'DELETED';
    watcher.sentRv = event.rv;
    if (type !== undefined) send(watcher.res, { type, object: withKind(event.resource, event.object) });
  }

  function withKind(resource: Resource, object: Json): Json {
    const info = RESOURCES[resource];
    return { kind: info.kind, apiVersion: apiVersionOf(info), ...object };
  }

  function send(res: ServerResponse, event: Json): void {
    if (!res.destroyed && !res.writableEnded) res.write(`${JSON.stringify(event)}\n`);
  }

  function status(code: number, reason: string, message: string, details?: Json): Json {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message,
      reason,
      code,
      ...(details ? { details } : {}),
    };
  }

  function reply(res: ServerResponse, record: RequestRecord, code: number, body: Json): void {
    record.status = code;
    record.answeredAt = Date.now();
    const text = JSON.stringify(body);
    const headers: Record<string, string | number | string[]> = {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(text),
      Date: new Date(apiNow()).toUTCString(),
    };
    // As k8s.io/apiserver's warning recorder writes them: code 299, agent "-", the text quoted.
    if (record.warnings.length > 0)
      headers.Warning = record.warnings.map((w) => `299 - ${JSON.stringify(w)}`);
    res.writeHead(code, headers);
    res.end(text);
  }

  // ---------------------------------------------------------------- selectors

  function labelMatcher(selector: string | undefined): (object: Json) => boolean {
    if (!selector) return () => true;
    const requirements = splitSelector(selector).map((part) => {
      const inMatch = /^([^\s!=]+)\s+(in|notin)\s+\((.*)\)$/.exec(part);
      if (inMatch) {
        const values = (inMatch[3] ?? '').split(',').map((v) => v.trim());
        const k = inMatch[1] as string;
        return inMatch[2] === 'in'
          ? (l: Json) => typeof l[k] === 'string' && values.includes(l[k])
          : (l: Json) => typeof l[k] !== 'string' || !values.includes(l[k]);
      }
      const neq = /^([^!=]+)!=(.*)$/.exec(part);
      if (neq) return (l: Json) => l[(neq[1] as string).trim()] !== (neq[2] as string).trim();
      const eq = /^([^!=]+)==?(.*)$/.exec(part);
      if (eq) return (l: Json) => l[(eq[1] as string).trim()] === (eq[2] as string).trim();
      if (part.startsWith('!')) return (l: Json) => !(part.slice(1).trim() in l);
      return (l: Json) => part.trim() in l;
    });
    return (object) => {
      const labels = ((object.metadata as Json | undefined)?.labels ?? {}) as Json;
      return requirements.every((r) => r(labels));
    };
  }

  function splitSelector(selector: string): string[] {
    const parts: string[] = [];
    let depth = 0;
    let current = '';
    for (const ch of selector) {
      if (ch === '(') depth += 1;
      if (ch === ')') depth -= 1;
      if (ch === ',' && depth === 0) {
        parts.push(current.trim());
        current = '';
      } else current += ch;
    }
    if (current.trim() !== '') parts.push(current.trim());
    return parts;
  }

  function fieldMatcher(selector: string | undefined): ((object: Json) => boolean) | string {
    if (!selector) return () => true;
    const checks: ((o: Json) => boolean)[] = [];
    for (const part of selector.split(',')) {
      const m = /^([^!=]+)(!=|==|=)(.*)$/.exec(part.trim());
      if (!m) return `unable to parse requirement: ${part}`;
      const field = m[1] as string;
      const value = m[3] as string;
      if (field !== 'metadata.name' && field !== 'metadata.namespace') {
        return `"${field}" is not a known field selector: only "metadata.name", "metadata.namespace"`;
      }
      const key = field.slice('metadata.'.length);
      checks.push(
        m[2] === '!='
          ? (o) => (o.metadata as Json)[key] !== value
          : (o) => (o.metadata as Json)[key] === value,
      );
    }
    return (object) => checks.every((c) => c(object));
  }

  // ---------------------------------------------------------------- routing

  interface Route {
    readonly resource: Resource;
    readonly namespace: string | undefined;
    readonly name: string | undefined;
  }

  function route(pathname: string): Route | string {
    const core = /^\/api\/v1\/(?:namespaces\/([^/]+)\/)?([a-z]+)(?:\/([^/]+))?$/.exec(pathname);
    const grouped = /^\/apis\/discovery\.k8s\.io\/v1\/(?:namespaces\/([^/]+)\/)?([a-z]+)(?:\/([^/]+))?$/.exec(
      pathname,
    );
    const m = core ?? grouped;
    if (!m) return `the server could not find the requested resource (${pathname})`;
    const resource = m[2] as Resource;
    const info = RESOURCES[resource] as ResourceInfo | undefined;
    if (!info || (grouped !== null) !== (info.group === 'discovery.k8s.io')) {
      return `the server could not find the requested resource (${pathname})`;
    }
    return {
      resource,
      namespace: m[1] === undefined ? undefined : decodeURIComponent(m[1]),
      name: m[3] === undefined ? undefined : decodeURIComponent(m[3]),
    };
  }

  function verbOf(method: string, r: Route, query: Record<string, string>): Verb | 'unknown' {
    switch (method) {
      case 'GET':
        return r.name !== undefined
          ? 'get'
          : query.watch === 'true' || query.watch === '1'
            ? 'watch'
            : 'list';
      case 'POST':
        return 'create';
      case 'PUT':
        return 'update';
      case 'PATCH':
        return 'patch';
      case 'DELETE':
        return 'delete';
      default:
        return 'unknown';
    }
  }

  async function readBody(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://fake');
    const query = Object.fromEntries(url.searchParams);
    const auth = req.headers.authorization;
    const token = auth?.startsWith('Bearer ') ? auth.slice('Bearer '.length) : undefined;
    const r = route(url.pathname);
    const record: RequestRecord = {
      at: Date.now(),
      method: req.method ?? 'GET',
      resource: typeof r === 'string' ? url.pathname : r.resource,
      namespace: typeof r === 'string' ? undefined : r.namespace,
      name: typeof r === 'string' ? undefined : r.name,
      verb: typeof r === 'string' ? 'unknown' : verbOf(req.method ?? 'GET', r, query),
      query,
      token,
      status: 0,
      answeredAt: undefined,
      warnings: [],
    };
    requests.push(record);
    const body = req.method === 'GET' || req.method === 'HEAD' ? '' : await readBody(req);
    if (latency.ms > 0 && (latency.filter === undefined || latency.filter(record))) {
      await new Promise((resolve) => setTimeout(resolve, latency.ms));
      if (res.destroyed) return;
    }
    if (unauthorized || token === undefined || !accepted.has(token)) {
      reply(res, record, 401, status(401, 'Unauthorized', 'Unauthorized'));
      return;
    }
    if (url.pathname === '/version' || url.pathname === '/version/') {
      if (req.method !== 'GET') return reply(res, record, 405, status(405, 'MethodNotAllowed', 'GET only'));
      return reply(res, record, 200, {
        major: String(version.major),
        minor: String(version.minor),
        gitVersion,
        gitCommit: '0000000000000000000000000000000000000000',
        gitTreeState: 'clean',
        buildDate: '2023-01-01T00:00:00Z',
        goVersion: 'go1.20.10',
        compiler: 'gc',
        platform: 'linux/amd64',
      });
    }
    if (typeof r === 'string') {
      reply(res, record, 404, status(404, 'NotFound', r));
      return;
    }
    const info = RESOURCES[r.resource];
    if (forbidden.has(`${record.verb}:${r.resource}`)) {
      const groupText = info.group === '' ? '""' : `"${info.group}"`;
      const qualified = info.group === '' ? r.resource : `${r.resource}.${info.group}`;
      const named = r.name === undefined ? '' : ` "${r.name}"`;
      const scope = r.namespace === undefined ? 'at the cluster scope' : `in the namespace "${r.namespace}"`;
      reply(
        res,
        record,
        403,
        status(
          403,
          'Forbidden',
          `${qualified}${named} is forbidden: User "${user}" cannot ${record.verb} resource "${r.resource}" in API group ${groupText} ${scope}`,
          { ...(r.name === undefined ? {} : { name: r.name }), group: info.group, kind: r.resource },
        ),
      );
      return;
    }
    switch (record.verb) {
      case 'list':
        return listResponse(res, record, r, query);
      case 'watch':
        return watchResponse(req, res, record, r, query);
      case 'get': {
        const found = store.get(keyOf(r.resource, r.namespace ?? '', r.name ?? ''));
        if (!found)
          return reply(res, record, 404, status(404, 'NotFound', `${r.resource} "${r.name}" not found`));
        return reply(res, record, 200, withKind(r.resource, clone(found)));
      }
      case 'create':
        return createResponse(res, record, r, body);
      case 'update':
      case 'patch':
        return modifyResponse(req, res, record, r, body);
      case 'delete':
        return deleteResponse(res, record, r, body);
      default:
        return reply(
          res,
          record,
          405,
          status(405, 'MethodNotAllowed', `method ${record.method} not allowed`),
        );
    }
  }

  function selected(r: Route, query: Record<string, string>): ((o: Json) => boolean) | string {
    const fields = fieldMatcher(query.fieldSelector);
    if (typeof fields === 'string') return fields;
    const labels = labelMatcher(query.labelSelector);
    return (o) =>
      fields(o) && labels(o) && (r.namespace === undefined || (o.metadata as Json).namespace === r.namespace);
  }

  function listResponse(
    res: ServerResponse,
    record: RequestRecord,
    r: Route,
    query: Record<string, string>,
  ): void {
    const matches = selected(r, query);
    if (typeof matches === 'string') return reply(res, record, 400, status(400, 'BadRequest', matches));
    const all = [...store.entries()]
      .filter(([k]) => k.startsWith(`${r.resource}/`))
      .map(([, v]) => v)
      .filter(matches)
      .sort((a, b) => String((a.metadata as Json).name).localeCompare(String((b.metadata as Json).name)));
    let start = 0;
    let listRv = rv;
    if (query.continue) {
      try {
        const token = JSON.parse(Buffer.from(query.continue, 'base64').toString('utf8')) as {
          rv: number;
          start: number;
        };
        if (token.rv <= compactedThrough) {
          return reply(
            res,
            record,
            410,
            status(410, 'Expired', 'The provided continue parameter is too old'),
          );
        }
        start = token.start;
        listRv = token.rv;
      } catch {
        return reply(res, record, 400, status(400, 'BadRequest', 'invalid continue token'));
      }
    }
    const limit = query.limit ? Number(query.limit) : 0;
    const end = limit > 0 ? start + limit : all.length;
    const items = all.slice(start, end).map(clone);
    const more = end < all.length;
    const info = RESOURCES[r.resource];
    reply(res, record, 200, {
      kind: `${info.kind}List`,
      apiVersion: apiVersionOf(info),
      metadata: {
        resourceVersion: String(listRv),
        ...(more
          ? { continue: Buffer.from(JSON.stringify({ rv: listRv, start: end })).toString('base64') }
          : {}),
      },
      items,
    });
  }

  function watchResponse(
    req: IncomingMessage,
    res: ServerResponse,
    record: RequestRecord,
    r: Route,
    query: Record<string, string>,
  ): void {
    if (watchFailure !== undefined) {
      return reply(
        res,
        record,
        watchFailure,
        status(watchFailure, 'InternalError', 'watch failed (injected)'),
      );
    }
    const matches = selected(r, query);
    if (typeof matches === 'string') return reply(res, record, 400, status(400, 'BadRequest', matches));
    record.status = 200;
    record.answeredAt = Date.now();
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Transfer-Encoding': 'chunked',
      Date: new Date(apiNow()).toUTCString(),
    });
    res.flushHeaders();
    const bookmarks = query.allowWatchBookmarks === 'true';
    let timer: NodeJS.Timeout | undefined;
    let timeout: NodeJS.Timeout | undefined;
    const watcher: Watcher = {
      resource: r.resource,
      namespace: r.namespace,
      matches,
      res,
      bookmarks,
      sentRv: 0,
      close(graceful) {
        clearInterval(timer);
        clearTimeout(timeout);
        watchers.delete(watcher);
        if (graceful) res.end();
        else res.destroy();
      },
    };
    const from = query.resourceVersion;
    if (from === undefined || from === '' || from === '0') {
      // "Start at most recent": synthetic ADDED for every current object, then changes.
      for (const [k, object] of store) {
        if (k.startsWith(`${r.resource}/`) && matches(object))
          send(res, { type: 'ADDED', object: withKind(r.resource, clone(object)) });
      }
      watcher.sentRv = rv;
    } else {
      const since = Number(from);
      if (!Number.isInteger(since) || since < compactedThrough) {
        // The real API server answers 200 and then one ERROR event carrying a 410 Status.
        send(res, {
          type: 'ERROR',
          object: status(410, 'Expired', `too old resource version: ${from} (${compactedThrough + 1})`),
        });
        res.end();
        return;
      }
      watcher.sentRv = since;
      for (const event of history) if (event.rv > since) deliver(watcher, event);
      watcher.sentRv = Math.max(watcher.sentRv, since);
    }
    watchers.add(watcher);
    if (bookmarks) {
      const info = RESOURCES[r.resource];
      timer = setInterval(() => {
        watcher.sentRv = Math.max(watcher.sentRv, rv);
        send(res, {
          type: 'BOOKMARK',
          object: {
            kind: info.kind,
            apiVersion: apiVersionOf(info),
            metadata: { resourceVersion: String(rv) },
          },
        });
      }, bookmarkIntervalMs);
    }
    const timeoutSeconds = Number(query.timeoutSeconds ?? 0);
    if (timeoutSeconds > 0) timeout = setTimeout(() => watcher.close(true), timeoutSeconds * 1000);
    if (watchCutAfterMs !== undefined) {
      const cut = setTimeout(() => watcher.close(true), watchCutAfterMs);
      res.on('close', () => clearTimeout(cut));
    }
    req.on('close', () => watcher.close(false));
  }

  function parseJson(text: string): Json | undefined {
    try {
      const value = JSON.parse(text) as unknown;
      return typeof value === 'object' && value !== null && !Array.isArray(value)
        ? (value as Json)
        : undefined;
    } catch {
      return undefined;
    }
  }

  function createResponse(res: ServerResponse, record: RequestRecord, r: Route, body: string): void {
    const refuse = (code: number, reason: string, message: string, details?: Json): void =>
      reply(res, record, code, status(code, reason, message, details));
    const object = parseJson(body);
    if (!object) return refuse(400, 'BadRequest', 'the request body is not a JSON object');
    const meta = (object.metadata ??= {}) as Json;
    const kind = RESOURCES[r.resource].kind;
    if (r.namespace === undefined) return refuse(405, 'MethodNotAllowed', 'create needs a namespace');
    if (meta.namespace !== undefined && meta.namespace !== r.namespace) {
      return refuse(
        400,
        'BadRequest',
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    }
    // Decoding, as the API server does it before anything else: unknown fields (dropped, with a
    // warning, unless fieldValidation says otherwise) and typed values (a MicroTime, a Time).
    const unknown: string[] = [];
    const decodeError =
      r.resource === 'events'
        ? decodeEvent(object, unknown)
        : r.resource === 'pods'
          ? decodePod(object, unknown)
          : undefined;
    if (decodeError !== undefined) {
      return refuse(
        400,
        'BadRequest',
        `${kind} in version "v1" cannot be handled as a ${kind}: ${decodeError}`,
      );
    }
    const fieldValidation = record.query.fieldValidation ?? 'Warn';
    if (unknown.length > 0 && fieldValidation === 'Strict') {
      return refuse(
        400,
        'BadRequest',
        `strict decoding error: ${unknown.map((f) => `unknown field ${JSON.stringify(f)}`).join(', ')}`,
      );
    }
    if (fieldValidation !== 'Ignore')
      for (const f of unknown) record.warnings.push(`unknown field ${JSON.stringify(f)}`);
    meta.namespace = r.namespace;
    if (typeof meta.name !== 'string' || meta.name === '') {
      if (typeof meta.generateName === 'string' && meta.generateName !== '') {
        meta.name = `${meta.generateName}${randomBytes(3).toString('hex').slice(0, 5)}`;
      } else {
        return refuse(
          422,
          'Invalid',
          `${kind} "" is invalid: metadata.name: Required value: name or generateName is required`,
        );
      }
    }
    // rest.BeforeCreate: the name must be usable as a path segment, for every resource.
    const segment = pathSegmentErrors(meta.name as string);
    if (segment.length > 0) {
      return refuse(
        422,
        'Invalid',
        `${kind} ${JSON.stringify(meta.name)} is invalid: metadata.name: Invalid value: ${JSON.stringify(meta.name)}: ${segment.join(',')}`,
        { name: meta.name, kind },
      );
    }
    const errors =
      r.resource === 'events'
        ? validateEvent(object, r.namespace)
        : r.resource === 'pods'
          ? validatePod(object)
          : [];
    if (errors.length > 0) {
      // apimachinery's NewInvalid: one error as it is, several as a list.
      const list = errors.length === 1 ? (errors[0] as string) : `[${errors.join(', ')}]`;
      return refuse(422, 'Invalid', `${kind} "${String(meta.name)}" is invalid: ${list}`, {
        name: meta.name,
        kind: kind,
      });
    }
    if (store.has(keyOf(r.resource, r.namespace, meta.name as string))) {
      return refuse(409, 'AlreadyExists', `${r.resource} "${String(meta.name)}" already exists`);
    }
    meta.uid = randomUUID();
    meta.creationTimestamp = apiTime(apiNow());
    // A new pod is Pending until a kubelet runs it; what a client sends as status is dropped.
    if (r.resource === 'pods') object.status = { phase: 'Pending' };
    delete object.kind;
    delete object.apiVersion;
    const stored = commit(r.resource, 'ADDED', object, undefined);
    reply(res, record, 201, withKind(r.resource, stored));
  }

  /** core/v1 Event's fields; anything else is an unknown field. */
  const EVENT_FIELDS = new Set([
    'kind',
    'apiVersion',
    'metadata',
    'involvedObject',
    'reason',
    'message',
    'source',
    'firstTimestamp',
    'lastTimestamp',
    'count',
    'type',
    'eventTime',
    'series',
    'action',
    'related',
    'reportingComponent',
    'reportingInstance',
  ]);

  /** Event fields whose JSON type the decoder checks (a wrong one is a 400, before any validation). */
  const EVENT_STRINGS = ['reason', 'message', 'type', 'action', 'reportingComponent', 'reportingInstance'];

  /** Unknown fields, the types, then the times: a MicroTime needs exactly six fractional digits. */
  function decodeEvent(event: Json, unknown: string[]): string | undefined {
    for (const key of Object.keys(event)) {
      if (!EVENT_FIELDS.has(key)) {
        unknown.push(key);
        delete event[key];
      }
    }
    const jsonType = (v: unknown): string =>
      Array.isArray(v) ? 'array' : typeof v === 'object' ? 'object' : typeof v;
    for (const field of EVENT_STRINGS) {
      const value = event[field];
      if (value !== undefined && value !== null && typeof value !== 'string')
        return `json: cannot unmarshal ${jsonType(value)} into Go struct field Event.${field} of type string`;
    }
    const count = event.count;
    if (count !== undefined && count !== null && !(typeof count === 'number' && Number.isInteger(count)))
      return `json: cannot unmarshal ${jsonType(count)} into Go struct field Event.count of type int32`;
    if (event.eventTime !== undefined && event.eventTime !== null) {
      const micros = parseMicroTime(event.eventTime);
      if (typeof micros === 'string') return micros;
      event.eventTime = formatMicroTime(micros);
    }
    for (const field of ['firstTimestamp', 'lastTimestamp'] as const) {
      const value = event[field];
      if (value === undefined || value === null) continue;
      const ms = typeof value === 'string' && RFC3339.test(value) ? Date.parse(value) : Number.NaN;
      if (Number.isNaN(ms))
        return `parsing time ${JSON.stringify(value)} as "2006-01-02T15:04:05Z07:00": cannot parse`;
      // metav1.Time keeps whole seconds.
      event[field] = apiTime(ms);
    }
    return undefined;
  }

  /**
   * The checks core/v1 applies to a new Event (legacyValidateEvent in pkg/apis/core/validation/
   * events.go; the stricter ones of events.k8s.io/v1 do not apply to core/v1 requests). Without
   * `eventTime` only the namespaces are compared: no reason, no type is required.
   */
  function validateEvent(event: Json, namespace: string): string[] {
    const errors: string[] = [];
    const involved = (event.involvedObject ?? {}) as Json;
    const involvedNamespace = typeof involved.namespace === 'string' ? involved.namespace : '';
    const mismatch = `involvedObject.namespace: Invalid value: ${JSON.stringify(involvedNamespace)}: does not match event.namespace`;
    const text = (v: unknown): string => (typeof v === 'string' ? v : '');
    if (event.eventTime === undefined || event.eventTime === null) {
      if (
        involvedNamespace === ''
          ? namespace !== '' && namespace !== 'default'
          : namespace !== involvedNamespace
      )
        errors.push(mismatch);
    } else {
      if (involvedNamespace === '' && namespace !== 'default' && namespace !== 'kube-system')
        errors.push(mismatch);
      // The Go field is ReportingController; core/v1's JSON calls it reportingComponent.
      const controller = text(event.reportingComponent);
      if (controller === '') errors.push('reportingController: Required value');
      else if (!QUALIFIED_NAME.test(controller))
        errors.push(
          `reportingController: Invalid value: ${JSON.stringify(controller)}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`,
        );
      // Required, then at most so many bytes, in the order the Go code checks them.
      const fields = [
        ['reportingInstance', true, 128],
        ['action', true, 128],
        ['reason', true, 128],
        ['message', false, 1024],
      ] as const;
      for (const [field, required, max] of fields) {
        const value = text(event[field]);
        if (required && value === '') errors.push(`${field}: Required value`);
        if (Buffer.byteLength(value) > max)
          errors.push(`${field}: Invalid value: "": can have at most ${max} characters`);
      }
    }
    return errors;
  }

  /**
   * Lifecycle handlers as this version decodes them: the `sleep` action is unknown before 1.29
   * (dropped with a warning), known but switched off in 1.29 (dropped silently: PodLifecycleSleepAction
   * was alpha), accepted from 1.30. Other pod fields pass as they are.
   */
  function decodePod(pod: Json, unknown: string[]): string | undefined {
    const spec = (pod.spec ?? {}) as Json;
    const containers = Array.isArray(spec.containers) ? (spec.containers as Json[]) : [];
    containers.forEach((container, i) => {
      const lifecycle = (container.lifecycle ?? {}) as Json;
      for (const hook of ['postStart', 'preStop']) {
        const handler = lifecycle[hook] as Json | undefined;
        if (typeof handler !== 'object' || handler === null) continue;
        for (const key of Object.keys(handler)) {
          const known = ['exec', 'httpGet', 'tcpSocket', ...(version.minor >= 29 ? ['sleep'] : [])];
          if (!known.includes(key)) {
            unknown.push(`spec.containers[${i}].lifecycle.${hook}.${key}`);
            delete handler[key];
          }
        }
        if (version.minor === 29) delete handler.sleep;
      }
    });
    return undefined;
  }

  /** The parts of ValidatePodCreate a scenario's pod can get wrong. */
  function validatePod(pod: Json): string[] {
    const errors: string[] = [];
    const spec = (pod.spec ??= {}) as Json;
    spec.terminationGracePeriodSeconds ??= 30;
    const grace = spec.terminationGracePeriodSeconds as number;
    const containers = Array.isArray(spec.containers) ? (spec.containers as Json[]) : [];
    if (containers.length === 0) errors.push('spec.containers: Required value');
    containers.forEach((container, i) => {
      const path = `spec.containers[${i}]`;
      if (typeof container.name !== 'string' || container.name === '')
        errors.push(`${path}.name: Required value`);
      if (typeof container.image !== 'string' || container.image === '')
        errors.push(`${path}.image: Required value`);
      const lifecycle = (container.lifecycle ?? {}) as Json;
      for (const hook of ['postStart', 'preStop']) {
        const handler = lifecycle[hook] as Json | undefined;
        if (typeof handler !== 'object' || handler === null) continue;
        const hookPath = `${path}.lifecycle.${hook}`;
        const count = ['exec', 'httpGet', 'tcpSocket', 'sleep'].filter(
          (k) => handler[k] !== undefined && handler[k] !== null,
        ).length;
        if (count === 0) errors.push(`${hookPath}: Required value: must specify a handler type`);
        if (count > 1) errors.push(`${hookPath}: Forbidden: may not specify more than 1 handler type`);
        const sleep = handler.sleep as Json | undefined;
        if (sleep !== undefined && sleep !== null) {
          const seconds = sleep.seconds;
          const allowZero = version.minor >= 33;
          if (
            typeof seconds !== 'number' ||
            seconds < 0 ||
            (seconds === 0 && !allowZero) ||
            seconds > grace
          ) {
            errors.push(
              `${hookPath}.sleep: Invalid value: ${String(seconds)}: must be ${allowZero ? 'non-negative' : 'greater than 0'} and less than terminationGracePeriodSeconds (${grace})`,
            );
          }
        }
      }
    });
    return errors;
  }

  function modifyResponse(
    req: IncomingMessage,
    res: ServerResponse,
    record: RequestRecord,
    r: Route,
    body: string,
  ): void {
    const key = keyOf(r.resource, r.namespace ?? '', r.name ?? '');
    const current = store.get(key);
    if (!current)
      return reply(res, record, 404, status(404, 'NotFound', `${r.resource} "${r.name}" not found`));
    let next: Json;
    if (record.verb === 'update') {
      const object = parseJson(body);
      if (!object)
        return reply(res, record, 400, status(400, 'BadRequest', 'the request body is not a JSON object'));
      next = object;
    } else {
      const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim();
      try {
        next = applyPatch(clone(current), type ?? '', body);
      } catch (error) {
        return reply(res, record, 415, status(415, 'UnsupportedMediaType', (error as Error).message));
      }
    }
    const meta = (next.metadata ??= {}) as Json;
    const old = current.metadata as Json;
    // Optimistic concurrency: a resourceVersion sent with a write must be the current one.
    const sentVersion = meta.resourceVersion;
    if (sentVersion !== undefined && sentVersion !== '' && sentVersion !== old.resourceVersion) {
      const info = RESOURCES[r.resource];
      const qualified = info.group === '' ? r.resource : `${r.resource}.${info.group}`;
      return reply(
        res,
        record,
        409,
        status(
          409,
          'Conflict',
          `Operation cannot be fulfilled on ${qualified} "${String(r.name)}": the object has been modified; please apply your changes to the latest version and try again`,
        ),
      );
    }
    meta.name = old.name;
    meta.namespace = old.namespace;
    meta.uid = old.uid;
    meta.creationTimestamp = old.creationTimestamp;
    if (old.deletionTimestamp !== undefined) {
      meta.deletionTimestamp = old.deletionTimestamp;
      meta.deletionGracePeriodSeconds = old.deletionGracePeriodSeconds;
    }
    delete next.kind;
    delete next.apiVersion;
    const stored = commit(r.resource, 'MODIFIED', next, clone(current));
    reply(res, record, 200, withKind(r.resource, stored));
  }

  function deleteResponse(res: ServerResponse, record: RequestRecord, r: Route, body: string): void {
    const current = store.get(keyOf(r.resource, r.namespace ?? '', r.name ?? ''));
    if (!current)
      return reply(res, record, 404, status(404, 'NotFound', `${r.resource} "${r.name}" not found`));
    if (r.resource === 'pods') {
      // DeleteOptions in the body (kubectl) or as a query parameter (client-go's and client-node's param).
      const fromQuery = record.query.gracePeriodSeconds;
      const grace =
        parseJson(body)?.gracePeriodSeconds ?? (fromQuery === undefined ? undefined : Number(fromQuery));
      deletePod(r.namespace ?? '', r.name ?? '', typeof grace === 'number' ? { graceSeconds: grace } : {});
      // The pod as it is now: still stored (terminating), or as it was removed.
      const after = store.get(keyOf(r.resource, r.namespace ?? '', r.name ?? '')) ?? current;
      return reply(res, record, 200, withKind(r.resource, clone(after)));
    }
    commit(r.resource, 'DELETED', clone(current), clone(current));
    reply(res, record, 200, withKind(r.resource, clone(current)));
  }

  function applyPatch(target: Json, type: string, body: string): Json {
    switch (type) {
      case 'application/merge-patch+json':
      case 'application/strategic-merge-patch+json':
        return mergePatch(target, JSON.parse(body) as unknown) as Json;
      case 'application/json-patch+json':
        return jsonPatch(target, JSON.parse(body) as unknown);
      default:
        throw new Error(
          `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (received ${JSON.stringify(type)})`,
        );
    }
  }

  // ---------------------------------------------------------------- test-side API

  function put(resource: Resource, object: Json): Json {
    const copy = clone(object);
    const meta = (copy.metadata ??= {}) as Json;
    meta.namespace ??= 'default';
    meta.uid ??= randomUUID();
    meta.creationTimestamp ??= apiTime(apiNow());
    delete copy.kind;
    delete copy.apiVersion;
    const key = keyOf(resource, meta.namespace as string, meta.name as string);
    const previous = store.get(key);
    return commit(resource, previous ? 'MODIFIED' : 'ADDED', copy, previous ? clone(previous) : undefined);
  }

  function update(resource: Resource, namespace: string, name: string, mutate: (object: Json) => void): Json {
    const current = store.get(keyOf(resource, namespace, name));
    if (!current) throw new Error(`fake-kube-api: ${resource} ${namespace}/${name} does not exist`);
    const next = clone(current);
    mutate(next);
    return commit(resource, 'MODIFIED', next, clone(current));
  }

  function deletePod(
    namespace: string,
    name: string,
    deleteOptions: { readonly graceSeconds?: number } = {},
  ): DeletedPod {
    const key = `${namespace}/${name}`;
    const pod = store.get(keyOf('pods', namespace, name));
    const already = deletions.get(key);
    if (!pod) {
      if (already) return already;
      throw new Error(`fake-kube-api: pod ${namespace}/${name} does not exist`);
    }
    const spec = (pod.spec ?? {}) as Json;
    const meta = pod.metadata as Json;
    const now = Date.now();
    if (already) {
      // rest.BeforeDelete: a pod already being deleted may only have its grace period shortened; the
      // timestamp moves by the difference (from the stored, whole-second one), a longer one is ignored.
      const current = meta.deletionGracePeriodSeconds as number;
      const shorter = deleteOptions.graceSeconds;
      if (shorter === undefined || shorter >= current) return already;
      const deletionTimestamp = apiTime(
        Date.parse(meta.deletionTimestamp as string) - current * 1000 + shorter * 1000,
      );
      update('pods', namespace, name, (p) => {
        const m = p.metadata as Json;
        m.deletionTimestamp = deletionTimestamp;
        m.deletionGracePeriodSeconds = shorter;
      });
      // The kubelet cancels the termination under way and starts again with the shorter period.
      const record: DeletedPod = {
        deletedAt: now,
        killAt: now + shorter * 1000,
        deletionTimestamp,
        graceSeconds: shorter,
      };
      deletions.set(key, record);
      return record;
    }
    const phase = (pod.status as Json | undefined)?.phase;
    const graceSeconds =
      // podStrategy.CheckGracefulDelete: no kubelet runs it (unscheduled, or finished) → at once.
      typeof spec.nodeName !== 'string' || spec.nodeName === '' || phase === 'Succeeded' || phase === 'Failed'
        ? 0
        : (deleteOptions.graceSeconds ??
          (typeof spec.terminationGracePeriodSeconds === 'number' ? spec.terminationGracePeriodSeconds : 30));
    const deletionTimestamp = apiTime(apiNow() + graceSeconds * 1000);
    const record: DeletedPod = {
      deletedAt: now,
      killAt: now + graceSeconds * 1000,
      deletionTimestamp,
      graceSeconds,
    };
    deletions.set(key, record);
    if (graceSeconds === 0) {
      // A grace period of 0 is no graceful delete: the object goes at once (one DELETED event).
      const gone = clone(pod);
      Object.assign(gone.metadata as Json, { deletionTimestamp, deletionGracePeriodSeconds: 0 });
      commit('pods', 'DELETED', gone, clone(pod));
      return record;
    }
    update('pods', namespace, name, (p) => {
      const m = p.metadata as Json;
      m.deletionTimestamp = deletionTimestamp;
      m.deletionGracePeriodSeconds = graceSeconds;
    });
    return record;
  }

  const server: Server = createServer({ cert, key }, (req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(status(500, 'InternalError', String(error))));
      } else res.destroy();
    });
  });
  server.on('secureConnection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  const listen = (port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const port = await listen(0);
  const url = `https://127.0.0.1:${port}`;

  function cutEverything(): void {
    for (const w of [...watchers]) w.close(false);
    for (const s of sockets) s.destroy();
  }

  return {
    url,
    port,
    caPem: cert,
    caFile,
    tokenFile,
    requests,
    version,
    kubeConfigOptions(namespace = 'default') {
      return {
        clusters: [
          { name: 'fake', server: url, caData: Buffer.from(cert).toString('base64'), skipTLSVerify: false },
        ],
        users: [{ name: 'fake-sa', authProvider: { name: 'tokenFile', config: { tokenFile } } }],
        contexts: [{ name: 'fake', cluster: 'fake', user: 'fake-sa', namespace }],
        currentContext: 'fake',
      };
    },
    serviceAccountDir(namespace) {
      const sa = mkdtempSync(join(dir, 'sa-'));
      writeFileSync(join(sa, 'ca.crt'), cert);
      writeFileSync(join(sa, 'token'), currentToken);
      writeFileSync(join(sa, 'namespace'), namespace);
      return sa;
    },
    put,
    get: (resource, namespace, name) => {
      const found = store.get(keyOf(resource, namespace, name));
      return found ? clone(found) : undefined;
    },
    update,
    remove(resource, namespace, name) {
      const current = store.get(keyOf(resource, namespace, name));
      if (current) commit(resource, 'DELETED', clone(current), clone(current));
    },
    list: (resource, namespace) =>
      [...store.entries()]
        .filter(([k]) => k.startsWith(`${resource}/${namespace === undefined ? '' : `${namespace}/`}`))
        .map(([, v]) => clone(v)),
    deletePod,
    deletedPod: (namespace, name) => deletions.get(`${namespace}/${name}`),
    get resourceVersion() {
      return rv;
    },
    rotateToken({ revokeOld = false } = {}) {
      if (revokeOld) accepted.clear();
      currentToken = `fake-${randomBytes(12).toString('hex')}`;
      accepted.add(currentToken);
      writeFileSync(tokenFile, currentToken);
      return currentToken;
    },
    setUnauthorized(on) {
      unauthorized = on;
    },
    forbid(resource, verbs) {
      for (const verb of verbs) forbidden.add(`${verb}:${resource}`);
    },
    allowAll() {
      forbidden.clear();
    },
    setLatency(ms, filter) {
      latency = { ms, filter };
    },
    failWatches(code) {
      watchFailure = code;
    },
    cutWatchesAfter(ms) {
      watchCutAfterMs = ms;
    },
    setClockSkew(ms) {
      clockSkewMs = ms;
    },
    dropWatches({ graceful = false } = {}) {
      const count = watchers.size;
      for (const w of [...watchers]) w.close(graceful);
      return count;
    },
    compact() {
      compactedThrough = rv;
      history.length = 0;
    },
    get openWatches() {
      return watchers.size;
    },
    async down() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      cutEverything();
      await closed;
    },
    async up() {
      await listen(port);
    },
    async close() {
      const closed = server.listening
        ? new Promise<void>((resolve) => server.close(() => resolve()))
        : Promise.resolve();
      cutEverything();
      await closed;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Json =
    typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as Json) } : {};
  for (const [k, v] of Object.entries(patch as Json)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function jsonPatch(target: Json, ops: unknown): Json {
  if (!Array.isArray(ops)) throw new Error('a JSON patch must be an array of operations');
  for (const op of ops as Json[]) {
    const path = (typeof op.path === 'string' ? op.path : '')
      .split('/')
      .slice(1)
      .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = path.pop();
    if (last === undefined) throw new Error('JSON patch path must not be empty');
    let parent: unknown = target;
    for (const p of path) parent = (parent as Json)[p];
    if (typeof parent !== 'object' || parent === null)
      throw new Error(`JSON patch path ${String(op.path)} does not exist`);
    const container = parent as Record<string, unknown> | unknown[];
    switch (op.op) {
      case 'add':
        if (Array.isArray(container))
          container.splice(last === '-' ? container.length : Number(last), 0, op.value);
        else container[last] = op.value;
        break;
      case 'replace':
        if (Array.isArray(container)) container[Number(last)] = op.value;
        else container[last] = op.value;
        break;
      case 'remove':
        if (Array.isArray(container)) container.splice(Number(last), 1);
        else delete container[last];
        break;
      default:
        throw new Error(`unsupported JSON patch op ${String(op.op)}`);
    }
  }
  return target;
}

// ------------------------------------------------------------------ test helpers shared by the suites

export interface CapturedLog {
  readonly logger: {
    info(msg: string, fields?: Readonly<Record<string, unknown>>): void;
    warn(msg: string, fields?: Readonly<Record<string, unknown>>): void;
    error(msg: string, fields?: Readonly<Record<string, unknown>>): void;
  };
  readonly lines: { level: string; msg: string; fields: Readonly<Record<string, unknown>> }[];
  warnings(): string[];
}

export function captureLog(): CapturedLog {
  const lines: CapturedLog['lines'] = [];
  const at =
    (level: string) =>
    (msg: string, fields: Readonly<Record<string, unknown>> = {}): void => {
      lines.push({ level, msg, fields });
    };
  return {
    logger: { info: at('info'), warn: at('warn'), error: at('error') },
    lines,
    // The integration's own warnings; the instance's other lines share the logger.
    warnings: () =>
      lines.filter((l) => l.level === 'warn' && l.fields.component === 'kubernetes').map((l) => l.msg),
  };
}

export async function waitFor(predicate: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * The client-node majors to run a suite with: 1.x always; 2.x only where it loads (Node ≥ 22.19; CI
 * runs the suite on Node 26), else with the reason it was skipped.
 */
export function clientMajors(): {
  readonly label: string;
  readonly load: () => Promise<KubeClientModule>;
  readonly skip: string | undefined;
}[] {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  const modern = major > 22 || (major === 22 && minor >= 19);
  return [
    {
      label: '@kubernetes/client-node 1.x',
      load: async () => await import('@kubernetes/client-node'),
      skip: undefined,
    },
    {
      label: '@kubernetes/client-node 2.x',
      load: async () => await import('k8s-client-2'),
      skip: modern
        ? undefined
        : `client-node 2.x needs Node >= 22.19 (its undici), this is Node ${process.versions.node}; ` +
          'CI runs it with KUBEGRACE_TEST_NODE pointing at Node 26',
    },
  ];
}

/**
 * `kubernetes()` options against this fake as the tests give them: a kubeconfig for it (namespace
 * `shop`), the client under test and no environment, with `options` on top.
 */
export function fakeKubernetesOptions(
  fake: FakeKubeApi,
  client: KubeClientModule,
  options: Omit<KubernetesOptions, 'kubeConfig' | 'client'>,
): KubernetesOptions {
  const kubeConfig = new client.KubeConfig();
  kubeConfig.loadFromOptions(fake.kubeConfigOptions('shop'));
  return { kubeConfig, client, namespace: 'shop', env: {}, ...options };
}

/** A pod in the fake, with one ready endpoint in a Service's EndpointSlice. */
export function seedPod(
  fake: FakeKubeApi,
  options: { readonly namespace?: string; readonly graceSeconds?: number; readonly name?: string } = {},
): {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
  readonly ip: string;
  readonly slice: string;
} {
  const namespace = options.namespace ?? 'shop';
  const name = options.name ?? `web-5f7c9-${randomBytes(2).toString('hex')}`;
  const ip = '10.1.2.3';
  const pod = fake.put('pods', {
    metadata: { name, namespace, labels: { app: 'web' } },
    spec: {
      terminationGracePeriodSeconds: options.graceSeconds ?? 8,
      containers: [{ name: 'app', image: 'web:1' }],
      // Scheduled: the API server deletes an unscheduled pod at once, whatever the grace period.
      nodeName: 'node-1',
    },
    status: { phase: 'Running', podIP: ip },
  });
  const uid = (pod.metadata as Json).uid as string;
  const slice = `web-${randomBytes(3).toString('hex').slice(0, 5)}`;
  fake.put('endpointslices', {
    metadata: { name: slice, namespace, labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    endpoints: [
      {
        addresses: [ip],
        conditions: { ready: true, serving: true, terminating: false },
        targetRef: { kind: 'Pod', name, namespace, uid },
      },
    ],
  });
  return { name, namespace, uid, ip, slice };
}

export function setEndpointReady(
  fake: FakeKubeApi,
  namespace: string,
  slice: string,
  uid: string,
  ready: boolean,
): void {
  fake.update('endpointslices', namespace, slice, (s) => {
    for (const e of s.endpoints as Json[]) {
      if ((e.targetRef as Json).uid === uid) e.conditions = { ready, serving: true, terminating: !ready };
    }
  });
}
