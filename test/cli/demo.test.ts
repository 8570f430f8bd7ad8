import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

/** Small but real: child services, the endpoint table, keep-alive load and SIGTERM, in a few seconds. */
const quick = [
  '--lag',
  '400ms',
  '--quiet-period',
  '500ms',
  '--warmup',
  '500ms',
  '--tail',
  '300ms',
  '--concurrency',
  '8',
];

function demo(
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
  timeout = 30_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const options = { timeout, env: { ...process.env, ...env } };
    execFile(process.execPath, [bin, 'demo', ...args], options, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

interface Summary {
  service: string;
  requests: number;
  failed: number;
  failures: Record<string, number>;
  exitCode: number;
  shutdownMs: number;
  idealMs: number;
  killed: boolean;
  phases: Record<string, number>;
  pods: {
    pod: string;
    shutdownMs: number;
    timeline: { name: string; startMs: number; endMs: number }[];
    propagation?: { strategy: string; endedBy: string; waitedMs: number };
  }[];
  compare?: Record<string, Summary>;
}

/** stdout must be exactly one JSON object: scripts pipe it to jq. */
function parseOnly(stdout: string): Summary {
  const lines = stdout.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line on stdout, got:\n${stdout}`);
  return JSON.parse(lines[0] ?? '') as Summary;
}

describe('kubegrace demo', () => {
  it('--json: a rolling restart under keep-alive load loses no request and exits 0 after the endpoint is gone', async () => {
    const run = await demo([...quick, '--json']);
    assert.equal(run.code, 0, run.stderr);
    const summary = parseOnly(run.stdout);
    assert.equal(summary.service, 'kubegrace');
    assert.ok(summary.requests > 50, `requests: ${summary.requests}`);
    assert.equal(summary.failed, 0, JSON.stringify(summary.failures));
    assert.equal(summary.exitCode, 0);
    assert.equal(summary.killed, false);
    for (const phase of ['unready', 'propagate', 'drain', 'cleanup']) {
      assert.equal(
        typeof summary.phases[phase],
        'number',
        `phase ${phase} in ${JSON.stringify(summary.phases)}`,
      );
    }
    // Each pod's own account of its propagation wait, from its summary line.
    for (const pod of summary.pods) {
      assert.equal(pod.propagation?.strategy, 'adaptive', JSON.stringify(pod));
      assert.match(pod.propagation.endedBy, /^(quiet|max)$/);
      assert.ok(pod.propagation.waitedMs <= pod.shutdownMs, JSON.stringify(pod));
    }
    // It left after traffic had moved away (lag 400 ms), and not much later than the quiet period after that.
    assert.ok(summary.shutdownMs >= 400, `shutdownMs ${summary.shutdownMs}`);
    assert.ok(
      summary.shutdownMs <= summary.idealMs + 500 + 1000,
      `shutdownMs ${summary.shutdownMs}, ideal ${summary.idealMs}`,
    );
  });

  it('--compare naive: the plain server.close() service loses requests and is SIGKILLed at the grace period', async () => {
    // Grace 3 s puts kubegrace's deadline at 2 s: half a second of traffic history is no rate to judge
    // a silence by, so bound the wait to fit (the pods inherit the demo's environment).
    const run = await demo([...quick, '--lag', '1s', '--grace', '3', '--compare', 'naive', '--json'], {
      KUBEGRACE_PROPAGATION_MAX_MS: '1500',
    });
    assert.equal(run.code, 0, run.stderr);
    const summary = parseOnly(run.stdout);
    assert.equal(summary.failed, 0, JSON.stringify(summary.failures));
    assert.equal(summary.exitCode, 0);
    const naive = summary.compare?.naive;
    assert.ok(naive, 'naive result under compare.naive');
    assert.ok(naive.failed > 0, `naive failed ${naive.failed}`);
    // New connections during the lag are refused; pooled keep-alive keeps server.close() from finishing.
    assert.ok((naive.failures.ECONNREFUSED ?? 0) > 0, JSON.stringify(naive.failures));
    assert.equal(naive.killed, true);
    assert.equal(naive.exitCode, 137);
    assert.ok(naive.shutdownMs >= 3000 && naive.shutdownMs < 4000, `naive shutdownMs ${naive.shutdownMs}`);
  });

  it('prints a live timeline relative to the SIGTERM and a summary, and writes the --report page', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'kubegrace-demo-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const report = join(dir, 'report.html');
    const run = await demo([...quick, '--report', report]);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(run.stdout.includes(`report: ${report}`), run.stdout);
    const html = readFileSync(report, 'utf8');
    assert.match(html, /<svg id="timeline"/);
    assert.match(html, />propagate</);
    assert.match(run.stdout, /\+0\.0\ds +old-1 +SIGTERM/);
    assert.match(run.stdout, /old-1 +phase propagate/);
    assert.match(run.stdout, /old-1 +removed from the endpoint table/);
    assert.match(run.stdout, /old-1 +exited with code 0/);
    assert.match(run.stdout, /load +\d+ req +0 failed/);
    assert.match(run.stdout, /kubegrace: \d+ requests, 0 failed\n/);
    assert.match(run.stdout, /phases: unready \d+ ms · propagate \d+ ms · drain \d+ ms · cleanup \d+ ms/);
    assert.match(run.stdout, /\n {2}ideal: the earliest safe exit, /);
    // The timeline reads in time order, however late a pod's line reached the harness.
    const times = [...run.stdout.matchAll(/^ {2}([+-]\d+\.\d+)s /gm)].map((m) => Number(m[1]));
    assert.ok(times.length > 5, run.stdout);
    assert.deepEqual(
      times,
      [...times].sort((a, b) => a - b),
      run.stdout,
    );
    // The report marks the endpoint removal, the ideal exit and the exit, and counts each pod.
    for (const marker of ['removed', 'ideal', 'exit'])
      assert.ok(html.includes(`data-marker="${marker}"`), marker);
    assert.match(html, /<tr><th scope="row">old-1<\/th><td>\d+<\/td><td>0<\/td>/);
    assert.match(html, /<th scope="row">requests \(all pods\)<\/th>/);
  });

  it('--cluster: the node:cluster pod with kubegrace/cluster loses nothing, the naive primary loses requests, each figure from the run', async () => {
    const run = await demo([...quick, '--cluster'], {}, 60_000);
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    assert.match(
      run.stdout,
      /kubegrace-cluster: .*node:cluster primary \+ 2 workers with kubegrace\/cluster/,
    );
    assert.match(run.stdout, /naive-cluster: .*the primary forwards SIGTERM and exits/);
    const line = (service: string): { requests: number; failed: number } => {
      const m = new RegExp(`^ {2}${service}: (\\d+) requests, (\\d+) failed`, 'm').exec(run.stdout);
      assert.ok(m, `${service} summary line in:\n${run.stdout}`);
      return { requests: Number(m[1]), failed: Number(m[2]) };
    };
    const ours = line('kubegrace-cluster');
    const naive = line('naive-cluster');
    assert.ok(ours.requests > 50, `requests: ${ours.requests}`);
    assert.equal(ours.failed, 0, run.stdout);
    assert.ok(naive.failed > 0, `the naive primary lost none:\n${run.stdout}`);
    // The comparison table repeats the run's own counts, column by column.
    const row = (name: string): string[] => {
      const m = new RegExp(`^ {2}${name} +(.*)$`, 'm').exec(run.stdout);
      assert.ok(m, `${name} row in:\n${run.stdout}`);
      return (m[1] ?? '').trim().split(/ {2,}/);
    };
    assert.deepEqual(row('requests'), [String(ours.requests), String(naive.requests)]);
    assert.equal(row('failed')[0], '0');
    assert.match(row('failed')[1] ?? '', new RegExp(`^${naive.failed}\\b`));
    // The naive pod's losses are the old pod's, the one that got SIGTERM.
    const oldPod = /naive-cluster: \d+ requests[^\n]*\n +old-1: [^\n]*; (\d+) requests, (\d+) failed/.exec(
      run.stdout,
    );
    assert.ok(oldPod, run.stdout);
    assert.equal(Number(oldPod[2]), naive.failed);
  });
});
