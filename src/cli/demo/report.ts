/** Terminal output of the demo: a live timeline relative to the first SIGTERM, and the summary. */
import type { RequestRecord } from './load.js';
import type { ReportMarker, ReportSample, ShutdownReportData } from './report-html.js';
import type { PodResult, RunEvent, ScenarioOptions, ScenarioResult, ScenarioRun } from './run.js';

export interface LiveTimeline {
  readonly onEvent: (event: RunEvent) => void;
  close(): void;
}

const seconds = (ms: number): string => `${ms < 0 ? '-' : '+'}${(Math.abs(ms) / 1000).toFixed(2)}s`;
const pad = (text: string, width: number): string => text.padEnd(width);

/** One line, in one sentence: what the summary's "ideal" is. */
export const IDEAL_EXPLAINED =
  'ideal: the earliest safe exit, once the endpoint is gone from every node and the last request sent before that has been answered';

/** Lines wait this long before they are printed, so a pod's event that arrives late still prints in time order. */
const REORDER_MS = 300;

/**
 * Lines before the first SIGTERM are held back and printed once it is known, so every time on
 * screen reads relative to it; after it, one line per second counts requests and failures by pod.
 * Pod events reach the timeline through pipes a little after they happened: every line waits
 * REORDER_MS and the lines are printed in the order of their times, not of their arrival.
 */
export function createLiveTimeline(write: (line: string) => void, label: string): LiveTimeline {
  let zero: number | undefined;
  const held: { at: number; pod: string; text: string }[] = [];
  const pending: { at: number; text: string }[] = [];
  const flush = (upTo: number): void => {
    pending.sort((a, b) => a.at - b.at);
    let count = 0;
    while (count < pending.length && (pending[count]?.at ?? Infinity) <= upTo) count++;
    for (const { text } of pending.splice(0, count)) write(text);
  };
  const flusher = setInterval(() => flush(performance.timeOrigin + performance.now() - REORDER_MS), 100);
  flusher.unref();
  const window: RequestRecord[] = [];
  const warmup = { requests: 0, failed: 0 };
  let second = 0;
  let ticker: NodeJS.Timeout | undefined;

  const line = (at: number, pod: string, text: string): void => {
    if (zero === undefined) held.push({ at, pod, text });
    else pending.push({ at, text: `  ${pad(seconds(at - zero), 8)} ${pad(pod, 7)} ${text}` });
  };

  function tick(): void {
    if (zero === undefined) return;
    const end = zero + (second + 1) * 1000;
    const ended = window.filter((r) => r.endedAt < end);
    window.splice(0, window.length, ...window.filter((r) => r.endedAt >= end));
    const byPod = new Map<string, number>();
    for (const r of ended) byPod.set(r.endpoint ?? '-', (byPod.get(r.endpoint ?? '-') ?? 0) + 1);
    const failed = ended.filter((r) => r.failure !== undefined);
    const kinds = [...new Set(failed.map((r) => r.failure))].join(', ');
    const spread = [...byPod].map(([pod, n]) => `${pod} ${n}`).join(' · ');
    pending.push({
      at: end,
      text:
        `  ${pad(seconds((second + 1) * 1000), 8)} ${pad('load', 7)} ${String(ended.length).padStart(5)} req ` +
        `${String(failed.length).padStart(4)} failed${kinds ? ` (${kinds})` : ''}   ${spread}`,
    });
    second++;
  }

  function onEvent(event: RunEvent): void {
    switch (event.type) {
      case 'request':
        if (zero === undefined || event.record.endedAt < zero) {
          warmup.requests++;
          if (event.record.failure !== undefined) warmup.failed++;
        } else {
          window.push(event.record);
        }
        return;
      case 'pod': {
        const e = event.event;
        if (e.event === 'phase') {
          line(
            e.at,
            event.pod,
            e.status === 'start' ? `phase ${e.phase}` : `  ${e.phase} done in ${e.durationMs} ms`,
          );
        } else if (e.event === 'state' && e.state !== 'ready') {
          line(e.at, event.pod, `state ${e.state}`);
        } else if (e.event === 'signal') {
          line(e.at, event.pod, `got ${e.signal}: server.close()`);
        } else if (e.event === 'closed') {
          line(e.at, event.pod, 'server.close() called back');
        } else if (e.event === 'log' && e.level !== 'info') {
          line(e.at, event.pod, `${e.level}: ${e.msg}`);
        } else if (e.event === 'summary') {
          line(e.at, event.pod, `summary: ${e.outcome}, exit code ${e.exitCode}`);
        }
        return;
      }
      case 'ready':
        line(event.at, event.pod, 'ready (/readyz 200)');
        return;
      case 'endpoint':
        line(
          event.at,
          event.pod,
          event.change === 'added' ? 'added to the endpoint table' : 'removed from the endpoint table',
        );
        return;
      case 'load':
        if (event.change === 'started') line(event.at, 'load', 'keep-alive clients start');
        else {
          if (zero !== undefined) while (zero + (second + 1) * 1000 <= event.at + 1) tick();
          line(event.at, 'load', 'clients stop');
        }
        return;
      case 'exit': {
        const { exit } = event;
        const how = exit.killed
          ? `SIGKILLed at the grace period (exit ${exit.exitCode})`
          : exit.signal
            ? `ended by ${exit.signal} (exit ${exit.exitCode})`
            : `exited with code ${exit.exitCode}`;
        line(exit.exitedAt, event.pod, how);
        return;
      }
      case 'sigterm':
        if (zero === undefined) {
          zero = event.at;
          write(`  ${label}`);
          if (warmup.requests > 0) {
            write(
              `  ${pad('before', 8)} ${pad('load', 7)} ${warmup.requests} req, ${warmup.failed} failed before the first SIGTERM`,
            );
          }
          for (const h of held.sort((a, b) => a.at - b.at)) line(h.at, h.pod, h.text);
          held.length = 0;
          const start = zero;
          const schedule = (): void => {
            ticker = setTimeout(
              () => {
                tick();
                schedule();
              },
              start + (second + 1) * 1000 + 50 - performance.timeOrigin - performance.now(),
            );
            ticker.unref();
          };
          schedule();
        }
        line(event.at, event.pod, 'SIGTERM (endpoint removal starts)');
        return;
    }
  }

  return {
    onEvent,
    close() {
      clearTimeout(ticker);
      clearInterval(flusher);
      flush(Infinity);
    },
  };
}

export function describeScenario(s: ScenarioOptions): string {
  const work =
    s.longShare > 0
      ? `${s.requestMs} ms requests with ${Math.round(s.longShare * 100)} % of ${s.longMs} ms`
      : `${s.requestMs} ms requests`;
  const strategy =
    s.service === 'naive'
      ? 'server.close() on SIGTERM'
      : s.service === 'naive-cluster'
        ? 'node:cluster primary + 2 workers: the primary forwards SIGTERM and exits, the workers server.close()'
        : s.service === 'kubegrace-cluster'
          ? `node:cluster primary + 2 workers with kubegrace/cluster, ${propagationText(s)}`
          : propagationText(s);
  return (
    `${s.replicas} pod${s.replicas === 1 ? '' : 's'} rolled, lag ${s.lagMs} ms, ${work}, ` +
    `concurrency ${s.concurrency} + ${s.newConnectionsPerSecond} new connections/s, ${strategy}, grace ${s.graceSeconds} s`
  );
}

function propagationText(s: ScenarioOptions): string {
  return s.strategy === 'fixed' ? `fixed ${s.delayMs} ms` : `adaptive, quiet period ${s.quietPeriodMs} ms`;
}

function failureText(result: ScenarioResult): string {
  const kinds = Object.entries(result.failures).sort((a, b) => b[1] - a[1]);
  return kinds.length === 0 ? '' : ` (${kinds.map(([kind, n]) => `${kind} ${n}`).join(', ')})`;
}

function podLine(pod: PodResult): string {
  const how = pod.killed
    ? `SIGKILLed at the grace period, exit ${pod.exitCode}`
    : `exit code ${pod.exitCode}`;
  return (
    `${pod.pod}: SIGTERM → exit ${(pod.shutdownMs / 1000).toFixed(2)} s, ideal ${(pod.idealMs / 1000).toFixed(2)} s ` +
    `(endpoint removed ${(pod.removedMs / 1000).toFixed(2)} s); ${how}; ${pod.requests} requests, ${pod.failed} failed`
  );
}

function phaseText(phases: Readonly<Record<string, number>>): string {
  const entries = Object.entries(phases);
  return entries.length === 0
    ? '(no phases: plain server.close())'
    : entries.map(([p, ms]) => `${p} ${ms} ms`).join(' · ');
}

export function formatSummary(result: ScenarioResult): string[] {
  const lines = [
    `${result.service}: ${result.requests} requests, ${result.failed} failed${failureText(result)}`,
  ];
  for (const pod of result.pods) {
    lines.push(`  ${podLine(pod)}`);
    lines.push(`    phases: ${phaseText(pod.phases)}${pod.outcome ? `; outcome ${pod.outcome}` : ''}`);
  }
  lines.push(IDEAL_EXPLAINED);
  return lines;
}

export function formatComparison(results: readonly ScenarioResult[]): string[] {
  const rows: [string, (r: ScenarioResult) => string][] = [
    ['run time', (r) => `${(r.durationMs / 1000).toFixed(1)} s`],
    ['requests', (r) => String(r.requests)],
    ['failed', (r) => `${r.failed}${failureText(r)}`],
    ['shutdown', (r) => `${(r.shutdownMs / 1000).toFixed(2)} s${r.killed ? ' (SIGKILLed)' : ''}`],
    ['ideal', (r) => `${(r.idealMs / 1000).toFixed(2)} s`],
    ['exit code', (r) => String(r.exitCode)],
  ];
  const widths = results.map((r) => Math.max(r.service.length, ...rows.map(([, f]) => f(r).length)) + 3);
  const row = (name: string, cells: readonly string[]): string =>
    `  ${pad(name, 11)}${cells.map((c, i) => pad(c, widths[i] ?? 0)).join('')}`.trimEnd();
  const lines = [
    row(
      '',
      results.map((r) => r.service),
    ),
  ];
  for (const [name, f] of rows) lines.push(row(name, results.map(f)));
  return lines;
}

const SAMPLE_MS = 100;

/**
 * The `--report` page's data for one run, around its first terminated pod: that pod's phases,
 * requests in flight on it and its request rate, and failed requests on any pod, every 100 ms.
 */
export function htmlReportData(run: ScenarioRun): ShutdownReportData {
  const { result, records } = run;
  const pod = result.pods[0];
  const zero = pod?.sigtermAt ?? records[0]?.startedAt ?? 0;
  const onPod = records.filter((r) => r.endpoint === pod?.pod);
  const first = Math.min(...records.map((r) => r.startedAt)) - zero;
  const last = Math.max(...records.map((r) => r.endedAt)) - zero;
  const samples: ReportSample[] = [];
  for (let t = Math.floor(first / SAMPLE_MS) * SAMPLE_MS; t <= last + SAMPLE_MS; t += SAMPLE_MS) {
    const from = zero + t - SAMPLE_MS;
    const to = zero + t;
    samples.push({
      tMs: t,
      inflight: onPod.filter((r) => r.startedAt <= to && r.endedAt > to).length,
      rps: (onPod.filter((r) => r.endedAt > from && r.endedAt <= to).length * 1000) / SAMPLE_MS,
      failed: records.filter((r) => r.failure !== undefined && r.endedAt > from && r.endedAt <= to).length,
    });
  }
  const markers: ReportMarker[] =
    pod === undefined
      ? []
      : [
          { name: 'removed', label: 'endpoint removed', tMs: pod.removedMs },
          { name: 'ideal', label: 'ideal exit', tMs: pod.idealMs },
          { name: 'exit', label: pod.killed ? 'SIGKILL' : `exit ${pod.exitCode}`, tMs: pod.shutdownMs },
        ];
  return {
    title: `${result.service}: ${pod?.pod ?? 'pod'} under ${describeScenario(result.scenario)}`,
    phases: pod?.timeline ?? [],
    markers,
    note: `The charts show ${pod?.pod ?? 'the first terminated pod'}; the summary counts every pod. ${IDEAL_EXPLAINED.replace(/^ideal:/, 'Ideal exit:')}.`,
    pods: result.pods.map((p) => ({
      pod: p.pod,
      requests: p.requests,
      failed: p.failed,
      shutdownMs: p.shutdownMs,
      idealMs: p.idealMs,
      removedMs: p.removedMs,
      exitCode: p.exitCode,
      killed: p.killed,
    })),
    samples,
    summary: {
      service: result.service,
      'requests (all pods)': result.requests,
      'failed (all pods)': result.failed,
      failures: Object.entries(result.failures)
        .map(([kind, n]) => `${kind} ${n}`)
        .join(', '),
      exitCode: result.exitCode,
      shutdownMs: result.shutdownMs,
      idealMs: result.idealMs,
      killed: result.killed,
      phases: phaseText(result.phases),
    },
  };
}
