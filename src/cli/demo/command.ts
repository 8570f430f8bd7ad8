/** `kubegrace demo`: flags, help text, and the run (live timeline or one JSON object). */
import { writeFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { defaults } from '../../options.js';
import {
  choiceFlag,
  durationFlag,
  fileFlag,
  inCommand,
  integerFlag,
  parseFlags,
  shareFlag,
} from '../flags.js';
import { killAllPods } from './pod.js';
import { renderShutdownReport } from './report-html.js';
import {
  createLiveTimeline,
  describeScenario,
  formatComparison,
  formatSummary,
  htmlReportData,
} from './report.js';
import { runScenario, type ScenarioOptions, type ScenarioResult, type ScenarioRun } from './run.js';
import { TRAFFIC_SHAPES, trafficShapes, type TrafficShapeName } from './traffic.js';

/** The demo's shapes: `in-cluster` needs a Kubernetes API, which only the benchmark brings (a fake one). */
const DEMO_TRAFFIC = TRAFFIC_SHAPES.filter((shape) => !trafficShapes[shape].inCluster);

export const demoDefaults = {
  lagMs: 2000,
  requestMs: 50,
  longShare: 0,
  longMs: 3000,
  concurrency: 16,
  newConnectionsPerSecond: 20,
  strategy: defaults.propagation.strategy,
  quietPeriodMs: defaults.propagation.quietPeriodMs,
  delayMs: defaults.propagation.delayMs,
  graceSeconds: 30,
  replicas: 1,
  traffic: 'steady' satisfies TrafficShapeName,
  warmupMs: trafficShapes.steady.warmupMs,
  /** Warm-up of the other shapes: the arrival history a long-running pod would have. */
  shapeWarmupMs: trafficShapes.sparse.warmupMs,
  tailMs: 1000,
} as const;

export const demoHelp = `Usage: kubegrace demo [flags]

Runs a real example service behind a kube-proxy-style endpoint table: keep-alive clients under
load, a replacement pod started and ready, then SIGTERM to the old pod while its endpoint leaves
the table only after the propagation lag. Prints a live timeline and a summary.

Flags:
  --traffic <shape>          the clients and the Service's routing (default ${demoDefaults.traffic}):
${DEMO_TRAFFIC.map((shape) => `                               ${shape.padEnd(8)} ${trafficShapes[shape].label}`).join('\n')}
                             --concurrency, --new-conns and --long-share override a shape's figures
  --lag <duration>           endpoint removal lags the SIGTERM by this (default ${demoDefaults.lagMs}ms;
                             with nodes, the slowest node's)
  --request <duration>       time each request takes on the server (default ${demoDefaults.requestMs}ms)
  --long <duration>          time a long request takes (default ${demoDefaults.longMs}ms)
  --long-share <share>       share of long requests, 0..1 or a percentage (default ${demoDefaults.longShare})
  --concurrency <n>          keep-alive client loops (default ${demoDefaults.concurrency}, or the shape's)
  --new-conns <n>            new clients per second, each on a fresh connection (default ${demoDefaults.newConnectionsPerSecond}, or the shape's)
  --strategy <name>          propagation strategy: adaptive or fixed (default ${demoDefaults.strategy})
  --quiet-period <duration>  adaptive: shortest silence that ends the wait (default ${demoDefaults.quietPeriodMs}ms)
  --delay <duration>         fixed: keep serving this long (default ${demoDefaults.delayMs}ms)
  --grace <seconds>          terminationGracePeriodSeconds: SIGKILL after this (default ${demoDefaults.graceSeconds})
  --replicas <n>             old pods, replaced one after another (default ${demoDefaults.replicas})
  --warmup <duration>        load before the first SIGTERM (default ${demoDefaults.warmupMs}ms; ${demoDefaults.shapeWarmupMs}ms for
                             the other shapes)
  --tail <duration>          load after the last old pod exited (default ${demoDefaults.tailMs}ms)
  --compare naive            run the same scenario against a plain server.close() service too
  --cluster                  a multi-process pod (a node:cluster primary and 2 workers): kubegrace/cluster
                             side by side with the naive primary that forwards SIGTERM and exits
                             (always compared; the workers do server.close())
  --report <file>            also write an HTML page with the shutdown's timeline
                             (with --compare, the naive run's goes next to it: report.html
                             becomes report.naive.html)
  --json                     print only the summary, as one JSON object
  -h, --help                 this text

Durations: 500, 500ms or 0.5s (a bare number is milliseconds).
Exit code: 0 when the kubegrace service lost no request and exited 0, 1 otherwise, 2 for bad flags.
`;

const flagSpec = {
  traffic: { type: 'string' },
  lag: { type: 'string' },
  request: { type: 'string' },
  long: { type: 'string' },
  'long-share': { type: 'string' },
  concurrency: { type: 'string' },
  'new-conns': { type: 'string' },
  strategy: { type: 'string' },
  'quiet-period': { type: 'string' },
  delay: { type: 'string' },
  grace: { type: 'string' },
  replicas: { type: 'string' },
  warmup: { type: 'string' },
  tail: { type: 'string' },
  compare: { type: 'string' },
  cluster: { type: 'boolean' },
  report: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface DemoArgs {
  readonly help: boolean;
  readonly json: boolean;
  readonly compare: 'naive' | undefined;
  /** Multi-process pods: `kubegrace-cluster` and `naive-cluster` instead of the single-process services. */
  readonly cluster: boolean;
  readonly report: string | undefined;
  readonly scenario: Omit<ScenarioOptions, 'service'>;
}

export function parseDemoArgs(args: readonly string[]): DemoArgs {
  return inCommand('demo', () => demoArgs(parseFlags('demo', args, flagSpec)));
}

function demoArgs(v: ReturnType<typeof parseFlags<typeof flagSpec>>): DemoArgs {
  const d = demoDefaults;
  const duration = (flag: keyof typeof v, fallback: number, maxMs: number): number => {
    const raw = v[flag];
    return typeof raw === 'string' ? durationFlag(flag, raw, maxMs) : fallback;
  };
  const traffic = v.traffic === undefined ? d.traffic : choiceFlag('traffic', v.traffic, DEMO_TRAFFIC);
  const shape = trafficShapes[traffic];
  return {
    help: v.help === true,
    json: v.json === true,
    compare: v.compare === undefined ? undefined : choiceFlag('compare', v.compare, ['naive'] as const),
    cluster: v.cluster === true,
    report: v.report === undefined ? undefined : fileFlag('report', v.report),
    scenario: {
      replicas: v.replicas === undefined ? d.replicas : integerFlag('replicas', v.replicas, 1, 5),
      lagMs: duration('lag', d.lagMs, 120_000),
      requestMs: duration('request', d.requestMs, 60_000),
      longMs: duration('long', shape.longMs ?? d.longMs, 120_000),
      longShare:
        v['long-share'] === undefined
          ? (shape.longShare ?? d.longShare)
          : shareFlag('long-share', v['long-share']),
      concurrency:
        v.concurrency === undefined ? shape.concurrency : integerFlag('concurrency', v.concurrency, 1, 512),
      newConnectionsPerSecond:
        v['new-conns'] === undefined
          ? shape.newConnectionsPerSecond
          : integerFlag('new-conns', v['new-conns'], 0, 1000),
      arrivals: shape.arrivals,
      endpointChoice: shape.endpointChoice,
      nodes: shape.nodes,
      strategy:
        v.strategy === undefined
          ? d.strategy
          : choiceFlag('strategy', v.strategy, ['adaptive', 'fixed'] as const),
      quietPeriodMs: duration('quiet-period', d.quietPeriodMs, 60_000),
      delayMs: duration('delay', d.delayMs, 120_000),
      graceSeconds: v.grace === undefined ? d.graceSeconds : integerFlag('grace', v.grace, 1, 600, 's'),
      warmupMs: duration('warmup', shape.warmupMs, 30_000),
      tailMs: duration('tail', d.tailMs, 30_000),
    },
  };
}

/** `report.html` → `report.naive.html`: the compared run's page sits next to kubegrace's. */
function siblingPath(file: string, service: string): string {
  const ext = extname(file);
  return `${file.slice(0, file.length - ext.length)}.${service}${ext || '.html'}`;
}

export interface CommandIo {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

/** Returns the exit code. */
export async function demoCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const parsed = parseDemoArgs(args);
  if (parsed.help) {
    io.out(demoHelp.trimEnd());
    return 0;
  }
  const services: readonly string[] = parsed.cluster
    ? ['kubegrace-cluster', 'naive-cluster']
    : parsed.compare
      ? ['kubegrace', parsed.compare]
      : ['kubegrace'];
  const results: ScenarioResult[] = [];
  try {
    for (const service of services) {
      const scenario: ScenarioOptions = { ...parsed.scenario, service };
      let run: ScenarioRun;
      if (parsed.json) {
        run = await runScenario(scenario);
      } else {
        const timeline = createLiveTimeline(io.out, `${service}: ${describeScenario(scenario)}`);
        try {
          io.out('');
          run = await runScenario(scenario, timeline.onEvent);
        } finally {
          timeline.close();
        }
        io.out('');
        for (const line of formatSummary(run.result)) io.out(`  ${line}`);
      }
      results.push(run.result);
      if (parsed.report !== undefined) {
        const file = service === services[0] ? parsed.report : siblingPath(parsed.report, service);
        await writeFile(file, renderShutdownReport(htmlReportData(run)));
        if (!parsed.json) io.out(`  report: ${file}`);
      }
    }
  } finally {
    killAllPods();
  }

  const [ours, ...others] = results as [ScenarioResult, ...ScenarioResult[]];
  if (parsed.json) {
    const compare = Object.fromEntries(others.map((r) => [r.service, r]));
    io.out(JSON.stringify(others.length > 0 ? { ...ours, compare } : ours));
  } else if (others.length > 0) {
    io.out('');
    for (const line of formatComparison(results)) io.out(line);
  }
  return ours.failed === 0 && ours.exitCode === 0 ? 0 : 1;
}
