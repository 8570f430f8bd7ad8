/** The only module that touches process signals, process-wide error events and process.exit. */
import { constants } from 'node:os';

export interface ProcessHandlers {
  readonly signals: readonly NodeJS.Signals[];
  readonly secondSignal: 'force' | 'ignore';
  /** Also turn `uncaughtException` and `unhandledRejection` into `onFatal`. */
  readonly catchErrors: boolean;
  onSignal(signal: NodeJS.Signals): void;
  onSecondSignal(signal: NodeJS.Signals, exitCode: number): void;
  onFatal(error: unknown): void;
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
  return () => {
    for (const signal of handlers.signals) process.off(signal, onSignal);
    process.off('uncaughtException', onError);
    process.off('unhandledRejection', onError);
  };
}

export function exitProcess(code: number): void {
  process.exit(code);
}

export function processEnv(): Readonly<Record<string, string | undefined>> {
  return process.env;
}
