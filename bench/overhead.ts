/**
 * Overhead benchmark: requests per second, p99 latency and CPU per request of hello-world `node:http`
 * and express services, each with and without kubegrace attached, in the same run. The servers and
 * the load generator are separate processes pinned to separate cores (when `taskset` exists), so the
 * load does not steal the servers' CPU.
 *
 *   npm run bench:overhead                      # node:http and express, 5 rounds × 3 s per variant
 *   npm run bench:overhead -- --app http --rounds 3 --duration 2s --connections 32
 *   npm run bench:overhead -- --metrics         # kubegrace with `kubegrace/metrics` instrumented too
 *   npm run bench:overhead -- --aa              # calibration: both servers bare, to see the noise floor
 *
 * The same file is the server (`--role server`) and the load generator (`--role load`).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { durationFlag, integerFlag, choiceFlag, parseFlags, UsageError } from '../src/cli/flags.js';
import { createKubegrace } from '../src/kubegrace.js';
import { markdownTable, median, percentile } from './report.js';

const APPS = ['http', 'express'] as const;
type App = (typeof APPS)[number];
type Variant = 'plain' | 'kubegrace';
const VARIANTS: readonly Variant[] = ['plain', 'kubegrace'];

const args = parseFlags('bench:overhead', process.argv.slice(2), {
  role: { type: 'string' },
  app: { type: 'string' },
  variant: { type: 'string' },
  port: { type: 'string' },
  rounds: { type: 'string' },
  duration: { type: 'string' },
  warmup: { type: 'string' },
  connections: { type: 'string' },
  metrics: { type: 'boolean' },
  aa: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const);

/**
 * Hello world, with kubegrace attached the way a service would: probes on their own port, ready;
 * with `metrics`, also `.use(metrics())`ed (prom-client collectors, `/metrics` on the probe port), as a
 * service that uses the dashboards runs it.
 */
async function serve(app: App, variant: Variant, metrics: boolean): Promise<void> {
  let server: Server;
  if (app === 'http') {
    server = createServer((_req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end('hello world');
    });
  } else {
    const application = express();
    application.get('/', (_req, res) => {
      res.type('text/plain').send('hello world');
    });
    server = createServer(application);
  }
  if (variant === 'kubegrace') {
    const kubegrace = createKubegrace({ logger: false, probes: { port: 0, host: '127.0.0.1' } });
    kubegrace.attach(server);
    if (metrics) {
      const { metrics: metricsIntegration } = await import('../src/metrics/index.js');
      kubegrace.use(metricsIntegration());
    }
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
  /** Latencies (ms) of the responses counted in the current round. */
  latencies: number[];
  kick(): void;
}

const REQUEST = Buffer.from('GET / HTTP/1.1\r\nHost: bench\r\n\r\n', 'latin1');

/**
 * A lean keep-alive client on raw sockets: one request in flight per connection, responses framed
 * by Content-Length. Cheaper per request than `http.request`, so the server is the bottleneck.
 */
function openLane(port: number, connections: number): Promise<Lane> {
  const sentAt: number[] = [];
  const send = (socket: Socket, index: number): void => {
    lane.outstanding++;
    sentAt[index] = performance.now();
    socket.write(REQUEST);
  };
  const lane: Lane = {
    active: false,
    counted: 0,
    total: 0,
    errors: 0,
    sockets: [],
    outstanding: 0,
    latencies: [],
    kick() {
      lane.sockets.forEach(send);
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
            lane.latencies.push(performance.now() - (sentAt[i] ?? 0));
            send(socket, i);
          }
        }
      });
      socket.on('error', () => lane.errors++);
    }
  });
}

/**
 * Drives one app's two servers in alternating slices, so background noise on a shared machine lands
 * on both variants alike; a round is `durationMs` of load per variant. Prints one JSON line per round.
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
    for (const lane of Object.values(lanes)) lane.latencies = [];
    for (let k = 0; k < slices; k++) {
      // Alternate which goes first in each pair, so neither always follows the other.
      const pair: Variant[] = (k + r) % 2 === 0 ? ['plain', 'kubegrace'] : ['kubegrace', 'plain'];
      for (const variant of pair) sums[variant] += await slice(variant, sliceMs);
    }
    const errors = lanes.plain.errors + lanes.kubegrace.errors;
    process.stdout.write(
      `${JSON.stringify({
        rps: { plain: sums.plain / slices, kubegrace: sums.kubegrace / slices },
        p99: {
          plain: percentile(lanes.plain.latencies, 99),
          kubegrace: percentile(lanes.kubegrace.latencies, 99),
        },
        errors,
      })}\n`,
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

interface AppResult {
  readonly app: App;
  readonly rps: Record<Variant, number[]>;
  readonly p99: Record<Variant, number[]>;
  /** CPU µs per request after the warm-up. */
  readonly cpu: Record<Variant, number>;
}

type LoadMessage =
  | { rps: Record<Variant, number>; p99: Record<Variant, number>; errors: number }
  | { warm?: true; totals: Record<Variant, number> };

/** What the second server runs: kubegrace (with or without metrics), or bare again for an A/A run. */
type Second = 'kubegrace' | 'metrics' | 'aa';

async function measure(
  app: App,
  second: Second,
  connections: number,
  rounds: number,
  warmupMs: number,
  durationMs: number,
): Promise<AppResult> {
  const servers = {
    plain: child('server', 0, ['--app', app, '--variant', 'plain']),
    kubegrace: child('server', 0, [
      '--app',
      app,
      '--variant',
      second === 'aa' ? 'plain' : 'kubegrace',
      ...(second === 'metrics' ? ['--metrics'] : []),
    ]),
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
  const rps: Record<Variant, number[]> = { plain: [], kubegrace: [] };
  const p99: Record<Variant, number[]> = { plain: [], kubegrace: [] };
  let errors = 0;
  let totals: Record<Variant, number> | undefined;
  let warm: { totals: Record<Variant, number>; cpu: Promise<[number, number]> } | undefined;
  await lines(loader, (line) => {
    const message = JSON.parse(line) as LoadMessage;
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
    for (const variant of VARIANTS) {
      rps[variant].push(message.rps[variant]);
      p99[variant].push(message.p99[variant]);
    }
    console.log(
      `  ${app} round ${rps.plain.length}: plain ${Math.round(message.rps.plain)} req/s (p99 ${message.p99.plain.toFixed(2)} ms), ` +
        `${second === 'aa' ? 'plain again' : 'kubegrace'} ${Math.round(message.rps.kubegrace)} req/s (p99 ${message.p99.kubegrace.toFixed(2)} ms) ` +
        `→ ${((message.rps.kubegrace / message.rps.plain) * 100).toFixed(1)} %`,
    );
  });
  const cpuAtEnd = await Promise.all([cpuMicros(servers.plain), cpuMicros(servers.kubegrace)]);
  for (const server of Object.values(servers)) server.kill('SIGKILL');
  // A server that reset connections would look faster than it is: such a run proves nothing.
  if (errors > 0) throw new Error(`${errors} socket errors during the ${app} run`);
  if (totals === undefined || warm === undefined) throw new Error(`the ${app} load reported no totals`);
  const [plainFrom, kubegraceFrom] = await warm.cpu;
  return {
    app,
    rps,
    p99,
    cpu: {
      plain: (cpuAtEnd[0] - plainFrom) / (totals.plain - warm.totals.plain),
      kubegrace: (cpuAtEnd[1] - kubegraceFrom) / (totals.kubegrace - warm.totals.kubegrace),
    },
  };
}

const percent = (ratio: number): string => `${(ratio * 100).toFixed(1)} %`;

async function main(): Promise<void> {
  if (args.role === 'server') {
    return serve(
      choiceFlag('app', args.app ?? '', APPS),
      choiceFlag('variant', args.variant ?? '', ['plain', 'kubegrace'] as const),
      args.metrics === true,
    );
  }
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
      'Usage: npm run bench:overhead -- [--app http,express] [--rounds 5] [--duration 3s] [--warmup 1s] [--connections 64] [--metrics | --aa]\n' +
        '  --metrics   the kubegrace server also runs .use(metrics()) from kubegrace/metrics (prom-client)\n' +
        '  --aa        calibration: the second server is bare too, so the ratios show the noise floor',
    );
    return;
  }
  if (args.metrics === true && args.aa === true)
    throw new UsageError('--metrics and --aa exclude each other');
  const second: Second = args.aa === true ? 'aa' : args.metrics === true ? 'metrics' : 'kubegrace';
  const label = { kubegrace: '', metrics: ' + metrics', aa: ' A/A' }[second];
  const apps =
    args.app === undefined ? [...APPS] : args.app.split(',').map((a) => choiceFlag('app', a.trim(), APPS));
  console.log(
    `overhead: hello world on ${apps.join(' and ')}, ${second === 'aa' ? 'bare vs bare (A/A calibration)' : `bare vs kubegrace${second === 'metrics' ? ' with metrics' : ''}`}, ${rounds} rounds × 2 variants × ${durationMs} ms (in alternating ` +
      `250 ms slices, after ${warmupMs} ms warm-up each), ${connections} keep-alive connections per server, ` +
      `${hasTaskset ? 'servers on core 0, load on core 1' : 'no taskset: cores shared'}`,
  );
  const results: AppResult[] = [];
  for (const app of apps) results.push(await measure(app, second, connections, rounds, warmupMs, durationMs));

  const rows = results.map((r) => {
    const plain = median(r.rps.plain);
    const ours = median(r.rps.kubegrace);
    const ratios = r.rps.kubegrace.map((k, i) => k / (r.rps.plain[i] ?? k));
    const cpuRatio = r.cpu.plain / r.cpu.kubegrace;
    return [
      `${r.app === 'http' ? 'node:http' : 'express'}${label}`,
      `${Math.round(plain)} / ${Math.round(ours)}`,
      `**${percent(ours / plain)}**`,
      percent(median(ratios)),
      `${median(r.p99.plain).toFixed(2)} / ${median(r.p99.kubegrace).toFixed(2)} ms`,
      `${r.cpu.plain.toFixed(2)} / ${r.cpu.kubegrace.toFixed(2)} µs`,
      `**${percent(cpuRatio)}**`,
      `${(r.cpu.kubegrace - r.cpu.plain).toFixed(2)} µs`,
    ];
  });
  console.log('');
  for (const line of markdownTable(
    [
      'app',
      'req/s, median of rounds: bare / kubegrace',
      'throughput ratio',
      'median per-round ratio',
      'p99 latency, median: bare / kubegrace',
      'CPU per request: bare / kubegrace',
      'capacity ratio (CPU)',
      'kubegrace costs',
    ],
    rows,
  )) {
    console.log(line);
  }
  // The bar is on throughput, the ratio of the medians (the table's headline column).
  const verdicts = results.map((r) => {
    const ratio = median(r.rps.kubegrace) / median(r.rps.plain);
    return `${r.app === 'http' ? 'node:http' : 'express'} ${percent(ratio)}${ratio >= 0.97 ? '' : ' (below)'}`;
  });
  const met = results.every((r) => median(r.rps.kubegrace) / median(r.rps.plain) >= 0.97);
  if (second === 'aa') {
    console.log(
      `\nA/A calibration (both bare): ${verdicts.join(', ')}; the spread around 100 % is the noise floor`,
    );
  } else {
    console.log(
      `\nbar (throughput with kubegrace${second === 'metrics' ? ' and metrics' : ''} ≥ 97 % of bare, ratio of medians): ` +
        `${met ? 'met' : 'MISSED'}, ${verdicts.join(', ')}`,
    );
  }
}

try {
  await main();
} catch (error) {
  console.error(error instanceof UsageError ? error.message : error);
  process.exitCode = error instanceof UsageError ? 2 : 1;
}
