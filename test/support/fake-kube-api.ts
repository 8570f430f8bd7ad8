/**
 * An in-process Kubernetes API server that speaks the real wire protocol to the real
 * `@kubernetes/client-node`: HTTPS with a certificate made by `openssl` at start, bearer tokens read
 * from a token file, list and watch with one global resourceVersion, bookmarks, 410 Gone for a
 * compacted resourceVersion, label and field selectors, pagination, POST/PUT/PATCH/DELETE, and
 * switches for the failures a pod meets in real clusters (401, 403, slowness, dropped watches,
 * an unreachable server).
 *
 * What it models of the kubelet: `deletePod` stamps `deletionTimestamp` the way the API server does
 * (now + grace, serialized at second precision) and records the exact moment the kubelet would SIGKILL.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeClientModule, KubeConfigLike } from '../../src/kubernetes/client.js';

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
}

export interface DeletedPod {
  /** Epoch ms of the delete request. */
  readonly deletedAt: number;
  /** Epoch ms at which the kubelet would SIGKILL: the delete plus the grace period, exactly. */
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
}

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
  /** Options for `KubeConfig.loadFromOptions`, pointing at this server with the token file. */
  kubeConfigOptions(namespace?: string): Json;
  /** A directory laid out like /var/run/secrets/kubernetes.io/serviceaccount. */
  serviceAccountDir(namespace: string): string;

  put(resource: Resource, object: Json): Json;
  get(resource: Resource, namespace: string, name: string): Json | undefined;
  update(resource: Resource, namespace: string, name: string, mutate: (object: Json) => void): Json;
  remove(resource: Resource, namespace: string, name: string): void;
  list(resource: Resource, namespace?: string): Json[];
  /** Delete a pod the way the API server does when a kubelet still runs it. */
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
    const text = JSON.stringify(body);
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
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
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
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
    const object = parseJson(body);
    if (!object)
      return reply(res, record, 400, status(400, 'BadRequest', 'the request body is not a JSON object'));
    const meta = (object.metadata ??= {}) as Json;
    if (r.namespace === undefined)
      return reply(res, record, 405, status(405, 'MethodNotAllowed', 'create needs a namespace'));
    if (meta.namespace !== undefined && meta.namespace !== r.namespace) {
      return reply(
        res,
        record,
        400,
        status(
          400,
          'BadRequest',
          'the namespace of the provided object does not match the namespace sent on the request',
        ),
      );
    }
    meta.namespace = r.namespace;
    if (typeof meta.name !== 'string' || meta.name === '') {
      if (typeof meta.generateName === 'string' && meta.generateName !== '') {
        meta.name = `${meta.generateName}${randomBytes(3).toString('hex').slice(0, 5)}`;
      } else {
        return reply(
          res,
          record,
          422,
          status(
            422,
            'Invalid',
            `${RESOURCES[r.resource].kind} "" is invalid: metadata.name: Required value: name or generateName is required`,
          ),
        );
      }
    }
    if (r.resource === 'events') {
      const invalid = validateEvent(object, r.namespace);
      if (invalid)
        return reply(
          res,
          record,
          422,
          status(422, 'Invalid', `Event "${String(meta.name)}" is invalid: ${invalid}`),
        );
    }
    if (store.has(keyOf(r.resource, r.namespace, meta.name as string))) {
      return reply(
        res,
        record,
        409,
        status(409, 'AlreadyExists', `${r.resource} "${String(meta.name)}" already exists`),
      );
    }
    meta.uid ??= randomUUID();
    meta.creationTimestamp ??= apiTime(Date.now());
    delete object.kind;
    delete object.apiVersion;
    const stored = commit(r.resource, 'ADDED', object, undefined);
    reply(res, record, 201, withKind(r.resource, stored));
  }

  /** The checks the API server applies to a core/v1 Event that matter to a client. */
  function validateEvent(event: Json, namespace: string): string | undefined {
    const involved = event.involvedObject as Json | undefined;
    if (!involved) return 'involvedObject: Required value';
    if (involved.namespace !== namespace)
      return `involvedObject.namespace: Invalid value: "${String(involved.namespace)}": does not match event.namespace`;
    if (typeof event.reason !== 'string' || event.reason === '') return 'reason: Required value';
    if (event.type !== 'Normal' && event.type !== 'Warning')
      return `type: Unsupported value: "${String(event.type)}"`;
    if (event.eventTime !== undefined && event.eventTime !== null) {
      if (!event.reportingComponent) return 'reportingController: Required value';
      if (!event.reportingInstance) return 'reportingInstance: Required value';
      if (!event.action) return 'action: Required value';
    }
    return undefined;
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
      const grace = parseJson(body)?.gracePeriodSeconds;
      const deleted = deletePod(
        r.namespace ?? '',
        r.name ?? '',
        typeof grace === 'number' ? { graceSeconds: grace } : {},
      );
      void deleted;
      return reply(
        res,
        record,
        200,
        withKind(r.resource, clone(store.get(keyOf(r.resource, r.namespace ?? '', r.name ?? '')) as Json)),
      );
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
    meta.creationTimestamp ??= apiTime(Date.now());
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
    const already = deletions.get(key);
    if (already) return already;
    const pod = store.get(keyOf('pods', namespace, name));
    if (!pod) throw new Error(`fake-kube-api: pod ${namespace}/${name} does not exist`);
    const spec = (pod.spec ?? {}) as Json;
    const graceSeconds =
      deleteOptions.graceSeconds ??
      (typeof spec.terminationGracePeriodSeconds === 'number' ? spec.terminationGracePeriodSeconds : 30);
    const deletedAt = Date.now();
    const killAt = deletedAt + graceSeconds * 1000;
    const deletionTimestamp = apiTime(killAt);
    update('pods', namespace, name, (p) => {
      const meta = p.metadata as Json;
      meta.deletionTimestamp = deletionTimestamp;
      meta.deletionGracePeriodSeconds = graceSeconds;
    });
    const record: DeletedPod = { deletedAt, killAt, deletionTimestamp, graceSeconds };
    deletions.set(key, record);
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

// ------------------------------------------------------------------ scenario driver

/** A pod created for a scenario. */
export interface ScenarioPod {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
  readonly ip: string;
}

export interface ScenarioPodSpec {
  readonly graceSeconds: number;
  readonly preStopSleepSeconds?: number;
  readonly preStopExec?: readonly string[];
}

/**
 * What a scenario needs from a cluster, so the same scenario runs against this fake and, in the
 * opt-in suite, a real cluster. Moments are epoch ms taken around the API call that makes them.
 */
export interface ClusterDriver {
  readonly name: string;
  /** `fake`: every failure switch is available; `real`: only what a real cluster does by itself. */
  readonly kind: 'fake' | 'real';
  readonly namespace: string;
  /** How far a "moment" measured here can be off the API server's own clock and latency. */
  readonly clockToleranceMs: number;
  /** A KubeConfig of `client` (either major) pointing at this cluster. */
  kubeConfig(client: KubeClientModule): KubeConfigLike;
  createPod(spec: ScenarioPodSpec): Promise<ScenarioPod>;
  /** A Service's EndpointSlice listing the pod as ready (and one other endpoint). */
  addEndpoints(pod: ScenarioPod): Promise<string>;
  /** Mark the pod's endpoint `ready: false, terminating: true`; resolves with the moment it happened. */
  markNotReady(slice: string, pod: ScenarioPod): Promise<number>;
  /** Remove the pod's endpoint from the slice; resolves with the moment. */
  removeEndpoint(slice: string, pod: ScenarioPod): Promise<number>;
  /** Delete the pod with this grace; `killAt` is the kubelet's SIGKILL moment (exact on the fake). */
  deletePod(
    pod: ScenarioPod,
    graceSeconds?: number,
  ): Promise<{ readonly deletedAt: number; readonly killAt: number }>;
  events(pod: ScenarioPod): Promise<Json[]>;
  cleanup(): Promise<void>;
}

export function fakeDriver(fake: FakeKubeApi, name: string, namespace = 'shop'): ClusterDriver {
  let counter = 0;
  return {
    name,
    kind: 'fake',
    namespace,
    clockToleranceMs: 0,
    kubeConfig(client) {
      const kc = new client.KubeConfig();
      kc.loadFromOptions(fake.kubeConfigOptions(namespace));
      return kc;
    },
    async createPod(spec) {
      counter += 1;
      const podName = `web-7d4b9c-${counter}x${randomBytes(2).toString('hex')}`;
      const ip = `10.1.${counter}.${10 + counter}`;
      const preStop =
        spec.preStopSleepSeconds !== undefined
          ? { sleep: { seconds: spec.preStopSleepSeconds } }
          : spec.preStopExec !== undefined
            ? { exec: { command: [...spec.preStopExec] } }
            : undefined;
      const stored = fake.put('pods', {
        metadata: { name: podName, namespace, labels: { app: 'web' } },
        spec: {
          terminationGracePeriodSeconds: spec.graceSeconds,
          containers: [
            { name: 'istio-proxy', image: 'proxy' },
            {
              name: 'app',
              image: 'web:1',
              env: [{ name: 'KUBEGRACE_GRACE_PERIOD_SECONDS', value: String(spec.graceSeconds) }],
              ...(preStop ? { lifecycle: { preStop } } : {}),
            },
          ],
        },
        status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
      });
      return { name: podName, namespace, uid: (stored.metadata as Json).uid as string, ip };
    },
    async addEndpoints(pod) {
      const sliceName = `web-${randomBytes(3).toString('hex').slice(0, 5)}`;
      fake.put('endpointslices', {
        metadata: {
          name: sliceName,
          namespace,
          labels: {
            'kubernetes.io/service-name': 'web',
            'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
          },
        },
        addressType: 'IPv4',
        endpoints: [
          {
            addresses: [pod.ip],
            conditions: { ready: true, serving: true, terminating: false },
            targetRef: { kind: 'Pod', name: pod.name, namespace, uid: pod.uid },
          },
          {
            addresses: ['10.9.9.9'],
            conditions: { ready: true, serving: true, terminating: false },
            targetRef: { kind: 'Pod', name: 'web-other', namespace, uid: randomUUID() },
          },
        ],
        ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      });
      return sliceName;
    },
    async markNotReady(slice, pod) {
      const at = Date.now();
      fake.update('endpointslices', namespace, slice, (s) => {
        for (const e of s.endpoints as Json[]) {
          if ((e.targetRef as Json).uid === pod.uid)
            e.conditions = { ready: false, serving: true, terminating: true };
        }
      });
      return at;
    },
    async removeEndpoint(slice, pod) {
      const at = Date.now();
      fake.update('endpointslices', namespace, slice, (s) => {
        s.endpoints = (s.endpoints as Json[]).filter((e) => (e.targetRef as Json).uid !== pod.uid);
      });
      return at;
    },
    async deletePod(pod, graceSeconds) {
      const deleted = fake.deletePod(
        pod.namespace,
        pod.name,
        graceSeconds === undefined ? {} : { graceSeconds },
      );
      return { deletedAt: deleted.deletedAt, killAt: deleted.killAt };
    },
    async events(pod) {
      return fake
        .list('events', namespace)
        .filter((e) => (e.involvedObject as Json | undefined)?.name === pod.name)
        .sort(
          (a, b) =>
            Number((a.metadata as Json).resourceVersion) - Number((b.metadata as Json).resourceVersion),
        );
    },
    cleanup: () => fake.close(),
  };
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
    warnings: () => lines.filter((l) => l.level === 'warn').map((l) => l.msg),
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
