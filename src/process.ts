/**
 * The only module that touches process signals, process-wide error events and process.exit (and,
 * through the watchdog it owns, ends a process whose event loop is blocked at the hard exit time).
 */
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
  readonly lifecycle?: Pick<Lifecycle, 'on' | 'expire' | 'exiting'>;
  /** Where the watchdog says it failed to start. */
  readonly logger?: Logger;
  /** The summary goes to stderr as JSON (the default logger): the watchdog's last resort writes there too. */
  readonly summaryOnStderr?: boolean;
}

/** 128 + the signal's number, as a shell reports a process killed by it (SIGTERM → 143). */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}

/** Installs the handlers; returns a function that removes exactly them. */
export function installProcessHandlers(handlers: ProcessHandlers): () => void {
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
  const unwatch = handlers.lifecycle ? watchLifecycle(handlers.lifecycle, handlers) : undefined;
  return () => {
    for (const signal of handlers.signals) process.off(signal, onSignal);
    process.off('uncaughtException', onError);
    process.off('unhandledRejection', onError);
    unwatch?.();
  };
}

function watchLifecycle(
  lifecycle: Pick<Lifecycle, 'on' | 'expire' | 'exiting'>,
  handlers: Pick<ProcessHandlers, 'logger' | 'summaryOnStderr'>,
): () => void {
  // Synchronous to the end: 'exit' listeners cannot wait. The lifecycle writes the summary once.
  const onExit = (code: number): void => lifecycle.exiting(code);
  process.on('exit', onExit);
  let watchdog: Watchdog | undefined;
  const expire = (): void => {
    const summary = lifecycle.expire();
    // The lifecycle called its `exit`; one that works asynchronously (or not at all) cannot run
    // while the loop is blocked, so the watchdog's exit does not wait for it.
    if (summary) exitProcess(summary.exitCode);
  };
  const removers = [
    lifecycle.on('deadline', (deadline) => {
      watchdog ??= createWatchdog({
        expire,
        writeFallbackLine: handlers.summaryOnStderr === true,
        onError: (error) => handlers.logger?.warn(`shutdown watchdog failed: ${error.message}`),
      });
      watchdog.arm(deadline);
    }),
    // 'stopped' comes before the summary is emitted: the watchdog never writes a second one.
    lifecycle.on('state', ({ state }) => {
      if (state === 'stopped') watchdog?.done();
    }),
  ];
  return () => {
    process.off('exit', onExit);
    for (const remove of removers) remove();
    watchdog?.done();
  };
}

export function exitProcess(code: number): void {
  process.exit(code);
}

/**
 * Keeps `signals` caught (and ignored) from now until the process is gone; called before kubegrace
 * removes its own listeners on the way out. Ending takes a few ms after `process.exit` (the
 * watchdog's thread stops), and a signal with no listener then gets its default action: the
 * kubelet's SIGTERM after a `/prestop` call would end a clean shutdown with 143 after a summary that
 * said 0.
 */
export function holdSignalsUntilExit(signals: readonly NodeJS.Signals[]): void {
  for (const signal of signals) process.on(signal, ignoreSignal);
}

function ignoreSignal(): void {}

export function processEnv(): Readonly<Record<string, string | undefined>> {
  return process.env;
}
