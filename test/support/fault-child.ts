/**
 * Start `fault-service.ts` as a real child process (optionally under a low `ulimit -n`), follow its
 * JSON lines, and read what the fault matrix asserts: exit code, summary, final metrics, scrapes.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';
import { spawnEventChild, type ChildEvent } from './child.js';
import { get } from './http.js';

export type FaultEvent = ChildEvent;

export interface FaultSummary extends FaultEvent {
  readonly outcome: string;
  readonly exitCode: number;
  readonly durationMs: number;
  readonly startedAt: number;
  readonly deadlineAt: number;
  readonly phases: Readonly<Record<string, number>>;
  readonly forced: number;
  readonly failures: readonly string[];
}

export interface FaultChild {
  readonly process: ChildProcess;
  readonly port: number;
  readonly managementPort: number;
  /** Open descriptors when it was ready. */
  readonly fds: number;
  readonly events: FaultEvent[];
  readonly stderr: string[];
  /** The exit code (128 + n for a signal) and the epoch ms it exited. */
  readonly exited: Promise<{ code: number; signal: NodeJS.Signals | null; at: number }>;
  waitFor(predicate: (e: FaultEvent) => boolean, timeoutMs?: number): Promise<FaultEvent>;
  summary(): FaultSummary | undefined;
  /** The shutdown metrics' text as the process left (`exit` event). */
  finalMetrics(): string | undefined;
  kill(): void;
}

const SERVICE = fileURLToPath(new URL('./fault-service.ts', import.meta.url));

export interface FaultChildOptions {
  /** Run under `ulimit -n` of this many descriptors. */
  readonly fdLimit?: number;
  readonly startTimeoutMs?: number;
  /** Node's own flags, before the script (e.g. `--inspect=127.0.0.1:0`). */
  readonly nodeArgs?: readonly string[];
}

export async function startFaultService(
  env: Record<string, string> = {},
  options: FaultChildOptions = {},
): Promise<FaultChild> {
  const node = [process.execPath, ...(options.nodeArgs ?? []), '--import', 'tsx', SERVICE];
  const [command, args] =
    options.fdLimit === undefined
      ? [node[0] as string, node.slice(1)]
      : // exec: the node process takes the shell's pid, so signals reach it directly.
        ['bash', ['-c', `ulimit -n ${options.fdLimit} && exec "$@"`, 'fault-service', ...node]];
  const child = await spawnEventChild(command, args, env, options.startTimeoutMs ?? 20_000);
  const { events, listening } = child;
  return {
    ...child,
    port: listening.port as number,
    managementPort: listening.managementPort as number,
    fds: listening.fds as number,
    summary: () => events.find((e) => e.event === 'summary') as FaultSummary | undefined,
    finalMetrics: () => events.find((e) => e.event === 'exit')?.metrics as string | undefined,
  };
}

/**
 * `startFaultService` for one test file: every child it started and that is still running is killed
 * when the file's tests end.
 */
export function faultServices(): (
  env?: Record<string, string>,
  options?: FaultChildOptions,
) => Promise<FaultChild> {
  const children = new Set<FaultChild>();
  after(() => {
    for (const c of children) c.kill();
  });
  return async (env = {}, options = {}) => {
    const child = await startFaultService(env, options);
    children.add(child);
    return child;
  };
}

/**
 * The value of one series in a Prometheus text exposition: `name` with at least these labels (in any
 * order); undefined when no line matches.
 */
export function metricValue(
  text: string | undefined,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number | undefined {
  for (const line of text?.split('\n') ?? []) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = new Map(
      [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => found.get(k) === v)) return Number(match[3]);
  }
  return undefined;
}

/**
 * Scrape `/metrics` every `intervalMs` until the process exits; resolves with the last body that
 * counted a shutdown (or the last body at all). Errors (the server closing) end nothing early.
 */
export async function scrapeUntilExit(child: FaultChild, intervalMs = 100): Promise<string | undefined> {
  let last: string | undefined;
  let exited = false;
  void child.exited.then(() => (exited = true));
  while (!exited) {
    try {
      const { status, body } = await get(child.managementPort, '/metrics', { timeoutMs: 2000 });
      if (status === 200 && (last === undefined || !hasShutdown(last) || hasShutdown(body))) last = body;
    } catch {
      // the management server closes as the process leaves
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  return last;
}

const hasShutdown = (text: string): boolean => /^kubegrace_shutdowns_total\{/m.test(text);
