/**
 * Smoke-test harness for examples/: start an example as a real child process (as its docs say:
 * `node --import tsx examples/<name>/server.ts`), put keep-alive load on it, and read what it logged.
 *
 * The load plays a kube-proxy-style client pool: keep-alive connections, a new connection whenever a
 * response says `Connection: close`, and "routing" that a test turns off some time after SIGTERM, the
 * way endpoints stop pointing at a terminating pod only after a propagation lag. A failed request is
 * any error or non-2xx answer.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Agent, request } from 'node:http';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Short phases, so each smoke test takes seconds: the budget is 1 + 3 + 5 + 3 + 1 = 13 s of 20 s.
 * Examples read these like any KUBEGRACE_* setting.
 */
export const FAST_SHUTDOWN: Readonly<Record<string, string>> = {
  KUBEGRACE_GRACE_PERIOD_SECONDS: '20',
  KUBEGRACE_UNREADY_TIMEOUT_MS: '1000',
  KUBEGRACE_PROPAGATION_QUIET_PERIOD_MS: '300',
  KUBEGRACE_PROPAGATION_MAX_MS: '3000',
  KUBEGRACE_DRAIN_TIMEOUT_MS: '5000',
  KUBEGRACE_CLEANUP_TIMEOUT_MS: '3000',
  KUBEGRACE_SAFETY_MARGIN_MS: '1000',
};

export interface LogRecord {
  readonly msg?: string;
  readonly level?: string;
  readonly [key: string]: unknown;
}

export interface RunningExample {
  readonly name: string;
  readonly process: ChildProcess;
  readonly port: number;
  readonly managementPort: number;
  /** Lines the example printed on stdout. */
  readonly stdout: string[];
  /** kubegrace's JSON log lines (stderr); other stderr lines are kept in `stderrText`. */
  readonly logs: LogRecord[];
  readonly stderrText: string[];
  /** Exit code (128 + n after a signal) and when it happened. */
  readonly exited: Promise<{ code: number; signal: NodeJS.Signals | null; at: number }>;
  /** The `shutdown complete` record, once logged. */
  summary(): LogRecord | undefined;
  /** Everything the example wrote, for assertion messages. */
  output(): string;
  /** SIGKILL if still running (test clean-up). */
  kill(): void;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Start `examples/<name>/server.ts` with PORT=0 and a free management port; resolves once it is ready. */
export async function startExample(
  name: string,
  env: Readonly<Record<string, string>> = {},
  timeoutMs = 20_000,
): Promise<RunningExample> {
  // Nothing from the parent's environment may change the example's settings or put it "in a cluster".
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(
      ([key]) => !key.startsWith('KUBEGRACE_') && !key.startsWith('KUBERNETES_') && key !== 'PORT',
    ),
  );
  const child = spawn(process.execPath, ['--import', 'tsx', `examples/${name}/server.ts`], {
    cwd: repoRoot,
    env: {
      ...inherited,
      PORT: '0',
      KUBEGRACE_PROBES_PORT: '0',
      ...FAST_SHUTDOWN,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const stdout: string[] = [];
  const logs: LogRecord[] = [];
  const stderrText: string[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => stdout.push(line));
  createInterface({ input: child.stderr }).on('line', (line) => {
    try {
      logs.push(JSON.parse(line) as LogRecord);
    } catch {
      stderrText.push(line);
    }
  });
  const exited = once(child, 'exit').then(([code, signal]) => {
    running.delete(child);
    return {
      code: (code as number | null) ?? 128,
      signal: signal as NodeJS.Signals | null,
      at: Date.now(),
    };
  });
  const output = (): string =>
    [...stdout, ...logs.map((l) => JSON.stringify(l)), ...stderrText].join('\n').slice(-6000);

  const deadline = Date.now() + timeoutMs;
  let ports: RegExpExecArray | null = null;
  let exitedEarly = false;
  void exited.then(() => (exitedEarly = true));
  while (!ports) {
    ports = stdout.map((l) => /listening on :(\d+), management on :(\d+)/.exec(l)).find((m) => m) ?? null;
    if (ports) break;
    if (exitedEarly || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`examples/${name} did not start listening:\n${output()}`);
    }
    await delay(25);
  }
  const example: RunningExample = {
    name,
    process: child,
    port: Number(ports[1]),
    managementPort: Number(ports[2]),
    stdout,
    logs,
    stderrText,
    exited,
    summary: () => logs.find((l) => l.msg === 'shutdown complete'),
    output,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
  // Ready means /readyz says so, as the kubelet would see it.
  while ((await get(example.managementPort, '/readyz').catch(() => 0)) !== 200) {
    if (exitedEarly || Date.now() > deadline) {
      example.kill();
      throw new Error(`examples/${name} never turned ready:\n${output()}`);
    }
    await delay(25);
  }
  return example;
}

/** One GET without keep-alive; resolves with the status code. */
export function get(port: number, path: string): Promise<number> {
  return send(port, 'GET', path).then((r) => r.status);
}

/** One request without keep-alive; resolves with status and body. */
export function send(port: number, method: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

export interface LoadResult {
  readonly ok: number;
  /** Every failed request: method, path, and the error or status. */
  readonly failures: readonly string[];
  /** Requests answered 2xx that were sent after `markSignal()`. */
  readonly okAfterSignal: number;
  /** Responses that asked the client to close the connection (kubegrace's shutdown behaviour). */
  readonly connectionClose: number;
  /** TCP connections the pool opened. */
  readonly connections: number;
}

export interface Load {
  /** From now on, count successes as "after the signal". */
  markSignal(): void;
  /** Stop sending new requests (endpoints moved away); resolves when every request in flight ended. */
  stop(): Promise<LoadResult>;
}

/** `concurrency` clients in one keep-alive pool, each sending `path` back to back. */
export function startLoad(
  port: number,
  options: { readonly concurrency?: number; readonly path?: string; readonly method?: string } = {},
): Load {
  const concurrency = options.concurrency ?? 6;
  const method = options.method ?? 'GET';
  const path = options.path ?? '/';
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const sockets = new WeakSet<Socket>();
  let routing = true;
  let afterSignal = false;
  const result = { ok: 0, okAfterSignal: 0, connectionClose: 0, connections: 0, failures: [] as string[] };

  function one(): Promise<void> {
    const sentAfterSignal = afterSignal;
    return new Promise<void>((resolve) => {
      const req = request({ host: '127.0.0.1', port, method, path, agent, timeout: 15_000 }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.headers.connection === 'close') result.connectionClose++;
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            result.ok++;
            if (sentAfterSignal) result.okAfterSignal++;
          } else {
            result.failures.push(`${method} ${path}: HTTP ${status}`);
          }
          resolve();
        });
        res.on('error', (error) => {
          result.failures.push(`${method} ${path}: ${error.message}`);
          resolve();
        });
      });
      req.on('socket', (socket: Socket) => {
        if (!sockets.has(socket)) {
          sockets.add(socket);
          result.connections++;
        }
      });
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', (error: NodeJS.ErrnoException) => {
        result.failures.push(`${method} ${path}: ${error.code ?? error.message}`);
        resolve();
      });
      req.end();
    });
  }

  const clients = Array.from({ length: concurrency }, async () => {
    while (routing) await one();
  });

  return {
    markSignal: () => {
      afterSignal = true;
    },
    async stop() {
      routing = false;
      await Promise.all(clients);
      agent.destroy();
      return { ...result, failures: [...result.failures] };
    },
  };
}

/** Rejects when `promise` takes longer than `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The common scenario: load, SIGTERM, traffic keeps arriving for `lagMs` (endpoint propagation),
 * then stops; the example must answer everything and exit on its own.
 */
export async function loadThenTerminate(
  example: RunningExample,
  options: {
    readonly path?: string;
    readonly method?: string;
    readonly concurrency?: number;
    readonly warmupMs?: number;
    readonly lagMs?: number;
  } = {},
): Promise<{
  load: LoadResult;
  exit: { code: number; signal: NodeJS.Signals | null; at: number };
  /** When SIGTERM was sent (epoch ms). */
  signalledAt: number;
}> {
  const load = startLoad(example.port, options);
  await delay(options.warmupMs ?? 400);
  const signalledAt = Date.now();
  example.process.kill('SIGTERM');
  load.markSignal();
  await delay(options.lagMs ?? 300);
  const result = await within(load.stop(), 15_000, `${example.name}: the requests in flight`);
  const exit = await within(example.exited, 20_000, `${example.name}: exit after SIGTERM`);
  return { load: result, exit, signalledAt };
}

/**
 * `loadThenTerminate`, then what every example owes: no failed request, requests sent after SIGTERM
 * served, exit 0, a clean summary without failures (a cleanup hook that threw would show there).
 */
export async function assertServedThroughShutdown(
  example: RunningExample,
  options: Parameters<typeof loadThenTerminate>[1],
): Promise<LoadResult> {
  const { load, exit } = await loadThenTerminate(example, options);
  assert.deepEqual(load.failures, [], example.output());
  assert.ok(load.ok > 20, `only ${load.ok} requests answered`);
  assert.ok(load.okAfterSignal > 0, 'requests sent after SIGTERM must still be served');
  assert.equal(exit.code, 0, example.output());
  const summary = example.summary();
  assert.equal(summary?.outcome, 'clean', example.output());
  assert.deepEqual(summary?.failures, []);
  return load;
}
