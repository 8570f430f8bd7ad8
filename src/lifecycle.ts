/**
 * The state machine and phase runner. Pure: no sockets, no `process`, no Kubernetes. Edges plug in
 * as participants and receive an AbortSignal that fires at their budget or the global deadline (in
 * the exit phase: at the deadline plus half the safety margin, so a late shutdown can still report).
 * When the deadline falls is `timing.ts`'s to say; the lifecycle keeps the current `Timing` and arms
 * its timer from it.
 *
 * Over ~400 lines because the phase runner, the summary and the ways a shutdown can end (deadline,
 * second signal, watchdog, a hook's process.exit) share one piece of state; split, each part would
 * need the others' internals.
 */
import { KubegraceError } from './errors.js';
import {
  adoptGracePeriod as adoptGrace,
  beginShutdown,
  deadlineTimes,
  tightenForFatal,
  tightenKillTime as tightenKill,
  triggerLabel,
  type GracePeriodSource,
  type KillTimeSource,
  type Timing,
  type Trigger,
  type TriggerKind,
} from './timing.js';

export type LifecycleState = 'starting' | 'ready' | 'draining' | 'stopped';
export const PHASES = ['unready', 'propagate', 'drain', 'cleanup', 'exit'] as const;
export type PhaseName = (typeof PHASES)[number];
export type ShutdownOutcome = 'clean' | 'deadline' | 'forced' | 'failed';

export interface PhaseContext {
  readonly phase: PhaseName;
  /** Fires at this participant's time limit, the phase budget or the global deadline (exit: see above). */
  readonly signal: AbortSignal;
  /** What started the shutdown, as text: a signal name, `prestop`, `deletion`, `fatal`, or the reason given to `shutdown()`. */
  readonly trigger: string;
  /** What started the shutdown, as a kind: `signal`, `prestop`, `deletion`, `fatal` or `manual`. */
  readonly triggerKind: TriggerKind;
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
  /** What started the shutdown, as text (see `PhaseContext.trigger`). */
  readonly trigger: string;
  readonly triggerKind: TriggerKind;
  readonly outcome: ShutdownOutcome;
  readonly exitCode: number;
  /** Epoch ms when the shutdown began. */
  readonly startedAt: number;
  /** Epoch ms of the deadline in force at the end. */
  readonly deadlineAt: number;
  /** With outcome `deadline`: the phase that was running when the deadline passed. */
  readonly deadlinePhase?: PhaseName;
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
  /** The grace period and safety margin before any shutdown (`createTiming`). */
  readonly timing: Timing;
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
  /** Grace period, kill time and deadline in force, and where each came from. */
  readonly timing: Timing;
  ready(): void;
  register(participant: Participant): () => void;
  /** A string is a manual shutdown with that reason. @default 'manual' */
  shutdown(trigger?: Trigger | string, request?: ShutdownRequest): Promise<ShutdownSummary>;
  fatal(error: unknown): Promise<ShutdownSummary>;
  /** A better-known kill time (the API's, the pod spec's): the deadline moves earlier, never later. */
  tightenKillTime(killAt: number, source: Exclude<KillTimeSource, 'grace-period'>): void;
  /**
   * Use another grace period, e.g. the pod's own `terminationGracePeriodSeconds` when none was
   * configured. During a shutdown the deadline moves with it, earlier or later.
   */
  adoptGracePeriod(ms: number, source: GracePeriodSource): void;
  /** Leave now: a second signal. Emits the summary (outcome `forced`) and exits with `code`. */
  forceExit(code: number, reason: string): void;
  /**
   * The hard exit time passed and the process is still there (the watchdog calls this, from an
   * interrupt of a blocked event loop). A shutdown still running ends: emits the summary with outcome
   * `deadline` and calls `exit` with the incomplete (or fatal) code. Synchronous; returns that
   * summary — or, when the shutdown already ended (a `shutdown` listener or the exit held the loop),
   * the summary it ended with — or undefined when no shutdown ran.
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
/** An end this close to the deadline is the deadline's, whatever timer fired first. */
const DEADLINE_TIE_MS = 5;

/**
 * The abort reasons of phase signals whose budget ran out. Each is an ordinary `AbortError`
 * (DOMException), as an `abort()` without a reason gives, so a participant's own
 * `error.name === 'AbortError'` checks keep working; only this set tells it apart.
 */
const budgetReasons = new WeakSet<object>();

function phaseBudgetReached(phase: PhaseName, budgetMs: number): DOMException {
  const reason = new DOMException(
    `the ${phase} phase reached its budget of ${String(budgetMs)} ms`,
    'AbortError',
  );
  budgetReasons.add(reason);
  return reason;
}

/**
 * Why a phase ended, judged at `at`: the deadline (or a tie with it, whatever timer fired first), the
 * phase's own budget, something else that fired its signal (a participant's own limit, a fatal
 * error), or nothing (undefined). The budget counts from the phase's start, so a participant that
 * began a moment later cannot tell it by its own clock: the propagation waits ask here for `fixed`,
 * `max`, `deadline` or `aborted`.
 */
export function phaseEndCause(
  ctx: Pick<PhaseContext, 'signal' | 'deadline'>,
  at: number,
): 'deadline' | 'budget' | 'other' | undefined {
  if (at >= ctx.deadline - DEADLINE_TIE_MS) return 'deadline';
  const { signal } = ctx;
  if (!signal.aborted) return undefined;
  const reason: unknown = signal.reason;
  return typeof reason === 'object' && reason !== null && budgetReasons.has(reason) ? 'budget' : 'other';
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
  let finalSummary: ShutdownSummary | undefined;

  let timing = options.timing;
  /** The deadline the timer is armed for (it follows `timing.deadlineAt` until the deadline fired). */
  let deadlineAt: number | undefined;
  let deadlineTimer: NodeJS.Timeout | undefined;
  /** Epoch ms each phase of the running shutdown started, in order: which one the deadline hit. */
  const phaseStarts: [PhaseName, number][] = [];
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

  /** Take a new timing; while a shutdown runs and its deadline has not fired, the timer follows it. */
  function setTiming(next: Timing): void {
    if (running !== undefined && exited) return;
    // A deadline that fired never moves later; an earlier kill time still moves the report slice
    // and the watchdog's hard exit (the exit phase runs past the deadline).
    const fired = running !== undefined && deadlineController.signal.aborted;
    if (fired && (next.deadlineAt === undefined || next.deadlineAt >= (deadlineAt ?? Infinity))) return;
    timing = next;
    if (running !== undefined && next.deadlineAt !== undefined) armDeadline(next.deadlineAt);
  }

  function armDeadline(at: number): void {
    if (at !== deadlineAt) {
      deadlineAt = at;
      const times = deadlineTimes(at, timing.safetyMarginMs);
      emit('deadline', {
        ...times,
        trigger: triggerLabel(shutdownTrigger),
        startedAt: shutdownStartedAt ?? now(),
      });
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
  let shutdownTrigger: Trigger = { kind: 'manual', reason: 'manual' };
  let summary: ShutdownSummary | undefined;
  const failures: ParticipantResult[] = [];
  const phaseDurations: Partial<Record<PhaseName, number>> = {};
  let phaseStartedAt: number | undefined;

  async function runParticipant(
    participant: Participant,
    fn: PhaseFn,
    current: PhaseName,
    phaseSignal: AbortSignal,
    trigger: Trigger,
  ): Promise<ParticipantResult> {
    const start = now();
    const signal =
      participant.timeoutMs === undefined
        ? phaseSignal
        : AbortSignal.any([phaseSignal, AbortSignal.timeout(Math.max(0, participant.timeoutMs))]);
    const ctx: PhaseContext = {
      phase: current,
      signal,
      trigger: triggerLabel(trigger),
      triggerKind: trigger.kind,
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
    trigger: Trigger,
    boundByDeadline = true,
  ): Promise<void> {
    phase = current;
    const start = now();
    phaseStartedAt = start;
    phaseStarts.push([current, start]);
    emit('phase', { phase: current, status: 'start', durationMs: 0 });
    const phaseController = new AbortController();
    // A zero budget is a skipped phase (the propagation wait of a fatal shutdown), not one that ran
    // its course: its signal does not say the budget was reached.
    const budgetTimer = setTimeout(
      () => phaseController.abort(budgetMs > 0 ? phaseBudgetReached(current, budgetMs) : undefined),
      Math.max(0, budgetMs),
    );
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

  /** The phase running at `at`: the last one that started by then. */
  function phaseRunningAt(at: number): PhaseName | undefined {
    let found: PhaseName | undefined;
    for (const [name, startedAt] of phaseStarts) if (startedAt <= at && name !== 'exit') found = name;
    return found;
  }

  function buildSummary(trigger: Trigger, startedAt: number, outcome: ShutdownOutcome): ShutdownSummary {
    const codes = options.exitCodes;
    const exitCode = fatalError ? codes.fatal : outcome === 'clean' ? codes.clean : codes.incomplete;
    const deadlinePhase =
      outcome === 'deadline' && deadlineAt !== undefined ? phaseRunningAt(deadlineAt) : undefined;
    return {
      trigger: triggerLabel(trigger),
      triggerKind: trigger.kind,
      outcome,
      exitCode,
      startedAt,
      deadlineAt: deadlineAt ?? startedAt,
      ...(deadlinePhase === undefined ? {} : { deadlinePhase }),
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
    finalSummary = final;
    phase = undefined;
    clearTimeout(deadlineTimer);
    setState('stopped');
    emit('shutdown', final);
    if (callExit) options.exit(final.exitCode);
  }

  /**
   * The summary as it stands once `fatal` came after it was built (in the exit phase, where the
   * participants still run): exit code `fatal`, and never `clean` or merely `forced`.
   */
  function withLateFatal(built: ShutdownSummary): ShutdownSummary {
    if (!fatalError || built.fatalError !== undefined) return built;
    return {
      ...built,
      outcome: built.outcome === 'deadline' ? 'deadline' : 'failed',
      exitCode: options.exitCodes.fatal,
      fatalError: fatalError.error,
    };
  }

  /** The summary of a shutdown cut off from outside the phase runner, in the middle of `phase`. */
  function cutOff(outcome: ShutdownOutcome, exitCode: number | undefined): ShutdownSummary {
    const base = summary
      ? withLateFatal(summary)
      : buildSummary(shutdownTrigger, shutdownStartedAt ?? now(), outcome);
    const phases = { ...phaseDurations };
    const unfinished = phase !== undefined && phases[phase] === undefined ? phase : undefined;
    if (unfinished !== undefined && phaseStartedAt !== undefined) phases[unfinished] = now() - phaseStartedAt;
    const deadlinePhase =
      outcome === 'deadline' && deadlineAt !== undefined ? phaseRunningAt(deadlineAt) : base.deadlinePhase;
    return {
      ...base,
      ...(deadlinePhase === undefined ? {} : { deadlinePhase }),
      outcome,
      exitCode: exitCode ?? base.exitCode,
      phases,
      ...(unfinished === undefined ? {} : { unfinished }),
    };
  }

  function expire(): ShutdownSummary | undefined {
    if (exited) return finalSummary;
    if (running === undefined) return undefined;
    const codes = options.exitCodes;
    const final = cutOff('deadline', fatalError ? codes.fatal : codes.incomplete);
    finish(final);
    return final;
  }

  function exiting(code: number): void {
    if (exited || running === undefined) return;
    // In the exit phase the shutdown itself was over; before it, it did not complete.
    const soFar = outcomeSoFar();
    const outcome = summary ? withLateFatal(summary).outcome : soFar === 'clean' ? 'failed' : soFar;
    finish(cutOff(outcome, code), false);
  }

  async function run(
    trigger: Trigger,
    request: ShutdownRequest,
    skipPropagation: boolean,
  ): Promise<ShutdownSummary> {
    const startedAt = now();
    shutdownStartedAt = startedAt;
    shutdownTrigger = trigger;
    timing = beginShutdown(timing, request.terminationStartedAt ?? startedAt);
    armDeadline(timing.deadlineAt ?? startedAt);
    setState('draining');
    const budgets = options.budgets;
    await runPhase('unready', budgets.unready, trigger);
    await runPhase('propagate', skipPropagation ? 0 : budgets.propagate, trigger);
    await runPhase('drain', budgets.drain, trigger);
    await runPhase('cleanup', budgets.cleanup, trigger);
    summary = buildSummary(trigger, startedAt, outcomeSoFar());
    // The exit phase (final scrape, push, last event) may use half the safety margin, so a shutdown
    // that hit the deadline can still report it; the other half stays between us and SIGKILL.
    const exitEnd = (deadlineAt ?? now()) + timing.safetyMarginMs / 2;
    if (!exited) await runPhase('exit', Math.max(0, exitEnd - now()), trigger, false);
    const final = { ...withLateFatal(summary), phases: { ...phaseDurations } };
    finish(final);
    return final;
  }

  function shutdown(
    trigger: Trigger | string = 'manual',
    request: ShutdownRequest = {},
  ): Promise<ShutdownSummary> {
    if (running) return running;
    const typed: Trigger = typeof trigger === 'string' ? { kind: 'manual', reason: trigger } : trigger;
    // Assigned before run() starts, so setTiming sees a running shutdown from its first phase on.
    let resolveRunning!: (summary: Promise<ShutdownSummary>) => void;
    running = new Promise<ShutdownSummary>((resolve) => {
      resolveRunning = resolve;
    });
    resolveRunning(run(typed, request, typed.kind === 'fatal'));
    return running;
  }

  function fatal(error: unknown): Promise<ShutdownSummary> {
    fatalError ??= { error };
    live = false;
    emit('warning', { message: `fatal: ${errorText(error)}` });
    const fatalDeadline = now() + options.fatalTimeoutMs;
    const result = running ?? shutdown({ kind: 'fatal' });
    setTiming(tightenForFatal(timing, fatalDeadline));
    return result;
  }

  function tightenKillTime(killAt: number, source: Exclude<KillTimeSource, 'grace-period'>): void {
    setTiming(tightenKill(timing, killAt, source));
  }

  function adoptGracePeriod(ms: number, source: GracePeriodSource): void {
    if (!Number.isFinite(ms) || ms <= 0) {
      throw new KubegraceError(
        'ERR_KUBEGRACE_INVALID_OPTION',
        `grace period must be a positive number of ms, received ${ms}`,
      );
    }
    // A deadline that already fired stays fired (setTiming); a tighter kill time (the API's) stays.
    setTiming(adoptGrace(timing, ms, source));
  }

  function forceExit(code: number, reason: string): void {
    if (exited) return;
    emit('warning', { message: `forced exit: ${reason}` });
    const base = summary
      ? withLateFatal(summary)
      : buildSummary(shutdownTrigger, shutdownStartedAt ?? now(), 'forced');
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
    get timing() {
      return timing;
    },
    ready,
    register,
    shutdown,
    fatal,
    tightenKillTime,
    adoptGracePeriod,
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
