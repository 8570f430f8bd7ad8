/** Start `test/support/metrics-service.ts` as a real child process and follow its JSON lines. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface MetricsChild {
  readonly process: ChildProcess;
  readonly port: number;
  readonly managementPort: number;
  readonly lingerPort: number | undefined;
  /** Parsed stdout lines of the fixture. */
  readonly events: Record<string, unknown>[];
  /** kubegrace's JSON log lines (stderr), parsed where they parse. */
  readonly logs: Record<string, unknown>[];
  readonly stderr: string[];
  readonly exited: Promise<{ code: number | null; at: number }>;
  kill(): void;
}

const SERVICE = fileURLToPath(new URL('./metrics-service.ts', import.meta.url));

export async function startMetricsService(
  env: Record<string, string>,
  timeoutMs = 30_000,
): Promise<MetricsChild> {
  const child = spawn(process.execPath, ['--import', 'tsx', SERVICE], {
    env: { ...process.env, KUBEGRACE_GRACE_PERIOD_SECONDS: '30', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const events: Record<string, unknown>[] = [];
  const logs: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      events.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      stderr.push(`stdout: ${line}\n`);
    }
  });
  createInterface({ input: child.stderr }).on('line', (line) => {
    stderr.push(`${line}\n`);
    try {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // not a log line (a Node warning, a stack trace)
    }
  });
  const exited = once(child, 'exit').then(([code]) => ({ code: code as number | null, at: Date.now() }));
  const until = Date.now() + timeoutMs;
  for (;;) {
    const listening = events.find((e) => e.event === 'listening');
    if (listening) {
      return {
        process: child,
        port: listening.port as number,
        managementPort: listening.managementPort as number,
        lingerPort: listening.lingerPort as number | undefined,
        events,
        logs,
        stderr,
        exited,
        kill: () => child.kill('SIGKILL'),
      };
    }
    if (child.exitCode !== null || Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error(`metrics service did not start: ${stderr.join('')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
