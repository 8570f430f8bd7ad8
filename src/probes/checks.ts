/**
 * Readiness and liveness checks: user functions run in parallel under one time limit, and the
 * built-in event-loop-lag check. No sockets here; the probe handler decides what a result means.
 */
import { performance } from 'node:perf_hooks';
import { describe, invalidOption, KubegraceError } from '../errors.js';

/**
 * One health check. Healthy if it returns or resolves to anything but `false`; unhealthy if it
 * returns `false`, throws, rejects, or outlives the time limit (the signal aborts at that moment).
 */
export type Check = (signal: AbortSignal) => unknown;

export interface CheckResult {
  readonly name: string;
  readonly ok: boolean;
  /** Whole milliseconds; a check cut off by the time limit reports the limit. */
  readonly durationMs: number;
  /** Why the check failed, one short line; never a stack trace. */
  readonly error?: string;
}

export interface CheckRun {
  readonly ok: boolean;
  readonly results: CheckResult[];
}

export interface CheckSet {
  /** Adds a named check; returns a function that removes it. Each name may be added once. */
  add(name: string, check: Check): () => void;
  /** Runs every check in parallel; each one fails on its own if it takes longer than `timeoutMs`. */
  run(timeoutMs: number): Promise<CheckRun>;
  readonly size: number;
}

// Long enough for an exception message, short enough for a probe body and a log line.
const MAX_ERROR_LENGTH = 200;

export function createCheckSet(): CheckSet {
  const checks = new Map<string, Check>();

  function add(name: string, check: Check): () => void {
    if (typeof name !== 'string' || name === '') {
      throw invalidOption('check name', 'a non-empty string', name);
    }
    if (typeof check !== 'function') {
      throw invalidOption(`check ${JSON.stringify(name)}`, 'a function', check);
    }
    if (checks.has(name)) {
      throw new KubegraceError(
        'ERR_KUBEGRACE_INVALID_OPTION',
        `check ${JSON.stringify(name)} is already registered; each check name may be added once`,
        { option: 'check name' },
      );
    }
    // A fresh wrapper per registration: removing twice, or after the name was added again (even
    // with the same function), must not drop the newer check.
    const entry: Check = (signal) => check(signal);
    checks.set(name, entry);
    return () => {
      if (checks.get(name) === entry) checks.delete(name);
    };
  }

  async function run(timeoutMs: number): Promise<CheckRun> {
    if (checks.size === 0) return { ok: true, results: [] };
    const results = await Promise.all([...checks].map(([name, check]) => runCheck(name, check, timeoutMs)));
    return { ok: results.every((r) => r.ok), results };
  }

  return {
    add,
    run,
    get size() {
      return checks.size;
    },
  };
}

function runCheck(name: string, check: Check, timeoutMs: number): Promise<CheckResult> {
  const start = performance.now();
  const controller = new AbortController();
  return new Promise<CheckResult>((resolve) => {
    let settled = false;
    const finish = (ok: boolean, error?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const durationMs = Math.round(performance.now() - start);
      resolve(error === undefined ? { name, ok, durationMs } : { name, ok, durationMs, error });
    };
    // The probe answers at the limit whether or not the check honours its signal.
    const timer = setTimeout(() => {
      finish(false, `timed out after ${timeoutMs} ms`);
      controller.abort(new DOMException(`check ${JSON.stringify(name)} timed out`, 'TimeoutError'));
    }, timeoutMs);
    timer.unref();
    let value: unknown;
    try {
      value = check(controller.signal);
    } catch (error) {
      finish(false, shortError(error));
      return;
    }
    Promise.resolve(value).then(
      (result) => (result === false ? finish(false, 'returned false') : finish(true)),
      (error: unknown) => finish(false, shortError(error)),
    );
  });
}

/** The first line of the message only: stacks and multi-line payloads stay out of probe bodies. */
export function shortError(error: unknown): string {
  let text: string;
  if (error instanceof Error) text = error.message === '' ? error.name : error.message;
  else if (typeof error === 'string') text = error;
  else text = `threw ${describe(error)}`;
  const line = (text.split(/\r?\n/, 1)[0] ?? '').trim() || 'failed';
  return line.length > MAX_ERROR_LENGTH ? `${line.slice(0, MAX_ERROR_LENGTH)}…` : line;
}

export interface EventLoopLagOptions {
  /** How often the loop is sampled. @default 100 */
  readonly sampleMs?: number;
  /**
   * How long a measured lag is remembered. A block shows up in the first sample after it, which
   * may be taken just before or just after a probe request; the window makes the answer not hinge
   * on that order. @default 1000
   */
  readonly windowMs?: number;
}

export interface EventLoopLagCheck {
  /** Fails while the lag seen within the window exceeds the threshold. */
  readonly check: Check;
  /** The worst lag within the window, including a sample that is overdue right now. */
  readonly lagMs: number;
  /** Stops sampling; the check passes from then on. */
  stop(): void;
}

/**
 * Liveness for a loop that is alive but too slow to serve: a timer that should fire every
 * `sampleMs` measures how late it fires. A loop blocked for good never answers the probe at all,
 * which the kubelet's probe timeout already catches.
 */
export function createEventLoopLagCheck(
  thresholdMs: number,
  options: EventLoopLagOptions = {},
): EventLoopLagCheck {
  if (typeof thresholdMs !== 'number' || !Number.isFinite(thresholdMs) || thresholdMs <= 0) {
    throw invalidOption('probes.eventLoopLagMs', 'a positive number (ms)', thresholdMs);
  }
  const sampleMs = options.sampleMs ?? 100;
  const windowMs = options.windowMs ?? 1000;
  if (!Number.isInteger(sampleMs) || sampleMs <= 0) {
    throw invalidOption('sampleMs', 'a positive integer (ms)', sampleMs);
  }
  if (!Number.isInteger(windowMs) || windowMs < sampleMs) {
    throw invalidOption('windowMs', `an integer (ms) no smaller than sampleMs (${sampleMs})`, windowMs);
  }

  const recent = new Array<number>(Math.ceil(windowMs / sampleMs)).fill(0);
  let next = 0;
  let expectedAt = performance.now() + sampleMs;
  let stopped = false;

  const timer = setTimeout(function sample() {
    const now = performance.now();
    recent[next] = Math.max(0, now - expectedAt);
    next = (next + 1) % recent.length;
    expectedAt = now + sampleMs;
    timer.refresh();
  }, sampleMs);
  // Sampling is only for the probe; it must never keep the process alive.
  timer.unref();

  function currentLag(): number {
    if (stopped) return 0;
    // A sample that has not fired yet is evidence too: the loop is late right now.
    const overdue = performance.now() - expectedAt;
    return Math.max(overdue, ...recent, 0);
  }

  return {
    check: () => {
      const lag = currentLag();
      if (lag > thresholdMs) {
        throw new Error(`event loop lag ${Math.round(lag)} ms exceeds ${thresholdMs} ms`);
      }
      return true;
    },
    get lagMs() {
      return Math.round(currentLag());
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
