/**
 * The realtime scenario of the scale benchmark (issue 18): old pods holding many idle WebSocket
 * clients are rolled, and the clients reconnect through a Service table to the surviving pods, the
 * way real clients do: a clean close (1000, 1001, 1012) reconnects after a small jitter (0–100 ms),
 * anything else after a 1 s backoff (plus the jitter) and counts as a failure.
 *
 * Per tool and run: 2 old pods (the tool's service) and 2 surviving pods
 * (`services/realtime-survivor.ts`, which count the WebSockets they accept in 100 ms bins). The
 * clients (in their own processes) open to the old pods; the survivors join the table; then the
 * rollout: old pod i gets SIGTERM at i × 1 s, and its endpoint leaves the table 500 ms after its
 * SIGTERM (propagation). The run ends when every old pod has exited and every client is connected
 * again, or 10 s after the grace period.
 *
 * Figures: the peak reconnect rate the survivors see together (the most connections in one 100 ms
 * bin, and in any 1 s, i.e. 10 consecutive bins), each old pod's SIGTERM → exit, whether it exited
 * inside its budget (exit 0 before the kubelet's SIGKILL at the grace period), and the clients'
 * failures (closes other than 1000/1001/1012, failed reconnects), by kind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { startPod, type Pod, type PodExit } from '../../src/cli/demo/pod.js';
import type { TimedPodEvent } from '../../src/cli/demo/pod-events.js';
import { integerFlag, UsageError } from '../../src/cli/flags.js';
import { defaults } from '../../src/options.js';
import { buildServices, servicePath } from '../build-services.js';
import { fdLimit, markdownTable, median } from '../report.js';

/** Reconnect jitter after a clean close (uniform in [0, this)). */
const JITTER_MS = 100;
/** Backoff after a failure (a close other than 1000/1001/1012, a refused or failed connect). */
const FAILURE_BACKOFF_MS = 1000;
/** Connections a client process opens at once while setting up. */
const OPEN_CONCURRENCY = 100;
const BIN_MS = 100;
const OLD_PODS = 2;
const SURVIVORS = 2;
/**
 * One client process per this many clients, at most MAX_CLIENT_PROCESSES: on a busy machine a
 * single process holding every client falls seconds behind the closes (the scheduler gives it one
 * share), and the survivors then see the clients' lag rather than the pods' pacing.
 */
const CLIENTS_PER_PROCESS = 1000;
const MAX_CLIENT_PROCESSES = 8;
/** A Deployment's next step (a replacement's readiness) and the endpoint removal's lag. */
const STEP_MS = 1000;
const LAG_MS = 500;
/** The kubegrace pods' propagation wait (fixed): longer than the lag, so no client lands on a draining pod. */
const PROPAGATION_MS = 1000;
const GRACE_SECONDS = 30;

const CLEAN_CODES = new Set([1000, 1001, 1012]);

export interface RealtimeTool {
  readonly name: string;
  readonly script: string;
  readonly env: Readonly<Record<string, string>>;
  /** Run only when `--tool` names it. */
  readonly optional?: boolean;
  /** terminationGracePeriodSeconds of its old pods. @default GRACE_SECONDS */
  readonly graceSeconds?: number;
  /** Settings that depend on the number of clients, over `env` and `graceSeconds`. */
  readonly sized?: (total: number) => { env: Record<string, string>; graceSeconds: number };
}

/** Reconnects a second per old pod that `kubegrace-sized` assumes the survivors absorb. */
const SIZED_RATE = 125;

/** The tools side by side: kubegrace paced (its default), kubegrace all at once, and the anchors. */
export const realtimeTools: readonly RealtimeTool[] = [
  { name: 'kubegrace', script: 'kubegrace', env: {} },
  { name: 'kubegrace-all-at-once', script: 'kubegrace', env: { KUBEGRACE_DRAIN_PACING_WINDOW_MS: '0' } },
  { name: 'ws-close-all', script: 'ws-close-all', env: { BENCH_CLOSE_DELAY_MS: String(PROPAGATION_MS) } },
  { name: 'terminus', script: 'terminus', env: {} },
  { name: 'http-terminator', script: 'http-terminator', env: {} },
  { name: 'lightship', script: 'lightship', env: {} },
  // A pod holding thousands of sockets configured for it: the largest drain budget its 30 s grace
  // period allows (30 s - unready 2 s - propagation 1 s - cleanup 5 s - margin 1 s = 21 s; 20 s here)
  // and a pacing window of half of it. On the defaults (drain 10 s) the window is at most 5 s.
  {
    name: 'kubegrace-drain-20s',
    script: 'kubegrace',
    env: { KUBEGRACE_DRAIN_TIMEOUT_MS: '20000', KUBEGRACE_DRAIN_PACING_WINDOW_MS: '10000' },
    optional: true,
  },
  // Sized the way docs/drain.md ("Sizing for thousands of connections") says, for the sockets each
  // old pod holds: at SIZED_RATE reconnects a second for each pod the survivors absorb, the pacing
  // window is sockets / rate (2,500 a pod: 20 s); the drain budget twice that; the grace period what
  // the budgets add up to, as the chart computes it (unready, the fixed propagation, drain, cleanup
  // and the safety margin, on the library's defaults).
  {
    name: 'kubegrace-sized',
    script: 'kubegrace',
    env: {},
    sized: (total) => {
      const windowMs = Math.max(1000, Math.round((total / OLD_PODS / SIZED_RATE) * 1000));
      const budgetMs =
        defaults.unreadyTimeoutMs +
        PROPAGATION_MS +
        2 * windowMs +
        defaults.cleanupTimeoutMs +
        defaults.safetyMarginMs;
      return {
        env: {
          KUBEGRACE_DRAIN_TIMEOUT_MS: String(2 * windowMs),
          KUBEGRACE_DRAIN_PACING_WINDOW_MS: String(windowMs),
        },
        graceSeconds: Math.ceil(budgetMs / 1000),
      };
    },
  },
];

interface ClientReport {
  readonly opened: number;
  readonly failedToOpen: Record<string, number>;
  readonly connected: number;
  readonly cleanCloses: number;
  readonly reconnects: number;
  readonly failures: Record<string, number>;
  /** Reconnect attempts started, per 100 ms bin (epoch ms of the bin's start → count). */
  readonly attempts: Record<string, number>;
}

const count = (map: Record<string, number>, key: string): void => {
  map[key] = (map[key] ?? 0) + 1;
};

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A client process (`--role realtime`): `total` WebSockets, opened round robin over `ports`. Reads
 * `{"table":[ports]}` (the Service's endpoints now) and `report` lines on stdin; writes `{"ready"}`
 * once open and `{"report"}` when asked.
 */
export async function realtimeClients(total: number, ports: readonly number[]): Promise<void> {
  let table = [...ports];
  let next = 0;
  let opened = 0;
  let connected = 0;
  let cleanCloses = 0;
  let reconnects = 0;
  const failedToOpen: Record<string, number> = {};
  const failures: Record<string, number> = {};
  const attempts: Record<string, number> = {};
  const pick = (): number => table[next++ % table.length] as number;

  /** One connection; `initial` ones are the set-up (a failure there is not retried). */
  const connect = (initial: boolean, resolve?: () => void): void => {
    if (!initial) count(attempts, String(Math.floor(Date.now() / BIN_MS) * BIN_MS));
    const ws = new WebSocket(`ws://127.0.0.1:${pick()}/`, { perMessageDeflate: false });
    let open = false;
    let error: string | undefined;
    ws.on('error', (e: NodeJS.ErrnoException) => {
      error ??= e.code ?? e.message;
    });
    ws.once('open', () => {
      open = true;
      connected++;
      if (initial) opened++;
      else reconnects++;
      // Resubscribe, as a realtime client does on every connection.
      ws.send('{"id":1,"ms":0}');
      resolve?.();
    });
    ws.once('close', (code) => {
      if (!open) {
        if (initial) {
          count(failedToOpen, error ?? `close ${code}`);
          resolve?.();
          return;
        }
        count(failures, `reconnect failed: ${error ?? `close ${code}`}`);
        setTimeout(() => connect(false), FAILURE_BACKOFF_MS + Math.random() * JITTER_MS);
        return;
      }
      connected--;
      if (CLEAN_CODES.has(code) && error === undefined) {
        cleanCloses++;
        setTimeout(() => connect(false), Math.random() * JITTER_MS);
      } else {
        count(failures, `close ${code}${error === undefined ? '' : ` (${error})`}`);
        setTimeout(() => connect(false), FAILURE_BACKOFF_MS + Math.random() * JITTER_MS);
      }
    });
  };

  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line === 'report') {
      const report: ClientReport = {
        opened,
        failedToOpen,
        connected,
        cleanCloses,
        reconnects,
        failures,
        attempts,
      };
      process.stdout.write(`${JSON.stringify({ report })}\n`);
      return;
    }
    const message = JSON.parse(line) as { table?: number[] };
    if (message.table !== undefined && message.table.length > 0) table = message.table;
  });
  // The harness holds stdin: its end means the harness is gone.
  process.stdin.once('end', () => process.exit(0));

  for (let done = 0; done < total;) {
    const batch = Math.min(OPEN_CONCURRENCY, total - done);
    await Promise.all(Array.from({ length: batch }, () => new Promise<void>((r) => connect(true, r))));
    done += batch;
  }
  process.stdout.write(`${JSON.stringify({ ready: opened, failedToOpen })}\n`);
}

interface ClientProcess {
  readonly ready: Promise<number>;
  report(): Promise<ClientReport>;
  table(ports: readonly number[]): void;
  kill(): void;
}

function startClients(entry: string, total: number, ports: readonly number[]): ClientProcess {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', entry, '--role', 'realtime', '--count', String(total), '--ports', ports.join(',')],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const waiting: ((r: ClientReport) => void)[] = [];
  let onReady: (n: number) => void = () => {};
  const ready = new Promise<number>((resolve, reject) => {
    onReady = resolve;
    child.once('close', (code) =>
      reject(new Error(`realtime clients exited with code ${code} while opening`)),
    );
  });
  ready.catch(() => {});
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const message = JSON.parse(line) as { ready?: number; report?: ClientReport };
    if (message.ready !== undefined) onReady(message.ready);
    if (message.report !== undefined) waiting.shift()?.(message.report);
  });
  return {
    ready,
    report: () =>
      new Promise((resolve) => {
        waiting.push(resolve);
        child.stdin!.write('report\n');
      }),
    table: (table) => child.stdin!.write(`${JSON.stringify({ table })}\n`),
    kill: () => child.kill('SIGKILL'),
  };
}

export interface OldPodResult {
  readonly sigtermToExitMs: number;
  /** kubegrace only: the drain phase's start to the exit. */
  readonly drainToExitMs: number | undefined;
  readonly exitCode: number;
  readonly killed: boolean;
  /** Exit 0 before the grace period's SIGKILL. */
  readonly insideBudget: boolean;
  /** kubegrace only: its summary's outcome and forced count. */
  readonly outcome: string | undefined;
  /**
   * kubegrace only: the sockets its paced drain closed in their slot and at the window's end (a pod
   * that fell behind its schedule closes the rest there, in one burst).
   */
  readonly pacing: { readonly paced: number; readonly windowEnd: number } | undefined;
}

export interface RealtimeResult {
  readonly tool: string;
  readonly clients: number;
  readonly failedToOpen: number;
  /** Survivors' accepted WebSockets: the most in one 100 ms bin, and in any 1 s. */
  readonly peakPer100Ms: number;
  readonly peakPerSecond: number;
  /**
   * The clients' reconnect attempts (a connect started, after the close and its jitter): the most in
   * one 100 ms bin, and in any 1 s. This is the storm as it leaves the clients; the accepted peaks
   * are that storm after this machine's own limit on how fast it completes WebSocket handshakes.
   */
  readonly attemptPeakPer100Ms: number;
  readonly attemptPeakPerSecond: number;
  /** Connections the survivors accepted from the first SIGTERM on. */
  readonly accepted: number;
  /** First SIGTERM → the last bin with a connection on a survivor. */
  readonly spreadMs: number;
  readonly oldPods: readonly OldPodResult[];
  readonly cleanCloses: number;
  readonly reconnected: number;
  readonly stillDisconnected: number;
  readonly failures: Record<string, number>;
  /** Survivors' accepts per 500 ms from the first SIGTERM (the shape of the wave). */
  readonly timeline: readonly number[];
  /** The clients' reconnect attempts per 500 ms, over the same span. */
  readonly attemptTimeline: readonly number[];
}

/** Counts per 500 ms from `from` to the bin of `last`, from 100 ms bins keyed by their start. */
function perHalfSecond(bins: ReadonlyMap<number, number>, from: number, last: number): number[] {
  return Array.from({ length: Math.ceil((last + BIN_MS - from) / 500) }, (_, k) =>
    [...bins].reduce(
      (n, [bin, c]) => (bin + BIN_MS > from + k * 500 && bin + BIN_MS <= from + (k + 1) * 500 ? n + c : n),
      0,
    ),
  );
}

/** The most in one bin and in any 10 consecutive bins (1 s). */
export function peaks(bins: ReadonlyMap<number, number>): { per100Ms: number; perSecond: number } {
  let per100Ms = 0;
  let perSecond = 0;
  for (const [start, n] of bins) {
    per100Ms = Math.max(per100Ms, n);
    let second = 0;
    for (let k = 0; k < 1000 / BIN_MS; k++) second += bins.get(start + k * BIN_MS) ?? 0;
    perSecond = Math.max(perSecond, second);
  }
  return { per100Ms, perSecond };
}

async function survivorBins(pod: Pod, events: TimedPodEvent[]): Promise<Map<number, number>> {
  const from = events.length;
  pod.send('bins');
  for (let waited = 0; waited < 10_000; waited += 20) {
    const found = events.slice(from).find((e) => e.event === 'log' && e.msg === 'bins');
    if (found?.event === 'log') {
      return new Map(Object.entries(found.fields ?? {}).map(([k, v]) => [Number(k), Number(v)]));
    }
    await sleep(20);
  }
  throw new Error(`no bins from ${pod.name}`);
}

/** A kubegrace pod's paced and window-end closes, from the event its drain's end writes (BENCH_PACING). */
export function pacingOf(events: readonly TimedPodEvent[]): OldPodResult['pacing'] {
  const pacing = events.find((e) => e.event === 'log' && e.msg === 'pacing');
  return pacing?.event === 'log'
    ? { paced: Number(pacing.fields?.['paced']), windowEnd: Number(pacing.fields?.['windowEnd']) }
    : undefined;
}

/** One tool through one rollout. `entry` is the script that runs a client process. */
export async function realtimeRun(tool: RealtimeTool, total: number, entry: string): Promise<RealtimeResult> {
  const pods: Pod[] = [];
  const clients: ClientProcess[] = [];
  const sized = tool.sized?.(total);
  const grace = sized?.graceSeconds ?? tool.graceSeconds ?? GRACE_SECONDS;
  const toolEnv = { ...tool.env, ...sized?.env };
  try {
    const start = (name: string, script: string, env: Record<string, string>, events: TimedPodEvent[]) =>
      startPod({
        name,
        kind: tool.name,
        script: servicePath(script),
        graceSeconds: grace,
        env: {
          BENCH_PROTOCOL: 'ws',
          KUBEGRACE_PROBES_PORT: '0',
          KUBEGRACE_PROBES_HOST: '127.0.0.1',
          KUBEGRACE_GRACE_PERIOD_SECONDS: String(grace),
          KUBEGRACE_PROPAGATION_STRATEGY: 'fixed',
          KUBEGRACE_PROPAGATION_DELAY_MS: String(PROPAGATION_MS),
          ...(script === 'kubegrace' ? { BENCH_PACING: '1' } : {}),
          ...env,
        },
        onEvent: (event) => events.push(event),
      });
    const oldEvents = Array.from({ length: OLD_PODS }, (): TimedPodEvent[] => []);
    const survivorEvents = Array.from({ length: SURVIVORS }, (): TimedPodEvent[] => []);
    const old = await Promise.all(
      oldEvents.map((events, i) => start(`${tool.name}-old-${i}`, tool.script, toolEnv, events)),
    );
    pods.push(...old);
    const survivors = await Promise.all(
      survivorEvents.map((events, i) => start(`${tool.name}-new-${i}`, 'realtime-survivor', {}, events)),
    );
    pods.push(...survivors);
    await Promise.all(pods.map((p) => p.waitReady()));

    const oldPorts = old.map((p) => p.endpoint.port);
    const processes = Math.min(MAX_CLIENT_PROCESSES, Math.ceil(total / CLIENTS_PER_PROCESS));
    for (let i = 0; i < processes; i++) {
      const share = Math.floor(total / processes) + (i < total % processes ? 1 : 0);
      // Each process starts its round robin on a different old pod.
      clients.push(
        startClients(entry, share, [...oldPorts.slice(i % OLD_PODS), ...oldPorts.slice(0, i % OLD_PODS)]),
      );
    }
    const opened = (await Promise.all(clients.map((c) => c.ready))).reduce((a, b) => a + b, 0);
    const setup = await Promise.all(clients.map((c) => c.report()));
    const failedToOpen = setup.reduce(
      (n, r) => n + Object.values(r.failedToOpen).reduce((a, b) => a + b, 0),
      0,
    );

    // The replacements are ready: the table lists old and new, then the rollout.
    let table = [...oldPorts, ...survivors.map((p) => p.endpoint.port)];
    for (const c of clients) c.table(table);
    await sleep(1000);
    const firstSigterm = Date.now();
    const exits: Promise<PodExit>[] = [];
    for (const [i, pod] of old.entries()) {
      if (i > 0) await sleep(STEP_MS);
      exits.push(pod.terminate());
      setTimeout(() => {
        table = table.filter((port) => port !== pod.endpoint.port);
        for (const c of clients) c.table(table);
      }, LAG_MS);
    }
    const exited = await Promise.all(exits);
    // Every client back, or 10 s after the grace period.
    const deadline = firstSigterm + grace * 1000 + 10_000;
    let reports = await Promise.all(clients.map((c) => c.report()));
    while (reports.reduce((n, r) => n + r.connected, 0) < opened && Date.now() < deadline) {
      await sleep(250);
      reports = await Promise.all(clients.map((c) => c.report()));
    }
    // Late stragglers' bins settle.
    await sleep(200);

    const bins = new Map<number, number>();
    for (const [i, pod] of survivors.entries()) {
      for (const [bin, n] of await survivorBins(pod, survivorEvents[i] as TimedPodEvent[])) {
        if (bin + BIN_MS <= firstSigterm) continue;
        bins.set(bin, (bins.get(bin) ?? 0) + n);
      }
    }
    const { per100Ms, perSecond } = peaks(bins);
    const attemptBins = new Map<number, number>();
    for (const r of reports) {
      for (const [key, n] of Object.entries(r.attempts)) {
        const bin = Number(key);
        if (bin + BIN_MS <= firstSigterm) continue;
        attemptBins.set(bin, (attemptBins.get(bin) ?? 0) + n);
      }
    }
    const attempt = peaks(attemptBins);
    const last = Math.max(firstSigterm, ...bins.keys());
    const lastAny = Math.max(last, ...attemptBins.keys());
    const failures: Record<string, number> = {};
    for (const r of reports)
      for (const [k, n] of Object.entries(r.failures)) failures[k] = (failures[k] ?? 0) + n;
    return {
      tool: tool.name,
      clients: opened,
      failedToOpen,
      peakPer100Ms: per100Ms,
      peakPerSecond: perSecond,
      attemptPeakPer100Ms: attempt.per100Ms,
      attemptPeakPerSecond: attempt.perSecond,
      accepted: [...bins.values()].reduce((a, b) => a + b, 0),
      spreadMs: last + BIN_MS - firstSigterm,
      oldPods: exited.map((exit, i) => {
        const pod = old[i] as Pod;
        const events = oldEvents[i] as TimedPodEvent[];
        const drain = events.find((e) => e.event === 'phase' && e.phase === 'drain' && e.status === 'start');
        const summary = events.find((e) => e.event === 'summary');
        return {
          sigtermToExitMs: exit.exitedAt - (pod.sigtermAt ?? exit.exitedAt),
          drainToExitMs: drain === undefined ? undefined : exit.exitedAt - drain.at,
          exitCode: exit.exitCode,
          killed: exit.killed,
          insideBudget: !exit.killed && exit.exitCode === 0,
          outcome: summary?.event === 'summary' ? `${summary.outcome}, forced ${summary.forced}` : undefined,
          pacing: pacingOf(events),
        };
      }),
      cleanCloses: reports.reduce((n, r) => n + r.cleanCloses, 0),
      reconnected: reports.reduce((n, r) => n + r.reconnects, 0),
      stillDisconnected: opened - reports.reduce((n, r) => n + r.connected, 0),
      failures,
      timeline: perHalfSecond(bins, firstSigterm, lastAny),
      attemptTimeline: perHalfSecond(attemptBins, firstSigterm, lastAny),
    };
  } finally {
    for (const c of clients) c.kill();
    for (const p of pods) p.kill();
  }
}

const kinds = (map: Record<string, number>): string => {
  const entries = Object.entries(map);
  return entries.length === 0 ? '**0**' : entries.map(([k, n]) => `${k} ${n}`).join(', ');
};

const totalFailures = (r: RealtimeResult): number => Object.values(r.failures).reduce((a, b) => a + b, 0);

/** The table of one run, one row per tool. */
export function runTable(results: readonly RealtimeResult[]): string[] {
  return markdownTable(
    [
      'tool',
      'clients',
      'peak reconnects / 100 ms',
      'peak / s',
      'old pods SIGTERM → exit',
      'inside budget',
      'reconnected (clean closes)',
      'paced / at window end',
      'failures',
    ],
    results.map((r) => [
      r.tool,
      String(r.clients),
      `**${r.peakPer100Ms}**`,
      String(r.peakPerSecond),
      r.oldPods.map((p) => `${(p.sigtermToExitMs / 1000).toFixed(2)} s`).join(', '),
      r.oldPods
        .map((p) => (p.insideBudget ? 'yes' : `no (exit ${p.exitCode}${p.killed ? ', SIGKILL' : ''})`))
        .join(', '),
      `${r.reconnected} (${r.cleanCloses})${r.stillDisconnected > 0 ? `, ${r.stillDisconnected} not back` : ''}`,
      r.oldPods.map((p) => (p.pacing ? `${p.pacing.paced} / ${p.pacing.windowEnd}` : '–')).join(', '),
      kinds(r.failures),
    ]),
  );
}

/** Medians per tool over the runs, the paced/all-at-once ratio, and the bar. */
export function summary(runs: readonly (readonly RealtimeResult[])[]): string[] {
  const tools = [...new Set(runs.flat().map((r) => r.tool))];
  const lines = markdownTable(
    [
      'tool',
      'peak / 100 ms (median; runs)',
      'peak / s (median; runs)',
      "clients' attempts, peak / 100 ms (median; runs)",
      'old pod exit (median)',
      'failures (all runs)',
    ],
    tools.map((tool) => {
      const mine = runs.flatMap((run) => run.filter((r) => r.tool === tool));
      const failed = mine.reduce((n, r) => n + totalFailures(r), 0);
      return [
        tool,
        `**${median(mine.map((r) => r.peakPer100Ms))}** (${mine.map((r) => r.peakPer100Ms).join(', ')})`,
        `${median(mine.map((r) => r.peakPerSecond))} (${mine.map((r) => r.peakPerSecond).join(', ')})`,
        `${median(mine.map((r) => r.attemptPeakPer100Ms))} (${mine.map((r) => r.attemptPeakPer100Ms).join(', ')})`,
        `${(median(mine.flatMap((r) => r.oldPods.map((p) => p.sigtermToExitMs))) / 1000).toFixed(2)} s`,
        failed === 0 ? '**0**' : mine.map((r) => kinds(r.failures)).join('; '),
      ];
    }),
  );
  lines.push('');
  // Every paced kubegrace in the run against kubegrace all at once in the same run.
  const paced = tools.filter((t) => t.startsWith('kubegrace') && t !== 'kubegrace-all-at-once');
  for (const tool of paced) {
    const accepted: number[] = [];
    const attempts: number[] = [];
    let met = true;
    for (const run of runs) {
      const mine = run.find((r) => r.tool === tool);
      const all = run.find((r) => r.tool === 'kubegrace-all-at-once');
      if (mine === undefined || all === undefined) continue;
      const ratio = mine.peakPer100Ms / Math.max(1, all.peakPer100Ms);
      accepted.push(ratio);
      attempts.push(mine.attemptPeakPer100Ms / Math.max(1, all.attemptPeakPer100Ms));
      met &&=
        totalFailures(mine) === 0 &&
        mine.stillDisconnected === 0 &&
        ratio <= 0.2 &&
        mine.oldPods.every((p) => p.insideBudget);
    }
    if (accepted.length === 0) {
      lines.push(`${tool}: bar not judged (needs kubegrace-all-at-once in the same run)`);
      continue;
    }
    const list = (ratios: number[]): string =>
      `${ratios.map((r) => r.toFixed(2)).join(', ')} (median ${median(ratios).toFixed(2)})`;
    lines.push(
      `${tool} / all at once, peak per 100 ms, per run: survivors' accepts ${list(accepted)}; clients' attempts ${list(attempts)}`,
      `  bar (every run: zero failures, every client back, accepted peak ≤ 1/5 of all at once, every old pod inside its budget): ${met ? 'met' : 'MISSED'}`,
    );
  }
  return lines;
}

/** The flags of the realtime scenario, as given (`bench:scale` and `bench:rolling` both take them). */
export interface RealtimeFlags {
  readonly websockets: string | undefined;
  readonly repeat: string | undefined;
  readonly tool: string | undefined;
}

/** The realtime scenario from the command line: every tool through `repeat` rollouts, the tables and the bar. */
export async function runRealtime(args: RealtimeFlags): Promise<void> {
  const total =
    args.websockets === undefined ? 20_000 : integerFlag('websockets', args.websockets, 2, 100_000);
  const repeat = args.repeat === undefined ? 2 : integerFlag('repeat', args.repeat, 1, 20);
  const names =
    args.tool === undefined
      ? realtimeTools.filter((t) => t.optional !== true).map((t) => t.name)
      : args.tool.split(',').map((name) => name.trim());
  const tools = names.map((name) => {
    const tool = realtimeTools.find((t) => t.name === name);
    if (tool === undefined) {
      throw new UsageError(
        `--tool must name tools among ${realtimeTools.map((t) => t.name).join(', ')}, received ${name}`,
      );
    }
    return tool;
  });
  const limit = fdLimit();
  // Each pod holds about half the clients (round robin over two); a margin for the uneven share.
  if (limit < Math.ceil(total / 2) + 2000) {
    throw new UsageError(
      `ulimit -n is ${limit}: each pod holds about half the clients (${Math.ceil(total / 2)}) and a margin. ` +
        `Raise it for this shell (ulimit -n 65536, or prlimit --nofile=65536 --pid $$) and run again.`,
    );
  }
  const started = Date.now();
  buildServices();
  console.log(
    `realtime rollout: ${total} WebSocket clients on 2 old pods per tool, ${tools.length} tool(s) one after ` +
      `another, ${repeat} run(s), ulimit -n ${limit}`,
  );
  const runs: Awaited<ReturnType<typeof realtimeRun>>[][] = [];
  for (let i = 0; i < repeat; i++) {
    const results = [];
    // Each run starts with the next tool, so a slow moment of the machine does not always land on the same one.
    for (let k = 0; k < tools.length; k++) {
      const tool = tools[(i + k) % tools.length] as (typeof tools)[number];
      const result = await realtimeRun(tool, total, clientEntry());
      console.log(
        `  run ${i + 1} ${tool.name}: peak accepted ${result.peakPer100Ms}/100 ms, ${result.peakPerSecond}/s; ` +
          `peak attempts ${result.attemptPeakPer100Ms}/100 ms, ${result.attemptPeakPerSecond}/s; ` +
          `old pods exit ${result.oldPods.map((p) => `${p.sigtermToExitMs.toFixed(0)} ms` + (p.outcome ? ` (${p.outcome})` : '')).join(', ')}, ` +
          `failures ${JSON.stringify(result.failures)}, not back ${result.stillDisconnected}, failed to open ${result.failedToOpen}\n` +
          `    per 500 ms from the first SIGTERM, survivors' accepts: ${result.timeline.join(' ')}\n` +
          `                                      clients' attempts: ${result.attemptTimeline.join(' ')}`,
      );
      results.push(result);
    }
    results.sort((a, b) => names.indexOf(a.tool) - names.indexOf(b.tool));
    runs.push(results);
    console.log(`\nrun ${i + 1}:`);
    for (const line of runTable(results)) console.log(line);
    console.log('');
  }
  console.log('medians:');
  for (const line of summary(runs)) console.log(line);
  console.log(`total ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

function clientEntry(): string {
  return fileURLToPath(new URL('../scale.ts', import.meta.url));
}
