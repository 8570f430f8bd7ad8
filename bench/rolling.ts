/**
 * Rolling-restart benchmark, side by side: replicas behind a kube-proxy-style endpoint table, each
 * old pod replaced by a ready new one and then terminated while its endpoint leaves the table only
 * after the propagation lag. Every tool runs every scenario in the same run, with the same load:
 * kubegrace, a plain `server.close()`, the same behind a `preStop: sleep 10`, @godaddy/terminus,
 * lightship and http-terminator, each set up as its README recommends (bench/services/).
 *
 *   npm run bench:rolling                                    # full matrix (~8 min)
 *   npm run bench:rolling -- --lag 2s --work mixed           # one scenario, every tool
 *   npm run bench:rolling -- --tool kubegrace,terminus --work ws,h2
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
import { buildServices, servicePath } from './build-services.js';
import { startHttp2Load, type RetryingLoad } from './loads/http2.js';
import { startWebSocketLoad, type ResendingLoad } from './loads/websocket.js';
import { markdownTable, median } from './report.js';
import type { Protocol } from './services/app.js';

const TOOLS = ['kubegrace', 'naive', 'sleep', 'terminus', 'lightship', 'http-terminator'] as const;
type Tool = (typeof TOOLS)[number];

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
} as const satisfies Record<string, { protocol: Protocol; label: string } & Record<string, unknown>>;
type Work = keyof typeof WORK;
const WORKS = Object.keys(WORK) as Work[];

const QUIET_PERIOD_MS = 1000;

function parse(argv: readonly string[]) {
  const v = parseFlags('bench:rolling', argv, {
    lag: { type: 'string' },
    work: { type: 'string' },
    tool: { type: 'string' },
    replicas: { type: 'string' },
    concurrency: { type: 'string' },
    'new-conns': { type: 'string' },
    grace: { type: 'string' },
    repeat: { type: 'string' },
    serial: { type: 'boolean' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  } as const);
  const list = <T>(raw: string | undefined, all: readonly T[], one: (s: string) => T): T[] =>
    raw === undefined ? [...all] : raw.split(',').map((s) => one(s.trim()));
  return {
    help: v.help === true,
    json: v.json === true,
    serial: v.serial === true,
    lags: list(v.lag, [500, 2000, 8000], (s) => durationFlag('lag', s, 120_000)),
    works: list(v.work, WORKS, (s) => choiceFlag('work', s, WORKS)),
    tools: list(v.tool, TOOLS, (s) => choiceFlag('tool', s, TOOLS)),
    replicas: v.replicas === undefined ? 2 : integerFlag('replicas', v.replicas, 1, 5),
    concurrency: v.concurrency === undefined ? 16 : integerFlag('concurrency', v.concurrency, 1, 512),
    newConnections: v['new-conns'] === undefined ? 20 : integerFlag('new-conns', v['new-conns'], 0, 1000),
    grace: v.grace === undefined ? 30 : integerFlag('grace', v.grace, 1, 600, 's'),
    repeat: v.repeat === undefined ? 1 : integerFlag('repeat', v.repeat, 1, 20),
  };
}

const help = `Usage: npm run bench:rolling -- [flags]
  --lag <list>          propagation lags, e.g. 500,2s,8s (default 500,2000,8000 ms)
  --work <list>         short (HTTP/1.1 50 ms), mixed (10 % of them 3 s), ws (WebSocket echoes),
                        h2 (HTTP/2 streams) (default all)
  --tool <list>         ${TOOLS.join(', ')} (default all)
  --replicas <n>        old pods rolled per tool and scenario (default 2)
  --concurrency <n>     keep-alive client loops, WebSocket clients or HTTP/2 stream loops (default 16)
  --new-conns <n>       new clients per second, each on a fresh connection (default 20)
  --grace <seconds>     terminationGracePeriodSeconds (default 30)
  --repeat <n>          runs per scenario (default 1)
  --serial              run the tools of a scenario one after another, not side by side
  --json                also print every result as a JSON line`;

interface ToolResult {
  readonly scenario: string;
  readonly lagMs: number;
  readonly work: Work;
  readonly tool: Tool;
  readonly result: ScenarioResult;
  /** WebSocket echoes resent after a clean close, HTTP/2 requests retried after REFUSED_STREAM. */
  readonly resent: number;
}

const s = (ms: number): string => (ms / 1000).toFixed(2);
/** Negative over ideal: the pod left before it was safe to (and its clients paid for it). */
const signed = (ms: number): string => `${ms < 0 ? '-' : '+'}${s(Math.abs(ms))}`;

function failures(result: ScenarioResult): string {
  const kinds = Object.entries(result.failures).sort((a, b) => b[1] - a[1]);
  return kinds.length === 0 ? '**0**' : `${result.failed} (${kinds.map(([k, n]) => `${k} ${n}`).join(', ')})`;
}

/** The figure tools are compared on: the median SIGTERM-to-exit over the tool's old pods. */
const exitMs = (result: ScenarioResult): number => median(result.pods.map((p) => p.shutdownMs));

async function runTool(
  tool: Tool,
  lagMs: number,
  work: Work,
  args: ReturnType<typeof parse>,
  seed: number,
): Promise<ToolResult> {
  const spec = WORK[work];
  let resending: ResendingLoad | RetryingLoad | undefined;
  const clients: LoadFactory =
    spec.protocol === 'ws'
      ? (options, table) => (resending = startWebSocketLoad(options, table))
      : spec.protocol === 'h2'
        ? (options, table) => (resending = startHttp2Load(options, table))
        : (options) => startLoad(options);
  const { result } = await runScenario(
    {
      service: tool,
      script: servicePath(tool),
      env: { BENCH_PROTOCOL: spec.protocol },
      replicas: args.replicas,
      lagMs,
      requestMs: spec.requestMs,
      longShare: spec.longShare,
      longMs: spec.longMs,
      concurrency: args.concurrency,
      newConnectionsPerSecond: args.newConnections,
      strategy: 'adaptive',
      quietPeriodMs: QUIET_PERIOD_MS,
      delayMs: 5000,
      graceSeconds: args.grace,
      warmupMs: 1000,
      tailMs: 1000,
      seed,
      startReplacementsEarly: true,
      rolloutStepMs: 1000,
    },
    undefined,
    clients,
  );
  const resent = resending === undefined ? 0 : 'resent' in resending ? resending.resent : resending.retried;
  return { scenario: `lag ${s(lagMs)} s, ${spec.label}`, lagMs, work, tool, result, resent };
}

function detailTable(results: readonly ToolResult[]): string[] {
  const header = [
    'scenario',
    'tool',
    'requests',
    'failed (by kind)',
    'resent/retried',
    'old pods: exit / ideal s (exit code)',
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

/** kubegrace loses nothing, and leaves no later than any other tool that loses nothing. */
function barVerdict(results: readonly ToolResult[]): string {
  const ours = results.filter((r) => r.tool === 'kubegrace');
  if (ours.length === 0) return '-';
  const ourFailed = ours.reduce((n, r) => n + r.result.failed, 0);
  if (ourFailed > 0) return `MISSED: kubegrace lost ${ourFailed}`;
  const ourExit = median(ours.map((r) => exitMs(r.result)));
  const cleanOthers = new Map<Tool, number>();
  for (const tool of new Set(results.map((r) => r.tool))) {
    if (tool === 'kubegrace') continue;
    const runs = results.filter((r) => r.tool === tool);
    if (runs.every((r) => r.result.failed === 0 && !r.result.killed)) {
      cleanOthers.set(tool, median(runs.map((r) => exitMs(r.result))));
    }
  }
  const faster = [...cleanOthers].filter(([, ms]) => ms < ourExit);
  if (faster.length > 0) {
    return `MISSED: ${faster.map(([tool, ms]) => `${tool} ${s(ms)} s`).join(', ')} < ${s(ourExit)} s`;
  }
  return cleanOthers.size === 0 ? 'met (only tool with 0 failed)' : 'met';
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  if (args.help) {
    console.log(help);
    return;
  }
  const started = Date.now();
  buildServices();
  console.log(
    `rolling restart, side by side: ${args.replicas} old pod(s) per tool, ${args.concurrency} client loops + ` +
      `${args.newConnections} new connections/s, grace ${args.grace} s, kubegrace adaptive (quiet period ` +
      `${QUIET_PERIOD_MS} ms); tools ${args.serial ? 'one after another' : 'side by side'}: ${args.tools.join(', ')}`,
  );
  const results: ToolResult[] = [];
  for (const work of args.works) {
    for (const lagMs of args.lags) {
      for (let round = 0; round < args.repeat; round++) {
        const scenarioStart = Date.now();
        // The harness's own event-loop delay: a starved harness would send its load late for every tool.
        const harnessDelay = monitorEventLoopDelay({ resolution: 5 });
        harnessDelay.enable();
        const run = (tool: Tool): Promise<ToolResult> => runTool(tool, lagMs, work, args, round + 1);
        let batch: ToolResult[];
        if (args.serial) {
          batch = [];
          for (const tool of args.tools) batch.push(await run(tool));
        } else {
          batch = await Promise.all(args.tools.map(run));
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
  }
  console.log(
    '\nmedian exit of the old pods (SIGTERM to exit) and failed requests, per scenario and tool:\n',
  );
  for (const line of summaryTable(results, args.tools)) console.log(line);
  console.log('\n');
  for (const line of detailTable(results)) console.log(line);
  console.log(`\ntotal ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

try {
  await main();
} catch (error) {
  console.error(error instanceof UsageError ? error.message : error);
  process.exitCode = error instanceof UsageError ? 2 : 1;
} finally {
  killAllPods();
}
