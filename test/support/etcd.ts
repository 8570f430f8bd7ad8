/**
 * A real etcd for tests: the Debian package `etcd-server` (`/usr/bin/etcd`), started on loopback with
 * free ports and a throw-away data directory, killed when the test process exits. Plus a TCP proxy
 * that can stall or reset connections, to play a slow or refusing etcd without touching the real one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

/** Path of the etcd binary: `KUBEGRACE_TEST_ETCD_BIN`, `/usr/bin/etcd`, or `etcd` on PATH. */
export function etcdBinary(): string | undefined {
  const explicit = process.env.KUBEGRACE_TEST_ETCD_BIN;
  if (explicit) return existsSync(explicit) ? explicit : undefined;
  if (existsSync('/usr/bin/etcd')) return '/usr/bin/etcd';
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'etcd'))) return join(dir, 'etcd');
  }
  return undefined;
}

/**
 * `false` when etcd can run here; otherwise the reason to skip, printed loudly. In CI a missing
 * binary is an error, never a skip: a suite that silently skips its real-server tests proves nothing.
 */
export function etcdSkipReason(): string | false {
  if (etcdBinary()) return false;
  const reason =
    'etcd binary not found (install the Debian package etcd-server, or set KUBEGRACE_TEST_ETCD_BIN): ' +
    'the real-etcd registry tests are SKIPPED';
  if (process.env.CI)
    throw new Error(
      `${reason.replace('are SKIPPED', 'cannot run')}, and CI is set: failing instead of skipping`,
    );
  process.stderr.write(`\n${'!'.repeat(100)}\n!! ${reason}\n${'!'.repeat(100)}\n\n`);
  return reason;
}

export interface EtcdServer {
  /** Client URL, `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  readonly process: ChildProcess;
  /** SIGKILL and wait for the exit; the data directory goes too. */
  stop(): Promise<void>;
  /** SIGSTOP: connections stay open and nothing answers (a hung server). */
  pause(): void;
  resume(): void;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Start etcd; retried on a port race with another process, bounded by `timeoutMs` per try. */
export async function startEtcd(timeoutMs = 20_000): Promise<EtcdServer> {
  let lastError: unknown;
  for (let tries = 0; tries < 3; tries++) {
    try {
      return await startOnce(timeoutMs);
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

async function startOnce(timeoutMs: number): Promise<EtcdServer> {
  const binary = etcdBinary();
  if (!binary) throw new Error('etcd binary not found');
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  // tmpfs when there is one: the tests measure kubegrace, not the disk's fsync latency.
  // KUBEGRACE_TEST_ETCD_DATA_PARENT puts it on a real disk instead, to measure with fsync.
  const parent =
    process.env.KUBEGRACE_TEST_ETCD_DATA_PARENT ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
  const dataDir = mkdtempSync(join(parent, 'kubegrace-etcd-'));
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const child = spawn(
    binary,
    [
      '--name',
      'kubegrace-test',
      '--data-dir',
      dataDir,
      '--listen-client-urls',
      client,
      '--advertise-client-urls',
      client,
      '--listen-peer-urls',
      peer,
      '--initial-advertise-peer-urls',
      peer,
      '--initial-cluster',
      `kubegrace-test=${peer}`,
      '--logger',
      'zap',
      '--log-level',
      'error',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  running.add(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    if (stderr.length < 20_000) stderr += chunk;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let dead = false;
  void exited.then(() => {
    dead = true;
    running.delete(child);
  });

  const stop = async (): Promise<void> => {
    if (!dead) {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  };

  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (dead) break;
    try {
      const response = await fetch(`${client}/health`, { signal: AbortSignal.timeout(1000) });
      const body = (await response.json()) as { health?: unknown };
      if (body.health === 'true' || body.health === true) {
        return {
          url: client,
          port: clientPort,
          process: child,
          stop,
          pause: () => child.kill('SIGSTOP'),
          resume: () => child.kill('SIGCONT'),
        };
      }
    } catch {
      // Not listening yet.
    }
    await delay(50);
  }
  await stop();
  throw new Error(`etcd did not become healthy within ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}`);
}

export type ProxyMode = 'forward' | 'stall' | 'reset';

export interface TcpProxy {
  readonly port: number;
  readonly url: string;
  /** `forward` bytes, `stall` (accept and hold, pass nothing), or `reset` every connection (RST). */
  setMode(mode: ProxyMode): void;
  close(): Promise<void>;
}

/** A TCP proxy to 127.0.0.1:`targetPort` whose behaviour a test can switch at any time. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  let mode: ProxyMode = 'forward';
  const pairs = new Set<{ client: Socket; upstream: Socket }>();
  const server = createServer((client) => {
    if (mode === 'reset') {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect(targetPort, '127.0.0.1');
    const pair = { client, upstream };
    pairs.add(pair);
    const end = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    // Bytes pass only in forward mode; in stall mode they vanish and the peer waits for an answer.
    client.on('data', (chunk: Buffer) => {
      if (mode === 'forward') upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (mode === 'forward') client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    setMode(next) {
      mode = next;
      if (next === 'reset') {
        for (const { client, upstream } of pairs) {
          client.resetAndDestroy();
          upstream.destroy();
        }
        pairs.clear();
      }
    },
    async close() {
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      pairs.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
