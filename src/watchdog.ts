/**
 * The watchdog that holds a shutdown's hard exit time when the event loop does not (a CPU-bound
 * request, a synchronous call that never returns). Owned by `process.ts`, the only module that ends
 * the process; started at the first shutdown, so it costs nothing on the request path.
 *
 * How it ends the process, in this order:
 * 1. A `worker_threads` Worker keeps the hard exit time on its own event loop. At that time, if the
 *    process is still there, it opens an inspector session to the main thread and asks it to
 *    evaluate one call. V8 runs that call as an interrupt, between two statements of whatever
 *    JavaScript is holding the loop; the call (on the main thread) ends the shutdown with outcome
 *    `deadline` — the summary line through the instance's own logger — or, when the summary is
 *    already out (a slow `shutdown` listener, an exit that does not end), leaves with its exit code.
 * 2. If the main thread is stuck outside JavaScript (a blocking system call, or `process.exit` itself
 *    waiting for an inspector session to disconnect), no interrupt runs. A little later the worker
 *    sends the process SIGKILL, which the kubelet would have sent a moment later anyway; if no
 *    summary went out yet, it writes one itself first (what it cannot know, it says so).
 * The worker stands down only when told the process is not leaving (`done()`: an `exit` option took
 * over, or the instance was destroyed); a summary alone does not disarm it (`exiting()`), since the
 * process may still not be gone by the kill time. It never calls `process.exit` (in a worker that
 * would end only the worker).
 */
import { Worker } from 'node:worker_threads';
import type { DeadlineTimes } from './lifecycle.js';

export interface WatchdogOptions {
  /**
   * Runs on the main thread, from the interrupt, once the hard exit time passed: end the shutdown
   * and the process. Must be synchronous.
   */
  readonly expire: () => void;
  /** Write the worker's own summary line to stderr (JSON) if the main thread cannot answer. */
  readonly writeFallbackLine: boolean;
  /** The worker failed; the shutdown goes on without it. */
  readonly onError: (error: Error) => void;
}

export interface WatchdogDeadline extends DeadlineTimes {
  readonly trigger: string;
  readonly startedAt: number;
}

export interface Watchdog {
  /** Set or move the hard exit time; the first call starts the worker. */
  arm(deadline: WatchdogDeadline): void;
  /**
   * The summary is out and the process is leaving: the worker writes no summary of its own any more,
   * but still ends a process that is not gone by the hard exit time.
   */
  exiting(): void;
  /** The process is not the watchdog's to end any more: the worker does nothing more. */
  done(): void;
}

/** The global the worker's inspector call reaches; one function for every instance in the process. */
const GLOBAL_KEY = 'kubegrace.watchdog';
const expiries = new Map<number, () => void>();
let nextId = 1;

function dispatch(id: number): void {
  expiries.get(id)?.();
}

/**
 * The shared flag: RUNNING while the shutdown runs; EXITING once the main thread has (or is about to
 * have) its summary out, set before the summary is emitted, so the worker never writes a second one;
 * DONE when the watchdog stands down.
 */
const STATE_RUNNING = 0;
const STATE_EXITING = 1;
const STATE_DONE = 2;

// Plain CommonJS, evaluated in the worker: no file to resolve, no loader hooks (execArgv is empty).
const WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { writeSync } = require('node:fs');
const state = new Int32Array(workerData.state);
let deadline = workerData.deadline;
let timer;
const current = () => Atomics.load(state, 0);
function schedule() {
  clearTimeout(timer);
  timer = setTimeout(fire, Math.max(0, deadline.hardExitAt - Date.now()));
}
function fire() {
  if (current() === ${STATE_DONE}) return;
  try {
    const { Session } = require('node:inspector');
    const session = new Session();
    session.connectToMainThread();
    session.post('Runtime.evaluate', {
      expression: 'globalThis[Symbol.for(' + JSON.stringify(workerData.key) + ')](' + workerData.id + ')',
    }, () => {});
  } catch {
    // No inspector in this build: only the fallback is left.
  }
  // Half of what is left until the kill time (reportUntil is as far before the kill time as the
  // deadline is before it).
  const killAt = deadline.reportUntil + (deadline.reportUntil - deadline.deadlineAt);
  timer = setTimeout(lastResort, Math.max(10, (killAt - Date.now()) / 2));
}
function lastResort() {
  const now = current();
  if (now === ${STATE_DONE}) return;
  if (now === ${STATE_RUNNING} && workerData.writeFallbackLine) {
    const line = {
      level: 'warn',
      time: new Date().toISOString(),
      logger: 'kubegrace',
      msg: 'shutdown complete',
      trigger: deadline.trigger,
      outcome: 'deadline',
      exitCode: 137,
      durationMs: Date.now() - deadline.startedAt,
      watchdog: 'the main thread did not answer at the hard exit time; the process ends with SIGKILL; phases, forced and failures are unknown',
    };
    try { writeSync(2, JSON.stringify(line) + '\\n'); } catch {}
  }
  process.kill(process.pid, 'SIGKILL');
}
parentPort.on('message', (next) => { deadline = next; schedule(); });
schedule();
`;

export function createWatchdog(options: WatchdogOptions): Watchdog {
  const id = nextId++;
  let worker: Worker | undefined;
  let state: Int32Array | undefined;
  let finished = false;

  function start(deadline: WatchdogDeadline): void {
    state = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));
    expiries.set(id, options.expire);
    const registry = globalThis as unknown as Record<symbol, (id: number) => void>;
    registry[Symbol.for(GLOBAL_KEY)] ??= dispatch;
    worker = new Worker(WORKER_SOURCE, {
      eval: true,
      execArgv: [],
      workerData: {
        state: state.buffer,
        deadline: plain(deadline),
        id,
        key: GLOBAL_KEY,
        writeFallbackLine: options.writeFallbackLine,
      },
      // Its own small heap; it holds a timer and a few numbers.
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 4 },
    });
    worker.unref();
    worker.on('error', options.onError);
  }

  return {
    arm(deadline) {
      if (finished) return;
      if (worker === undefined) start(deadline);
      else worker.postMessage(plain(deadline));
    },
    exiting() {
      if (finished || !state) return;
      Atomics.compareExchange(state, 0, STATE_RUNNING, STATE_EXITING);
    },
    done() {
      if (finished) return;
      finished = true;
      if (state) Atomics.store(state, 0, STATE_DONE);
      expiries.delete(id);
      void worker?.terminate();
    },
  };
}

function plain(deadline: WatchdogDeadline): WatchdogDeadline {
  const { deadlineAt, reportUntil, hardExitAt, trigger, startedAt } = deadline;
  return { deadlineAt, reportUntil, hardExitAt, trigger, startedAt };
}
