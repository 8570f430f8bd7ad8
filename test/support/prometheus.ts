/**
 * Real Prometheus, Pushgateway and Chromium for the metrics tests (Debian packages `prometheus`,
 * `prometheus-pushgateway`, `chromium`). Each server runs on a free loopback port with a temp
 * directory and is stopped by the test that started it.
 *
 * A missing binary skips the test with a loud reason on a workstation, but fails it under CI
 * (`CI` set): a green CI run must never mean "nothing was checked".
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROMETHEUS = '/usr/bin/prometheus';
export const PROMTOOL = '/usr/bin/promtool';
export const PUSHGATEWAY = '/usr/bin/prometheus-pushgateway';
export const CHROMIUM = '/usr/bin/chromium';

const PACKAGES: Readonly<Record<string, string>> = {
  [PROMETHEUS]: 'prometheus',
  [PROMTOOL]: 'prometheus',
  [PUSHGATEWAY]: 'prometheus-pushgateway',
  [CHROMIUM]: 'chromium',
};

/**
 * `false` when every binary is there; otherwise the skip reason (printed), or — under CI — a
 * thrown error, so the test file fails instead of passing empty.
 */
export function skipUnlessInstalled(...binaries: string[]): string | false {
  const missing = binaries.filter((b) => !existsSync(b));
  if (missing.length === 0) return false;
  const packages = [...new Set(missing.map((b) => PACKAGES[b] ?? b))].join(' ');
  const reason = `missing ${missing.join(', ')}: apt-get install -y ${packages}`;
  if (process.env.CI) throw new Error(`CI must run the metrics tests, but ${reason}`);
  process.stderr.write(`\n*** SKIPPING: ${reason} ***\n\n`);
  return `SKIPPED: ${reason}`;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface RunningServer {
  readonly url: string;
  readonly dir: string;
  readonly output: string[];
  stop(): Promise<void>;
}

async function startServer(
  binary: string,
  args: (port: number, dir: string) => Promise<string[]>,
  name: string,
  readyTimeoutMs: number,
): Promise<RunningServer> {
  const dir = await mkdtemp(join(tmpdir(), `kubegrace-${name}-`));
  // A port picked free can be taken before the server binds it (other tests run alongside): retry.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const child = spawn(binary, await args(port, dir), { stdio: ['ignore', 'pipe', 'pipe'] });
    const output: string[] = [];
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => output.push(chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => output.push(chunk));
    const exited = once(child, 'exit');
    const url = `http://127.0.0.1:${port}`;
    const stop = async (): Promise<void> => {
      await stopChild(child, exited);
      await rm(dir, { recursive: true, force: true });
    };
    try {
      await waitReady(`${url}/-/ready`, child, readyTimeoutMs);
      return { url, dir, output, stop };
    } catch (error) {
      await stopChild(child, exited);
      const bindFailed = output.join('').includes('address already in use');
      if (!bindFailed || attempt >= 3) {
        await rm(dir, { recursive: true, force: true });
        throw new Error(`${name} did not become ready: ${String(error)}\n${output.join('').slice(-2000)}`);
      }
    }
  }
}

async function stopChild(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

async function waitReady(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`not ready after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export interface Prometheus extends RunningServer {
  /** `GET /api/v1/<path>`; throws unless Prometheus answers `status: success`. */
  api<T = unknown>(path: string, params?: Record<string, string | string[]>): Promise<T>;
  query(expr: string, time?: number): Promise<PromSeries[]>;
  queryRange(expr: string, start: number, end: number, stepSeconds?: number): Promise<PromSeries[]>;
}

export interface PromSeries {
  readonly metric: Record<string, string>;
  readonly value?: [number, string];
  readonly values?: [number, string][];
}

/** The repository's alert rules, as Prometheus loads them. */
export const RULES_FILE = fileURLToPath(new URL('../../alerts/kubegrace.rules.yaml', import.meta.url));

/**
 * A Prometheus config that scrapes and evaluates every second with the repository's alert rules;
 * `scrapeConfigs` is the YAML list under `scrape_configs:`, indented by two spaces.
 */
export function fastRulesConfig(scrapeConfigs: string): string {
  return `
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files:
  - ${JSON.stringify(RULES_FILE)}
scrape_configs:
${scrapeConfigs}`;
}

/** Prometheus with `config` (YAML) written to its temp directory; ready once `/-/ready` answers. */
export async function startPrometheus(config: string, readyTimeoutMs = 30_000): Promise<Prometheus> {
  const server = await startServer(
    PROMETHEUS,
    async (port, dir) => {
      const file = join(dir, 'prometheus.yml');
      await writeFile(file, config);
      return [
        `--config.file=${file}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ];
    },
    'prometheus',
    readyTimeoutMs,
  );
  async function api<T>(path: string, params: Record<string, string | string[]> = {}): Promise<T> {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      for (const v of Array.isArray(value) ? value : [value]) search.append(key, v);
    }
    const res = await fetch(`${server.url}/api/v1/${path}?${search.toString()}`, {
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await res.json()) as { status: string; data: T; error?: string; errorType?: string };
    if (body.status !== 'success') {
      throw new Error(
        `Prometheus rejected ${path} ${JSON.stringify(params)}: ${body.errorType}: ${body.error}`,
      );
    }
    return body.data;
  }
  return {
    ...server,
    api,
    async query(expr, time) {
      const data = await api<{ result: PromSeries[] }>('query', {
        query: expr,
        ...(time === undefined ? {} : { time: String(time / 1000) }),
      });
      return data.result;
    },
    async queryRange(expr, start, end, stepSeconds = 1) {
      const data = await api<{ result: PromSeries[] }>('query_range', {
        query: expr,
        start: String(start / 1000),
        end: String(end / 1000),
        step: String(stepSeconds),
      });
      return data.result;
    },
  };
}

export async function startPushgateway(readyTimeoutMs = 20_000): Promise<RunningServer> {
  return startServer(
    PUSHGATEWAY,
    // The admin API lets a test wipe the groups of the previous one.
    async (port) => [`--web.listen-address=127.0.0.1:${port}`, '--log.level=warn', '--web.enable-admin-api'],
    'pushgateway',
    readyTimeoutMs,
  );
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to completion (promtool, chromium), killing it after `timeoutMs`. */
export async function run(
  command: string,
  args: readonly string[],
  options: { cwd?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  const child = spawn(command, args, { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Polls `check` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  everyMs = 250,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > until)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`,
      );
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
