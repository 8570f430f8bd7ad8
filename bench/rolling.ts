/**
 * Rolling-restart benchmark, side by side: replicas behind a kube-proxy-style endpoint table, each
 * old pod replaced by a ready new one and then terminated while its endpoint leaves the table only
 * after the propagation lag. Every tool runs every scenario in the same run, with the same load:
 * kubegrace, a plain `server.close()`, the same behind a `preStop: sleep 10`, @godaddy/terminus,
 * lightship and http-terminator, each set up as its README recommends (bench/services/).
 * The traffic shapes (src/cli/demo/traffic.ts) go beyond steady churn: pooled clients only, sparse
 * Poisson new clients, iptables' random endpoint choice, several nodes with their own lags, and an
 * in-cluster shape whose pods watch a (fake) Kubernetes API.
 *
 *   npm run bench:rolling                                    # full matrix
 *   npm run bench:rolling -- --traffic steady --lag 2s --work mixed
 *   npm run bench:rolling -- --traffic sparse,in-cluster --tool kubegrace,http-terminator
 *
 * The tools of one scenario run at the same time, each with its own endpoint table, pods and
 * clients (`--serial` runs them one after another instead): the machine's background load then
 * lands on all of them alike, and the matrix fits in minutes although two of the tools are only
 * ever stopped by the SIGKILL at the grace period.
 *
 * See bench/README.md for the definitions (failed request, ideal exit) and bench/RESULTS.md for figures.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { durationFlag, integerFlag, choiceFlag, parseFlags, UsageError } from '../src/cli/flags.js';
import { startLoad } from '../src/cli/demo/load.js';
import { killAllPods } from '../src/cli/demo/pod.js';
import { runScenario, type LoadFactory, type ScenarioResult } from '../src/cli/demo/run.js';
import { TRAFFIC_SHAPES, trafficShapes, type TrafficShapeName } from '../src/cli/demo/traffic.js';
import { defaults } from '../src/options.js';
import { buildServices, servicePath } from './build-services.js';
import { startFakeControlPlane, type FakeControlPlane } from './control-plane.js';
import { startGrpcLoad, TICKS, type GrpcLoad } from './loads/grpc.js';
import { startHttp2Load, type RetryingLoad } from './loads/http2.js';
import { runRealtime, type RealtimeFlags } from './loads/realtime.js';
import { startWebSocketLoad, type ResendingLoad } from './loads/websocket.js';
import { barVerdict } from './bar.js';
import { markdownTable, median } from './report.js';
import type { Protocol } from './services/app.js';

const TOOLS = [
  'kubegrace',
  'naive',
  'sleep',
  'terminus',
  'lightship',
  'http-terminator',
  // A multi-process pod: a node:cluster primary and 2 workers, with kubegrace/cluster and the naive way.
  'kubegrace-cluster',
  'naive-cluster',
] as const;
type Tool = (typeof TOOLS)[number];
/**
 * The gRPC pods (`--work grpc`): grpc-js servers, with kubegrace (`kg.use(grpc(server))`), the
 * practice users have today (`server.tryShutdown()` on SIGTERM, as `naive`) and the same behind a
 * `preStop: sleep 10` (as `sleep`). The other tools have no gRPC setup and skip gRPC scenarios.
 */
const GRPC_MODULES: Partial<Record<Tool, string>> = {
  kubegrace: 'grpc-kubegrace',
  naive: 'grpc-naive',
  sleep: 'grpc-sleep',
};
const serves = (tool: Tool, protocol: WorkProtocol): boolean =>
  protocol !== 'grpc' || GRPC_MODULES[tool] !== undefined;
type WorkProtocol = Protocol | 'grpc';
/** The cluster pods serve HTTP/1.1 `/work` only: they run when `--tool` names them. */
const DEFAULT_TOOLS = TOOLS.filter((tool) => !tool.endsWith('-cluster'));

const WORK = {
  short: { protocol: 'http1', requestMs: 50, longShare: 0, longMs: 3000, label: 'HTTP/1.1 50 ms' },
  mixed: {
    protocol: 'http1',
    requestMs: 50,
    longShare: 0.1,
    longMs: 3000,
    label: 'HTTP/1.1 50 ms + 10 % 3 s',
  },
  ws: { protocol: 'ws', requestMs: 50, longShare: 0, longMs: 3000, label: 'WebSocket echo 50 ms' },
  h2: { protocol: 'h2', requestMs: 50, longShare: 0, longMs: 3000, label: 'HTTP/2 50 ms' },
  grpc: {
    protocol: 'grpc',
    requestMs: 50,
    longShare: 0,
    longMs: 3000,
    label: `gRPC unary 50 ms + streams ${TICKS} × 50 ms`,
  },
} as const satisfies Record<string, { protocol: WorkProtocol; label: string } & Record<string, unknown>>;
type Work = keyof typeof WORK;
const WORKS = Object.keys(WORK) as Work[];

const s = (ms: number): string => (ms / 1000).toFixed(2);

/** The matrix each shape runs by default: steady over every work and three lags, the others fewer. */
const SHAPE_MATRIX: Readonly<Record<TrafficShapeName, { works: readonly Work[]; lags: readonly number[] }>> =
  {
    // gRPC runs when --work names it: its clients cost the harness enough CPU to want --serial.
    steady: { works: ['short', 'mixed', 'ws', 'h2'], lags: [500, 2000, 8000] },
    pooled: { works: ['mixed'], lags: [2000, 8000] },
    sparse: { works: ['short'], lags: [2000, 8000] },
    random: { works: ['short'], lags: [2000, 8000] },
    // Node lags lag/3, 2/3 lag, lag: 1, 2 and 3 s.
    nodes: { works: ['short'], lags: [3000] },
    'in-cluster': { works: ['short'], lags: [3000] },
  };

const FLAGS = {
  scenario: { type: 'string' },
  websockets: { type: 'string' },
  traffic: { type: 'string' },
  lag: { type: 'string' },
  work: { type: 'string' },
  tool: { type: 'string' },
  replicas: { type: 'string' },
  concurrency: { type: 'string' },
  'new-conns': { type: 'string' },
  warmup: { type: 'string' },
  grace: { type: 'string' },
  repeat: { type: 'string' },
  'grpc-retries': { type: 'string' },
  serial: { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/**
 * `--scenario realtime`: the realtime rollout of bench/loads/realtime.ts (the same as
 * `bench:scale --scenario realtime`), with its own tools; undefined for the traffic matrix.
 */
function realtimeScenario(argv: readonly string[]): RealtimeFlags | undefined {
  const v = parseFlags('bench:rolling', argv, FLAGS);
  if (v.help === true) return undefined;
  if (v.scenario === undefined) {
    if (v.websockets !== undefined) throw new UsageError('--websockets goes with --scenario realtime');
    return undefined;
  }
  if (v.scenario !== 'realtime') {
    throw new UsageError(
      `--scenario must be realtime (or left out: the traffic matrix), received ${v.scenario}`,
    );
  }
  const realtimeFlags = new Set(['scenario', 'websockets', 'repeat', 'tool']);
  const matrixOnly = Object.keys(v).filter((flag) => !realtimeFlags.has(flag));
  if (matrixOnly.length > 0) {
    throw new UsageError(
      `--scenario realtime takes only --websockets, --repeat and --tool, received ${matrixOnly.map((f) => `--${f}`).join(', ')}`,
    );
  }
  return { websockets: v.websockets, repeat: v.repeat, tool: v.tool };
}

function parse(argv: readonly string[]) {
  const v = parseFlags('bench:rolling', argv, FLAGS);
  const list = <T>(raw: string | undefined, all: readonly T[], one: (s: string) => T): T[] =>
    raw === undefined ? [...all] : raw.split(',').map((s) => one(s.trim()));
  const given = <T>(raw: string | undefined, one: (s: string) => T): T[] | undefined =>
    raw === undefined ? undefined : list(raw, [], one);
  return {
    help: v.help === true,
    json: v.json === true,
    serial: v.serial === true,
    traffic: list(v.traffic, TRAFFIC_SHAPES, (s) => choiceFlag('traffic', s, TRAFFIC_SHAPES)),
    /** Undefined: each shape's own (SHAPE_MATRIX, trafficShapes). */
    lags: given(v.lag, (s) => durationFlag('lag', s, 120_000)),
    works: given(v.work, (s) => choiceFlag('work', s, WORKS)),
    concurrency: v.concurrency === undefined ? undefined : integerFlag('concurrency', v.concurrency, 1, 512),
    newConnections:
      v['new-conns'] === undefined ? undefined : integerFlag('new-conns', v['new-conns'], 0, 1000),
    warmupMs: v.warmup === undefined ? undefined : durationFlag('warmup', v.warmup, 60_000),
    tools: list(v.tool, DEFAULT_TOOLS, (s) => choiceFlag('tool', s, TOOLS)),
    replicas: v.replicas === undefined ? 2 : integerFlag('replicas', v.replicas, 1, 5),
    grace: v.grace === undefined ? 30 : integerFlag('grace', v.grace, 1, 600, 's'),
    repeat: v.repeat === undefined ? 1 : integerFlag('repeat', v.repeat, 1, 20),
    grpcRetries:
      v['grpc-retries'] === undefined
        ? 'transparent'
        : choiceFlag('grpc-retries', v['grpc-retries'], ['transparent', 'off'] as const),
  };
}

type Args = ReturnType<typeof parse>;

interface Scenario {
  readonly traffic: TrafficShapeName;
  readonly work: Work;
  readonly lagMs: number;
  readonly label: string;
}

function scenarios(args: Args): Scenario[] {
  return args.traffic.flatMap((traffic) =>
    (args.works ?? SHAPE_MATRIX[traffic].works).flatMap((work) =>
      (args.lags ?? SHAPE_MATRIX[traffic].lags).map((lagMs) => ({
        traffic,
        work,
        lagMs,
        label: `${traffic}, lag ${s(lagMs)} s, ${WORK[work].label}`,
      })),
    ),
  );
}

const help = `Usage: npm run bench:rolling -- [flags]
  --traffic <list>      traffic shapes (default all), each with its own lags and works unless given:
${TRAFFIC_SHAPES.map(
  (t) =>
    `                          ${t.padEnd(10)} ${trafficShapes[t].label}\n` +
    `                          ${''.padEnd(10)} (${SHAPE_MATRIX[t].works.join(',')}; lags ${SHAPE_MATRIX[t].lags.map(s).join(', ')} s)`,
).join('\n')}
  --lag <list>          propagation lags (with nodes, the slowest node's), e.g. 500,2s,8s
  --work <list>         short (HTTP/1.1 50 ms), mixed (10 % of them 3 s), ws (WebSocket echoes),
                        h2 (HTTP/2 streams), grpc (grpc-js unary and server-streaming calls,
                        no retry policy; tools kubegrace, naive = tryShutdown(), sleep)
  --tool <list>         ${TOOLS.join(', ')} (default all but the *-cluster pods: HTTP/1.1 only)
  --replicas <n>        old pods rolled per tool and scenario (default 2)
  --concurrency <n>     keep-alive client loops, WebSocket clients or HTTP/2 stream loops (default: the shape's)
  --new-conns <n>       new clients per second, each on a fresh connection (default: the shape's)
  --warmup <duration>   load before the first SIGTERM (default: the shape's, 1 s steady, 5 s the others)
  --grace <seconds>     terminationGracePeriodSeconds (default 30)
  --repeat <n>          runs per scenario (default 1)
  --grpc-retries <m>    grpc clients: transparent (grpc-js's default: a stream refused unprocessed
                        at a GOAWAY is retried once) or off (grpc.enable_retries 0: it fails)
  --serial              run the tools of a scenario one after another, not side by side
  --json                also print every result as a JSON line

  --scenario realtime   instead of the matrix: the realtime rollout (thousands of idle WebSocket
                        clients reconnecting through the Service to 2 surviving pods; paced,
                        all at once and the anchors), as bench:scale --scenario realtime runs it;
                        takes only --websockets <n> (default 20000), --repeat (default 2) and
                        --tool (default all but kubegrace-drain-20s: kubegrace, kubegrace-all-at-once,
                        ws-close-all, terminus, http-terminator, lightship, kubegrace-sized)`;

interface ToolResult {
  readonly scenario: string;
  readonly traffic: TrafficShapeName;
  readonly lagMs: number;
  readonly work: Work;
  readonly tool: Tool;
  readonly result: ScenarioResult;
  /** The longest request the scenario's clients send, in ms (the bar's allowance after the wait). */
  readonly longestRequestMs: number;
  /** WebSocket echoes resent after a clean close, HTTP/2 requests retried after REFUSED_STREAM. */
  readonly resent: number;
  /** gRPC: each failed call, its status and when it ended relative to its pod's SIGTERM. */
  readonly grpcFailures?: readonly { kind: string; details: string; pod: string; afterSigtermMs: number }[];
}

/** Negative over ideal: the pod left before it was safe to (and its clients paid for it). */
const signed = (ms: number): string => `${ms < 0 ? '-' : '+'}${s(Math.abs(ms))}`;

function failures(result: ScenarioResult): string {
  const kinds = Object.entries(result.failures).sort((a, b) => b[1] - a[1]);
  return kinds.length === 0 ? '**0**' : `${result.failed} (${kinds.map(([k, n]) => `${k} ${n}`).join(', ')})`;
}

/** The figure tools are compared on: the median SIGTERM-to-exit over the tool's old pods. */
const exitMs = (result: ScenarioResult): number => median(result.pods.map((p) => p.shutdownMs));

async function runTool(tool: Tool, scenario: Scenario, args: Args, seed: number): Promise<ToolResult> {
  const { traffic, work, lagMs } = scenario;
  const spec = WORK[work];
  const shape = trafficShapes[traffic];
  // Only kubegrace runs the Kubernetes integration; the other tools just see the node tables.
  let controlPlane: FakeControlPlane | undefined;
  if (shape.inCluster && tool === 'kubegrace') {
    controlPlane = await startFakeControlPlane({ graceSeconds: args.grace });
  }
  let resending: ResendingLoad | RetryingLoad | undefined;
  let grpcLoad: GrpcLoad | undefined;
  const clients: LoadFactory =
    spec.protocol === 'grpc'
      ? (options, table) =>
          (grpcLoad = startGrpcLoad(options, table, {
            transparentRetries: args.grpcRetries === 'transparent',
          }))
      : spec.protocol === 'ws'
        ? (options, table) => (resending = startWebSocketLoad(options, table))
        : spec.protocol === 'h2'
          ? (options, table) => (resending = startHttp2Load(options, table))
          : (options) => startLoad(options);
  try {
    // kubegrace runs on its defaults: no propagation setting is passed.
    const { result } = await runScenario(
      {
        service: tool,
        script: servicePath(spec.protocol === 'grpc' ? (GRPC_MODULES[tool] ?? tool) : tool),
        env: { BENCH_PROTOCOL: spec.protocol },
        replicas: args.replicas,
        lagMs,
        requestMs: spec.requestMs,
        longShare: spec.longShare,
        longMs: spec.longMs,
        concurrency: args.concurrency ?? shape.concurrency,
        newConnectionsPerSecond: args.newConnections ?? shape.newConnectionsPerSecond,
        arrivals: shape.arrivals,
        endpointChoice: shape.endpointChoice,
        nodes: shape.nodes,
        ...(controlPlane === undefined ? {} : { controlPlane }),
        graceSeconds: args.grace,
        warmupMs: args.warmupMs ?? shape.warmupMs,
        tailMs: 1000,
        seed,
        startReplacementsEarly: true,
        rolloutStepMs: 1000,
      },
      undefined,
      clients,
    );
    const resent = resending === undefined ? 0 : 'resent' in resending ? resending.resent : resending.retried;
    const sigtermAt = new Map(result.pods.map((p) => [p.pod, p.sigtermAt]));
    const grpcFailures = grpcLoad?.failures.map((f) => ({
      kind: f.kind,
      details: f.details,
      pod: f.endpoint ?? '-',
      afterSigtermMs: f.endpoint === undefined ? NaN : f.at - (sigtermAt.get(f.endpoint) ?? NaN),
    }));
    return {
      scenario: scenario.label,
      traffic,
      lagMs,
      work,
      tool,
      result,
      // A gRPC stream lasts its ticks; the ideal exit counts it whole, and so must the bar.
      longestRequestMs: Math.max(
        spec.protocol === 'grpc' ? TICKS * spec.requestMs : spec.requestMs,
        spec.longShare > 0 ? spec.longMs : 0,
      ),
      resent,
      ...(grpcFailures === undefined ? {} : { grpcFailures }),
    };
  } finally {
    await controlPlane?.close();
  }
}

function detailTable(results: readonly ToolResult[]): string[] {
  const header = [
    'scenario',
    'tool',
    'requests',
    'failed (by kind)',
    'resent/retried',
    'old pods: exit / ideal s (exit code)',
    'conn/s before SIGTERM',
    'median exit',
    'max over ideal',
    'SIGKILLed',
  ];
  const rows = results.map(({ scenario, tool, result, resent }) => [
    scenario,
    tool,
    String(result.requests),
    failures(result),
    String(resent),
    result.pods.map((p) => `${s(p.shutdownMs)}/${s(p.idealMs)} (${p.exitCode})`).join('  '),
    result.pods.map((p) => p.arrivalsPerSecond.toFixed(1)).join('  '),
    `${s(exitMs(result))} s`,
    `${signed(Math.max(...result.pods.map((p) => p.shutdownMs - p.idealMs)))} s`,
    String(result.pods.filter((p) => p.killed).length),
  ]);
  return markdownTable(header, rows);
}

/** One line per scenario, one column per tool: median exit and failures; the bar per scenario. */
function summaryTable(results: readonly ToolResult[], tools: readonly Tool[]): string[] {
  const scenarios = [...new Set(results.map((r) => r.scenario))];
  const rows = scenarios.map((scenario) => {
    const here = results.filter((r) => r.scenario === scenario);
    const cells = tools.map((tool) => {
      const runs = here.filter((r) => r.tool === tool);
      if (runs.length === 0) return '-';
      const failed = runs.reduce((n, r) => n + r.result.failed, 0);
      const killed = runs.some((r) => r.result.killed);
      return `${s(median(runs.map((r) => exitMs(r.result))))} s, ${failed === 0 ? '0' : `**${failed}** failed`}${killed ? ', KILL' : ''}`;
    });
    return [scenario, ...cells, barVerdict(here)];
  });
  return markdownTable(['scenario', ...tools, 'bar'], rows);
}

/**
 * Per gRPC run with failures: each status with its count and when the calls ended relative to their
 * pod's SIGTERM (first..last); kubegrace's failures one by one with grpc-js's details.
 */
function grpcFailureLines(results: readonly ToolResult[]): string[] {
  const lines: string[] = [];
  for (const r of results) {
    const failed = r.grpcFailures ?? [];
    if (failed.length === 0) continue;
    const byKind = new Map<string, number[]>();
    for (const f of failed) byKind.set(f.kind, [...(byKind.get(f.kind) ?? []), f.afterSigtermMs]);
    const kinds = [...byKind].map(([kind, times]) => {
      const sorted = times.filter((t) => !Number.isNaN(t)).sort((a, b) => a - b);
      const span =
        sorted.length === 0
          ? 'no pod'
          : `${signed(sorted[0] ?? 0)}..${signed(sorted[sorted.length - 1] ?? 0)} s`;
      return `${kind} ${times.length} (${span})`;
    });
    lines.push(`- ${r.scenario}, ${r.tool}: ${kinds.join(', ')}`);
    if (r.tool === 'kubegrace') {
      for (const f of failed) {
        lines.push(
          `  - ${f.pod} ${Number.isNaN(f.afterSigtermMs) ? '' : `${signed(f.afterSigtermMs)} s `}${f.kind}: ${f.details}`,
        );
      }
    }
  }
  return lines;
}

async function main(): Promise<void> {
  const realtime = realtimeScenario(process.argv.slice(2));
  if (realtime !== undefined) return runRealtime(realtime);
  const args = parse(process.argv.slice(2));
  if (args.help) {
    console.log(help);
    return;
  }
  const started = Date.now();
  buildServices();
  const p = defaults.propagation;
  console.log(
    `rolling restart, side by side: ${args.replicas} old pod(s) per tool, grace ${args.grace} s, kubegrace on ` +
      `its defaults (propagation ${p.strategy}, quiet period ${p.quietPeriodMs} ms, maxMs ${p.maxMs} ms); ` +
      `tools ${args.serial ? 'one after another' : 'side by side'}: ${args.tools.join(', ')}; ` +
      `gRPC clients' retries ${args.grpcRetries}`,
  );
  const results: ToolResult[] = [];
  for (const scenario of scenarios(args)) {
    for (let round = 0; round < args.repeat; round++) {
      const scenarioStart = Date.now();
      // The harness's own event-loop delay: a starved harness would send its load late for every tool.
      const harnessDelay = monitorEventLoopDelay({ resolution: 5 });
      harnessDelay.enable();
      const run = (tool: Tool): Promise<ToolResult> => runTool(tool, scenario, args, round + 1);
      const tools = args.tools.filter((tool) => serves(tool, WORK[scenario.work].protocol));
      if (tools.length === 0) {
        harnessDelay.disable();
        console.log(`  ${scenario.label}: skipped, none of ${args.tools.join(', ')} serves it`);
        break;
      }
      let batch: ToolResult[];
      if (args.serial) {
        batch = [];
        for (const tool of tools) batch.push(await run(tool));
      } else {
        batch = await Promise.all(tools.map(run));
      }
      harnessDelay.disable();
      results.push(...batch);
      const first = batch[0];
      console.log(
        `  ${first?.scenario ?? ''} (${((Date.now() - scenarioStart) / 1000).toFixed(0)} s, harness loop delay ` +
          `p99 ${(harnessDelay.percentile(99) / 1e6).toFixed(0)} ms, max ${(harnessDelay.max / 1e6).toFixed(0)} ms): ` +
          batch
            .map(
              (r) =>
                `${r.tool} ${s(exitMs(r.result))} s/${r.result.failed} failed${r.result.killed ? '/KILL' : ''}`,
            )
            .join(', '),
      );
      if (args.json) for (const r of batch) console.log(JSON.stringify(r));
    }
  }
  console.log(
    '\nmedian exit of the old pods (SIGTERM to exit) and failed requests, per scenario and tool:\n',
  );
  for (const line of summaryTable(results, args.tools)) console.log(line);
  console.log('\n');
  for (const line of detailTable(results)) console.log(line);
  const grpcLines = grpcFailureLines(results);
  if (grpcLines.length > 0) {
    console.log("\nfailed gRPC calls, by status, ms from their pod's SIGTERM to the call's end:\n");
    for (const line of grpcLines) console.log(line);
  }
  console.log(`\ntotal ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

try {
  await main();
} catch (error) {
  console.error(error instanceof UsageError ? error.message : error);
  process.exitCode = error instanceof UsageError ? 2 : 1;
} finally {
  killAllPods();
  // Exit now rather than when the loop drains: after gRPC runs through the Service hop, Node's own
  // exit cleanup was seen spinning at 100 % CPU on a handle that never closed (gdb: uv_run inside
  // Environment::CleanupHandles, JS long finished), and the process never ended. Everything has
  // been written by then (stdout is synchronous on files and pipes).
  process.exit();
}
