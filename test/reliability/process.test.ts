/**
 * Fault matrix, the process and its clients: a stalled event loop, a request held open past the
 * deadline, an upload that never ends. A real service in a child process and a real SIGTERM.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { faultServices, metricValue, scrapeUntilExit, type FaultChild } from '../support/fault-child.js';
import { get } from '../support/http.js';

const service = faultServices();

const outcomeOf = (p: Promise<{ status: number }>): Promise<number | string> =>
  p.then(
    (r) => r.status,
    (e: NodeJS.ErrnoException) => e.code ?? e.message,
  );

describe('fault matrix: the process and its clients', () => {
  it('the event loop blocked longer than the quiet period: connections that queued meanwhile are served, not reset; exit 0', async () => {
    const quietMs = 300;
    const blockMs = 1500;
    const child = await service({
      KUBEGRACE_PROPAGATION_QUIET_PERIOD_MS: String(quietMs),
      FAULT_FINAL_SCRAPE_MS: '3000',
    });
    const scraped = scrapeUntilExit(child);
    const inflight = get(child.port, '/work?ms=300');
    await delay(50);
    child.process.kill('SIGTERM');
    await child.waitFor((e) => e.event === 'phase' && e.phase === 'propagate' && e.status === 'start');
    await delay(50);
    // A CPU-bound request stalls the loop inside an I/O callback: when it returns, the quiet-period
    // timer is long overdue and runs before the connections that queued up are accepted.
    const blocker = get(child.port, `/block?ms=${blockMs}`);
    await child.waitFor((e) => e.event === 'block' && e.status === 'start');
    const queued = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        await delay(100 + i * 120);
        return outcomeOf(get(child.port, '/work?ms=10'));
      }),
    );
    assert.deepEqual(queued, Array(8).fill(200), 'every connection made during the stall is served');
    assert.equal(await outcomeOf(blocker), 200);
    assert.equal(await outcomeOf(inflight), 200);
    const exit = await child.exited;
    assert.equal(exit.code, 0);
    const summary = child.summary();
    assert.equal(summary?.outcome, 'clean');
    const propagate = summary?.phases.propagate ?? 0;
    assert.ok(
      propagate >= blockMs + quietMs - 100,
      `the propagation wait (${propagate} ms) restarted its quiet period after the stall`,
    );
    const metrics = await scraped;
    assert.equal(metricValue(metrics, 'kubegrace_shutdowns_total', { outcome: 'clean' }), 1);
    assert.equal(metricValue(metrics, 'kubegrace_connections_closed_total', { reason: 'forced' }) ?? 0, 0);
  });

  it('fixed strategy, the loop stalled across the end of the delay: queued connections are served, not reset; exit 0', async () => {
    const child = await service({
      KUBEGRACE_PROPAGATION_STRATEGY: 'fixed',
      KUBEGRACE_PROPAGATION_DELAY_MS: '300',
    });
    child.process.kill('SIGTERM');
    await child.waitFor((e) => e.event === 'phase' && e.phase === 'propagate' && e.status === 'start');
    await delay(50);
    const blocker = get(child.port, '/block?ms=1200');
    await child.waitFor((e) => e.event === 'block' && e.status === 'start');
    const queued = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        await delay(100 + i * 150);
        return outcomeOf(get(child.port, '/work?ms=10'));
      }),
    );
    assert.deepEqual(queued, Array(6).fill(200), 'every connection made during the stall is served');
    assert.equal(await outcomeOf(blocker), 200);
    const exit = await child.exited;
    assert.equal(exit.code, 0);
  });

  it('SIGTERM during a stalled loop with no propagation wait: connections that queued meanwhile are served, not reset', async () => {
    // The signal is seen in the poll phase that ends the stall, and the drain starts from it: the
    // listener must not close before the queued connections are accepted (Node takes one per turn).
    const child = await service({
      KUBEGRACE_PROPAGATION_STRATEGY: 'fixed',
      KUBEGRACE_PROPAGATION_DELAY_MS: '0',
    });
    const blocker = get(child.port, '/block?ms=1200');
    await child.waitFor((e) => e.event === 'block' && e.status === 'start');
    const queued = Array.from({ length: 10 }, async (_, i) => {
      await delay(100 + i * 20);
      return outcomeOf(get(child.port, '/work?ms=10'));
    });
    await delay(400);
    child.process.kill('SIGTERM');
    assert.deepEqual(
      await Promise.all(queued),
      Array(10).fill(200),
      'every connection made during the stall is served',
    );
    assert.equal(await outcomeOf(blocker), 200);
    const exit = await child.exited;
    assert.equal(exit.code, 0);
  });

  it('a signal that comes as the process exits does not change its exit code', async () => {
    // After a clean shutdown kubegrace removes its signal listeners, then exits; a signal in between
    // (the kubelet's SIGTERM after a /prestop call) must not find the default action and end it as 143.
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const child = await service({
        KUBEGRACE_PROPAGATION_STRATEGY: 'fixed',
        KUBEGRACE_PROPAGATION_DELAY_MS: '0',
        FAULT_SIGNAL_AT_EXIT: signal,
      });
      child.process.kill('SIGTERM');
      const exit = await child.exited;
      assert.deepEqual([exit.code, exit.signal], [0, null], signal);
      assert.equal(child.summary()?.exitCode, 0);
    }
  });

  it('an asynchronous exit option: a signal that comes while it runs does not change the exit code', async () => {
    // The kubelet's SIGTERM after a /prestop call can land while an `exit` option flushes: with no
    // listener left it would get the default action and end the process as 143.
    const child = await service({
      KUBEGRACE_PROPAGATION_STRATEGY: 'fixed',
      KUBEGRACE_PROPAGATION_DELAY_MS: '0',
      FAULT_EXIT_DELAY_MS: '1000',
    });
    child.process.kill('SIGTERM');
    await child.waitFor((e) => e.event === 'exit');
    child.process.kill('SIGTERM');
    const exit = await child.exited;
    assert.deepEqual([exit.code, exit.signal], [0, null]);
    assert.equal(child.summary()?.exitCode, 0);
  });

  for (const error of ['throw', 'reject', 'fatal'] as const) {
    it(`a fatal error in the exit phase (${error}): exit 70, not clean`, async () => {
      const child = await service({
        KUBEGRACE_PROPAGATION_STRATEGY: 'fixed',
        KUBEGRACE_PROPAGATION_DELAY_MS: '0',
        FAULT_EXIT_PHASE_ERROR: error,
      });
      child.process.kill('SIGTERM');
      const exit = await child.exited;
      assert.equal(exit.code, 70);
      assert.equal(child.summary()?.exitCode, 70);
      assert.equal(child.summary()?.outcome, 'failed');
    });
  }

  it('a connection accepted just before the drain gets time to send its first request', async () => {
    const child = await service({
      KUBEGRACE_PROPAGATION_STRATEGY: 'fixed',
      KUBEGRACE_PROPAGATION_DELAY_MS: '400',
    });
    child.process.kill('SIGTERM');
    await child.waitFor((e) => e.event === 'phase' && e.phase === 'propagate' && e.status === 'start');
    await delay(300);
    // Connected ~100 ms before the drain starts, the request follows ~300 ms into the drain.
    const socket = connect(child.port, '127.0.0.1');
    let response = '';
    let ended = false;
    socket.setEncoding('utf8').on('data', (chunk: string) => (response += chunk));
    socket.on('end', () => (ended = true));
    socket.on('error', () => {});
    await delay(400);
    assert.equal(ended, false, 'not ended with FIN before it could send a request');
    socket.write('GET /work?ms=10 HTTP/1.1\r\nHost: x\r\n\r\n');
    await child.exited;
    assert.match(response, /^HTTP\/1\.1 200/);
    assert.match(response, /connection: close/i);
  });

  it('a client that holds a request open past the deadline: cut at the deadline, everything else served; exit 1, deadline', async () => {
    const child = await service({
      KUBEGRACE_GRACE_PERIOD_SECONDS: '4',
      KUBEGRACE_BUDGET_CHECK: 'off',
      KUBEGRACE_SAFETY_MARGIN_MS: '1000',
      KUBEGRACE_PROPAGATION_QUIET_PERIOD_MS: '200',
      KUBEGRACE_DRAIN_TIMEOUT_MS: '20000',
    });
    const held = outcomeOf(get(child.port, '/work?ms=60000'));
    const normal = outcomeOf(get(child.port, '/work?ms=800'));
    await delay(100);
    const sentAt = Date.now();
    child.process.kill('SIGTERM');
    assert.equal(await normal, 200, 'a request accepted before the fault is served');
    const exit = await child.exited;
    const took = exit.at - sentAt;
    assert.equal(exit.code, 1);
    assert.ok(took >= 2900 && took < 4000, `exited after ${took} ms; deadline 3000 ms, kill time 4000 ms`);
    assert.notEqual(await held, 200, 'the held request is the one the deadline cuts');
    const summary = child.summary();
    assert.equal(summary?.outcome, 'deadline');
    assert.equal(summary?.forced, 1);
    const metrics = child.finalMetrics();
    assert.equal(metricValue(metrics, 'kubegrace_shutdowns_total', { outcome: 'deadline' }), 1);
    assert.equal(metricValue(metrics, 'kubegrace_connections_closed_total', { reason: 'forced' }), 1);
  });

  it('a second SIGTERM forces the exit at once with 143; the outcome forced is still counted', async () => {
    const child = await service({ KUBEGRACE_PROPAGATION_QUIET_PERIOD_MS: '200' });
    const held = outcomeOf(get(child.port, '/work?ms=60000'));
    await delay(100);
    child.process.kill('SIGTERM');
    await child.waitFor((e) => e.event === 'phase' && e.phase === 'drain' && e.status === 'start');
    const sentAt = Date.now();
    child.process.kill('SIGTERM');
    const exit = await child.exited;
    assert.equal(exit.code, 143);
    assert.ok(exit.at - sentAt < 1000, `exited ${exit.at - sentAt} ms after the second signal`);
    assert.notEqual(await held, 200, 'the operator asked to leave now: what was in flight is cut');
    assert.equal(child.summary()?.outcome, 'forced');
    assert.equal(metricValue(child.finalMetrics(), 'kubegrace_shutdowns_total', { outcome: 'forced' }), 1);
  });

  it('an upload that never ends is forced closed at the drain budget; exit 1, forced', async () => {
    // The propagation wait is not what this measures: with two connections in all it may judge the
    // silence for seconds (CI once waited 8 s of its 10 s maximum), so it is capped here.
    const child = await service({
      KUBEGRACE_PROPAGATION_QUIET_PERIOD_MS: '200',
      KUBEGRACE_PROPAGATION_MAX_MS: '1000',
      KUBEGRACE_DRAIN_TIMEOUT_MS: '1000',
    });
    const socket = connect(child.port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n');
    const trickle = setInterval(() => socket.write('x'), 100);
    const normal = outcomeOf(get(child.port, '/work?ms=500'));
    await delay(200);
    const sentAt = Date.now();
    child.process.kill('SIGTERM');
    assert.equal(await normal, 200);
    const exit = await child.exited;
    clearInterval(trickle);
    socket.destroy();
    assert.equal(exit.code, 1);
    const summary = child.summary();
    assert.ok(
      exit.at - sentAt < 5000,
      `exited ${exit.at - sentAt} ms after SIGTERM; phases ${JSON.stringify(summary?.phases)}`,
    );
    assert.equal(summary?.outcome, 'forced');
    assert.equal(summary?.forced, 1);
    const drainMs = summary?.phases.drain ?? Infinity;
    assert.ok(drainMs >= 950 && drainMs < 2500, `drain took ${drainMs} ms against its 1000 ms budget`);
    assert.equal(metricValue(child.finalMetrics(), 'kubegrace_shutdowns_total', { outcome: 'forced' }), 1);
  });
});

/** The `shutdown complete` lines kubegrace's default logger wrote on the child's stderr. */
function summaryLines(child: FaultChild): Record<string, unknown>[] {
  return child.stderr
    .join('')
    .split('\n')
    .filter((line) => line.includes('"msg":"shutdown complete"'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/**
 * grace 5 s, margin 1 s: deadline at 4 s, report until 4.5 s, the watchdog at 4.6 s, SIGKILL at 5 s.
 * The loop stalls 2 s after SIGTERM, in the drain, until past the kill time.
 */
const STALLED_AT_THE_END = {
  FAULT_LOGGER: 'json',
  KUBEGRACE_GRACE_PERIOD_SECONDS: '5',
  KUBEGRACE_BUDGET_CHECK: 'off',
  KUBEGRACE_PROPAGATION_STRATEGY: 'fixed',
  KUBEGRACE_PROPAGATION_DELAY_MS: '300',
  KUBEGRACE_DRAIN_TIMEOUT_MS: '20000',
  FAULT_BLOCK_AFTER_MS: '2000',
};

/** SIGTERM with a request held in flight, so the shutdown is still running when the loop stalls. */
async function sigtermHoldingTheDrain(
  child: FaultChild,
): Promise<{ sentAt: number; held: Promise<number | string> }> {
  const held = outcomeOf(get(child.port, '/work?ms=60000'));
  await delay(100);
  const sentAt = Date.now();
  child.process.kill('SIGTERM');
  return { sentAt, held };
}

describe('fault matrix: a deadline that holds while the event loop does not', () => {
  it('the event loop blocked across the deadline: the watchdog ends the process before the kill time; exit 1, one summary line, deadline', async () => {
    // A 3 s CPU-bound stall.
    const child = await service({ ...STALLED_AT_THE_END, FAULT_BLOCK_LOOP_MS: '3000' });
    const { sentAt, held } = await sigtermHoldingTheDrain(child);
    const exit = await child.exited;
    const took = exit.at - sentAt;
    assert.equal(exit.code, 1);
    assert.ok(took < 5000, `exited ${took} ms after SIGTERM; the kubelet's SIGKILL comes at 5000 ms`);
    assert.ok(
      child.events.some((e) => e.event === 'block' && e.status === 'start') &&
        !child.events.some((e) => e.event === 'block' && e.status === 'end'),
      'the process ended while its event loop was still blocked',
    );
    assert.notEqual(await held, 200);
    const lines = summaryLines(child);
    assert.equal(lines.length, 1, child.stderr.join(''));
    assert.equal(lines[0]?.outcome, 'deadline');
    assert.equal(lines[0]?.exitCode, 1);
    assert.equal(lines[0]?.trigger, 'SIGTERM');
    assert.equal(lines[0]?.unfinished, 'drain', 'the summary names the phase the stall cut off');
    // The line carries what the event does about when and where the deadline hit.
    assert.equal(lines[0]?.deadlinePhase, 'drain');
    assert.equal(lines[0]?.triggerKind, 'signal');
    assert.equal(typeof lines[0]?.startedAt, 'number');
    assert.equal(typeof lines[0]?.deadlineAt, 'number');
    assert.equal(child.events.filter((e) => e.event === 'summary').length, 1);
    assert.equal(child.summary()?.outcome, 'deadline');
  });

  it('SIGTERM while a CPU-bound request blocks the loop: the kill time counts from its arrival, not from when the loop saw it; gone before it', async () => {
    // grace 3 s, margin 1 s: the deadline is 2 s after the signal arrived. Handled only once the
    // 1 s request returned, it used to land 0.9 s late (and the exit after the kill time). A block of
    // up to one margin after the signal is credited in full (docs/lifecycle.md).
    const child = await service({
      KUBEGRACE_GRACE_PERIOD_SECONDS: '3',
      KUBEGRACE_SAFETY_MARGIN_MS: '1000',
      KUBEGRACE_BUDGET_CHECK: 'off',
      KUBEGRACE_PROPAGATION_STRATEGY: 'fixed',
      KUBEGRACE_PROPAGATION_DELAY_MS: '100',
      KUBEGRACE_DRAIN_TIMEOUT_MS: '20000',
    });
    const held = outcomeOf(get(child.port, '/work?ms=60000'));
    await delay(200);
    const blocker = outcomeOf(get(child.port, '/block?ms=1000'));
    await child.waitFor((e) => e.event === 'block' && e.status === 'start');
    await delay(100);
    const sentAt = Date.now();
    child.process.kill('SIGTERM');
    const exit = await child.exited;
    const summary = child.summary();
    const deadlineAfter = (summary?.deadlineAt ?? Infinity) - sentAt;
    // The arrival is credited no later than it was (the loop's block began before the signal), and
    // not absurdly earlier (the block began ~100 ms before it).
    assert.ok(
      deadlineAfter <= 2000 + 20 && deadlineAfter > 2000 - 1000,
      `the deadline came ${deadlineAfter} ms after the signal; grace 3000 − margin 1000 = 2000`,
    );
    assert.ok(
      exit.at - sentAt < 3000,
      `exited ${exit.at - sentAt} ms after SIGTERM; the kill time is 3000 ms`,
    );
    assert.equal(exit.code, 1);
    assert.equal(summary?.outcome, 'deadline');
    assert.equal(await blocker, 200);
    assert.notEqual(await held, 200);
  });

  it('a loop blocked for seconds before SIGTERM: the deadline moves back at most one margin, and a drain with time finishes', async () => {
    // grace 6 s, margin 1 s. A 4 s block, SIGTERM 3.9 s into it, a 2 s request queued behind it:
    // counted from the block's start, the deadline (5 s) would fall before the request is done.
    const child = await service({
      KUBEGRACE_GRACE_PERIOD_SECONDS: '6',
      KUBEGRACE_SAFETY_MARGIN_MS: '1000',
      KUBEGRACE_BUDGET_CHECK: 'off',
      KUBEGRACE_PROPAGATION_STRATEGY: 'fixed',
      KUBEGRACE_PROPAGATION_DELAY_MS: '100',
      KUBEGRACE_DRAIN_TIMEOUT_MS: '20000',
    });
    const blocker = outcomeOf(get(child.port, '/block?ms=4000'));
    await child.waitFor((e) => e.event === 'block' && e.status === 'start');
    const queued = outcomeOf(get(child.port, '/work?ms=2000'));
    await delay(3900);
    const sentAt = Date.now();
    child.process.kill('SIGTERM');
    const exit = await child.exited;
    const summary = child.summary();
    const deadlineAfter = (summary?.deadlineAt ?? 0) - sentAt;
    assert.ok(deadlineAfter >= 5000 - 1000 - 200, `the deadline came ${deadlineAfter} ms after the signal`);
    assert.equal(await blocker, 200);
    assert.equal(await queued, 200, 'the request queued behind the block was answered');
    assert.equal(summary?.outcome, 'clean');
    assert.equal(exit.code, 0);
  });

  it('the main thread stuck in a system call across the deadline: the watchdog writes the summary line and kills the process before the kill time', async () => {
    const child = await service({
      ...STALLED_AT_THE_END,
      FAULT_BLOCK_LOOP_MS: '8000',
      FAULT_BLOCK_NATIVE: '1',
    });
    const { sentAt, held } = await sigtermHoldingTheDrain(child);
    const exit = await child.exited;
    const took = exit.at - sentAt;
    assert.equal(exit.signal, 'SIGKILL');
    assert.ok(took < 5000, `exited ${took} ms after SIGTERM; the kubelet's SIGKILL comes at 5000 ms`);
    assert.notEqual(await held, 200);
    const lines = summaryLines(child);
    assert.equal(lines.length, 1, child.stderr.join(''));
    assert.equal(lines[0]?.outcome, 'deadline');
    assert.equal(lines[0]?.trigger, 'SIGTERM');
    assert.match(String(lines[0]?.watchdog), /unknown/);
  });

  it('a hook that calls process.exit: the summary line is still written, once; not clean', async () => {
    const child = await service({
      FAULT_LOGGER: 'json',
      FAULT_HOOK: 'exit',
      FAULT_HOOK_PHASE: 'cleanup',
      FAULT_HOOK_EXIT_CODE: '0',
      KUBEGRACE_PROPAGATION_STRATEGY: 'fixed',
      KUBEGRACE_PROPAGATION_DELAY_MS: '300',
    });
    child.process.kill('SIGTERM');
    const exit = await child.exited;
    assert.equal(exit.code, 0, 'the code the hook chose');
    const lines = summaryLines(child);
    assert.equal(lines.length, 1, child.stderr.join(''));
    assert.equal(lines[0]?.outcome, 'failed');
    assert.equal(lines[0]?.exitCode, 0);
    assert.equal(lines[0]?.unfinished, 'cleanup');
    assert.equal(child.events.filter((e) => e.event === 'summary').length, 1);
  });
});
