/**
 * `kg.use(metrics())`: kubegrace's metrics for one instance. It feeds the shared collectors from the
 * lifecycle's events and the drain observer, serves `/metrics` on the management port until the
 * process ends, and in the exit phase records the outcome, waits (if asked) for one more scrape so
 * Prometheus sees how the pod's last shutdown went, and pushes the figures to a Pushgateway.
 * The options are read in `options.ts`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { register as globalRegistry, type Registry } from 'prom-client';
import type { DrainObserver } from '../drain/observer.js';
import { KubegraceError } from '../errors.js';
import { defineIntegration, type Host, type Integration } from '../host.js';
import {
  errorText,
  type LifecycleState,
  type PhaseContext,
  type PhaseName,
  type ShutdownSummary,
} from '../lifecycle.js';
import type { RouteHandler } from '../probes/handler.js';
import { settle } from '../wait.js';
import {
  CLOSE_REASONS,
  getCollectors,
  METRICS,
  PROTOCOLS,
  STATES,
  type DeregistrationOutcome,
} from './collectors.js';
import {
  resolveMetricsOptions,
  type MetricsOptions,
  type ResolvedMetricsOptions,
  type ResolvedPushgateway,
} from './options.js';
import { push } from './pushgateway.js';

export type { FinalScrapeOptions, MetricsOptions, PushgatewayOptions } from './options.js';
export type { DeregistrationOutcome };

export interface KubegraceMetrics {
  readonly registry: Registry;
  /** Serves the registry (GET and HEAD); scrapes through it count for the final-scrape wait. */
  readonly handler: RouteHandler;
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

const PARTICIPANT_NAME = 'metrics';

/**
 * The metrics integration, for `kg.use()`; returns the instance's metrics handle. Options are checked
 * here, at once. One per kubegrace instance.
 */
export function metrics(options: MetricsOptions = {}): Integration<KubegraceMetrics> {
  const resolved = resolveMetricsOptions(options);
  return defineIntegration('metrics', (host) => instrument(host, resolved));
}

function instrument(host: Host, options: ResolvedMetricsOptions): KubegraceMetrics {
  if (host.installed.has('metrics')) {
    throw new KubegraceError(
      'ERR_KUBEGRACE_INVALID_STATE',
      'this kubegrace instance has metrics already; call detach() on the first metrics handle first',
    );
  }
  const registry = options.registry ?? globalRegistry;
  const finalScrapeMs = options.finalScrapeMs;
  const pushTarget = options.pushgateway;
  const path = options.path ?? (host.settings.managementServer ? '/metrics' : false);

  const c = getCollectors(registry);
  const strategy = host.settings.propagation.strategy;
  const lifecycle = host.lifecycle;

  let state: LifecycleState = lifecycle.state;
  let inflight = 0;
  const open: Record<string, number> = Object.fromEntries(PROTOCOLS.map((p) => [p, 0]));
  const requestsByPhase: Partial<Record<PhaseName, number>> = {};
  const closedByReason: Record<string, number> = {};
  const deregistrations: { registry: string; outcome: string; durationMs: number }[] = [];
  let propagationWaitMs: number | undefined;
  let finalScrape: ShutdownFigures['finalScrape'];
  let pushed: ShutdownFigures['pushgateway'];
  let recorded = false;
  /**
   * The push's text is being collected: a pushed group outlives the pod, and the state it holds for
   * good is the one the pod leaves in, `stopped`, not the `draining` of its exit phase.
   */
  let collectingPush = false;
  // Scrapes whose collection began after the final figures were recorded, and who waits for one.
  let scrapedAfterRecord = false;
  const scrapeWaiters = new Set<() => void>();

  const removers: (() => void)[] = [];

  removers.push(
    c.contribute('lifecycleState', (add) => {
      const shown = collectingPush ? 'stopped' : state;
      for (const s of STATES) add({ state: s }, s === shown ? 1 : 0);
    }),
    // The grace period in force: the pod's own once kubegrace/kubernetes adopted it.
    c.contribute('gracePeriod', (add) => add({}, lifecycle.timing.gracePeriodMs / 1000)),
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
    pacedClose(protocol, step) {
      c.pacedCloses.inc({ protocol, step });
    },
  };
  removers.push(host.addObserver(observer));

  removers.push(
    lifecycle.on('state', (event) => {
      state = event.state;
    }),
    lifecycle.on('phase', ({ phase, status, durationMs }) => {
      if (status !== 'end') return;
      c.phaseDuration.observe({ phase }, durationMs / 1000);
      if (phase === 'propagate') {
        propagationWaitMs = durationMs;
        // Without a report (a host that does not give one): a fixed wait ends by its delay, else unknown.
        const endedBy = host.propagation?.endedBy ?? (strategy === 'fixed' ? 'fixed' : 'unknown');
        c.propagationWait.observe({ strategy, ended_by: endedBy }, durationMs / 1000);
      }
    }),
    lifecycle.on('participant', (result) => {
      if (result.name === PARTICIPANT_NAME && result.phase === 'exit') return;
      c.hookDuration.observe({ participant: result.name, outcome: result.status }, result.durationMs / 1000);
    }),
    host.onDeregistration(({ registry: name, outcome, seconds }) =>
      recordDeregistration(name, outcome, seconds),
    ),
    // A second signal skips the exit phase: record here, though the process leaves at once.
    lifecycle.on('shutdown', (summary) => record(summary)),
    host.addSummaryFields(() => ({ ...figures() })),
  );

  removers.push(
    host.addParticipant({
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
      // A cluster primary adds its workers' metrics (kubegrace/cluster).
      if (host.exposition.extend) body = await host.exposition.extend(body);
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
  if (path !== false) removers.push(host.addManagementRoute(path, handler));
  // A cluster worker sends this to its primary, which serves it on the pod's /metrics.
  const collect = (): Promise<string> => registry.metrics();
  host.exposition.collect = collect;
  removers.push(() => {
    if (host.exposition.collect === collect) host.exposition.collect = undefined;
  });
  host.installed.add('metrics');

  function record(summary: ShutdownSummary): void {
    if (recorded) return;
    recorded = true;
    c.shutdownDuration.observe({ outcome: summary.outcome }, summary.durationMs / 1000);
    // How much of the grace period was gone at the exit: the kubelet's clock started a grace period
    // before its kill time, which may be before this process heard (a preStop sleep, a deletion seen
    // late, a shortened delete). Without a kill time, from the shutdown's start.
    const { killAt, gracePeriodMs } = lifecycle.timing;
    const usedMs =
      killAt === undefined
        ? summary.durationMs
        : gracePeriodMs - (killAt - (summary.startedAt + summary.durationMs));
    c.graceUsed.observe(Math.max(0, usedMs) / gracePeriodMs);
    c.shutdowns.inc({ trigger: summary.trigger, outcome: summary.outcome });
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
      collectingPush = true;
      let texts: string[];
      try {
        texts = await Promise.all(
          Object.values(METRICS).map((m) => registry.getSingleMetricAsString(m.name)),
        );
      } finally {
        collectingPush = false;
      }
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
    figures,
    detach() {
      if (detached) return;
      detached = true;
      for (const remove of removers.splice(0)) remove();
      host.installed.delete('metrics');
      for (const wake of scrapeWaiters) wake();
    },
  };
}
