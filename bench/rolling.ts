/**
 * Rolling-restart benchmark: replicas behind a kube-proxy-style endpoint table, keep-alive load,
 * each old pod replaced by a ready new one and then terminated while its endpoint leaves the table
 * only after the propagation lag. kubegrace (adaptive, quiet period 1 s) and a plain
 * `server.close()` service run the same scenarios in the same run.
 *
 *   npm run bench:rolling                                   # full matrix
 *   npm run bench:rolling -- --lag 2s --work mixed          # one row per tool
 *   npm run bench:rolling -- --tool kubegrace --replicas 1  # quicker
 *
 * See bench/README.md for the definitions (failed request, ideal exit) and measured figures.
 */
import { durationFlag, integerFlag, choiceFlag, parseFlags, UsageError } from '../src/cli/demo/flags.js';
import { killAllPods } from '../src/cli/demo/pod.js';
import { runScenario, type ScenarioOptions, type ScenarioResult } from '../src/cli/demo/run.js';

const WORK = {
  short: { requestMs: 50, longShare: 0, longMs: 3000, label: '50 ms' },
  mixed: { requestMs: 50, longShare: 0.1, longMs: 3000, label: '50 ms + 10 % 3 s' },
} as const;
type Work = keyof typeof WORK;
type Tool = 'kubegrace' | 'naive';

const QUIET_PERIOD_MS = 1000;
/** The bar: the old pod exits within ideal + quiet period + this. */
const EXIT_SLACK_MS = 500;

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
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  } as const);
  const list = <T>(raw: string | undefined, all: readonly T[], one: (s: string) => T): T[] =>
    raw === undefined ? [...all] : raw.split(',').map((s) => one(s.trim()));
  return {
    help: v.help === true,
    json: v.json === true,
    lags: list(v.lag, [500, 2000, 8000], (s) => durationFlag('lag', s, 120_000)),
    works: list(v.work, ['short', 'mixed'] as Work[], (s) =>
      choiceFlag('work', s, ['short', 'mixed'] as const),
    ),
    tools: list(v.tool, ['kubegrace', 'naive'] as Tool[], (s) =>
      choiceFlag('tool', s, ['kubegrace', 'naive'] as const),
    ),
    replicas: v.replicas === undefined ? 3 : integerFlag('replicas', v.replicas, 1, 5),
    concurrency: v.concurrency === undefined ? 16 : integerFlag('concurrency', v.concurrency, 1, 512),
    newConnections: v['new-conns'] === undefined ? 20 : integerFlag('new-conns', v['new-conns'], 0, 1000),
    grace: v.grace === undefined ? 30 : integerFlag('grace', v.grace, 1, 600, 's'),
    repeat: v.repeat === undefined ? 1 : integerFlag('repeat', v.repeat, 1, 20),
  };
}

const help = `Usage: npm run bench:rolling -- [flags]
  --lag <list>          propagation lags, e.g. 500,2s,8s (default 500,2000,8000 ms)
  --work <list>         short (50 ms requests), mixed (10 % of them 3 s) (default both)
  --tool <list>         kubegrace, naive (default both)
  --replicas <n>        old pods rolled one after another (default 3)
  --concurrency <n>     keep-alive client loops (default 16)
  --new-conns <n>       new clients per second, each on a fresh connection (default 20)
  --grace <seconds>     terminationGracePeriodSeconds (default 30)
  --repeat <n>          runs per scenario (default 1)
  --json                also print every result as a JSON line`;

const s = (ms: number): string => (ms / 1000).toFixed(2);

function failures(result: ScenarioResult): string {
  const kinds = Object.entries(result.failures).sort((a, b) => b[1] - a[1]);
  return kinds.length === 0 ? '0' : `${result.failed} (${kinds.map(([k, n]) => `${k} ${n}`).join(', ')})`;
}

/** How far the latest old pod left after its ideal moment. */
function overshoot(result: ScenarioResult): number {
  return Math.max(...result.pods.map((p) => p.shutdownMs - p.idealMs));
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function meetsBar(result: ScenarioResult): boolean {
  return (
    result.failed === 0 &&
    result.pods.every(
      (p) => p.exitCode === 0 && !p.killed && p.shutdownMs <= p.idealMs + QUIET_PERIOD_MS + EXIT_SLACK_MS,
    )
  );
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  if (args.help) {
    console.log(help);
    return;
  }
  const header = [
    'scenario',
    'tool',
    'requests',
    'failed (by kind)',
    'old pods: exit / ideal s (code)',
    'max over ideal',
    'SIGKILLed',
    'bar',
  ];
  const rows: string[][] = [];
  const runs = new Map<string, ScenarioResult[]>();
  const started = Date.now();
  console.log(
    `rolling restart: ${args.replicas} replica(s), ${args.concurrency} keep-alive loops + ${args.newConnections} new connections/s, ` +
      `kubegrace adaptive (quiet period ${QUIET_PERIOD_MS} ms), grace ${args.grace} s`,
  );
  for (const lagMs of args.lags) {
    for (const work of args.works) {
      for (const tool of args.tools) {
        for (let round = 0; round < args.repeat; round++) {
          const scenario: ScenarioOptions = {
            service: tool,
            replicas: args.replicas,
            lagMs,
            ...WORK[work],
            concurrency: args.concurrency,
            newConnectionsPerSecond: args.newConnections,
            strategy: 'adaptive',
            quietPeriodMs: QUIET_PERIOD_MS,
            delayMs: 5000,
            graceSeconds: args.grace,
            warmupMs: 1000,
            tailMs: 1000,
            seed: round + 1,
          };
          const { result } = await runScenario(scenario);
          const row = [
            `lag ${s(lagMs)} s, ${WORK[work].label}`,
            tool,
            String(result.requests),
            failures(result),
            result.pods.map((p) => `${s(p.shutdownMs)}/${s(p.idealMs)} (${p.exitCode})`).join('  '),
            `+${s(overshoot(result))} s`,
            String(result.pods.filter((p) => p.killed).length),
            tool === 'kubegrace' ? (meetsBar(result) ? 'ok' : 'MISSED') : '-',
          ];
          rows.push(row);
          const key = `${row[0]}|${tool}`;
          runs.set(key, [...(runs.get(key) ?? []), result]);
          console.log(`  ${row.join(' | ')}`);
          if (args.json) console.log(JSON.stringify(result));
        }
      }
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  console.log('');
  console.log(line(header));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const row of rows) console.log(line(row));
  if (args.repeat > 1) {
    console.log(`\nover ${args.repeat} runs per scenario (all old pods of all runs):`);
    for (const [key, results] of runs) {
      const [scenario, tool] = key.split('|');
      const over = results.flatMap((r) => r.pods.map((p) => p.shutdownMs - p.idealMs));
      const failed = results.map((r) => r.failed);
      console.log(
        `  ${scenario} | ${tool} | failed per run ${failed.join(', ')} | exit over ideal: median +${s(median(over))} s, ` +
          `max +${s(Math.max(...over))} s | SIGKILLed ${results.reduce((n, r) => n + r.pods.filter((p) => p.killed).length, 0)}` +
          (tool === 'kubegrace' ? ` | bar ${results.every(meetsBar) ? 'ok' : 'MISSED'}` : ''),
      );
    }
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
}
