/**
 * The watchdog holds the kill time in the ways out that used to escape it: the inspector listening
 * (`--inspect`, or switched on at run time by SIGUSR1), and a `shutdown` listener that blocks the
 * loop after the summary. A real service in a child process and a real SIGTERM.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { faultServices, type FaultChild } from '../support/fault-child.js';
import { get } from '../support/http.js';

const service = faultServices();

/** grace 3 s, margin 1 s: deadline at 2 s, the watchdog at 2.6 s, the kubelet's SIGKILL at 3 s. */
const GRACE_3S = {
  FAULT_LOGGER: 'json',
  KUBEGRACE_GRACE_PERIOD_SECONDS: '3',
  KUBEGRACE_SAFETY_MARGIN_MS: '1000',
  KUBEGRACE_BUDGET_CHECK: 'off',
  KUBEGRACE_PROPAGATION_STRATEGY: 'fixed',
  KUBEGRACE_PROPAGATION_DELAY_MS: '100',
  KUBEGRACE_DRAIN_TIMEOUT_MS: '20000',
};
const KILL_TIME_MS = 3000;

/** The exit, or a SIGKILL from here after `ms` (a process the watchdog failed to end). */
async function exitWithin(
  child: FaultChild,
  ms: number,
): Promise<{ code: number; signal: NodeJS.Signals | null; at: number; killedHere: boolean }> {
  let killedHere = false;
  const timer = setTimeout(() => {
    killedHere = true;
    child.kill();
  }, ms);
  const exit = await child.exited;
  clearTimeout(timer);
  return { ...exit, killedHere };
}

/** The `shutdown complete` lines kubegrace's default logger wrote on the child's stderr. */
function summaryLines(child: FaultChild): Record<string, unknown>[] {
  return child.stderr
    .join('')
    .split('\n')
    .filter((line) => line.includes('"msg":"shutdown complete"'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** SIGTERM with a request held in flight; the loop then blocks 20 s, from 800 ms after it. */
async function blockedAcrossTheDeadline(child: FaultChild): Promise<number> {
  void get(child.port, '/work?ms=60000').catch(() => {});
  await delay(100);
  const sentAt = Date.now();
  child.process.kill('SIGTERM');
  return sentAt;
}

const BLOCKED = { ...GRACE_3S, FAULT_BLOCK_AFTER_MS: '800', FAULT_BLOCK_LOOP_MS: '20000' };

describe('the watchdog with the inspector on', () => {
  // Node waits at exit for every inspector session to disconnect while the inspector listens; the
  // watchdog's own session used to hold the process until SIGKILL (2 of 3 runs and more).
  for (const run of [1, 2]) {
    it(`--inspect: the watchdog's exit does not wait for its own inspector session (run ${run})`, async () => {
      const child = await service(BLOCKED, { nodeArgs: ['--inspect=127.0.0.1:0'] });
      const sentAt = await blockedAcrossTheDeadline(child);
      const exit = await exitWithin(child, 8000);
      assert.equal(exit.killedHere, false, 'still alive 8 s after SIGTERM');
      const took = exit.at - sentAt;
      assert.ok(took < KILL_TIME_MS, `exited ${took} ms after SIGTERM; the kill time is ${KILL_TIME_MS} ms`);
      assert.deepEqual([exit.code, exit.signal], [1, null], 'the incomplete code, not the last resort');
      const lines = summaryLines(child);
      assert.equal(lines.length, 1, child.stderr.join(''));
      assert.equal(lines[0]?.outcome, 'deadline');
    });

    it(`SIGUSR1 at run time: the watchdog's exit does not wait for its own inspector session (run ${run})`, async () => {
      const child = await service(BLOCKED);
      child.process.kill('SIGUSR1');
      for (let i = 0; i < 50 && !/Debugger listening/.test(child.stderr.join('')); i++) await delay(50);
      assert.match(child.stderr.join(''), /Debugger listening/, 'the inspector is on');
      const sentAt = await blockedAcrossTheDeadline(child);
      const exit = await exitWithin(child, 8000);
      assert.equal(exit.killedHere, false, 'still alive 8 s after SIGTERM');
      const took = exit.at - sentAt;
      assert.ok(took < KILL_TIME_MS, `exited ${took} ms after SIGTERM; the kill time is ${KILL_TIME_MS} ms`);
      assert.deepEqual([exit.code, exit.signal], [1, null]);
    });
  }
});

describe('the watchdog after the summary', () => {
  it('a shutdown listener that blocks the loop: the process still leaves before the kill time, with the code it reported', async () => {
    const child = await service({ ...GRACE_3S, FAULT_SHUTDOWN_LISTENER_BLOCK_MS: '6000' });
    const sentAt = Date.now();
    child.process.kill('SIGTERM');
    const exit = await exitWithin(child, 10_000);
    const took = exit.at - sentAt;
    assert.ok(took < KILL_TIME_MS, `exited ${took} ms after SIGTERM; the kill time is ${KILL_TIME_MS} ms`);
    const summary = child.summary();
    assert.equal(summary?.outcome, 'clean', 'the shutdown itself was over');
    assert.deepEqual([exit.code, exit.signal], [summary?.exitCode, null]);
    assert.equal(summaryLines(child).length, 1, 'no second summary');
  });
});
