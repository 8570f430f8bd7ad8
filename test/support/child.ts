/** Start `test/support/service.ts` as a real child process and follow its JSON-line events. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface ChildEvent {
  readonly t: number;
  readonly event: string;
  readonly [key: string]: unknown;
}

export interface ServiceChild {
  readonly process: ChildProcess;
  readonly port: number;
  readonly managementPort: number;
  readonly events: ChildEvent[];
  readonly stderr: string[];
  /** Resolves with the exit code (or 128 + n for a signal) and the epoch ms it exited. */
  readonly exited: Promise<{ code: number; signal: NodeJS.Signals | null; at: number }>;
  waitFor(predicate: (e: ChildEvent) => boolean, timeoutMs?: number): Promise<ChildEvent>;
  kill(): void;
}

const SERVICE = fileURLToPath(new URL('./service.ts', import.meta.url));

/** A child process that prints JSON-line events on stdout, once it has reported `listening`. */
export interface EventChild {
  readonly process: ChildProcess;
  readonly events: ChildEvent[];
  readonly stderr: string[];
  /** Resolves with the exit code (or 128 + n for a signal) and the epoch ms it exited. */
  readonly exited: Promise<{ code: number; signal: NodeJS.Signals | null; at: number }>;
  /** The `listening` event. */
  readonly listening: ChildEvent;
  waitFor(predicate: (e: ChildEvent) => boolean, timeoutMs?: number): Promise<ChildEvent>;
  kill(): void;
}

/**
 * Spawn `command args` with `KUBEGRACE_GRACE_PERIOD_SECONDS=30` and `env`, collect its JSON-line
 * events, and wait (up to `timeoutMs`, also the default for waitFor) for its `listening` event.
 */
export async function spawnEventChild(
  command: string,
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs: number,
): Promise<EventChild> {
  const child = spawn(command, args, {
    env: { ...process.env, KUBEGRACE_GRACE_PERIOD_SECONDS: '30', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const events: ChildEvent[] = [];
  const stderr: string[] = [];
  const waiters = new Set<() => void>();
  createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      events.push(JSON.parse(line) as ChildEvent);
    } catch {
      stderr.push(`stdout: ${line}\n`);
    }
    for (const w of [...waiters]) w();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));
  const exited = once(child, 'exit').then(([code, signal]) => ({
    code: (code as number | null) ?? 128,
    signal: signal as NodeJS.Signals | null,
    at: Date.now(),
  }));

  function waitFor(predicate: (e: ChildEvent) => boolean, limit = timeoutMs): Promise<ChildEvent> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = events.find(predicate);
        if (found) {
          cleanup();
          resolve(found);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for an event; stderr: ${stderr.join('')}`));
      }, limit);
      const cleanup = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      void exited.then(() => {
        if (waiters.has(check)) {
          cleanup();
          reject(new Error(`child exited before the event; stderr: ${stderr.join('')}`));
        }
      });
      waiters.add(check);
      check();
    });
  }

  try {
    const listening = await waitFor((e) => e.event === 'listening');
    return { process: child, events, stderr, exited, listening, waitFor, kill: () => child.kill('SIGKILL') };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

export async function startService(
  env: Record<string, string> = {},
  timeoutMs = 15_000,
): Promise<ServiceChild> {
  const child = await spawnEventChild(process.execPath, ['--import', 'tsx', SERVICE], env, timeoutMs);
  return {
    ...child,
    port: child.listening.port as number,
    managementPort: child.listening.managementPort as number,
  };
}
