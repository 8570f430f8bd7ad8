/**
 * Fault matrix, hooks and participants: a real service in a child process, a real SIGTERM, a request
 * accepted before the fault, and the outcome read three ways: exit code, summary, and /metrics.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { metricValue, scrapeUntilExit, startFaultService, type FaultChild } from '../support/fault-child.js';
import { get, type Reply } from '../support/http.js';

const children = new Set<FaultChild>();
after(() => {
  for (const c of children) c.kill();
});

async function service(env: Record<string, string>): Promise<FaultChild> {
  // One client seen before SIGTERM is no arrival rate: bound the wait, which is not under test here.
  const child = await startFaultService({
    KUBEGRACE_PROPAGATION_QUIET_PERIOD_MS: '200',
    KUBEGRACE_PROPAGATION_MAX_MS: '400',
    ...env,
  });
  children.add(child);
  return child;
}

/** SIGTERM while a request accepted before it is still being served; that request must not be lost. */
async function sigtermWithInflight(
  child: FaultChild,
  requestMs = 600,
): Promise<{ sentAt: number; inflight: Promise<Reply> }> {
  const inflight = get(child.port, `/work?ms=${requestMs}`);
  await delay(100);
  const sentAt = Date.now();
  child.process.kill('SIGTERM');
  return { sentAt, inflight };
}

describe('fault matrix: hooks and participants', () => {
  it('a hook that hangs is cut at its own timeout; the drain goes on; exit 1, failed', async () => {
    const child = await service({
      FAULT_HOOK: 'hang',
      FAULT_HOOK_PHASE: 'drain',
      FAULT_HOOK_TIMEOUT_MS: '500',
      FAULT_FINAL_SCRAPE_MS: '3000',
    });
    const scraped = scrapeUntilExit(child);
    const { sentAt, inflight } = await sigtermWithInflight(child);
    assert.equal((await inflight).status, 200, 'the request accepted before the fault is served');
    const exit = await child.exited;
    assert.equal(exit.code, 1);
    const summary = child.summary();
    assert.equal(summary?.outcome, 'failed');
    assert.deepEqual(summary?.failures, ['drain:fault-hang:timeout']);
    const drainMs = summary?.phases.drain ?? Infinity;
    assert.ok(drainMs >= 450 && drainMs < 2500, `drain took ${drainMs} ms against the hook's 500 ms`);
    assert.ok(exit.at - sentAt < 8000, `exited ${exit.at - sentAt} ms after SIGTERM`);
    const metrics = await scraped;
    assert.equal(metricValue(metrics, 'kubegrace_shutdowns_total', { outcome: 'failed' }), 1);
    assert.equal(
      metricValue(metrics, 'kubegrace_hook_duration_seconds_count', {
        participant: 'fault-hang',
        outcome: 'timeout',
      }),
      1,
    );
  });

  it('a hook that throws is recorded as an error; the phase and the shutdown go on; exit 1, failed', async () => {
    const child = await service({ FAULT_HOOK: 'throw', FAULT_HOOK_PHASE: 'unready' });
    const { inflight } = await sigtermWithInflight(child);
    assert.equal((await inflight).status, 200);
    const exit = await child.exited;
    assert.equal(exit.code, 1);
    const summary = child.summary();
    assert.equal(summary?.outcome, 'failed');
    assert.deepEqual(summary?.failures, ['unready:fault-throw:error']);
    // Every later phase still ran.
    assert.deepEqual(Object.keys(summary?.phases ?? {}).sort(), [
      'cleanup',
      'drain',
      'exit',
      'propagate',
      'unready',
    ]);
    const metrics = child.finalMetrics();
    assert.equal(metricValue(metrics, 'kubegrace_shutdowns_total', { outcome: 'failed' }), 1);
    assert.equal(
      metricValue(metrics, 'kubegrace_hook_duration_seconds_count', {
        participant: 'fault-throw',
        outcome: 'error',
      }),
      1,
    );
  });

  it('a hook that resolves after its timeout counts as a timeout and does not hold the phase; exit 1', async () => {
    const child = await service({
      FAULT_HOOK: 'late',
      FAULT_HOOK_PHASE: 'cleanup',
      FAULT_HOOK_TIMEOUT_MS: '300',
      FAULT_HOOK_LATE_MS: '1500',
    });
    const { inflight } = await sigtermWithInflight(child);
    assert.equal((await inflight).status, 200);
    const exit = await child.exited;
    assert.equal(exit.code, 1);
    const summary = child.summary();
    assert.equal(summary?.outcome, 'failed');
    assert.deepEqual(summary?.failures, ['cleanup:fault-late:timeout']);
    const cleanupMs = summary?.phases.cleanup ?? Infinity;
    assert.ok(cleanupMs >= 280 && cleanupMs < 1200, `cleanup took ${cleanupMs} ms, cut at 300, not 1500`);
    const metrics = child.finalMetrics();
    assert.equal(metricValue(metrics, 'kubegrace_shutdowns_total', { outcome: 'failed' }), 1);
    assert.equal(
      metricValue(metrics, 'kubegrace_hook_duration_seconds_count', {
        participant: 'fault-late',
        outcome: 'timeout',
      }),
      1,
    );
  });

  it('a participant that ignores its AbortSignal is abandoned at the phase budget; exit 1', async () => {
    const child = await service({
      FAULT_PARTICIPANT_IGNORES_SIGNAL: 'drain',
      KUBEGRACE_DRAIN_TIMEOUT_MS: '800',
    });
    const { sentAt, inflight } = await sigtermWithInflight(child);
    assert.equal((await inflight).status, 200);
    const exit = await child.exited;
    assert.equal(exit.code, 1);
    const summary = child.summary();
    assert.equal(summary?.outcome, 'failed');
    assert.deepEqual(summary?.failures, ['drain:deaf-participant:timeout']);
    const drainMs = summary?.phases.drain ?? Infinity;
    assert.ok(drainMs >= 750 && drainMs < 2500, `drain took ${drainMs} ms against its 800 ms budget`);
    assert.ok(exit.at - sentAt < 8000, `exited ${exit.at - sentAt} ms after SIGTERM, not after 60 s`);
    assert.equal(metricValue(child.finalMetrics(), 'kubegrace_shutdowns_total', { outcome: 'failed' }), 1);
  });

  it('a participant that ignores its signal past the deadline: the process leaves before the kill time; exit 1, deadline', async () => {
    const child = await service({
      FAULT_PARTICIPANT_IGNORES_SIGNAL: 'cleanup',
      KUBEGRACE_GRACE_PERIOD_SECONDS: '3',
      KUBEGRACE_BUDGET_CHECK: 'off',
      KUBEGRACE_SAFETY_MARGIN_MS: '1000',
    });
    const { sentAt, inflight } = await sigtermWithInflight(child);
    assert.equal((await inflight).status, 200);
    const exit = await child.exited;
    const took = exit.at - sentAt;
    assert.equal(exit.code, 1);
    // Deadline = kill time (3 s) − margin (1 s); the exit phase may use half the margin.
    assert.ok(took >= 1900 && took < 3000, `exited after ${took} ms; deadline 2000 ms, kill time 3000 ms`);
    const summary = child.summary();
    assert.equal(summary?.outcome, 'deadline');
    assert.equal(metricValue(child.finalMetrics(), 'kubegrace_shutdowns_total', { outcome: 'deadline' }), 1);
  });
});
