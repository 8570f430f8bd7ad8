/**
 * Scale benchmark: a kubegrace service holding 10,000 idle keep-alive HTTP/1.1 connections and
 * 1,000 WebSockets (each used once, then idle for 1.5 s) is terminated. Figures: time from the start of the drain phase to the process's
 * exit, failures seen by the clients (anything but a clean FIN on a keep-alive connection, anything
 * but close code 1001 on a WebSocket), peak RSS, event-loop delay during the drain, and what a tracked
 * connection costs in memory (the same connections held by the plain `server.close()` service, in
 * the same run, are the baseline).
 *
 *   npm run bench:scale
 *   npm run bench:scale -- --keep-alive 2000 --websockets 200 --repeat 1
 *
 * Clients run in their own processes (two for keep-alive, one for WebSockets), so 11,000 client
 * sockets neither share the service's file-descriptor limit nor its CPU. Every process needs
 * `ulimit -n` above the connections it holds; the run checks it first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { integerFlag, parseFlags, UsageError } from '../src/cli/flags.js';
import { killAllPods, startPod, type Pod } from '../src/cli/demo/pod.js';
import type { TimedPodEvent } from '../src/cli/demo/pod-events.js';
import { buildServices, servicePath } from './build-services.js';
import { realtimeClients, runRealtime } from './loads/realtime.js';
import { fdLimit, markdownTable, median } from './report.js';

const args = parseFlags('bench:scale', process.argv.slice(2), {
  role: { type: 'string' },
  port: { type: 'string' },
  count: { type: 'string' },
  'keep-alive': { type: 'string' },
  websockets: { type: 'string' },
  repeat: { type: 'string' },
  scenario: { type: 'string' },
  tool: { type: 'string' },
  ports: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const);

/** Connections opened at once by one client process: well inside the listen backlog (511). */
const OPEN_CONCURRENCY = 200;

interface ClientReport {
  readonly opened: number;
  readonly failedToOpen: Record<string, number>;
  /** Ended the way kubegrace promises: FIN on keep-alive, 1001 on WebSockets. */
  readonly clean: number;
  readonly failures: Record<string, number>;
}

const count = (map: Record<string, number>, key: string): void => {
  map[key] = (map[key] ?? 0) + 1;
};

/** A whole response in `text`: framed by Content-Length or, chunked, by its last chunk. */
function responseComplete(text: string): boolean {
  const headerEnd = text.indexOf('\r\n\r\n');
  if (headerEnd === -1) return false;
  const length = /content-length: *(\d+)/i.exec(text.slice(0, headerEnd))?.[1];
  if (length !== undefined) return text.length >= headerEnd + 4 + Number(length);
  return text.endsWith('\r\n0\r\n\r\n');
}

/** Keep-alive clients: one request each (so the connection is a used keep-alive one), then idle. */
async function keepAliveClients(port: number, total: number): Promise<void> {
  const failedToOpen: Record<string, number> = {};
  const failures: Record<string, number> = {};
  const sockets: Socket[] = [];
  let clean = 0;
  let closed = 0;
  /** Until every connection is open, a close is counted but not reported: more are on their way. */
  let opening = true;
  const report = (): void => {
    if (opening || closed < sockets.length) return;
    const summary: ClientReport = { opened: sockets.length, failedToOpen, clean, failures };
    process.stdout.write(`${JSON.stringify({ done: summary })}\n`);
    process.exit(0);
  };
  const request = Buffer.from('GET /work?ms=0 HTTP/1.1\r\nHost: scale\r\n\r\n', 'latin1');
  const openOne = (): Promise<void> =>
    new Promise((resolve) => {
      const socket = connect({ port, host: '127.0.0.1' });
      let answered = false;
      let ended = false;
      let response = '';
      socket.setEncoding('latin1');
      socket.once('connect', () => socket.write(request));
      socket.on('data', (chunk: string) => {
        if (answered) {
          count(failures, 'unexpected data');
          return;
        }
        response += chunk;
        if (responseComplete(response)) {
          answered = true;
          sockets.push(socket);
          resolve();
        }
      });
      socket.on('end', () => {
        ended = true;
      });
      socket.on('error', (error: NodeJS.ErrnoException) => {
        if (answered) count(failures, error.code ?? error.message);
        else count(failedToOpen, error.code ?? error.message);
      });
      socket.on('close', () => {
        if (!answered) {
          resolve();
          return;
        }
        closed++;
        if (ended) clean++;
        else if (!socket.errored) count(failures, 'closed without FIN');
        report();
      });
    });
  for (let next = 0; next < total;) {
    const batch = Math.min(OPEN_CONCURRENCY, total - next);
    await Promise.all(Array.from({ length: batch }, openOne));
    next += batch;
  }
  opening = false;
  process.stdout.write(`${JSON.stringify({ ready: sockets.length, failedToOpen })}\n`);
  // Every connection may already have closed while the others were opening.
  report();
}

/** WebSocket clients: connect, one echo, then idle until the server closes. */
async function webSocketClients(port: number, total: number): Promise<void> {
  const failedToOpen: Record<string, number> = {};
  const failures: Record<string, number> = {};
  let opened = 0;
  let clean = 0;
  let closed = 0;
  /** As for keep-alive: no report until every WebSocket is open. */
  let opening = true;
  const report = (): void => {
    if (opening || closed < opened) return;
    const summary: ClientReport = { opened, failedToOpen, clean, failures };
    process.stdout.write(`${JSON.stringify({ done: summary })}\n`);
    process.exit(0);
  };
  const openOne = (): Promise<void> =>
    new Promise((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
      let open = false;
      ws.on('error', (error: NodeJS.ErrnoException) => {
        if (!open) {
          count(failedToOpen, error.code ?? error.message);
          resolve();
        }
      });
      ws.once('open', () => {
        ws.send(JSON.stringify({ id: 1, ms: 0 }));
      });
      ws.once('message', () => {
        open = true;
        opened++;
        resolve();
      });
      ws.once('close', (code) => {
        if (!open) return;
        closed++;
        if (code === 1001) clean++;
        else count(failures, `close ${code}`);
        report();
      });
    });
  for (let next = 0; next < total;) {
    const batch = Math.min(OPEN_CONCURRENCY / 2, total - next);
    await Promise.all(Array.from({ length: batch }, openOne));
    next += batch;
  }
  opening = false;
  process.stdout.write(`${JSON.stringify({ ready: opened, failedToOpen })}\n`);
  report();
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

interface ClientProcess {
  readonly ready: Promise<{ ready: number; failedToOpen: Record<string, number> }>;
  readonly done: Promise<ClientReport>;
  kill(): void;
}

function startClients(role: 'keep-alive' | 'websocket', port: number, total: number): ClientProcess {
  const self = fileURLToPath(import.meta.url);
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', self, '--role', role, '--port', String(port), '--count', String(total)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  live.add(child);
  child.once('exit', () => live.delete(child));
  const lines = createInterface({ input: child.stdout });
  let onReady: (value: { ready: number; failedToOpen: Record<string, number> }) => void = () => {};
  let onDone: (value: ClientReport) => void = () => {};
  const ready = new Promise<{ ready: number; failedToOpen: Record<string, number> }>((resolve, reject) => {
    onReady = resolve;
    // A no-op once resolved; otherwise hold() would wait forever on a client that died opening.
    // 'close', not 'exit': it comes after the child's last stdout line has been read.
    child.once('close', (code) =>
      reject(new Error(`${role} clients exited with code ${code} before their connections were open`)),
    );
  });
  const done = new Promise<ClientReport>((resolve, reject) => {
    onDone = resolve;
    child.once('close', (code) =>
      reject(new Error(`${role} clients exited with code ${code} before reporting`)),
    );
  });
  // Handled by whoever awaits them; a client killed at teardown must not be an unhandled rejection.
  ready.catch(() => {});
  done.catch(() => {});
  lines.on('line', (line) => {
    const message = JSON.parse(line) as {
      ready?: number;
      failedToOpen?: Record<string, number>;
      done?: ClientReport;
    };
    if (message.done !== undefined) onDone(message.done);
    else if (message.ready !== undefined)
      onReady({ ready: message.ready, failedToOpen: message.failedToOpen ?? {} });
  });
  return { ready, done, kill: () => child.kill('SIGKILL') };
}

type Stats = Record<string, number>;

/** Waits for the next `log` event with this message from the pod. */
function nextStats(events: TimedPodEvent[], msg: string, after: number): Promise<Stats> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = (): void => {
      const found = events.slice(after).find((e) => e.event === 'log' && e.msg === msg);
      if (found?.event === 'log') resolve(found.fields as Stats);
      else if (Date.now() - started > 10_000) reject(new Error(`no '${msg}' figures from the service`));
      else setTimeout(poll, 20);
    };
    poll();
  });
}

async function memory(pod: Pod, events: TimedPodEvent[]): Promise<Stats> {
  const from = events.length;
  pod.send('mem');
  return nextStats(events, 'memory', from);
}

interface Held {
  readonly pod: Pod;
  readonly events: TimedPodEvent[];
  readonly clients: ClientProcess[];
  readonly opened: number;
  readonly failedToOpen: Record<string, number>;
  /** Bytes per connection held: heap and RSS growth over the idle service. */
  readonly heapPerConnection: number;
  readonly rssPerConnection: number;
}

/** Starts the service, opens every connection, and prices them. */
async function hold(tool: 'kubegrace' | 'naive', keepAlive: number, webSockets: number): Promise<Held> {
  const events: TimedPodEvent[] = [];
  const pod = await startPod({
    name: `scale-${tool}`,
    kind: tool,
    script: servicePath(tool),
    graceSeconds: 30,
    env: {
      BENCH_PROTOCOL: 'ws',
      BENCH_STATS: '1',
      KUBEGRACE_PROBES_PORT: '0',
      KUBEGRACE_PROBES_HOST: '127.0.0.1',
      KUBEGRACE_GRACE_PERIOD_SECONDS: '30',
      // The figure is drain start to exit; a short fixed wait keeps the propagate phase out of the way.
      KUBEGRACE_PROPAGATION_STRATEGY: 'fixed',
      KUBEGRACE_PROPAGATION_DELAY_MS: '200',
    },
    onEvent: (event) => events.push(event),
  });
  await pod.waitReady();
  const before = await memory(pod, events);
  const half = Math.ceil(keepAlive / 2);
  const clients = [
    startClients('keep-alive', pod.endpoint.port, half),
    startClients('keep-alive', pod.endpoint.port, keepAlive - half),
    startClients('websocket', pod.endpoint.port, webSockets),
  ];
  const ready = await Promise.all(clients.map((c) => c.ready));
  const opened = ready.reduce((n, r) => n + r.ready, 0);
  const failedToOpen: Record<string, number> = {};
  for (const r of ready)
    for (const [k, n] of Object.entries(r.failedToOpen)) failedToOpen[k] = (failedToOpen[k] ?? 0) + n;
  const after = await memory(pod, events);
  return {
    pod,
    events,
    clients,
    opened,
    failedToOpen,
    heapPerConnection: ((after.heapUsed ?? 0) - (before.heapUsed ?? 0)) / Math.max(1, opened),
    rssPerConnection: ((after.rss ?? 0) - (before.rss ?? 0)) / Math.max(1, opened),
  };
}

interface DrainRun {
  readonly opened: number;
  readonly failedToOpen: Record<string, number>;
  readonly drainToExitMs: number;
  readonly sigtermToExitMs: number;
  readonly exitCode: number;
  readonly outcome: string;
  readonly forced: number;
  readonly clean: number;
  readonly failures: Record<string, number>;
  readonly maxRssBytes: number;
  readonly loopDelayP99Ms: number;
  readonly loopDelayMaxMs: number;
  readonly heapPerConnection: number;
  readonly rssPerConnection: number;
}

/**
 * How long the connections sit idle before SIGTERM. A socket accepted less than a second before the
 * drain gets a second's grace to send its first request (src/drain/http.ts); connections that have
 * served a request and idled are what this benchmark is about, and in a real shutdown the
 * propagation wait alone is longer than that grace.
 */
const IDLE_BEFORE_SIGTERM_MS = 1500;

async function drainRun(keepAlive: number, webSockets: number): Promise<DrainRun> {
  const held = await hold('kubegrace', keepAlive, webSockets);
  const { pod, events } = held;
  try {
    await new Promise((resolve) => setTimeout(resolve, IDLE_BEFORE_SIGTERM_MS));
    const exit = await pod.terminate();
    const reports = await Promise.all(held.clients.map((c) => c.done));
    const drainStart = events.find((e) => e.event === 'phase' && e.phase === 'drain' && e.status === 'start');
    const summary = events.find((e) => e.event === 'summary');
    const stats = await nextStats(events, 'exit', 0);
    const failures: Record<string, number> = {};
    for (const r of reports)
      for (const [k, n] of Object.entries(r.failures)) failures[k] = (failures[k] ?? 0) + n;
    return {
      opened: held.opened,
      failedToOpen: held.failedToOpen,
      drainToExitMs: drainStart === undefined ? NaN : exit.exitedAt - drainStart.at,
      sigtermToExitMs: exit.exitedAt - (pod.sigtermAt ?? exit.exitedAt),
      exitCode: exit.exitCode,
      outcome: summary?.event === 'summary' ? summary.outcome : 'none',
      forced: summary?.event === 'summary' ? summary.forced : NaN,
      clean: reports.reduce((n, r) => n + r.clean, 0),
      failures,
      maxRssBytes: stats.maxRssBytes ?? NaN,
      loopDelayP99Ms: stats.loopDelayP99Ms ?? NaN,
      loopDelayMaxMs: stats.loopDelayMaxMs ?? NaN,
      heapPerConnection: held.heapPerConnection,
      rssPerConnection: held.rssPerConnection,
    };
  } finally {
    pod.kill();
    for (const c of held.clients) c.kill();
  }
}

const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MB`;
const kinds = (map: Record<string, number>): string => {
  const entries = Object.entries(map);
  return entries.length === 0 ? '**0**' : entries.map(([k, n]) => `${k} ${n}`).join(', ');
};

async function main(): Promise<void> {
  const total = args.count === undefined ? 0 : integerFlag('count', args.count, 1, 1_000_000);
  const port = args.port === undefined ? 0 : integerFlag('port', args.port, 1, 65535);
  if (args.role === 'keep-alive') return keepAliveClients(port, total);
  if (args.role === 'websocket') return webSocketClients(port, total);
  if (args.role === 'realtime') {
    return realtimeClients(
      total,
      (args.ports ?? '').split(',').map((p) => integerFlag('ports', p, 1, 65535)),
    );
  }
  if (args.help) {
    console.log(
      'Usage: npm run bench:scale -- [--keep-alive 10000] [--websockets 1000] [--repeat 3]\n' +
        '       npm run bench:scale -- --scenario realtime [--websockets 20000] [--repeat 2] [--tool kubegrace,...]',
    );
    return;
  }
  if (args.scenario !== undefined && args.scenario !== 'realtime' && args.scenario !== 'drain') {
    throw new UsageError(`--scenario must be drain or realtime, received ${args.scenario}`);
  }
  if (args.scenario === 'realtime') {
    return runRealtime({ websockets: args.websockets, repeat: args.repeat, tool: args.tool });
  }
  const keepAlive =
    args['keep-alive'] === undefined ? 10_000 : integerFlag('keep-alive', args['keep-alive'], 1, 100_000);
  const webSockets =
    args.websockets === undefined ? 1000 : integerFlag('websockets', args.websockets, 0, 100_000);
  const repeat = args.repeat === undefined ? 3 : integerFlag('repeat', args.repeat, 1, 20);
  const limit = fdLimit();
  // The service holds every connection (plus its own few), the biggest client process half the keep-alive ones.
  if (limit < keepAlive + webSockets + 200) {
    throw new UsageError(
      `ulimit -n is ${limit}: the service needs a descriptor per connection (${keepAlive + webSockets}). ` +
        `Raise it for this shell (ulimit -n 65536, or prlimit --nofile=65536 --pid $$) and run again.`,
    );
  }
  const started = Date.now();
  buildServices();
  console.log(
    `scale: ${keepAlive} idle keep-alive connections + ${webSockets} WebSockets, ${repeat} drain run(s), ulimit -n ${limit}`,
  );

  // Baseline: the same connections on the plain service, to price what kubegrace adds per connection.
  const plain = await hold('naive', keepAlive, webSockets);
  plain.pod.kill();
  for (const c of plain.clients) c.kill();
  console.log(
    `  plain service: ${plain.opened} connections, ${plain.heapPerConnection.toFixed(0)} B heap and ` +
      `${plain.rssPerConnection.toFixed(0)} B RSS per connection`,
  );

  const runs: DrainRun[] = [];
  for (let i = 0; i < repeat; i++) {
    const run = await drainRun(keepAlive, webSockets);
    runs.push(run);
    console.log(
      `  run ${i + 1}: ${run.opened} open, drain start → exit ${run.drainToExitMs.toFixed(0)} ms ` +
        `(SIGTERM → exit ${run.sigtermToExitMs.toFixed(0)} ms), exit ${run.exitCode} ${run.outcome}, ` +
        `forced ${run.forced}, clean ${run.clean}, failed ${kinds(run.failures)}, peak RSS ${mb(run.maxRssBytes)}, ` +
        `loop delay p99 ${run.loopDelayP99Ms.toFixed(1)} ms max ${run.loopDelayMaxMs.toFixed(1)} ms`,
    );
  }

  const drain = median(runs.map((r) => r.drainToExitMs));
  const failed = runs.reduce((n, r) => n + Object.values(r.failures).reduce((a, b) => a + b, 0), 0);
  const heap = median(runs.map((r) => r.heapPerConnection));
  const rss = median(runs.map((r) => r.rssPerConnection));
  console.log('');
  for (const line of markdownTable(
    [
      'connections held',
      'drain start → exit (median, all runs)',
      'SIGTERM → exit (median)',
      'failed (all runs)',
      'closed cleanly',
      'exit code, outcome, forced',
      'peak RSS (median)',
      'event-loop delay during drain: p99 / max (median)',
    ],
    [
      [
        `${keepAlive} keep-alive + ${webSockets} WebSocket`,
        `**${drain.toFixed(0)} ms** (${runs.map((r) => r.drainToExitMs.toFixed(0)).join(', ')})`,
        `${median(runs.map((r) => r.sigtermToExitMs)).toFixed(0)} ms`,
        failed === 0 ? '**0**' : runs.map((r) => kinds(r.failures)).join('; '),
        runs.map((r) => `${r.clean}/${r.opened}`).join(', '),
        runs.map((r) => `${r.exitCode} ${r.outcome} ${r.forced}`).join('; '),
        mb(median(runs.map((r) => r.maxRssBytes))),
        `${median(runs.map((r) => r.loopDelayP99Ms)).toFixed(1)} / ${median(runs.map((r) => r.loopDelayMaxMs)).toFixed(1)} ms`,
      ],
    ],
  )) {
    console.log(line);
  }
  console.log('');
  for (const line of markdownTable(
    ['service', 'heap per connection', 'RSS per connection'],
    [
      [
        'plain `server.close()`',
        `${plain.heapPerConnection.toFixed(0)} B`,
        `${plain.rssPerConnection.toFixed(0)} B`,
      ],
      ['kubegrace (median of runs)', `${heap.toFixed(0)} B`, `${rss.toFixed(0)} B`],
      [
        '**kubegrace adds**',
        `**${(heap - plain.heapPerConnection).toFixed(0)} B**`,
        `${(rss - plain.rssPerConnection).toFixed(0)} B`,
      ],
    ],
  )) {
    console.log(line);
  }
  const met = drain < 2000 && failed === 0 && runs.every((r) => r.exitCode === 0);
  console.log(
    `\nbar (drained in under 2 s after drain start, zero failures, exit 0): ${met ? 'met' : 'MISSED'}` +
      `\ntotal ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
}

try {
  await main();
} catch (error) {
  console.error(error instanceof UsageError ? error.message : error);
  process.exitCode = error instanceof UsageError ? 2 : 1;
} finally {
  if (args.role === undefined) killAllPods();
}
