/**
 * The only module that touches process signals, process-wide error events and process.exit (and,
 * through the watchdog it owns, ends a process whose event loop is blocked at the hard exit time).
 */
import inspector from 'node:inspector';
import { constants } from 'node:os';
import type { Lifecycle } from './lifecycle.js';
import type { Logger } from './log.js';
import { createWatchdog, type Watchdog } from './watchdog.js';

export interface ProcessHandlers {
  readonly signals: readonly NodeJS.Signals[];
  readonly secondSignal: 'force' | 'ignore';
  /** Also turn `uncaughtException` and `unhandledRejection` into `onFatal`. */
  readonly catchErrors: boolean;
  onSignal(signal: NodeJS.Signals): void;
  onSecondSignal(signal: NodeJS.Signals, exitCode: number): void;
  onFatal(error: unknown): void;
  /**
   * The lifecycle the process must not outlive its deadline for. With it, a watchdog holds the hard
   * exit time of each shutdown (even with the event loop blocked), and a process that leaves in the
   * middle of a shutdown (a hook calling `process.exit`) still writes the summary, on 'exit'.
   */
  readonly lifecycle?: Pick<Lifecycle, 'on' | 'expire' | 'exiting' | 'timing'>;
  /** Where the watchdog says it failed to start. */
  readonly logger?: Logger;
  /** The summary goes to stderr as JSON (the default logger): the watchdog's last resort writes there too. */
  readonly summaryOnStderr?: boolean;
}

/** 128 + the signal's number, as a shell reports a process killed by it (SIGTERM → 143). */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}

/**
 * How kubegrace lets go of the handlers:
 * - `remove` (destroy(), a failed start): remove exactly them; the process goes on.
 * - `exit`: the process leaves through `exitProcess`. Its signals stay caught (and ignored) until it
 *   is gone, and the watchdog stays armed: ending takes a moment after `process.exit` (the watchdog's
 *   thread stops; with the inspector listening, Node waits for its sessions), and a signal with no
 *   listener then gets its default action — the kubelet's SIGTERM after a `/prestop` call would end
 *   a clean shutdown with 143 after a summary that said 0.
 * - `handover`: an `exit` option takes over. Its signals stay caught until the kill time (an
 *   asynchronous `exit` is not cut short by the kubelet's late SIGTERM; a process that goes on living
 *   gets its signals back then); the watchdog stands down, since that process may go on.
 */
export type Release = 'remove' | 'exit' | 'handover';

/** Installs the handlers; returns a function that lets go of exactly them (`remove` by default). */
export function installProcessHandlers(handlers: ProcessHandlers): (release?: Release) => void {
  let seen = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (!seen) {
      seen = true;
      handlers.onSignal(signal);
    } else if (handlers.secondSignal === 'force') {
      handlers.onSecondSignal(signal, signalExitCode(signal));
    }
  };
  const onError = (error: unknown): void => handlers.onFatal(error);
  for (const signal of handlers.signals) process.on(signal, onSignal);
  if (handlers.catchErrors) {
    process.on('uncaughtException', onError);
    process.on('unhandledRejection', onError);
  }
  const watch = handlers.lifecycle ? watchLifecycle(handlers.lifecycle, handlers) : undefined;
  return (release = 'remove') => {
    // Before our own listeners go: a signal must never find none in between.
    if (release === 'exit') holdSignals(handlers.signals, undefined);
    else if (release === 'handover') holdSignals(handlers.signals, watch?.killAt());
    for (const signal of handlers.signals) process.off(signal, onSignal);
    process.off('uncaughtException', onError);
    process.off('unhandledRejection', onError);
    watch?.remove(release !== 'exit');
  };
}

function watchLifecycle(
  lifecycle: Pick<Lifecycle, 'on' | 'expire' | 'exiting' | 'timing'>,
  handlers: Pick<ProcessHandlers, 'logger' | 'summaryOnStderr'>,
): { remove(standDown: boolean): void; killAt(): number | undefined } {
  // Synchronous to the end: 'exit' listeners cannot wait. The lifecycle writes the summary once.
  const onExit = (code: number): void => lifecycle.exiting(code);
  process.on('exit', onExit);
  let watchdog: Watchdog | undefined;
  const expire = (): void => {
    // First: the lifecycle's own `exit` (below) may already be the default process.exit.
    releaseInspector();
    // The shutdown still running ends here (its summary, outcome `deadline`); one that already ended
    // (a `shutdown` listener or the exit still holding the loop) leaves with the code it reported.
    const summary = lifecycle.expire();
    // The lifecycle called its `exit`; one that works asynchronously (or not at all) cannot run
    // while the loop is blocked, so the watchdog's exit does not wait for it.
    if (summary) exitProcess(summary.exitCode);
  };
  const removers = [
    lifecycle.on('deadline', (next) => {
      watchdog ??= createWatchdog({
        expire,
        writeFallbackLine: handlers.summaryOnStderr === true,
        onError: (error) => handlers.logger?.warn(`shutdown watchdog failed: ${error.message}`),
      });
      watchdog.arm(next);
    }),
    // 'stopped' comes before the summary is emitted: the watchdog never writes a second one, but it
    // still ends a process that its listeners or its exit keep past the hard exit time.
    lifecycle.on('state', ({ state }) => {
      if (state === 'stopped') watchdog?.exiting();
    }),
  ];
  return {
    remove(standDown) {
      process.off('exit', onExit);
      for (const remove of removers) remove();
      if (standDown) watchdog?.done();
    },
    // The kill time itself: derived from the deadline it would be wrong when fatal's own, shorter
    // deadline set it (the signals would go back before the kill).
    killAt: () => lifecycle.timing.killAt,
  };
}

/**
 * Before the watchdog's way out, from an interrupt of the main thread. Its own inspector session to
 * this thread cannot disconnect any more (the call it sent never returns), and with the inspector
 * listening (`--inspect`, or SIGUSR1 at run time) `process.exit` waits for every session to
 * disconnect: closing the inspector stops that wait. (An attached debugger is dropped too: the kill
 * time is near.)
 */
function releaseInspector(): void {
  if (inspector.url() === undefined) return;
  try {
    inspector.close();
  } catch {
    // The last resort (SIGKILL) is still armed.
  }
}

export function exitProcess(code: number): void {
  process.exit(code);
}

/**
 * Keeps `signals` caught (and ignored) until the process is gone, or until `until` (epoch ms) when
 * given; called before kubegrace removes its own listeners on the way out.
 */
function holdSignals(signals: readonly NodeJS.Signals[], until: number | undefined): void {
  const ignore = (): void => {};
  for (const signal of signals) process.on(signal, ignore);
  if (until === undefined) return;
  setTimeout(
    () => {
      for (const signal of signals) process.off(signal, ignore);
    },
    Math.max(0, until - Date.now()),
  ).unref();
}

export function processEnv(): Readonly<Record<string, string | undefined>> {
  return process.env;
}
