/**
 * The watchdog on its own, in real child processes: it reaches a main thread that is blocked in
 * JavaScript, stands down once the shutdown is done, and never keeps a process alive.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';

const WATCHDOG = new URL('../src/watchdog.ts', import.meta.url).href;

/** Runs `body` as an ES module in a child Node with the watchdog imported as `createWatchdog`. */
async function runChild(body: string): Promise<{
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}> {
  const source = `import { createWatchdog } from ${JSON.stringify(WATCHDOG)};\n${body}`;
  const started = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', source], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  // Whatever the watchdog does, the child ends: a test that fails must not hang.
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  return { code, signal, stdout, stderr, ms: Date.now() - started };
}

// A report slice of 1 s, as with the default safety margin: the last resort (SIGKILL) then waits
// about half a second after the interrupt is asked for, which a loaded machine needs.
const ARM = (hardExitInMs: number): string => `
const now = Date.now();
const times = { deadlineAt: now + ${hardExitInMs} - 1100, reportUntil: now + ${hardExitInMs} - 100, hardExitAt: now + ${hardExitInMs}, trigger: 'test', startedAt: now };
`;

const SPIN = (ms: number): string => `
const until = Date.now() + ${ms};
while (Date.now() < until) {}
`;

describe('watchdog', () => {
  it('runs expire on the main thread while a CPU-bound loop blocks it', async () => {
    const { code, stdout } = await runChild(`
${ARM(300)}
const watchdog = createWatchdog({
  expire() { process.stdout.write('expired\\n'); process.exit(3); },
  writeFallbackLine: false,
  onError: (e) => { throw e; },
});
watchdog.arm(times);
${SPIN(20_000)}
process.stdout.write('the loop ran to its end\\n');
`);
    assert.equal(code, 3);
    assert.equal(stdout, 'expired\n');
  });

  it('does nothing once done(), even when the hard exit time passes during a stall', async () => {
    const { code, stdout } = await runChild(`
${ARM(200)}
const watchdog = createWatchdog({
  expire() { process.stdout.write('expired\\n'); process.exit(3); },
  writeFallbackLine: false,
  onError: (e) => { throw e; },
});
watchdog.arm(times);
watchdog.done();
${SPIN(800)}
process.stdout.write('survived\\n');
`);
    assert.equal(code, 0);
    assert.equal(stdout, 'survived\n');
  });

  it('after exiting() (the summary is out) it still ends a process held past the hard exit time', async () => {
    const { code, stdout } = await runChild(`
${ARM(300)}
const watchdog = createWatchdog({
  expire() { process.stdout.write('expired\\n'); process.exit(3); },
  writeFallbackLine: false,
  onError: (e) => { throw e; },
});
watchdog.arm(times);
watchdog.exiting();
${SPIN(20_000)}
process.stdout.write('the loop ran to its end\\n');
`);
    assert.equal(code, 3);
    assert.equal(stdout, 'expired\n');
  });

  it('after exiting(), a main thread that cannot answer gets SIGKILL without a second summary line', async () => {
    // Stuck outside JavaScript: no interrupt runs, the last resort does (without its own line).
    const { signal, stdout, stderr } = await runChild(`
${ARM(300)}
const watchdog = createWatchdog({ expire() { process.exit(3); }, writeFallbackLine: true, onError: (e) => { throw e; } });
watchdog.arm(times);
watchdog.exiting();
const { spawnSync } = await import('node:child_process');
spawnSync('sleep', ['15']);
process.stdout.write('the loop ran to its end\\n');
`);
    assert.equal(signal, 'SIGKILL');
    assert.equal(stdout, '');
    assert.doesNotMatch(stderr, /shutdown complete/);
  });

  it('never keeps the process alive: armed for a minute, the process still ends when its work does', async () => {
    const { code, stdout, ms } = await runChild(`
${ARM(60_000)}
createWatchdog({ expire() { process.exit(3); }, writeFallbackLine: false, onError: (e) => { throw e; } }).arm(times);
process.stdout.write('nothing left to do\\n');
`);
    assert.equal(code, 0);
    assert.equal(stdout, 'nothing left to do\n');
    assert.ok(ms < 30_000, `the process lived ${ms} ms; the watchdog was armed for 60000 ms`);
  });
});
