/**
 * `npm run bench`: every benchmark once, one after another, with the machine described first and
 * the load average around each, so a reader can tell a quiet run from a noisy one.
 *
 *   1. rolling restarts, side by side (bench/rolling.ts, full matrix)
 *   2. 10,000 keep-alive + 1,000 WebSocket connections drained (bench/scale.ts)
 *   3. attach overhead on node:http and express (bench/overhead.ts)
 *   4. the same with kubegrace/metrics instrumented as well (bench/overhead.ts --metrics)
 *
 * About 17 minutes on 2 cores (the rolling matrix alone 13–15). Arguments after `--` are not
 * forwarded; run a benchmark's own script for a narrower run (see bench/README.md).
 */
import { spawn } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';

const steps = [
  { name: 'rolling restarts, side by side', script: 'rolling.ts', args: [] },
  { name: 'scale: 10,000 keep-alive + 1,000 WebSockets', script: 'scale.ts', args: [] },
  { name: 'overhead: node:http and express', script: 'overhead.ts', args: [] },
  { name: 'overhead with metrics: node:http and express', script: 'overhead.ts', args: ['--metrics'] },
] as const;

const load = (): string =>
  loadavg()
    .map((n) => n.toFixed(2))
    .join(' ');

function run(script: string, args: readonly string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(new URL(script, import.meta.url)), ...args],
      {
        stdio: 'inherit',
      },
    );
    child.once('exit', (code, signal) => resolve(code ?? (signal === null ? 1 : 128)));
  });
}

const started = Date.now();
const cpu = cpus();
console.log(
  `machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ` +
    `Node ${process.version}, ${process.platform} ${process.arch}; load average ${load()}`,
);
let failed = 0;
for (const step of steps) {
  const from = Date.now();
  console.log(`\n=== ${step.name} (load average ${load()})\n`);
  const code = await run(step.script, step.args);
  if (code !== 0) failed++;
  console.log(
    `\n=== ${step.name}: ${((Date.now() - from) / 1000).toFixed(0)} s, exit ${code} (load average ${load()})`,
  );
}
console.log(`\nnpm run bench: ${((Date.now() - started) / 1000).toFixed(0)} s in total`);
process.exitCode = failed === 0 ? 0 : 1;
