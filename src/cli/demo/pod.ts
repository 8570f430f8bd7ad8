/**
 * One pod: a demo service in a child process, started with an environment, probed until ready,
 * terminated the kubelet's way (SIGTERM, then SIGKILL at the grace period), its exit recorded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { get } from 'node:http';
import { constants } from 'node:os';
import { dirname, extname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Endpoint } from './endpoint-table.js';
import { preciseNow } from './load.js';
import type { PodEvent, TimedPodEvent } from './pod-events.js';

export interface PodOptions {
  readonly name: string;
  /**
   * `kubegrace`, `naive`, `kubegrace-cluster` or `naive-cluster` for the demo's services; any label
   * when `script` is given.
   */
  readonly kind: string;
  /**
   * The service module to run instead of the kind's own (`.ts` runs through tsx). It speaks the
   * line protocol of `pod-events.ts`.
   */
  readonly script?: string;
  /** Extra environment (`KUBEGRACE_*`) on top of the parent's. */
  readonly env?: Readonly<Record<string, string>>;
  /** terminationGracePeriodSeconds: SIGKILL this long after SIGTERM. */
  readonly graceSeconds: number;
  /** Give up when the service has not printed its ports within this long. @default 15000 */
  readonly startTimeoutMs?: number;
  readonly onEvent?: (event: TimedPodEvent) => void;
}

export interface PodExit {
  /** Epoch ms, seen by the parent. */
  readonly exitedAt: number;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** As a shell reports it: the code, or 128 + the signal's number. */
  readonly exitCode: number;
  /** The simulated kubelet had to SIGKILL it at the grace period. */
  readonly killed: boolean;
}

export interface Pod {
  readonly name: string;
  readonly kind: string;
  readonly pid: number | undefined;
  readonly endpoint: Endpoint;
  readonly managementPort: number | undefined;
  readonly events: readonly TimedPodEvent[];
  /** Epoch ms of the SIGTERM, once sent. */
  readonly sigtermAt: number | undefined;
  readonly exited: Promise<PodExit>;
  /** Resolves when `/readyz` answers 200. */
  waitReady(timeoutMs?: number): Promise<void>;
  /** SIGTERM now, SIGKILL at the grace period; resolves with the exit. */
  terminate(): Promise<PodExit>;
  /** SIGKILL at once (harness teardown); not counted as the kubelet's kill. */
  kill(): void;
  /** A line to the service's stdin (a benchmark service answers requests for figures this way). */
  send(line: string): void;
}

const live = new Set<ChildProcess>();
let guardInstalled = false;

/** No child outlives the harness: killed on exit here, and each child also exits on stdin EOF. */
function guard(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (guardInstalled) return;
  guardInstalled = true;
  process.once('exit', killAllPods);
}

export function killAllPods(): void {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}

/** The demo's own service module for each kind (`kubegrace` and any other: `service`). */
const SERVICE_MODULES: Readonly<Record<string, string>> = {
  naive: 'naive-service',
  // `--cluster`: a node:cluster primary and 2 workers, with kubegrace/cluster or the naive primary.
  'kubegrace-cluster': 'cluster-service',
  'naive-cluster': 'naive-cluster-service',
};

/** Run the services the way this module runs: compiled from dist, or TypeScript through tsx. */
function serviceCommand(kind: string, script: string | undefined): { readonly args: readonly string[] } {
  const here = fileURLToPath(import.meta.url);
  const entry = script ?? join(dirname(here), `${SERVICE_MODULES[kind] ?? 'service'}${extname(here)}`);
  return { args: extname(entry) === '.ts' ? ['--import', 'tsx', entry] : [entry] };
}

export async function startPod(options: PodOptions): Promise<Pod> {
  const { args } = serviceCommand(options.kind, options.script);
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...options.env, DEMO_POD_NAME: options.name },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  guard(child);

  const events: TimedPodEvent[] = [];
  const stderrTail: string[] = [];
  let sigtermAt: number | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  let killedByKubelet = false;

  const exited = new Promise<PodExit>((resolve) => {
    child.once('exit', (code, signal) => {
      clearTimeout(killTimer);
      resolve({
        exitedAt: preciseNow(),
        code,
        signal,
        exitCode: code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0),
        killed: killedByKubelet,
      });
    });
  });

  createInterface({ input: child.stderr }).on('line', (line) => {
    stderrTail.push(line);
    if (stderrTail.length > 20) stderrTail.shift();
  });

  const listening = new Promise<Extract<PodEvent, { event: 'listening' }>>((resolve, reject) => {
    const startTimeoutMs = options.startTimeoutMs ?? 15_000;
    const timer = setTimeout(
      () => reject(new Error(`pod ${options.name}: the service did not start within ${startTimeoutMs} ms`)),
      startTimeoutMs,
    );
    createInterface({ input: child.stdout }).on('line', (line) => {
      let event: TimedPodEvent;
      try {
        event = JSON.parse(line) as TimedPodEvent;
      } catch {
        event = { event: 'log', level: 'stdout', msg: line, at: Date.now() };
      }
      events.push(event);
      options.onEvent?.(event);
      if (event.event === 'listening') {
        clearTimeout(timer);
        resolve(event);
      }
    });
    void exited.then((exit) => {
      clearTimeout(timer);
      const why = stderrTail.length > 0 ? `:\n${stderrTail.join('\n')}` : '';
      reject(
        new Error(
          `pod ${options.name}: the service exited with code ${exit.exitCode} before listening${why}`,
        ),
      );
    });
  });

  let ports: Extract<PodEvent, { event: 'listening' }>;
  try {
    ports = await listening;
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  const endpoint: Endpoint = { name: options.name, host: '127.0.0.1', port: ports.port };
  const readyPort = ports.readyPort ?? ports.managementPort ?? ports.port;
  // null: nothing to probe over HTTP/1 (an h2c-only service), so listening is ready.
  const readyPath = ports.readyPath === undefined ? '/readyz' : ports.readyPath;

  async function waitReady(timeoutMs = 10_000): Promise<void> {
    if (readyPath === null) return;
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if ((await probe(readyPort, readyPath)) === 200) return;
      if (child.exitCode !== null || child.signalCode !== null) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`pod ${options.name}: ${readyPath} did not answer 200 within ${timeoutMs} ms`);
  }

  function terminate(): Promise<PodExit> {
    if (sigtermAt === undefined) {
      sigtermAt = preciseNow();
      child.kill('SIGTERM');
      killTimer = setTimeout(() => {
        killedByKubelet = true;
        child.kill('SIGKILL');
      }, options.graceSeconds * 1000);
    }
    return exited;
  }

  return {
    name: options.name,
    kind: options.kind,
    pid: child.pid,
    endpoint,
    managementPort: ports.managementPort ?? undefined,
    events,
    get sigtermAt() {
      return sigtermAt;
    },
    exited,
    waitReady,
    terminate,
    kill() {
      clearTimeout(killTimer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
    send(line) {
      if (child.stdin.writable) child.stdin.write(`${line}\n`);
    },
  };
}

/** Status code of a GET, or 0 when it could not be made; one fresh connection per probe, like the kubelet. */
function probe(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path, agent: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}
