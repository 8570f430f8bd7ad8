/**
 * Overhead benchmark: requests/s of a hello-world `node:http` server with and without kubegrace
 * attached, in the same run. The server and the load generator are separate processes pinned to
 * separate cores (when `taskset` exists), so the load does not steal the server's CPU.
 *
 *   npm run bench:overhead                      # 5 rounds × 2 variants × 3 s
 *   npm run bench:overhead -- --rounds 3 --duration 2s --connections 32
 *
 * The same file is the server (`--role server`) and the load generator (`--role load`).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { durationFlag, integerFlag, choiceFlag, parseFlags, UsageError } from '../src/cli/demo/flags.js';
import { createKubegrace } from '../src/kubegrace.js';

type Variant = 'plain' | 'kubegrace';

const args = parseFlags('bench:overhead', process.argv.slice(2), {
  role: { type: 'string' },
  variant: { type: 'string' },
  port: { type: 'string' },
  rounds: { type: 'string' },
  duration: { type: 'string' },
  warmup: { type: 'string' },
  connections: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const);

/** Hello world, with kubegrace attached the way a service would: probes on their own port, ready. */
async function serve(variant: Variant): Promise<void> {
  const server = createServer((_req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end('hello world');
  });
  if (variant === 'kubegrace') {
    const kubegrace = createKubegrace({ logger: false, probes: { port: 0, host: '127.0.0.1' } });
    kubegrace.attach(server);
    await kubegrace.start();
    kubegrace.ready();
  }
  // The parent holds stdin: EOF means it is gone, and the server must not outlive it.
  process.stdin.on('end', () => process.exit(0));
  // `cpu` on stdin: report the CPU time this process used, to price a request in CPU microseconds.
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line === 'cpu') process.stdout.write(`${JSON.stringify(process.cpuUsage())}\n`);
  });
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
  });
}

/** One set of keep-alive connections to one server, driven only while its slice is on. */
interface Lane {
  active: boolean;
  counted: number;
  /** Every response, warm-up included: the denominator of CPU per request. */
  total: number;
  errors: number;
  readonly sockets: Socket[];
  /** Responses still owed on connections whose slice just ended. */
  outstanding: number;
  kick(): void;
}

const REQUEST = Buffer.from('GET / HTTP/1.1\r\nHost: bench\r\n\r\n', 'latin1');

/**
 * A lean keep-alive client on raw sockets: one request in flight per connection, responses framed
 * by Content-Length. Cheaper per request than `http.request`, so the server is the bottleneck.
 */
function openLane(port: number, connections: number): Promise<Lane> {
  const lane: Lane = {
    active: false,
    counted: 0,
    total: 0,
    errors: 0,
    sockets: [],
    outstanding: 0,
    kick() {
      for (const socket of lane.sockets) {
        lane.outstanding++;
        socket.write(REQUEST);
      }
    },
  };
  let connected = 0;
  return new Promise((resolve) => {
    for (let i = 0; i < connections; i++) {
      const socket = connect({ port, host: '127.0.0.1', noDelay: true });
      lane.sockets.push(socket);
      let pending = '';
      socket.setEncoding('latin1');
      socket.on('connect', () => {
        if (++connected === connections) resolve(lane);
      });
      socket.on('data', (chunk: string) => {
        pending += chunk;
        for (;;) {
          const headerEnd = pending.indexOf('\r\n\r\n');
          if (headerEnd === -1) return;
          const match = /content-length: *(\d+)/i.exec(pending.slice(0, headerEnd));
          const total = headerEnd + 4 + Number(match?.[1] ?? 0);
          if (pending.length < total) return;
          pending = pending.slice(total);
          lane.outstanding--;
          lane.total++;
          if (lane.active) {
            lane.counted++;
            lane.outstanding++;
            socket.write(REQUEST);
          }
        }
      });
      socket.on('error', () => lane.errors++);
    }
  });
}

/**
 * Drives the two servers in alternating slices, so background noise on a shared machine lands on
 * both variants alike; a round is `durationMs` of load per variant. Prints one JSON line per round.
 */
async function load(
  ports: Record<Variant, number>,
  connections: number,
  rounds: number,
  warmupMs: number,
  durationMs: number,
): Promise<void> {
  const lanes = {
    plain: await openLane(ports.plain, connections),
    kubegrace: await openLane(ports.kubegrace, connections),
  };
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
  const settle = async (lane: Lane): Promise<void> => {
    while (lane.outstanding > 0) await sleep(1);
  };
  const slice = async (variant: Variant, ms: number): Promise<number> => {
    const lane = lanes[variant];
    lane.counted = 0;
    lane.active = true;
    const from = performance.now();
    lane.kick();
    await sleep(ms);
    lane.active = false;
    const counted = lane.counted;
    const elapsed = performance.now() - from;
    await settle(lane);
    return counted / (elapsed / 1000);
  };
  // Warm-up: let both servers' JIT settle before anything counts.
  await slice('plain', warmupMs);
  await slice('kubegrace', warmupMs);
  // The parent reads both servers' CPU clocks now, so start-up and warm-up are not priced in.
  const reader = createInterface({ input: process.stdin });
  const go = new Promise((resolve) => reader.once('line', resolve));
  process.stdout.write(
    `${JSON.stringify({ warm: true, totals: { plain: lanes.plain.total, kubegrace: lanes.kubegrace.total } })}\n`,
  );
  await go;
  // An open stdin would keep this process, and so the parent's wait for it, alive.
  reader.close();
  process.stdin.destroy();
  const sliceMs = 250;
  const slices = Math.max(1, Math.round(durationMs / sliceMs));
  for (let r = 0; r < rounds; r++) {
    const sums: Record<Variant, number> = { plain: 0, kubegrace: 0 };
    for (let k = 0; k < slices; k++) {
      // Alternate which goes first in each pair, so neither always follows the other.
      const pair: Variant[] = (k + r) % 2 === 0 ? ['plain', 'kubegrace'] : ['kubegrace', 'plain'];
      for (const variant of pair) sums[variant] += await slice(variant, sliceMs);
    }
    const errors = lanes.plain.errors + lanes.kubegrace.errors;
    process.stdout.write(
      `${JSON.stringify({ plain: sums.plain / slices, kubegrace: sums.kubegrace / slices, errors })}\n`,
    );
  }
  process.stdout.write(
    `${JSON.stringify({ totals: { plain: lanes.plain.total, kubegrace: lanes.kubegrace.total } })}\n`,
  );
  for (const lane of Object.values(lanes)) for (const socket of lane.sockets) socket.destroy();
}

const hasTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0;

/** Run this file as a child; on a 2-core machine the servers get core 0, the load core 1. */
function child(role: string, cpu: number, extra: readonly string[]): ChildProcess {
  const self = fileURLToPath(import.meta.url);
  const node = [process.execPath, '--import', 'tsx', self, '--role', role, ...extra];
  const [cmd, ...rest] = hasTaskset ? ['taskset', '-c', String(cpu), ...node] : node;
  const proc = spawn(cmd as string, rest, { stdio: ['pipe', 'pipe', 'inherit'] });
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  return proc;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of live) proc.kill('SIGKILL');
});

function lines(proc: ChildProcess, onLine: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on('line', onLine);
    proc.once('exit', (code) =>
      code === 0 || code === null ? resolve() : reject(new Error(`child exited with code ${code}`)),
    );
  });
}

/** User + system CPU microseconds the server has used so far. */
function cpuMicros(server: ChildProcess): Promise<number> {
  const reply = firstLine<{ user: number; system: number }>(server);
  server.stdin?.write('cpu\n');
  return reply.then((usage) => usage.user + usage.system);
}

function firstLine<T>(proc: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    const reader = createInterface({ input: proc.stdout! });
    reader.once('line', (line) => {
      reader.close();
      resolve(JSON.parse(line) as T);
    });
    proc.once('exit', (code) => reject(new Error(`child exited with code ${code} before reporting`)));
  });
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

async function main(): Promise<void> {
  if (args.role === 'server')
    return serve(choiceFlag('variant', args.variant ?? '', ['plain', 'kubegrace'] as const));
  const rounds = args.rounds === undefined ? 5 : integerFlag('rounds', args.rounds, 1, 50);
  const durationMs =
    args.duration === undefined ? 3000 : durationFlag('duration', args.duration, 600_000, 250);
  const warmupMs = args.warmup === undefined ? 1000 : durationFlag('warmup', args.warmup, 60_000);
  const connections =
    args.connections === undefined ? 64 : integerFlag('connections', args.connections, 1, 10_000);
  if (args.role === 'load') {
    const [plain, kubegrace] = (args.port ?? '').split(',').map((p) => integerFlag('port', p, 1, 65535));
    if (plain === undefined || kubegrace === undefined)
      throw new UsageError('--port must be two ports: plain,kubegrace');
    return load({ plain, kubegrace }, connections, rounds, warmupMs, durationMs);
  }
  if (args.help) {
    console.log(
      'Usage: npm run bench:overhead -- [--rounds 5] [--duration 3s] [--warmup 1s] [--connections 64]',
    );
    return;
  }
  console.log(
    `overhead: hello-world node:http, ${rounds} rounds × 2 variants × ${durationMs} ms (in alternating 250 ms slices, ` +
      `after ${warmupMs} ms warm-up each), ${connections} keep-alive connections per server, ` +
      `${hasTaskset ? 'servers on core 0, load on core 1' : 'no taskset: cores shared'}`,
  );
  const servers = {
    plain: child('server', 0, ['--variant', 'plain']),
    kubegrace: child('server', 0, ['--variant', 'kubegrace']),
  };
  const [plainPort, kubegracePort] = await Promise.all([
    firstLine<{ port: number }>(servers.plain),
    firstLine<{ port: number }>(servers.kubegrace),
  ]);
  const loader = child('load', 1, [
    '--port',
    `${plainPort.port},${kubegracePort.port}`,
    '--connections',
    String(connections),
    '--rounds',
    String(rounds),
    '--warmup',
    String(warmupMs),
    '--duration',
    String(durationMs),
  ]);
  const results: Record<Variant, number[]> = { plain: [], kubegrace: [] };
  let errors = 0;
  let totals: Record<Variant, number> | undefined;
  let warm: { totals: Record<Variant, number>; cpu: Promise<[number, number]> } | undefined;
  await lines(loader, (line) => {
    const message = JSON.parse(line) as
      { plain: number; kubegrace: number; errors: number } | { warm?: true; totals: Record<Variant, number> };
    if ('totals' in message) {
      if (message.warm) {
        const cpu = Promise.all([cpuMicros(servers.plain), cpuMicros(servers.kubegrace)]);
        warm = { totals: message.totals, cpu };
        void cpu.then(() => loader.stdin?.write('go\n'));
      } else {
        totals = message.totals;
      }
      return;
    }
    errors = message.errors;
    results.plain.push(message.plain);
    results.kubegrace.push(message.kubegrace);
    console.log(
      `  round ${results.plain.length}: plain ${Math.round(message.plain)} req/s, kubegrace ${Math.round(message.kubegrace)} req/s ` +
        `(${((message.kubegrace / message.plain) * 100).toFixed(1)} %)`,
    );
  });
  const cpu = await Promise.all([cpuMicros(servers.plain), cpuMicros(servers.kubegrace)]);
  for (const server of Object.values(servers)) server.kill('SIGKILL');
  // A server that reset connections would look faster than it is: such a run proves nothing.
  if (errors > 0) throw new Error(`${errors} socket errors during the run`);
  const plain = median(results.plain);
  const withKubegrace = median(results.kubegrace);
  const ratios = results.kubegrace.map((k, i) => k / (results.plain[i] ?? k));
  if (totals && warm) {
    // CPU time per request is what throughput is on a quiet machine, and neighbours cannot steal it.
    const [plainFrom, kubegraceFrom] = await warm.cpu;
    const perRequest = {
      plain: (cpu[0] - plainFrom) / (totals.plain - warm.totals.plain),
      kubegrace: (cpu[1] - kubegraceFrom) / (totals.kubegrace - warm.totals.kubegrace),
    };
    console.log(
      `CPU per request  plain ${perRequest.plain.toFixed(2)} µs, kubegrace ${perRequest.kubegrace.toFixed(2)} µs ` +
        `→ capacity ratio ${((perRequest.plain / perRequest.kubegrace) * 100).toFixed(1)} %`,
    );
  }
  console.log(`median plain     ${Math.round(plain)} req/s`);
  console.log(`median kubegrace ${Math.round(withKubegrace)} req/s`);
  console.log(
    `ratio            ${((withKubegrace / plain) * 100).toFixed(1)} % of medians; median of per-round ratios ${(median(ratios) * 100).toFixed(1)} % (bar ≥ 97 %)`,
  );
}

try {
  await main();
} catch (error) {
  console.error(error instanceof UsageError ? error.message : error);
  process.exitCode = error instanceof UsageError ? 2 : 1;
}
