/**
 * Over ~400 lines because every call the integration makes (list, watch, create Event) is here with
 * its classification of failures for both client majors; the waist is worth keeping in one place.
 *
 * The narrow waist between kubegrace and `@kubernetes/client-node`. Only what majors 1.4 and 2.x both
 * offer is used (KubeConfig.loadFromOptions/makeApiClient, the object-style CoreV1Api and
 * DiscoveryV1Api, Watch), typed structurally so a KubeConfig from either major fits, and every call
 * answers with a result instead of throwing, so the callers can degrade instead of failing.
 */
import { KubegraceError, redactUrls, redactUrlsInText } from '../errors.js';
import { createApiClock, type ApiClock } from './api-clock.js';

/** The parts of a `KubeConfig` (1.4 or 2.x) that kubegrace touches. */
export interface KubeConfigLike {
  loadFromOptions(options: unknown): void;
  loadFromDefault(): void;
  makeApiClient(apiClientType: never): unknown;
  getCurrentCluster(): { readonly server: string } | null;
  getCurrentContext(): string;
  getContextObject(name: string): { readonly namespace?: string | undefined } | null;
  readonly clusters: readonly unknown[];
  readonly users: readonly unknown[];
  readonly contexts: readonly unknown[];
  readonly currentContext: string;
}

export interface WatchLike {
  watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController>;
}

/** `import * as k8s from '@kubernetes/client-node'`, either major. */
export interface KubeClientModule {
  readonly KubeConfig: new () => KubeConfigLike;
  readonly CoreV1Api: unknown;
  readonly DiscoveryV1Api: unknown;
  readonly Watch: new (config: never) => WatchLike;
}

/** The package is an optional peer: load it only when a cluster is in sight or it was asked for. */
export async function loadClientModule(): Promise<KubeClientModule> {
  const name = '@kubernetes/client-node';
  try {
    return (await import(name)) as KubeClientModule;
  } catch (error) {
    throw new KubegraceError(
      'ERR_KUBEGRACE_KUBERNETES_CLIENT_MISSING',
      `the Kubernetes integration needs the optional peer dependency ${name} (^1.4.0 || ^2.0.0): ` +
        `npm install ${name}`,
      { cause: error },
    );
  }
}

export type Verb = 'get' | 'list' | 'watch' | 'create';
export type KubeResource = 'pods' | 'endpointslices' | 'events';

/** What went wrong with one API call, sorted into the cases that need different handling. */
export interface ApiFailure {
  readonly kind:
    | 'unauthorized'
    | 'forbidden'
    | 'unreachable'
    | 'timeout'
    | 'gone'
    | 'rejected'
    | 'server'
    | 'aborted'
    /** The client refused to send the request at all (`http://` without `skipTLSVerify`). */
    | 'misconfigured';
  readonly verb: Verb;
  readonly resource: KubeResource;
  readonly namespace: string;
  readonly status?: number;
  /** The API server's own message (from its Status), or the transport error; URLs in it redacted. */
  readonly detail: string;
}

export type ApiResult<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly failure: ApiFailure };

export interface ListPage {
  readonly items: readonly unknown[];
  readonly resourceVersion: string;
}

export interface WatchHandlers {
  onEvent(type: string, object: unknown): void;
  /** Called once: `undefined` when the server ended the stream, else why it ended. */
  onEnd(failure: ApiFailure | undefined): void;
}

export interface WatchHandle {
  /** Resolves true once the server accepted the watch (200), false if it never did. */
  readonly opened: Promise<boolean>;
  abort(): void;
}

export interface ListParams {
  readonly namespace: string;
  readonly fieldSelector?: string;
  readonly labelSelector?: string;
}

export interface WatchParams extends ListParams {
  readonly resourceVersion: string;
  readonly timeoutSeconds: number;
}

export interface KubeApi {
  /** The API server's URL, for messages: its user info and query values cut (docs/security.md). */
  readonly server: string;
  /** The API server's clock against this node's, from the `Date` header of its answers. */
  readonly clock: ApiClock;
  list(
    resource: 'pods' | 'endpointslices',
    params: ListParams,
    signal?: AbortSignal,
  ): Promise<ApiResult<ListPage>>;
  watch(resource: 'pods' | 'endpointslices', params: WatchParams, handlers: WatchHandlers): WatchHandle;
  /**
   * POST one core/v1 Event. `waitedMs`: how long it already waited in a queue; its time limit is what
   * is left of `requestTimeoutMs`, so a queue of Events never takes longer than one would.
   */
  createEvent(
    namespace: string,
    body: Record<string, unknown>,
    signal?: AbortSignal,
    options?: { readonly waitedMs?: number },
  ): Promise<ApiResult<void>>;
}

export interface KubeApiOptions {
  /** Time limit of one request (a list, an Event); a watch must be accepted within it. */
  readonly requestTimeoutMs: number;
  readonly now?: () => number;
}

interface ObjectApi {
  listNamespacedPod(param: Record<string, unknown>, options?: unknown): Promise<unknown>;
  createNamespacedEvent(param: Record<string, unknown>, options?: unknown): Promise<unknown>;
}
interface DiscoveryApi {
  listNamespacedEndpointSlice(param: Record<string, unknown>, options?: unknown): Promise<unknown>;
}

/** Both majors run per-call middleware through a minimal observable that only needs `toPromise`. */
function observable<T>(value: T): { toPromise(): Promise<T>; pipe<U>(fn: (v: T) => U): unknown } {
  const promise = Promise.resolve(value);
  return { toPromise: () => promise, pipe: (fn) => observable(promise.then(fn)) };
}

function withSignal(signal: AbortSignal, onResponse: (date: string | undefined) => void): unknown {
  return {
    middleware: [
      {
        pre: (context: { setSignal(signal: AbortSignal): void }) => {
          context.setSignal(signal);
          return observable(context);
        },
        post: (response: { headers?: Record<string, string | undefined> } | undefined) => {
          onResponse(response?.headers?.date);
          return observable(response);
        },
      },
    ],
    middlewareMergeStrategy: 'append',
  };
}

const PAGE_SIZE = 500;
// After a 401 the token file is re-read at most this often: a token that is simply wrong must not
// turn every retry into a file read and a new client. A re-read whose token the API then took proved
// itself: the next 401 (the token rotated and revoked again) may re-read at once.
const TOKEN_REFRESH_MIN_INTERVAL_MS = 5000;

/**
 * API access through the real client. `client-node` re-reads a `tokenFile` only once a minute; the
 * kubelet rotates the projected service-account token well before it expires, but a token revoked
 * early (or a clock jump) would answer 401 for up to a minute, so on a 401 a fresh KubeConfig (which
 * re-reads the file) is built and the call retried once.
 */
export function createKubeApi(
  module: KubeClientModule,
  kubeConfig: KubeConfigLike,
  options: KubeApiOptions,
): KubeApi {
  const now = options.now ?? Date.now;
  let kc = kubeConfig;
  let core = kc.makeApiClient(module.CoreV1Api as never) as ObjectApi;
  let discovery = kc.makeApiClient(module.DiscoveryV1Api as never) as DiscoveryApi;
  let watcher = new module.Watch(kc as never);
  let lastRefresh = 0;
  let generation = 0;
  /** The credentials of the current generation were accepted by the API at least once. */
  let proven = false;
  const accepted = (sentWith: number): void => {
    if (sentWith === generation) proven = true;
  };
  const server = redactUrls(kc.getCurrentCluster()?.server ?? '(no cluster in the kubeconfig)');
  const clock = createApiClock();

  /** True when credentials newer than `since` (a generation) are in place: retry with them. */
  function refreshCredentials(since: number): boolean {
    // Another request already re-read the token after this one was sent.
    if (generation !== since) return true;
    if (!proven && now() - lastRefresh < TOKEN_REFRESH_MIN_INTERVAL_MS) return false;
    lastRefresh = now();
    generation += 1;
    proven = false;
    const fresh = new module.KubeConfig();
    fresh.loadFromOptions({
      clusters: kc.clusters,
      users: kc.users,
      contexts: kc.contexts,
      currentContext: kc.currentContext,
    });
    kc = fresh;
    core = kc.makeApiClient(module.CoreV1Api as never) as ObjectApi;
    discovery = kc.makeApiClient(module.DiscoveryV1Api as never) as DiscoveryApi;
    watcher = new module.Watch(kc as never);
    return true;
  }

  async function call<T>(
    verb: Verb,
    resource: KubeResource,
    namespace: string,
    signal: AbortSignal | undefined,
    fn: (options: unknown) => Promise<T>,
    timeLimitMs: number = options.requestTimeoutMs,
  ): Promise<ApiResult<T>> {
    // Nothing left of the time limit (it was spent in a queue): give up without asking.
    if (timeLimitMs <= 0) {
      const detail = `no answer within ${options.requestTimeoutMs} ms`;
      return { ok: false, failure: { verb, resource, namespace, kind: 'timeout', detail } };
    }
    for (let attempt = 0; ; attempt++) {
      const sentWith = generation;
      const timeout = AbortSignal.timeout(timeLimitMs);
      const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
      const sentAt = now();
      try {
        const value = await fn(withSignal(combined, (date) => clock.sample(date, sentAt, now())));
        accepted(sentWith);
        return { ok: true, value };
      } catch (error) {
        const failure = classify(error, verb, resource, namespace, {
          timedOut: timeout.aborted,
          aborted: signal?.aborted ?? false,
          timeoutMs: options.requestTimeoutMs,
        });
        if (failure.kind === 'unauthorized' && attempt === 0 && refreshCredentials(sentWith)) continue;
        return { ok: false, failure };
      }
    }
  }

  async function list(
    resource: 'pods' | 'endpointslices',
    params: ListParams,
    signal?: AbortSignal,
  ): Promise<ApiResult<ListPage>> {
    const items: unknown[] = [];
    let resourceVersion = '';
    let token: string | undefined;
    do {
      const request = {
        namespace: params.namespace,
        ...(params.fieldSelector === undefined ? {} : { fieldSelector: params.fieldSelector }),
        ...(params.labelSelector === undefined ? {} : { labelSelector: params.labelSelector }),
        limit: PAGE_SIZE,
        ...(token === undefined ? {} : { _continue: token }),
      };
      const page = await call('list', resource, params.namespace, signal, (opts) =>
        resource === 'pods'
          ? core.listNamespacedPod(request, opts)
          : discovery.listNamespacedEndpointSlice(request, opts),
      );
      if (!page.ok) return page;
      const body = page.value as {
        items?: unknown[];
        metadata?: { resourceVersion?: string; _continue?: string };
      };
      items.push(...(body.items ?? []));
      // A paginated list is one snapshot: the first page's resourceVersion is the one to watch from.
      if (resourceVersion === '') resourceVersion = body.metadata?.resourceVersion ?? '';
      token = body.metadata?._continue || undefined;
    } while (token !== undefined);
    return { ok: true, value: { items, resourceVersion } };
  }

  function watch(
    resource: 'pods' | 'endpointslices',
    params: WatchParams,
    handlers: WatchHandlers,
  ): WatchHandle {
    const path =
      resource === 'pods'
        ? `/api/v1/namespaces/${encodeURIComponent(params.namespace)}/pods`
        : `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(params.namespace)}/endpointslices`;
    let ended = false;
    let aborted = false;
    let controller: AbortController | undefined;
    let isAccepted = false;
    let resolveOpened: (opened: boolean) => void = () => {};
    const opened = new Promise<boolean>((resolve) => (resolveOpened = resolve));
    const end = (failure: ApiFailure | undefined): void => {
      if (ended) return;
      ended = true;
      resolveOpened(false);
      if (!aborted) handlers.onEnd(failure);
    };
    const query = {
      resourceVersion: params.resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds: params.timeoutSeconds,
      ...(params.fieldSelector === undefined ? {} : { fieldSelector: params.fieldSelector }),
      ...(params.labelSelector === undefined ? {} : { labelSelector: params.labelSelector }),
    };
    const start = (retried: boolean): void => {
      const sentWith = generation;
      watcher
        .watch(
          path,
          query,
          (type, object) => {
            if (!ended && !aborted) handlers.onEvent(type, object);
          },
          (error: unknown) => {
            if (error === null || error === undefined) {
              end(undefined);
              return;
            }
            const failure = classify(error, 'watch', resource, params.namespace, {
              timedOut: false,
              aborted,
              timeoutMs: options.requestTimeoutMs,
            });
            // A 401 once: the token may have been rotated; re-read it and try again.
            if (failure.kind === 'unauthorized' && !retried && refreshCredentials(sentWith)) {
              start(true);
              return;
            }
            // A stream that was accepted and then cut (a reset, a proxy timeout, 2.x dropping it for
            // inactivity) is a normal end of a watch: the caller resumes it from its resourceVersion.
            end(
              failure.kind === 'aborted' || (isAccepted && failure.kind === 'unreachable')
                ? undefined
                : failure,
            );
          },
        )
        .then(
          (c) => {
            controller = c;
            if (aborted || ended) c.abort();
            else {
              isAccepted = true;
              accepted(sentWith);
              resolveOpened(true);
            }
          },
          (error: unknown) =>
            end(
              classify(error, 'watch', resource, params.namespace, {
                timedOut: false,
                aborted,
                timeoutMs: 0,
              }),
            ),
        );
    };
    start(false);
    return {
      opened,
      abort() {
        if (aborted) return;
        aborted = true;
        resolveOpened(false);
        controller?.abort();
      },
    };
  }

  async function createEvent(
    namespace: string,
    body: Record<string, unknown>,
    signal?: AbortSignal,
    eventOptions: { readonly waitedMs?: number } = {},
  ): Promise<ApiResult<void>> {
    const result = await call(
      'create',
      'events',
      namespace,
      signal,
      (opts) => core.createNamespacedEvent({ namespace, body }, opts),
      options.requestTimeoutMs - (eventOptions.waitedMs ?? 0),
    );
    return result.ok ? { ok: true, value: undefined } : result;
  }

  return { server, clock, list, watch, createEvent };
}

/**
 * Sort an error from either major (ApiException, a watch's statusCode, fetch errors) into a failure.
 * A transport error quotes the URL it failed on: its user info and query values are cut.
 */
function classify(
  error: unknown,
  verb: Verb,
  resource: KubeResource,
  namespace: string,
  context: { readonly timedOut: boolean; readonly aborted: boolean; readonly timeoutMs: number },
): ApiFailure {
  const failure = classifyError(error, verb, resource, namespace, context);
  return { ...failure, detail: redactUrlsInText(failure.detail) };
}

// client-node's own refusal (both majors) to send a token over plain HTTP.
const PLAIN_HTTP_REFUSED = /HTTP protocol is not allowed when skipTLSVerify is not set or false/;

function classifyError(
  error: unknown,
  verb: Verb,
  resource: KubeResource,
  namespace: string,
  context: { readonly timedOut: boolean; readonly aborted: boolean; readonly timeoutMs: number },
): ApiFailure {
  const base = { verb, resource, namespace };
  const e = error as {
    code?: unknown;
    statusCode?: unknown;
    body?: unknown;
    name?: unknown;
    message?: unknown;
    cause?: unknown;
  };
  // An abort is a DOMException, whose numeric `code` (20, 23) is no HTTP status.
  const abortLike = e?.name === 'AbortError' || e?.name === 'TimeoutError';
  const candidate =
    typeof e?.statusCode === 'number' ? e.statusCode : typeof e?.code === 'number' ? e.code : undefined;
  const status =
    !abortLike && candidate !== undefined && candidate >= 100 && candidate <= 599 ? candidate : undefined;
  if (status !== undefined) {
    const detail =
      statusMessage(e.body) ??
      (typeof e.message === 'string' ? exceptionMessage(e.message) : undefined) ??
      `HTTP ${status}`;
    const kind =
      status === 401
        ? 'unauthorized'
        : status === 403
          ? 'forbidden'
          : status === 410
            ? 'gone'
            : status >= 500 || status === 429
              ? 'server'
              : 'rejected';
    return { ...base, kind, status, detail };
  }
  if (context.timedOut) {
    return { ...base, kind: 'timeout', detail: `no answer within ${context.timeoutMs} ms` };
  }
  if (context.aborted) return { ...base, kind: 'aborted', detail: 'aborted' };
  const detail = transportMessage(error);
  if (PLAIN_HTTP_REFUSED.test(detail)) return { ...base, kind: 'misconfigured', detail };
  return { ...base, kind: 'unreachable', detail };
}

function statusMessage(body: unknown): string | undefined {
  let value = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body) as unknown;
    } catch {
      return body.trim() === '' ? undefined : firstLine(body);
    }
  }
  const message = (value as { message?: unknown } | null)?.message;
  return typeof message === 'string' && message !== '' ? message : undefined;
}

/**
 * An ApiException's message is `HTTP-Code: 401\nMessage: Unauthorized\nBody: …`: prefer the Status
 * message in the body, then the `Message:` line; a Watch error's message is the status text itself.
 */
function exceptionMessage(message: string): string | undefined {
  const body = /^Body: (.*)$/m.exec(message)?.[1];
  const fromBody = body === undefined ? undefined : statusMessage(body);
  if (fromBody !== undefined && fromBody !== 'undefined') return fromBody;
  const line = /^Message: (.*)$/m.exec(message)?.[1]?.trim();
  if (line) return line;
  return message.startsWith('HTTP-Code:') ? undefined : firstLine(message);
}

function transportMessage(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 4; depth++) {
    const e = current as { code?: unknown; message?: unknown; cause?: unknown };
    const text = [
      typeof e.code === 'string' ? e.code : undefined,
      typeof e.message === 'string' ? firstLine(e.message) : undefined,
    ]
      .filter((t): t is string => t !== undefined && t !== '')
      .join(' ');
    if (text !== '' && !parts.some((p) => p.includes(text))) parts.push(text);
    current = e.cause;
  }
  return parts.length > 0 ? parts.join(': ') : String(error);
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}
