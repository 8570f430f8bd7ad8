/**
 * The state machine and phase runner. Pure: no sockets, no `process`, no Kubernetes. Edges plug in
 * as participants and receive an AbortSignal that fires at their budget or the global deadline (in
 * the exit phase: at the deadline plus half the safety margin, so a late shutdown can still report).
 *
 * The timeline of a shutdown, with M the safety margin:
 *   deadline    = kill time − M      the phases are cut here
 *   reportUntil = deadline + M/2     the exit phase (log line, Event, push) is cut here
 *   hardExitAt  = reportUntil + min(100 ms, M/4)
 *                                     the watchdog (src/watchdog.ts) ends the process here if it is
 *                                     still running, even when the event loop is blocked
 */
import { KubegraceError } from './errors.js';

export type LifecycleState = 'starting' | 'ready' | 'draining' | 'stopped';
export const PHASES = ['unready', 'propagate', 'drain', 'cleanup', 'exit'] as const;
export type PhaseName = (typeof PHASES)[number];
export type ShutdownOutcome = 'clean' | 'deadline' | 'forced' | 'failed';

export interface PhaseContext {
  readonly phase: PhaseName;
  /** Fires at this participant's time limit, the phase budget or the global deadline (exit: see above). */
  readonly signal: AbortSignal;
  /** What started the shutdown: a signal name, `prestop`, `deletion`, `manual`, `fatal`. */
  readonly trigger: string;
  /** Epoch ms by which draining must end (kill time minus the safety margin); only the exit phase runs past it. */
  readonly deadline: number;
  /** Count something this participant had to cut short (connections destroyed, leases abandoned). */
  reportForced(count: number): void;
  warn(message: string): void;
  /** The shutdown's result so far; set in the `exit` phase only. */
  readonly summary: ShutdownSummary | undefined;
}

type PhaseFn = (ctx: PhaseContext) => unknown;

/** Anything that takes part in a shutdown: a drainer, a registry, a user hook. */
export interface Participant {
  readonly name: string;
  /** This participant's own time limit in each phase; the phase budget applies as well. */
  readonly timeoutMs?: number;
  /** Called when the lifecycle becomes ready (register in a registry, start heartbeats). */
  readonly ready?: () => unknown;
  readonly unready?: PhaseFn;
  readonly propagate?: PhaseFn;
  readonly drain?: PhaseFn;
  readonly cleanup?: PhaseFn;
  readonly exit?: PhaseFn;
}

export interface ParticipantResult {
  readonly name: string;
  readonly phase: PhaseName;
  readonly status: 'ok' | 'error' | 'timeout';
  readonly durationMs: number;
  readonly error?: unknown;
}

export interface ShutdownSummary {
  readonly trigger: string;
  readonly outcome: ShutdownOutcome;
  readonly exitCode: number;
  /** Epoch ms when the shutdown began. */
  readonly startedAt: number;
  /** Epoch ms of the deadline in force at the end. */
  readonly deadlineAt: number;
  /** From the start to the beginning of the exit phase. */
  readonly durationMs: number;
  /** Duration of each phase that ran, in ms. */
  readonly phases: Partial<Record<PhaseName, number>>;
  /** Connections, streams or leases cut short. */
  readonly forced: number;
  /**
   * Participants that threw or overran, by phase. A phase that as a whole ran past its budget (the
   * event loop was blocked, so its timer could not fire) appears as `{ name: 'budget', status: 'timeout' }`.
   */
  readonly failures: readonly ParticipantResult[];
  readonly fatalError?: unknown;
  /**
   * The phase still running when the shutdown was cut off from outside the phase runner (the
   * watchdog at the hard exit time, or `process.exit` called by a hook): its participants' results
   * are unknown and not in `failures`.
   */
  readonly unfinished?: PhaseName;
}

/** When a shutdown must be over; emitted whenever the deadline is set or moves. */
export interface DeadlineTimes {
  /** Epoch ms: the phases are cut here (kill time − safety margin). */
  readonly deadlineAt: number;
  /** Epoch ms: the exit phase (the final report) is cut here. */
  readonly reportUntil: number;
  /** Epoch ms: the process must be gone; the watchdog ends it here if it is not. */
  readonly hardExitAt: number;
}

export interface LifecycleEvents {
  state: { readonly state: LifecycleState; readonly previous: LifecycleState };
  phase: { readonly phase: PhaseName; readonly status: 'start' | 'end'; readonly durationMs: number };
  participant: ParticipantResult;
  warning: { readonly message: string };
  deadline: DeadlineTimes & { readonly trigger: string; readonly startedAt: number };
  shutdown: ShutdownSummary;
}

export interface LifecycleOptions {
  /** Budget of each phase in ms; `exit` gets what is left until the deadline plus half the safety margin. */
  readonly budgets: Readonly<Record<Exclude<PhaseName, 'exit'>, number>>;
  readonly gracePeriodMs: number;
  readonly safetyMarginMs: number;
  readonly fatalTimeoutMs: number;
  readonly exitCodes: { readonly clean: number; readonly incomplete: number; readonly fatal: number };
  /** Called once, with the exit code, when the shutdown is over. */
  readonly exit: (code: number) => void;
  readonly now?: () => number;
}

export interface ShutdownRequest {
  /** Epoch ms when the kubelet began terminating (preStop start); defaults to now. */
  readonly terminationStartedAt?: number;
}

export interface Lifecycle {
  readonly state: LifecycleState;
  /** The shutdown phase running now, if any. */
  readonly phase: PhaseName | undefined;
  /** False after `fatal`. */
  readonly live: boolean;
  /** True once `ready()` was called. */
  readonly started: boolean;
  /** Epoch ms of the deadline, once a shutdown began. */
  readonly deadline: number | undefined;
  ready(): void;
  register(participant: Participant): () => void;
  shutdown(trigger?: string, request?: ShutdownRequest): Promise<ShutdownSummary>;
  fatal(error: unknown): Promise<ShutdownSummary>;
  /** Move the deadline earlier when a better kill time is known (never later). */
  tightenDeadline(killAt: number): void;
  /**
   * Replace the grace period, e.g. with the pod's own `terminationGracePeriodSeconds` when none was
   * configured. During a shutdown the deadline moves with it, earlier or later.
   */
  setGracePeriod(ms: number): void;
  readonly gracePeriodMs: number;
  /** Leave now: a second signal. Emits the summary (outcome `forced`) and exits with `code`. */
  forceExit(code: number, reason: string): void;
  /**
   * The hard exit time passed and the shutdown is still running (the watchdog calls this, from an
   * interrupt of a blocked event loop): emits the summary with outcome `deadline` and calls `exit`
   * with the incomplete (or fatal) code. Synchronous; returns that summary, or undefined when no
   * shutdown is running.
   */
  expire(): ShutdownSummary | undefined;
  /**
   * The process is leaving under a running shutdown (a hook called `process.exit(code)`): emits the
   * summary (never `clean`) with that exit code, without calling `exit`. Synchronous; at most once.
   */
  exiting(code: number): void;
  on<E extends keyof LifecycleEvents>(event: E, listener: (payload: LifecycleEvents[E]) => void): () => void;
}

const NOT_FAILURE_PHASES: ReadonlySet<PhaseName> = new Set(['propagate']);
/**
 * A phase that ends this much later than its budget overran it: its budget timer could not fire
 * (a blocked event loop). Below it lies the ordinary lateness of a timer on a busy machine.
 */
const PHASE_OVERRUN_TOLERANCE_MS = 100;
/** The watchdog acts at most this long after the report slice ends (less with a small margin). */
const HARD_EXIT_AFTER_REPORT_MS = 100;

/** The times of a shutdown whose phases must end at `deadlineAt`; see the timeline at the top. */
export function deadlineTimes(deadlineAt: number, safetyMarginMs: number): DeadlineTimes {
  const reportUntil = deadlineAt + safetyMarginMs / 2;
  return {
    deadlineAt,
    reportUntil,
    hardExitAt: reportUntil + Math.min(HARD_EXIT_AFTER_REPORT_MS, safetyMarginMs / 4),
  };
}

export function createLifecycle(options: LifecycleOptions): Lifecycle {
  const now = options.now ?? Date.now;
  const participants: Participant[] = [];
  const listeners = new Map<keyof LifecycleEvents, Set<(payload: never) => void>>();
  let state: LifecycleState = 'starting';
  let phase: PhaseName | undefined;
  let live = true;
  let started = false;
  let fatalError: { error: unknown } | undefined;
  let running: Promise<ShutdownSummary> | undefined;
  let exited = false;

  let gracePeriodMs = options.gracePeriodMs;
  let terminationStartedAt: number | undefined;
  let deadlineAt: number | undefined;
  /** The tightest deadline `tightenDeadline` asked for; the grace period never moves past it. */
  let tightenedAt: number | undefined;
  let deadlineTimer: NodeJS.Timeout | undefined;
  const deadlineController = new AbortController();

  function emit<E extends keyof LifecycleEvents>(event: E, payload: LifecycleEvents[E]): void {
    for (const listener of listeners.get(event) ?? []) {
      try {
        (listener as (p: LifecycleEvents[E]) => void)(payload);
      } catch {
        // A listener's failure must not break the shutdown.
      }
    }
  }

  function setState(next: LifecycleState): void {
    if (next === state) return;
    const previous = state;
    state = next;
    emit('state', { state, previous });
  }

  function armDeadline(at: number): void {
    if (at !== deadlineAt) {
      deadlineAt = at;
      const times = deadlineTimes(at, options.safetyMarginMs);
      emit('deadline', { ...times, trigger: shutdownTrigger, startedAt: shutdownStartedAt ?? now() });
    }
    clearTimeout(deadlineTimer);
    const wait = at - now();
    if (wait <= 0) {
      deadlineController.abort(new KubegraceError('ERR_KUBEGRACE_INVALID_STATE', 'deadline reached'));
      return;
    }
    // Deliberately not unref'd: while a shutdown runs, the process must not end silently with 0
    // because a hook awaits a promise that holds no handle (terminus' silent exit).
    // Node's timers hold at most 2^31−1 ms: a longer wait (a huge pod grace period) re-arms from here.
    deadlineTimer = setTimeout(() => armDeadline(at), Math.min(wait, 2_147_483_647));
  }

  function on<E extends keyof LifecycleEvents>(
    event: E,
    listener: (payload: LifecycleEvents[E]) => void,
  ): () => void {
    let set = listeners.get(event);
    if (!set) listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  function register(participant: Participant): () => void {
    participants.push(participant);
    if (state === 'ready' && participant.ready) callReady(participant);
    return () => {
      const index = participants.indexOf(participant);
      if (index !== -1) participants.splice(index, 1);
    };
  }

  function callReady(participant: Participant): void {
    Promise.resolve()
      .then(() => participant.ready?.())
      .catch((error: unknown) => {
        emit('warning', { message: `${participant.name}: ready failed: ${errorText(error)}` });
      });
  }

  function ready(): void {
    if (state !== 'starting') return;
    started = true;
    setState('ready');
    for (const p of [...participants]) if (p.ready) callReady(p);
  }

  let forced = 0;
  let shutdownStartedAt: number | undefined;
  let shutdownTrigger = 'manual';
  let summary: ShutdownSummary | undefined;
  const failures: ParticipantResult[] = [];
  const phaseDurations: Partial<Record<PhaseName, number>> = {};
  let phaseStartedAt: number | undefined;

  async function runParticipant(
    participant: Participant,
    fn: PhaseFn,
    current: PhaseName,
    phaseSignal: AbortSignal,
    trigger: string,
  ): Promise<ParticipantResult> {
    const start = now();
    const signal =
      participant.timeoutMs === undefined
        ? phaseSignal
        : AbortSignal.any([phaseSignal, AbortSignal.timeout(Math.max(0, participant.timeoutMs))]);
    const ctx: PhaseContext = {
      phase: current,
      signal,
      trigger,
      deadline: deadlineAt ?? now(),
      reportForced: (count) => {
        if (count > 0) forced += count;
      },
      warn: (message) => emit('warning', { message: `${participant.name}: ${message}` }),
      summary,
    };
    // Abort handlers get one turn of the event loop to finish (force-close, report) before the
    // participant counts as having overrun.
    let onAbort: (() => void) | undefined;
    const overrun = new Promise<'timeout'>((resolve) => {
      onAbort = () => setImmediate(() => resolve('timeout'));
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    // A hook (a participant with its own time limit) that returns once its signal aborted was cut
    // short, even if it honoured the signal. Drainers and strategies settle on abort by design and
    // account for what they cut through reportForced.
    const cutShort = (): boolean => participant.timeoutMs !== undefined && signal.aborted;
    const work = Promise.resolve()
      .then(() => fn(ctx))
      .then(
        () => (cutShort() ? { status: 'timeout' as const } : { status: 'ok' as const }),
        (error: unknown) =>
          cutShort() ? { status: 'timeout' as const } : { status: 'error' as const, error },
      );
    const outcome = await Promise.race([work, overrun]);
    if (onAbort) signal.removeEventListener('abort', onAbort);
    const result: ParticipantResult =
      outcome === 'timeout'
        ? { name: participant.name, phase: current, status: 'timeout', durationMs: now() - start }
        : { name: participant.name, phase: current, durationMs: now() - start, ...outcome };
    emit('participant', result);
    if (result.status !== 'ok') {
      if (NOT_FAILURE_PHASES.has(current)) {
        emit('warning', { message: `${participant.name}: ${current} ${describeResult(result)}` });
      } else {
        failures.push(result);
      }
    }
    return result;
  }

  async function runPhase(
    current: PhaseName,
    budgetMs: number,
    trigger: string,
    boundByDeadline = true,
  ): Promise<void> {
    phase = current;
    const start = now();
    phaseStartedAt = start;
    emit('phase', { phase: current, status: 'start', durationMs: 0 });
    const phaseController = new AbortController();
    const budgetTimer = setTimeout(() => phaseController.abort(), Math.max(0, budgetMs));
    const signal = boundByDeadline
      ? AbortSignal.any([phaseController.signal, deadlineController.signal])
      : phaseController.signal;
    const members = participants.filter((p) => typeof p[current] === 'function');
    try {
      if (current === 'cleanup') {
        // Cleanup hooks undo setup: last registered, first closed; one at a time.
        for (const p of members.reverse()) {
          await runParticipant(p, p[current] as PhaseFn, current, signal, trigger);
        }
      } else {
        await Promise.all(
          members.map((p) => runParticipant(p, p[current] as PhaseFn, current, signal, trigger)),
        );
      }
    } finally {
      clearTimeout(budgetTimer);
      phaseController.abort();
    }
    const durationMs = now() - start;
    phaseDurations[current] = durationMs;
    // Its timer could not fire in time (a blocked loop): whatever finished meanwhile, the phase did
    // not keep to its budget, so the shutdown is not clean. The propagation wait only waited longer.
    if (
      current !== 'exit' &&
      !NOT_FAILURE_PHASES.has(current) &&
      durationMs > budgetMs + PHASE_OVERRUN_TOLERANCE_MS &&
      !failures.some((f) => f.phase === current)
    ) {
      const overrun: ParticipantResult = { name: 'budget', phase: current, status: 'timeout', durationMs };
      failures.push(overrun);
      emit('warning', {
        message: `${current} phase overran its budget of ${budgetMs} ms: it took ${durationMs} ms (was the event loop blocked?)`,
      });
    }
    emit('phase', { phase: current, status: 'end', durationMs });
  }

  function outcomeSoFar(): ShutdownOutcome {
    // Past the deadline is `deadline` even when its timer has not fired yet (the loop was blocked).
    if (deadlineController.signal.aborted || (deadlineAt !== undefined && now() >= deadlineAt)) {
      return 'deadline';
    }
    // A fatal error is a failure even when everything drained: metrics must not show it as clean.
    if (failures.length > 0 || fatalError) return 'failed';
    if (forced > 0) return 'forced';
    return 'clean';
  }

  function buildSummary(trigger: string, startedAt: number, outcome: ShutdownOutcome): ShutdownSummary {
    const codes = options.exitCodes;
    const exitCode = fatalError ? codes.fatal : outcome === 'clean' ? codes.clean : codes.incomplete;
    return {
      trigger,
      outcome,
      exitCode,
      startedAt,
      deadlineAt: deadlineAt ?? startedAt,
      durationMs: now() - startedAt,
      phases: { ...phaseDurations },
      forced,
      failures: [...failures],
      ...(fatalError ? { fatalError: fatalError.error } : {}),
    };
  }

  function finish(final: ShutdownSummary, callExit = true): void {
    if (exited) return;
    exited = true;
    phase = undefined;
    clearTimeout(deadlineTimer);
    setState('stopped');
    emit('shutdown', final);
    if (callExit) options.exit(final.exitCode);
  }

  /** The summary of a shutdown cut off from outside the phase runner, in the middle of `phase`. */
  function cutOff(outcome: ShutdownOutcome, exitCode: number | undefined): ShutdownSummary {
    const base = summary ?? buildSummary(shutdownTrigger, shutdownStartedAt ?? now(), outcome);
    const phases = { ...phaseDurations };
    const unfinished = phase !== undefined && phases[phase] === undefined ? phase : undefined;
    if (unfinished !== undefined && phaseStartedAt !== undefined) phases[unfinished] = now() - phaseStartedAt;
    return {
      ...base,
      outcome,
      exitCode: exitCode ?? base.exitCode,
      phases,
      ...(unfinished === undefined ? {} : { unfinished }),
    };
  }

  function expire(): ShutdownSummary | undefined {
    if (exited || running === undefined) return undefined;
    const codes = options.exitCodes;
    const final = cutOff('deadline', fatalError ? codes.fatal : codes.incomplete);
    finish(final);
    return final;
  }

  function exiting(code: number): void {
    if (exited || running === undefined) return;
    // In the exit phase the shutdown itself was over; before it, it did not complete.
    const soFar = outcomeSoFar();
    const outcome = summary?.outcome ?? (soFar === 'clean' ? 'failed' : soFar);
    finish(cutOff(outcome, code), false);
  }

  async function run(
    trigger: string,
    request: ShutdownRequest,
    skipPropagation: boolean,
  ): Promise<ShutdownSummary> {
    const startedAt = now();
    shutdownStartedAt = startedAt;
    shutdownTrigger = trigger;
    terminationStartedAt = request.terminationStartedAt ?? startedAt;
    const killAt = terminationStartedAt + gracePeriodMs;
    armDeadline(killAt - options.safetyMarginMs);
    setState('draining');
    const budgets = options.budgets;
    await runPhase('unready', budgets.unready, trigger);
    await runPhase('propagate', skipPropagation ? 0 : budgets.propagate, trigger);
    await runPhase('drain', budgets.drain, trigger);
    await runPhase('cleanup', budgets.cleanup, trigger);
    summary = buildSummary(trigger, startedAt, outcomeSoFar());
    // The exit phase (final scrape, push, last event) may use half the safety margin, so a shutdown
    // that hit the deadline can still report it; the other half stays between us and SIGKILL.
    const exitEnd = (deadlineAt ?? now()) + options.safetyMarginMs / 2;
    if (!exited) await runPhase('exit', Math.max(0, exitEnd - now()), trigger, false);
    const final = { ...summary, phases: { ...phaseDurations } };
    finish(final);
    return final;
  }

  function shutdown(trigger = 'manual', request: ShutdownRequest = {}): Promise<ShutdownSummary> {
    running ??= run(trigger, request, trigger === 'fatal');
    return running;
  }

  function fatal(error: unknown): Promise<ShutdownSummary> {
    fatalError ??= { error };
    live = false;
    emit('warning', { message: `fatal: ${errorText(error)}` });
    const fatalDeadline = now() + options.fatalTimeoutMs;
    if (running) {
      tightenDeadline(fatalDeadline + options.safetyMarginMs);
      return running;
    }
    const result = shutdown('fatal');
    tightenDeadline(fatalDeadline + options.safetyMarginMs);
    return result;
  }

  function tightenDeadline(killAt: number): void {
    const at = killAt - options.safetyMarginMs;
    tightenedAt = Math.min(tightenedAt ?? at, at);
    if (deadlineAt === undefined || at < deadlineAt) armDeadline(at);
  }

  function setGracePeriod(ms: number): void {
    if (!Number.isFinite(ms) || ms <= 0) {
      throw new KubegraceError(
        'ERR_KUBEGRACE_INVALID_OPTION',
        `grace period must be a positive number of ms, received ${ms}`,
      );
    }
    gracePeriodMs = ms;
    // A deadline that already fired stays fired; one tightened (fatal, the kubelet's kill time) stays
    // at least that tight: the grace period only moves the deadline it set itself.
    if (terminationStartedAt === undefined || exited || deadlineController.signal.aborted) return;
    const at = terminationStartedAt + ms - options.safetyMarginMs;
    armDeadline(tightenedAt === undefined ? at : Math.min(at, tightenedAt));
  }

  function forceExit(code: number, reason: string): void {
    if (exited) return;
    emit('warning', { message: `forced exit: ${reason}` });
    const base = summary ?? buildSummary(shutdownTrigger, shutdownStartedAt ?? now(), 'forced');
    finish({ ...base, outcome: 'forced', exitCode: code, phases: { ...phaseDurations } });
  }

  return {
    get state() {
      return state;
    },
    get phase() {
      return phase;
    },
    get live() {
      return live;
    },
    get started() {
      return started;
    },
    get deadline() {
      return deadlineAt;
    },
    ready,
    register,
    shutdown,
    fatal,
    tightenDeadline,
    setGracePeriod,
    get gracePeriodMs() {
      return gracePeriodMs;
    },
    forceExit,
    expire,
    exiting,
    on,
  };
}

function describeResult(result: ParticipantResult): string {
  return result.status === 'timeout'
    ? `overran its budget after ${result.durationMs} ms`
    : `failed: ${errorText(result.error)}`;
}

export function errorText(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
