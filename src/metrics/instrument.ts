/**
 * `instrument(kg)`: kubegrace's metrics for one instance. It feeds the shared collectors from the
 * lifecycle's events and the drain observer, serves `/metrics` on the management port until the
 * process ends, and in the exit phase records the outcome, waits (if asked) for one more scrape so
 * Prometheus sees how the pod's last shutdown went, and pushes the figures to a Pushgateway.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { register as globalRegistry, type Registry } from 'prom-client';
import type { DrainObserver } from '../drain/observer.js';
import { invalidOption, KubegraceError } from '../errors.js';
import { MAX_TIMER_MS } from '../options.js';
import type { Kubegrace } from '../kubegrace.js';
import {
  errorText,
  type LifecycleState,
  type PhaseContext,
  type PhaseName,
  type ShutdownSummary,
} from '../lifecycle.js';
import type { RouteHandler } from '../probes/handler.js';
import { processEnv } from '../process.js';
import { settle } from '../wait.js';
import {
  CLOSE_REASONS,
  DEREGISTRATION_OUTCOMES,
  getCollectors,
  METRICS,
  PROTOCOLS,
  STATES,
  type DeregistrationOutcome,
} from './collectors.js';
import { push, validatePushUrl } from './pushgateway.js';

export interface FinalScrapeOptions {
  /**
   * Longest wait for a scrape after the shutdown's outcome is recorded; the shutdown deadline
   * bounds it as well. Set it a little above the scrape interval. @default 15000
   */
  readonly timeoutMs?: number;
}

export interface PushgatewayOptions {
  /** Base URL, e.g. `http://prometheus-pushgateway.monitoring:9091`. */
  readonly url: string;
  /** The `job` grouping label. */
  readonly job: string;
  /** @default env POD_NAMESPACE, then the service account's namespace file */
  readonly namespace?: string;
  /** @default env POD_NAME, then the host name (the pod name in Kubernetes) */
  readonly pod?: string;
  /** Longest time the push may take; the shutdown deadline bounds it as well. @default 5000 */
  readonly timeoutMs?: number;
}

export interface MetricsOptions {
  /** Where the collectors live. @default prom-client's global registry */
  readonly registry?: Registry;
  /**
   * Path of the metrics endpoint on the management server; `false` to serve the registry yourself
   * (mount `handler`). When the management server is disabled and no path is given, nothing is served.
   * @default '/metrics'
   */
  readonly path?: string | false;
  /** Hold the exit phase until one scrape has seen the final figures. @default off */
  readonly finalScrape?: boolean | FinalScrapeOptions;
  /** Push the final figures to a Pushgateway in the exit phase. @default off */
  readonly pushgateway?: PushgatewayOptions;
  /** Environment for `POD_NAMESPACE` / `POD_NAME`. @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export type { DeregistrationOutcome };

export interface KubegraceMetrics {
  readonly registry: Registry;
  /** Serves the registry (GET and HEAD); scrapes through it count for the final-scrape wait. */
  readonly handler: RouteHandler;
  /**
   * Record one deregistration; fits the registry participants' `onDeregistration` option as it is.
   * Participants named `registry:<name>` are recorded without it (their `unready` or `cleanup`
   * result); a registry reported here is not also recorded that way.
   */
  observeDeregistration(registry: string, outcome: DeregistrationOutcome, seconds: number): void;
  /** This instance's figures of the shutdown so far, as written into the summary log line. */
  figures(): ShutdownFigures;
  /** Stop feeding the metrics and serving them; the metrics stay registered for other instances. */
  detach(): void;
}

export interface ShutdownFigures {
  /** Requests that arrived after the shutdown began, by phase. */
  readonly requestsDuringShutdown: Partial<Record<PhaseName, number>>;
  /** Connections kubegrace closed, by reason (only reasons that occurred). */
  readonly connectionsClosed: Readonly<Record<string, number>>;
  readonly inflightRequests: number;
  readonly openConnections: Readonly<Record<string, number>>;
  readonly propagation: { readonly strategy: string; readonly waitMs?: number };
  readonly deregistrations: readonly {
    readonly registry: string;
    readonly outcome: string;
    readonly durationMs: number;
  }[];
  /** `scraped`: a scrape saw the final figures; `timeout`: none came in time. */
  readonly finalScrape?: 'scraped' | 'timeout';
  readonly pushgateway?: {
    readonly status: 'ok' | 'error';
    readonly durationMs: number;
    readonly error?: string;
  };
}

/** The part of a kubegrace instance metrics need (a structural type, so fakes are easy to write). */
export type InstrumentTarget = Pick<
  Kubegrace,
  | 'settings'
  | 'lifecycle'
  | 'on'
  | 'addObserver'
  | 'addParticipant'
  | 'addManagementRoute'
  | 'addSummaryFields'
> &
  Partial<Pick<Kubegrace, 'propagation'>>;

const DEFAULT_FINAL_SCRAPE_TIMEOUT_MS = 15_000;
const DEFAULT_PUSH_TIMEOUT_MS = 5_000;
/** Participants named like this deregister in `unready` or `cleanup`; that result is recorded. */
export const REGISTRY_PARTICIPANT_PREFIX = 'registry:';
const DEREGISTRATION_BY_STATUS = { ok: 'success', error: 'failed', timeout: 'timeout' } as const;
const PARTICIPANT_NAME = 'metrics';
const SERVICE_ACCOUNT_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

const instrumented = new WeakSet<object>();

export function instrument(kg: InstrumentTarget, options: MetricsOptions = {}): KubegraceMetrics {
  if (typeof options !== 'object' || options === null) {
    throw invalidOption('metrics options', 'an object', options);
  }
  const registry = options.registry ?? globalRegistry;
  if (typeof (registry as Partial<Registry> | undefined)?.getSingleMetric !== 'function') {
    throw invalidOption('registry', 'a prom-client Registry', registry);
  }
  if (instrumented.has(kg.lifecycle)) {
    throw new KubegraceError(
      'ERR_KUBEGRACE_INVALID_STATE',
      'this kubegrace instance is instrumented already; call detach() on the first instrument() first',
    );
  }
  if (options.env !== undefined && (typeof options.env !== 'object' || options.env === null)) {
    throw invalidOption('env', 'an object of environment variables', options.env);
  }
  const finalScrapeMs = resolveFinalScrape(options.finalScrape);
  const pushTarget = options.pushgateway
    ? resolvePushgateway(options.pushgateway, options.env ?? processEnv())
    : undefined;
  const path = options.path ?? (kg.settings.probes.enabled ? '/metrics' : false);
  if (path !== false && (typeof path !== 'string' || !path.startsWith('/'))) {
    throw invalidOption('path', "a path starting with '/' or false", path);
  }

  const c = getCollectors(registry);
  const strategy = kg.settings.propagation.strategy;
  const lifecycle = kg.lifecycle;

  let state: LifecycleState = lifecycle.state;
  let inflight = 0;
  const open: Record<string, number> = Object.fromEntries(PROTOCOLS.map((p) => [p, 0]));
  const requestsByPhase: Partial<Record<PhaseName, number>> = {};
  const closedByReason: Record<string, number> = {};
  const deregistrations: { registry: string; outcome: string; durationMs: number }[] = [];
  // Registries that report for themselves; their participant results are not counted again.
  const selfReported = new Set<string>();
  let propagationWaitMs: number | undefined;
  let finalScrape: ShutdownFigures['finalScrape'];
  let pushed: ShutdownFigures['pushgateway'];
  let recorded = false;
  // Scrapes whose collection began after the final figures were recorded, and who waits for one.
  let scrapedAfterRecord = false;
  const scrapeWaiters = new Set<() => void>();

  const removers: (() => void)[] = [];

  removers.push(
    c.contribute('lifecycleState', (add) => {
      for (const s of STATES) add({ state: s }, s === state ? 1 : 0);
    }),
    c.contribute('gracePeriod', (add) => add({}, kg.settings.gracePeriodSeconds)),
    c.contribute('inflightRequests', (add) => add({}, inflight)),
    c.contribute('openConnections', (add) => {
      for (const protocol of PROTOCOLS) add({ protocol }, open[protocol] ?? 0);
    }),
  );

  // Runs once per request and per connection: outside a shutdown, only plain numbers move.
  const observer: DrainObserver = {
    requestStarted() {
      inflight++;
      const phase = lifecycle.phase;
      if (phase !== undefined) {
        c.requestsDuringShutdown.inc({ phase });
        requestsByPhase[phase] = (requestsByPhase[phase] ?? 0) + 1;
      }
    },
    requestFinished() {
      // Requests that began before instrument() finish here too; never count below zero.
      if (inflight > 0) inflight--;
    },
    connectionOpened(protocol) {
      open[protocol] = (open[protocol] ?? 0) + 1;
    },
    connectionClosed(protocol, reason) {
      if ((open[protocol] ?? 0) > 0) open[protocol] = (open[protocol] ?? 0) - 1;
      if (reason !== undefined) {
        c.connectionsClosed.inc({ reason });
        closedByReason[reason] = (closedByReason[reason] ?? 0) + 1;
      }
    },
  };
  removers.push(kg.addObserver(observer));

  removers.push(
    kg.on('state', (event) => {
      state = event.state;
    }),
    kg.on('phase', ({ phase, status, durationMs }) => {
      if (status !== 'end') return;
      c.phaseDuration.observe({ phase }, durationMs / 1000);
      if (phase === 'propagate') {
        propagationWaitMs = durationMs;
        // Without a report (a host that does not give one): a fixed wait ends by its delay, else unknown.
        const endedBy = kg.propagation?.endedBy ?? (strategy === 'fixed' ? 'fixed' : 'unknown');
        c.propagationWait.observe({ strategy, ended_by: endedBy }, durationMs / 1000);
      }
    }),
    kg.on('participant', (result) => {
      if (result.name === PARTICIPANT_NAME && result.phase === 'exit') return;
      c.hookDuration.observe({ participant: result.name, outcome: result.status }, result.durationMs / 1000);
      const registry = result.name.startsWith(REGISTRY_PARTICIPANT_PREFIX)
        ? result.name.slice(REGISTRY_PARTICIPANT_PREFIX.length)
        : undefined;
      if (
        registry &&
        (result.phase === 'unready' || result.phase === 'cleanup') &&
        !selfReported.has(registry)
      ) {
        recordDeregistration(registry, DEREGISTRATION_BY_STATUS[result.status], result.durationMs / 1000);
      }
    }),
    // A second signal skips the exit phase: record here, though the process leaves at once.
    kg.on('shutdown', (summary) => record(summary)),
    kg.addSummaryFields(() => ({ ...figures() })),
  );

  removers.push(
    kg.addParticipant({
      name: PARTICIPANT_NAME,
      exit: async (ctx) => {
        if (ctx.summary) record(ctx.summary);
        await Promise.all([
          finalScrapeMs === undefined ? undefined : waitForScrape(ctx, finalScrapeMs),
          pushTarget === undefined ? undefined : pushFigures(ctx, pushTarget),
        ]);
      },
    }),
  );

  const handler: RouteHandler = async (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-length': '0' }).end();
      return;
    }
    const seesFinalFigures = recorded;
    let body: string;
    try {
      body = await registry.metrics();
    } catch {
      if (!res.headersSent) res.writeHead(500, { 'content-length': '0' }).end();
      return;
    }
    if (res.headersSent || res.destroyed) return;
    res.writeHead(200, {
      'content-type': registry.contentType,
      'cache-control': 'no-store',
      'content-length': String(Buffer.byteLength(body)),
    });
    res.end(req.method === 'HEAD' ? undefined : body, () => {
      if (!seesFinalFigures || req.method === 'HEAD') return;
      scrapedAfterRecord = true;
      for (const wake of scrapeWaiters) wake();
    });
  };
  if (path !== false) removers.push(kg.addManagementRoute(path, handler));
  instrumented.add(lifecycle);

  function record(summary: ShutdownSummary): void {
    if (recorded) return;
    recorded = true;
    c.shutdownDuration.observe({ outcome: summary.outcome }, summary.durationMs / 1000);
    c.shutdowns.inc({ trigger: summary.trigger, outcome: summary.outcome });
  }

  function observeDeregistration(name: string, outcome: DeregistrationOutcome, seconds: number): void {
    if (typeof name !== 'string' || name === '') throw invalidOption('registry', 'a non-empty string', name);
    if (!DEREGISTRATION_OUTCOMES.includes(outcome)) {
      throw invalidOption('outcome', DEREGISTRATION_OUTCOMES.map((o) => `'${o}'`).join(', '), outcome);
    }
    if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) {
      throw invalidOption('seconds', 'a non-negative number', seconds);
    }
    selfReported.add(name);
    recordDeregistration(name, outcome, seconds);
  }

  function recordDeregistration(name: string, outcome: DeregistrationOutcome, seconds: number): void {
    c.deregistrationDuration.observe({ registry: name, outcome }, seconds);
    deregistrations.push({ registry: name, outcome, durationMs: Math.round(seconds * 1000) });
  }

  async function waitForScrape(ctx: PhaseContext, timeoutMs: number): Promise<void> {
    // A missed scrape is not a failed shutdown: the wait ends quietly at its limit.
    const end = await settle({
      isDone: () => scrapedAfterRecord || detached,
      subscribe: (wake) => {
        scrapeWaiters.add(wake);
        return () => scrapeWaiters.delete(wake);
      },
      signal: ctx.signal,
      timeoutMs,
    });
    finalScrape = end === 'done' && scrapedAfterRecord ? 'scraped' : 'timeout';
  }

  async function pushFigures(ctx: PhaseContext, target: ResolvedPushgateway): Promise<void> {
    const started = performance.now();
    try {
      const texts = await Promise.all(
        Object.values(METRICS).map((m) => registry.getSingleMetricAsString(m.name)),
      );
      const result = await push({
        url: target.url,
        grouping: [
          ['job', target.job],
          ['namespace', target.namespace],
          ['pod', target.pod],
        ],
        body: `${texts.join('\n')}\n`,
        signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(target.timeoutMs)]),
      });
      pushed = { status: 'ok', durationMs: result.durationMs };
    } catch (error) {
      const durationMs = Math.round(performance.now() - started);
      pushed = { status: 'error', durationMs, error: errorText(error) };
      // The summary was built before the exit phase; a warning is how this failure gets seen.
      ctx.warn(`Pushgateway push failed after ${durationMs} ms: ${errorText(error)}`);
    }
  }

  function figures(): ShutdownFigures {
    const closed: Record<string, number> = {};
    for (const reason of CLOSE_REASONS) if (closedByReason[reason]) closed[reason] = closedByReason[reason];
    return {
      requestsDuringShutdown: { ...requestsByPhase },
      connectionsClosed: closed,
      inflightRequests: inflight,
      openConnections: { ...open },
      propagation: propagationWaitMs === undefined ? { strategy } : { strategy, waitMs: propagationWaitMs },
      deregistrations: [...deregistrations],
      ...(finalScrape === undefined ? {} : { finalScrape }),
      ...(pushed === undefined ? {} : { pushgateway: pushed }),
    };
  }

  let detached = false;
  return {
    registry,
    handler,
    observeDeregistration,
    figures,
    detach() {
      if (detached) return;
      detached = true;
      for (const remove of removers.splice(0)) remove();
      instrumented.delete(lifecycle);
      for (const wake of scrapeWaiters) wake();
    },
  };
}

function resolveFinalScrape(option: MetricsOptions['finalScrape']): number | undefined {
  if (option === undefined || option === false) return undefined;
  if (option === true) return DEFAULT_FINAL_SCRAPE_TIMEOUT_MS;
  if (typeof option !== 'object' || option === null) {
    throw invalidOption('finalScrape', 'true, false or { timeoutMs }', option);
  }
  const timeoutMs = option.timeoutMs ?? DEFAULT_FINAL_SCRAPE_TIMEOUT_MS;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > MAX_TIMER_MS) {
    throw invalidOption('finalScrape.timeoutMs', `an integer from 0 to ${MAX_TIMER_MS} (ms)`, timeoutMs);
  }
  return timeoutMs;
}

interface ResolvedPushgateway {
  readonly url: string;
  readonly job: string;
  readonly namespace: string;
  readonly pod: string;
  readonly timeoutMs: number;
}

function resolvePushgateway(
  option: PushgatewayOptions,
  env: Readonly<Record<string, string | undefined>>,
): ResolvedPushgateway {
  if (typeof option !== 'object' || option === null) throw invalidOption('pushgateway', 'an object', option);
  validatePushUrl(option.url);
  if (typeof option.job !== 'string' || option.job === '') {
    throw invalidOption('pushgateway.job', 'a non-empty string', option.job);
  }
  const namespace = option.namespace ?? nonEmpty(env.POD_NAMESPACE) ?? serviceAccountNamespace();
  if (namespace === undefined || typeof namespace !== 'string' || namespace === '') {
    throw invalidOption(
      'pushgateway.namespace',
      'a namespace (or POD_NAMESPACE from the Downward API, or an in-cluster service account)',
      option.namespace,
    );
  }
  const pod = option.pod ?? nonEmpty(env.POD_NAME) ?? hostname();
  if (typeof pod !== 'string' || pod === '')
    throw invalidOption('pushgateway.pod', 'a non-empty string', pod);
  const timeoutMs = option.timeoutMs ?? DEFAULT_PUSH_TIMEOUT_MS;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > MAX_TIMER_MS) {
    throw invalidOption('pushgateway.timeoutMs', `an integer from 0 to ${MAX_TIMER_MS} (ms)`, timeoutMs);
  }
  return { url: option.url, job: option.job, namespace, pod, timeoutMs };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function serviceAccountNamespace(): string | undefined {
  try {
    return nonEmpty(readFileSync(SERVICE_ACCOUNT_NAMESPACE, 'utf8'));
  } catch {
    return undefined;
  }
}
