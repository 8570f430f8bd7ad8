/**
 * The factory that wires the pure lifecycle to the edges: process, probes, servers, leases, hooks.
 * Over ~400 lines because the public `Kubegrace` interface (documented member by member) sits next to
 * the factory that implements it, so one can be read against the other; its own-option checks live in
 * `own-options.ts`, the observer fan-out in `observers.ts`, the integrations' host in `host.ts`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { createHttpDrainer, type ServerDrainer } from './drain/http.js';
import { createLeases, type Lease } from './drain/leases.js';
import type { DrainObserver } from './drain/observer.js';
import { createRequestTracker } from './drain/requests.js';
import { createHandshakes } from './drain/handshakes.js';
import { createWebSocketDrainer } from './drain/websocket.js';
import { invalidOption, KubegraceError } from './errors.js';
import {
  createLifecycle,
  errorText,
  type Lifecycle,
  type LifecycleEvents,
  type Participant,
  type PhaseContext,
  type ShutdownRequest,
  type ShutdownSummary,
} from './lifecycle.js';
import { createJsonLogger, silentLogger, type Logger } from './log.js';
import {
  checkBudget,
  MAX_TIMER_MS,
  resolveSettings,
  settingName,
  settingSource,
  type KubegraceSettings,
  type ResolvedSettings,
} from './options.js';
import {
  installIntegration,
  setHost,
  type DeregistrationReport,
  type Host,
  type Integration,
} from './host.js';
import { createLoopWatch, type LoopWatch } from './loop-watch.js';
import { createTiming, type Timing, type Trigger } from './timing.js';
import { createObserverFanout } from './observers.js';
import { optionalName, validateObserver, validateOwnOptions, warnUnknownVariables } from './own-options.js';
import { createCheckSet, createEventLoopLagCheck, type Check } from './probes/checks.js';
import { createProbeRoutes, type RouteHandler } from './probes/handler.js';
import { createPrestopRoute, PRESTOP_PATH } from './probes/prestop-route.js';
import { createManagementServer, type ManagementServer } from './probes/server.js';
import { exitProcess, installProcessHandlers, processEnv, type Release } from './process.js';
import { createTrafficActivity } from './propagation/activity.js';
import {
  createAdaptivePropagation,
  type PropagationConfirmation,
  type PropagationReport,
} from './propagation/adaptive.js';
import { createFixedPropagation } from './propagation/fixed.js';

type AnyServer = Parameters<typeof createHttpDrainer>[0];

/**
 * The part of a `ws` WebSocketServer that kubegrace uses. Structural on purpose: `ws` is an optional
 * peer, and these declarations must compile in an app that has neither `ws` nor `@types/ws`.
 */
export interface WebSocketServerLike {
  readonly clients?: Iterable<WebSocketClientLike>;
  on(event: 'connection', listener: (client: WebSocketClientLike) => void): unknown;
  off(event: 'connection', listener: (client: WebSocketClientLike) => void): unknown;
}

/** The part of a `ws` WebSocket (a server's client) that kubegrace uses. */
export interface WebSocketClientLike {
  readonly readyState: number;
  close(code?: number, reason?: string): void;
  terminate(): void;
  on(event: 'close', listener: () => void): unknown;
  off(event: 'close', listener: () => void): unknown;
}

export interface KubegraceOptions extends KubegraceSettings {
  /** Environment to read `KUBEGRACE_*` variables from. @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Called once with the exit code when the shutdown is over. @default process.exit */
  readonly exit?: (code: number) => void;
  /** Install signal and uncaught-error handlers on `start()`. @default true */
  readonly handleSignals?: boolean;
  /** Where lifecycle logs go; `false` for none. @default JSON lines on stderr */
  readonly logger?: Logger | false;
  /** Receives connection and request events (metrics plug in here). */
  readonly observer?: DrainObserver;
}

export interface AttachOptions {
  /** Participant name. @default 'http' */
  readonly name?: string;
  /**
   * The last event each `text/event-stream` response gets before the drain ends it at a message
   * boundary, e.g. `() => 'retry: 2000'`; `undefined` for none. Called once per stream; `req` is an
   * `Http2ServerRequest` for a stream over HTTP/2.
   */
  readonly lastEvent?: (req: IncomingMessage | Http2ServerRequest) => string | undefined;
}

export interface WebSocketAttachOptions {
  /** Participant name. @default 'websocket' */
  readonly name?: string;
  /** Reason sent with the close code; at most 123 bytes of UTF-8. @default 'server shutting down' */
  readonly closeReason?: string;
  /** 1001 (Going Away) or 1012 (Service Restart). @default 1001 */
  readonly closeCode?: 1001 | 1012;
}

export interface HookOptions {
  readonly name?: string;
  /** This hook's own time limit. @default hookTimeoutMs */
  readonly timeoutMs?: number;
}

export type Hook = (ctx: PhaseContext) => unknown;

export interface Kubegrace {
  /** Every setting, resolved from the options, `KUBEGRACE_*` variables and defaults. */
  readonly settings: ResolvedSettings;
  /** The logger kubegrace writes to. */
  readonly logger: Logger;
  readonly state: Lifecycle['state'];
  /**
   * Grace period, kill time and deadline in force, and where each came from (the grace period from
   * the option, the variable, the default or the pod; the kill time from the grace period, the pod
   * spec or the API's deletion). Changes when `kubegrace/kubernetes` learns the pod's own.
   */
  readonly timing: Timing;
  /**
   * Plug in an integration: `kg.use(kubernetes())`, `kg.use(metrics())`, `kg.use(registry(adapter))`.
   * Returns the integration's handle (`kubernetes()`'s is a promise).
   */
  use<T>(integration: Integration<T>): T;
  /** Address of the management server once `start()` resolved. */
  readonly managementAddress: AddressInfo | undefined;
  /** Start the management server and install signal handlers. Idempotent. */
  start(): Promise<void>;
  /** The service is ready: `/readyz` and `/startupz` turn 200. */
  ready(): void;
  /** Drain this `node:http`, `node:https` or `node:http2` server on shutdown. */
  attach(server: AnyServer, options?: AttachOptions): () => void;
  /**
   * Close this `ws` server's clients with 1001 (or `closeCode` 1012) after the propagation wait, paced
   * over `drain.pacingWindowMs` (docs/drain.md).
   */
  attachWebSocketServer(wss: WebSocketServerLike, options?: WebSocketAttachOptions): () => void;
  /** Hold the drain open until `release()`: background jobs, queue messages. */
  lease(name: string): Lease;
  /** Runs in the `unready` phase: stop consumers, stop taking jobs. */
  beforeShutdown(hook: Hook, options?: HookOptions): () => void;
  /** Runs in the `drain` phase, alongside the server drain. */
  onDrain(hook: Hook, options?: HookOptions): () => void;
  /** Runs in the `cleanup` phase, last registered first: close pools, flush. */
  onCleanup(hook: Hook, options?: HookOptions): () => void;
  addParticipant(participant: Participant): () => void;
  addReadinessCheck(name: string, check: Check): () => void;
  addLivenessCheck(name: string, check: Check): () => void;
  /** How the last propagation wait ended (what ended it, the arrival rate, the silence), once it did. */
  readonly propagation: PropagationReport | undefined;
  /** Receive connection and request events from every attached server (metrics plug in here). */
  addObserver(observer: DrainObserver): () => void;
  /** Add a route to the management server (exact path; query strings ignored). */
  addManagementRoute(path: string, handler: RouteHandler): () => void;
  /** For middleware: count a request in flight; true when it was already answered (503 during drain). */
  trackRequest(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): boolean;
  /**
   * Start the shutdown. A string is a manual shutdown with that reason (the summary's `trigger`); an
   * app that handles signals itself (`handleSignals: false`) passes `{ kind: 'signal', signal }`, so
   * the kill time is reckoned as for the kubelet's signal. @default 'manual'
   */
  shutdown(trigger?: string | Trigger, request?: ShutdownRequest): Promise<ShutdownSummary>;
  /** An unrecoverable error: liveness fails, a short shutdown runs, the exit code is `exitCodes.fatal`. */
  fatal(error: unknown): Promise<ShutdownSummary>;
  on<E extends keyof LifecycleEvents>(event: E, listener: (payload: LifecycleEvents[E]) => void): () => void;
  /** Abrupt teardown without exiting: stop the management server, remove handlers and listeners. */
  destroy(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const OWN_OPTIONS = ['env', 'exit', 'handleSignals', 'logger', 'observer'];
/** How late a leader's word may come, past its own phase budgets, before a follower stops waiting for it. */
const FOLLOWER_MARGIN_MS = 1000;

export function createKubegrace(options: KubegraceOptions = {}): Kubegrace {
  validateOwnOptions(options);
  const settings = resolveSettings(options, options.env ?? processEnv(), OWN_OPTIONS);
  const logger =
    options.logger === false
      ? silentLogger
      : (options.logger ?? createJsonLogger((line) => process.stderr.write(line)));
  const env = options.env ?? processEnv();
  warnUnknownVariables(env, logger);
  // The kubelet stops a container with SIGTERM unless its image's STOPSIGNAL names another signal:
  // one kubegrace does not listen for ends the process at once, in the middle of its requests.
  if (
    options.handleSignals !== false &&
    !settings.signals.includes('SIGTERM') &&
    env.KUBERNETES_SERVICE_HOST !== undefined
  ) {
    logger.warn(
      `signals (${settings.signals.join(', ')}) leave out SIGTERM, which the kubelet sends to stop the ` +
        `container unless its image's STOPSIGNAL names another signal: a SIGTERM would end the process ` +
        `at once, with no shutdown. Add SIGTERM to signals (KUBEGRACE_SIGNALS)`,
    );
  }
  const budgetWarning = checkBudget(settings);
  if (budgetWarning) logger.warn(budgetWarning, { code: 'ERR_KUBEGRACE_BUDGET_EXCEEDS_GRACE' });

  const propagation = settings.propagation;
  const ownPropagateBudgetMs = propagation.strategy === 'fixed' ? propagation.delayMs : propagation.maxMs;
  const lifecycle = createLifecycle({
    budgets: {
      unready: settings.unreadyTimeoutMs,
      // A follower (a cluster worker) ends its wait on its leader's word, which comes only after the
      // leader's own unready and propagate phases, begun a moment before this one's and run on a
      // clock that a busy loop makes late: its budget counted from here would end the wait first, and
      // the follower would close its listener before the leader decided. Its budget covers the
      // leader's phases and a margin; it ends the wait only for a leader that stopped answering.
      get propagate() {
        return propagationLeader === undefined
          ? ownPropagateBudgetMs
          : settings.unreadyTimeoutMs + ownPropagateBudgetMs + FOLLOWER_MARGIN_MS;
      },
      drain: settings.drain.timeoutMs,
      cleanup: settings.cleanupTimeoutMs,
    },
    timing: createTiming({
      gracePeriodMs: settings.gracePeriodSeconds * 1000,
      gracePeriodSource: settingSource('gracePeriodSeconds', options, options.env ?? processEnv()),
      safetyMarginMs: settings.safetyMarginMs,
    }),
    fatalTimeoutMs: settings.fatalTimeoutMs,
    exitCodes: settings.exitCodes,
    exit: (code) => {
      // The process is leaving (its signals stay caught, the watchdog armed until it is gone), or an
      // `exit` option takes over (process.ts, Release).
      teardown(options.exit === undefined ? 'exit' : 'handover');
      (options.exit ?? exitProcess)(code);
    },
  });

  const shuttingDown = (): boolean => lifecycle.state === 'draining' || lifecycle.state === 'stopped';
  const draining = (): boolean =>
    lifecycle.state === 'stopped' ||
    (lifecycle.state === 'draining' && lifecycle.phase !== 'unready' && lifecycle.phase !== 'propagate');

  const activity = createTrafficActivity();
  /** WebSocket handshakes between this instance's HTTP and WebSocket drainers (drain/handshakes.ts). */
  const handshakes = createHandshakes();
  /** How every drainer spreads the closes of long-lived connections (drain/pacer.ts). */
  const pacing = { windowMs: settings.drain.pacingWindowMs, budgetMs: settings.drain.timeoutMs };
  const fanout = createObserverFanout(options.observer, logger);
  const { observer, observers } = fanout;

  const tracker = createRequestTracker({
    isShuttingDown: shuttingDown,
    isDraining: draining,
    rejectDuringDrain: settings.drain.rejectDuringDrain,
    retryAfterSeconds: settings.drain.retryAfterSeconds,
    observer,
  });
  lifecycle.register({
    name: 'requests',
    unready: () => tracker.shutdownStarted(),
    drain: async (ctx) => {
      await tracker.idle(ctx.signal);
      // Drainers destroy what is left on their servers; requests on a server kubegrace does not drain
      // would otherwise run on unseen, and hold a framework's close() (fastify's app.close() waits
      // for them) through the cleanup phase.
      const cut = ctx.signal.aborted ? tracker.abandonUnwatched() : [];
      if (cut.length === 0) return;
      ctx.reportForced(cut.length);
      const shown = cut.slice(0, 5).join(', ') + (cut.length > 5 ? `, and ${cut.length - 5} more` : '');
      ctx.warn(
        `${cut.length} request(s) still in flight at the drain budget or the deadline on a server kubegrace ` +
          `does not drain (counted with trackRequest) were cut, their connections closed: ${shown}`,
      );
    },
  });

  const confirmations = new Set<PropagationConfirmation>();
  let propagationReport: PropagationReport | undefined;
  const propagationEnded = (report: PropagationReport): void => {
    propagationReport = report;
  };
  let propagationLeader: ((signal: AbortSignal) => Promise<PropagationReport | undefined>) | undefined;
  const ownPropagation =
    propagation.strategy === 'fixed'
      ? createFixedPropagation(propagation.delayMs, propagationEnded)
      : createAdaptivePropagation({
          quietPeriodMs: propagation.quietPeriodMs,
          minMs: propagation.minMs,
          maxMs: propagation.maxMs,
          proxyAllowanceMs: propagation.proxyAllowanceMs,
          rateWindowMs: propagation.rateWindowMs,
          activity,
          openConnections: () => fanout.openConnections,
          confirmations: () => [...confirmations],
          onEnd: propagationEnded,
        });
  lifecycle.register({
    ...ownPropagation,
    async propagate(ctx) {
      if (propagationLeader === undefined) return ownPropagation.propagate?.(ctx);
      const report = await propagationLeader(ctx.signal);
      if (report !== undefined) propagationEnded(report);
    },
  });

  const leases = createLeases();
  lifecycle.register(leases);

  const readiness = createCheckSet();
  const liveness = createCheckSet();
  const lag =
    settings.probes.eventLoopLagMs > 0 ? createEventLoopLagCheck(settings.probes.eventLoopLagMs) : undefined;
  if (lag) liveness.add('eventLoopLag', lag.check);
  const probeRoutes = createProbeRoutes({
    lifecycle,
    readiness,
    liveness,
    checkTimeoutMs: settings.probes.checkTimeoutMs,
    details: settings.probes.details,
    readinessUntil: settings.probes.readinessUntil,
  });
  const management: ManagementServer | undefined = settings.managementServer
    ? createManagementServer({
        port: settings.probes.port,
        host: settings.probes.host,
        names: {
          port: settingName('probes.port', options, options.env ?? processEnv()),
          host: settingName('probes.host', options, options.env ?? processEnv()),
        },
        routes: probeRoutes,
        // e.g. EMFILE on accept: the kubelet's probes start failing, so say why.
        onError: (error) => logger.warn(`management server: ${error.message}`),
      })
    : undefined;

  management?.addRoute(
    PRESTOP_PATH,
    createPrestopRoute({
      token: settings.prestop.token,
      trigger: () => void startedBy({ kind: 'prestop' }),
    }),
  );

  const detachers = new Set<() => void>();
  /** Set by destroy(): what would install handlers, servers or listeners again is refused. */
  let destroyed = false;
  let uninstall: ((release?: Release) => void) | undefined;
  /** From start(): when the loop was last free, so a trigger it held back counts from its arrival. */
  let loopWatch: LoopWatch | undefined;

  /**
   * When a trigger handled now arrived: as early as it could have while a blocked loop held it back
   * (loop-watch.ts), but never more than the safety margin before now. A loop blocked long *before*
   * the trigger would otherwise move the deadline back by the whole block and cut a drain that had
   * time; the margin is the slack the user chose near the kill time. So a block of up to the margin at
   * the signal costs nothing, and a longer one can still be late by what exceeds it.
   */
  function triggerArrival(): number {
    const now = Date.now();
    return loopWatch === undefined
      ? now
      : Math.max(loopWatch.earliestArrival(), now - settings.safetyMarginMs);
  }

  /**
   * When the kubelet's clock started for a trigger handled now: a `/prestop` call at its arrival; its
   * signal at its arrival less the preStop sleep that held it back. Other triggers are not the
   * kubelet's. The one reckoning for kubegrace's own handlers and an app that forwards them.
   */
  function terminationRequest(trigger: string | Trigger | undefined): ShutdownRequest | undefined {
    if (typeof trigger !== 'object') return undefined;
    if (trigger.kind === 'prestop') return { terminationStartedAt: triggerArrival() };
    if (trigger.kind !== 'signal') return undefined;
    return { terminationStartedAt: triggerArrival() - settings.preStopSleepSeconds * 1000 };
  }

  function startedBy(trigger: Trigger): Promise<ShutdownSummary> {
    return lifecycle.shutdown(trigger, terminationRequest(trigger));
  }
  let starting: Promise<void> | undefined;

  lifecycle.on('state', ({ state, previous }) => logger.info(`state ${state}`, { state, previous }));
  lifecycle.on('phase', ({ phase, status, durationMs }) => {
    if (status !== 'end') return;
    if (phase === 'propagate' && propagationReport) {
      logger.info(`phase ${phase} done`, { phase, durationMs, ...propagationReport });
    } else logger.info(`phase ${phase} done`, { phase, durationMs });
  });
  lifecycle.on('warning', ({ message }) => logger.warn(message));
  const summaryFields = new Set<() => Readonly<Record<string, unknown>>>();
  lifecycle.on('shutdown', (summary) => {
    const extra: Record<string, unknown> = {};
    for (const more of summaryFields) {
      try {
        Object.assign(extra, more());
      } catch {
        // A failing contributor must not cost the summary line.
      }
    }
    const fields = {
      ...extra,
      trigger: summary.trigger,
      triggerKind: summary.triggerKind,
      outcome: summary.outcome,
      exitCode: summary.exitCode,
      startedAt: summary.startedAt,
      deadlineAt: summary.deadlineAt,
      ...(summary.deadlinePhase === undefined ? {} : { deadlinePhase: summary.deadlinePhase }),
      durationMs: summary.durationMs,
      phases: summary.phases,
      ...(propagationReport === undefined ? {} : { propagation: propagationReport }),
      forced: summary.forced,
      failures: summary.failures.map((f) => ({
        name: f.name,
        phase: f.phase,
        status: f.status,
        ...(f.error === undefined ? {} : { error: errorText(f.error) }),
      })),
      ...(summary.fatalError === undefined ? {} : { fatalError: errorText(summary.fatalError) }),
      ...(summary.unfinished === undefined ? {} : { unfinished: summary.unfinished }),
    };
    if (summary.outcome === 'clean') logger.info('shutdown complete', fields);
    else logger.warn('shutdown complete', fields);
  });

  function teardown(release: Release): void {
    uninstall?.(release);
    uninstall = undefined;
    lag?.stop();
    loopWatch?.stop();
    void management?.close();
  }

  function hook(phase: 'unready' | 'drain' | 'cleanup', label: string) {
    return (fn: Hook, hookOptions: HookOptions = {}): (() => void) => {
      if (typeof fn !== 'function') {
        throw invalidOption(`${label} hook`, 'a function', fn);
      }
      const timeoutMs = hookOptions.timeoutMs ?? settings.hookTimeoutMs;
      if (!Number.isInteger(timeoutMs) || timeoutMs < 0) {
        throw invalidOption(`${label} timeoutMs`, 'a non-negative integer (ms)', timeoutMs);
      }
      if (timeoutMs > MAX_TIMER_MS) {
        throw invalidOption(`${label} timeoutMs`, `at most ${MAX_TIMER_MS} (ms)`, timeoutMs);
      }
      if (hookOptions.name !== undefined && typeof hookOptions.name !== 'string') {
        throw invalidOption(`${label} name`, 'a string', hookOptions.name);
      }
      return lifecycle.register({ name: hookOptions.name ?? (fn.name || label), timeoutMs, [phase]: fn });
    };
  }

  function attach(server: AnyServer, attachOptions: AttachOptions = {}): () => void {
    refuseDestroyed('attach(server)');
    if (typeof (server as { on?: unknown }).on !== 'function' || !('listen' in server)) {
      throw new KubegraceError(
        'ERR_KUBEGRACE_UNSUPPORTED_SERVER',
        'attach(server) takes a node:http, node:https or node:http2 server',
      );
    }
    optionalName(attachOptions, 'attach');
    if (attachOptions.lastEvent !== undefined && typeof attachOptions.lastEvent !== 'function') {
      throw invalidOption(
        'attach lastEvent',
        'a function (req) => string | undefined',
        attachOptions.lastEvent,
      );
    }
    const drainer: ServerDrainer = createHttpDrainer(server, {
      name: attachOptions.name ?? 'http',
      tracker,
      activity,
      observer,
      pacing,
      handshakes,
      ...(attachOptions.lastEvent === undefined ? {} : { lastEvent: attachOptions.lastEvent }),
    });
    return keep(drainer, drainer.detach);
  }

  function attachWebSocketServer(
    wss: WebSocketServerLike,
    wsOptions: WebSocketAttachOptions = {},
  ): () => void {
    refuseDestroyed('attachWebSocketServer(wss)');
    optionalName(wsOptions, 'attachWebSocketServer');
    // The drainer is typed against `ws` itself; every `ws` server fits WebSocketServerLike.
    const drainer = createWebSocketDrainer(wss as Parameters<typeof createWebSocketDrainer>[0], {
      name: wsOptions.name ?? 'websocket',
      ...(wsOptions.closeReason === undefined ? {} : { closeReason: wsOptions.closeReason }),
      ...(wsOptions.closeCode === undefined ? {} : { closeCode: wsOptions.closeCode }),
      pacing,
      observer,
      handshakes,
    });
    return keep(drainer, drainer.detach);
  }

  function keep(participant: Participant, detach: () => void): () => void {
    const unregister = lifecycle.register(participant);
    const remove = (): void => {
      unregister();
      detach();
      detachers.delete(remove);
    };
    detachers.add(remove);
    return remove;
  }

  async function start(): Promise<void> {
    refuseDestroyed('start()');
    starting ??= (async () => {
      loopWatch ??= createLoopWatch();
      if (options.handleSignals !== false) {
        uninstall = installProcessHandlers({
          signals: settings.signals,
          secondSignal: settings.secondSignal,
          catchErrors: settings.catchErrors,
          // A preStop sleep held the signal back: the kubelet's clock started that long ago. So may a
          // blocked event loop have: the signal counts from when it could first have arrived.
          onSignal: (signal) => void startedBy({ kind: 'signal', signal }),
          onSecondSignal: (signal, code) => lifecycle.forceExit(code, `second ${signal}`),
          onFatal: (error) => void lifecycle.fatal(error),
          lifecycle,
          logger,
          summaryOnStderr: options.logger === undefined,
        });
      }
      if (management) {
        let address: AddressInfo;
        try {
          address = await management.listen();
        } catch (error) {
          // The start-up failed, not the service: the caller's rejection (an uncaught top-level
          // await) must reach Node's own report and exit, not our handlers' fatal shutdown.
          uninstall?.();
          uninstall = undefined;
          loopWatch?.stop();
          loopWatch = undefined;
          starting = undefined;
          throw error;
        }
        logger.info('management server listening', { port: address.port, address: address.address });
      }
    })();
    return starting;
  }

  function refuseDestroyed(call: string): void {
    if (destroyed) {
      throw new KubegraceError(
        'ERR_KUBEGRACE_INVALID_STATE',
        `${call}: this kubegrace instance was destroyed; create a new one with createKubegrace()`,
      );
    }
  }

  async function destroy(): Promise<void> {
    destroyed = true;
    for (const remove of [...detachers]) remove();
    uninstall?.();
    uninstall = undefined;
    lag?.stop();
    loopWatch?.stop();
    await management?.close();
  }

  const deregistrationListeners = new Set<(report: DeregistrationReport) => void>();
  const host: Host = {
    settings,
    logger,
    lifecycle,
    probeRoutes,
    get propagation() {
      return propagationReport;
    },
    addParticipant: (participant) => lifecycle.register(participant),
    attach,
    trackRequest: (req, res) => tracker.trackUnwatched(req, res),
    addPropagationConfirmation(confirmation) {
      confirmations.add(confirmation);
      return () => confirmations.delete(confirmation);
    },
    addReadinessCheck: (name, check) => readiness.add(name, check),
    noteConnection: () => activity.noteConnection(),
    followPropagation(wait) {
      propagationLeader = wait;
    },
    addObserver,
    observer,
    addManagementRoute,
    addSummaryFields(fields) {
      summaryFields.add(fields);
      return () => summaryFields.delete(fields);
    },
    reportDeregistration(report) {
      for (const listener of deregistrationListeners) {
        try {
          listener(report);
        } catch {
          // A listener's failure must not cost the deregistration.
        }
      }
    },
    onDeregistration(listener) {
      deregistrationListeners.add(listener);
      return () => deregistrationListeners.delete(listener);
    },
    installed: new Set(),
    readinessChecks: readiness,
    exposition: { collect: undefined, extend: undefined },
  };

  function addObserver(added: DrainObserver): () => void {
    validateObserver(added, 'addObserver(observer)');
    observers.add(added);
    return () => observers.delete(added);
  }

  function addManagementRoute(path: string, handler: RouteHandler): () => void {
    if (!management) {
      throw new KubegraceError(
        'ERR_KUBEGRACE_INVALID_STATE',
        'the management server is disabled (managementServer: false)',
      );
    }
    return management.addRoute(path, handler);
  }

  const kg: Kubegrace = {
    settings,
    logger,
    get state() {
      return lifecycle.state;
    },
    get timing() {
      return lifecycle.timing;
    },
    use: (integration) => {
      refuseDestroyed('kg.use()');
      return installIntegration(integration, host);
    },
    get propagation() {
      return propagationReport;
    },
    get managementAddress() {
      return management?.address;
    },
    start,
    ready: () => lifecycle.ready(),
    attach,
    attachWebSocketServer,
    lease(name) {
      if (typeof name !== 'string' || name === '') {
        throw invalidOption('lease name', 'a non-empty string', name);
      }
      return leases.lease(name);
    },
    beforeShutdown: hook('unready', 'beforeShutdown'),
    onDrain: hook('drain', 'onDrain'),
    onCleanup: hook('cleanup', 'onCleanup'),
    addParticipant: (participant) => lifecycle.register(participant),
    addReadinessCheck: (name, check) => readiness.add(name, check),
    addLivenessCheck: (name, check) => liveness.add(name, check),
    addObserver,
    addManagementRoute,
    trackRequest: (req, res) => tracker.trackUnwatched(req, res),
    // An app that handles signals itself forwards them: reckoned as kubegrace's own handler would.
    shutdown: (trigger, request) => lifecycle.shutdown(trigger, request ?? terminationRequest(trigger)),
    fatal: (error) => lifecycle.fatal(error),
    on: (event, listener) => lifecycle.on(event, listener),
    destroy,
    [Symbol.asyncDispose]: destroy,
  };
  setHost(kg, host);
  return kg;
}
