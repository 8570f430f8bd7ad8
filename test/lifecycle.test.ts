import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { createLifecycle, type LifecycleOptions, type PhaseName } from '../src/lifecycle.js';
import { createTiming } from '../src/timing.js';

function setup(
  overrides: Partial<LifecycleOptions> & { gracePeriodMs?: number; safetyMarginMs?: number } = {},
) {
  const exits: number[] = [];
  const { gracePeriodMs = 10_000, safetyMarginMs = 100, ...rest } = overrides;
  const lifecycle = createLifecycle({
    budgets: { unready: 500, propagate: 500, drain: 500, cleanup: 500 },
    timing: createTiming({ gracePeriodMs, gracePeriodSource: 'option', safetyMarginMs }),
    fatalTimeoutMs: 1000,
    exitCodes: { clean: 0, incomplete: 1, fatal: 70 },
    exit: (code) => exits.push(code),
    ...rest,
  });
  return { lifecycle, exits };
}

describe('lifecycle', () => {
  it('moves starting → ready → draining → stopped and emits each state', async () => {
    const { lifecycle, exits } = setup();
    const states: string[] = [];
    lifecycle.on('state', ({ state }) => states.push(state));
    assert.equal(lifecycle.state, 'starting');
    assert.equal(lifecycle.started, false);
    lifecycle.ready();
    assert.equal(lifecycle.started, true);
    const done = lifecycle.shutdown('SIGTERM');
    assert.equal(lifecycle.state, 'draining', 'draining is entered synchronously');
    const summary = await done;
    assert.deepEqual(states, ['ready', 'draining', 'stopped']);
    assert.equal(summary.outcome, 'clean');
    assert.equal(summary.exitCode, 0);
    assert.equal(summary.trigger, 'SIGTERM');
    assert.deepEqual(exits, [0]);
  });

  it('runs the phases in order and gives every participant a signal and the deadline', async () => {
    const { lifecycle } = setup();
    const seen: string[] = [];
    const record = (name: string) => (ctx: { phase: PhaseName; signal: AbortSignal; deadline: number }) => {
      assert.ok(ctx.signal instanceof AbortSignal);
      assert.ok(ctx.deadline > Date.now());
      seen.push(`${name}:${ctx.phase}`);
    };
    lifecycle.register({
      name: 'a',
      unready: record('a'),
      propagate: record('a'),
      drain: record('a'),
      cleanup: record('a'),
      exit: record('a'),
    });
    const summary = await lifecycle.shutdown();
    assert.deepEqual(seen, ['a:unready', 'a:propagate', 'a:drain', 'a:cleanup', 'a:exit']);
    assert.deepEqual(Object.keys(summary.phases), ['unready', 'propagate', 'drain', 'cleanup', 'exit']);
  });

  it('returns the same promise to every caller and exits once', async () => {
    const { lifecycle, exits } = setup();
    const first = lifecycle.shutdown('SIGTERM');
    const second = lifecycle.shutdown('SIGINT');
    assert.equal(first, second);
    const summary = await first;
    assert.equal(summary.trigger, 'SIGTERM');
    await lifecycle.shutdown();
    assert.deepEqual(exits, [0]);
  });

  it('runs cleanup hooks one at a time, last registered first', async () => {
    const { lifecycle } = setup();
    const order: string[] = [];
    let running = 0;
    for (const name of ['db', 'cache', 'queue']) {
      lifecycle.register({
        name,
        async cleanup() {
          running += 1;
          assert.equal(running, 1, 'cleanup hooks must not overlap');
          await delay(20);
          order.push(name);
          running -= 1;
        },
      });
    }
    await lifecycle.shutdown();
    assert.deepEqual(order, ['queue', 'cache', 'db']);
  });

  it('cuts a hanging hook at its own timeout, keeps going, and reports failed with exit 1', async () => {
    const { lifecycle, exits } = setup();
    let aborted = false;
    let laterRan = false;
    lifecycle.register({
      name: 'hangs',
      timeoutMs: 100,
      unready: (ctx) =>
        new Promise(() => {
          ctx.signal.addEventListener('abort', () => (aborted = true));
        }),
    });
    lifecycle.register({ name: 'later', cleanup: () => void (laterRan = true) });
    const start = Date.now();
    const summary = await lifecycle.shutdown();
    const unreadyMs = summary.phases.unready ?? -1;
    assert.ok(unreadyMs >= 95 && unreadyMs < 450, `unready took ${unreadyMs} ms, expected ~100`);
    assert.ok(Date.now() - start < 2000);
    assert.equal(aborted, true, 'the hook saw its signal abort');
    assert.equal(laterRan, true, 'a failed hook does not skip later phases');
    assert.equal(summary.outcome, 'failed');
    assert.equal(summary.failures[0]?.name, 'hangs');
    assert.equal(summary.failures[0]?.status, 'timeout');
    assert.deepEqual(exits, [1]);
  });

  it('records a hook that honours its signal but was cut at its timeout as timeout, not ok', async () => {
    const { lifecycle } = setup();
    lifecycle.register({
      name: 'polite',
      timeoutMs: 50,
      cleanup: (ctx) => new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve())),
    });
    const summary = await lifecycle.shutdown();
    assert.equal(summary.outcome, 'failed');
    assert.equal(summary.failures[0]?.status, 'timeout');
  });

  it('records a throwing hook as failed without skipping the rest of its phase', async () => {
    const { lifecycle } = setup();
    let otherRan = false;
    lifecycle.register({
      name: 'throws',
      cleanup: () => {
        throw new Error('boom');
      },
    });
    lifecycle.register({ name: 'other', cleanup: () => void (otherRan = true) });
    const summary = await lifecycle.shutdown();
    assert.equal(otherRan, true);
    assert.equal(summary.outcome, 'failed');
    assert.equal(summary.failures[0]?.status, 'error');
    assert.match(String(summary.failures[0]?.error), /boom/);
  });

  it('never waits past the deadline for a participant that ignores its signal', async () => {
    const { lifecycle, exits } = setup({
      gracePeriodMs: 700,
      safetyMarginMs: 200,
      budgets: { unready: 5000, propagate: 5000, drain: 5000, cleanup: 5000 },
    });
    lifecycle.register({ name: 'deaf', drain: () => new Promise(() => {}) });
    lifecycle.register({ name: 'deaf-cleanup', cleanup: () => new Promise(() => {}) });
    const start = Date.now();
    const summary = await lifecycle.shutdown();
    const took = Date.now() - start;
    assert.ok(took >= 480 && took < 700, `shutdown took ${took} ms; deadline was 500 ms, kill at 700 ms`);
    assert.equal(summary.outcome, 'deadline');
    assert.equal(summary.exitCode, 1);
    assert.deepEqual(exits, [1]);
  });

  it('counts the kill time from terminationStartedAt (time a preStop hook already used)', async () => {
    const { lifecycle } = setup({ gracePeriodMs: 5000, safetyMarginMs: 500 });
    const startedAt = Date.now() - 2000;
    let deadline = 0;
    lifecycle.register({ name: 'peek', unready: (ctx) => void (deadline = ctx.deadline) });
    await lifecycle.shutdown('SIGTERM', { terminationStartedAt: startedAt });
    assert.equal(deadline, startedAt + 5000 - 500);
  });

  it('tightens the deadline, never loosens it', async () => {
    const { lifecycle } = setup({ budgets: { unready: 5000, propagate: 5000, drain: 5000, cleanup: 5000 } });
    lifecycle.register({
      name: 'slow',
      drain: (ctx) => new Promise((r) => ctx.signal.addEventListener('abort', r)),
    });
    const done = lifecycle.shutdown();
    const original = lifecycle.timing.deadlineAt ?? 0;
    lifecycle.tightenKillTime(Date.now() + 1_000_000, 'deletion');
    assert.equal(lifecycle.timing.deadlineAt, original, 'a later kill time is ignored');
    lifecycle.tightenKillTime(Date.now() + 300, 'deletion');
    assert.ok((lifecycle.timing.deadlineAt ?? Infinity) < original);
    const start = Date.now();
    const summary = await done;
    assert.ok(Date.now() - start < 1000);
    assert.equal(summary.outcome, 'deadline');
  });

  it('adoptGracePeriod moves a running deadline either way, from the termination start', async () => {
    const { lifecycle } = setup({ gracePeriodMs: 10_000, safetyMarginMs: 100 });
    lifecycle.register({
      name: 'slow',
      drain: (ctx) => new Promise((r) => ctx.signal.addEventListener('abort', r)),
    });
    const startedAt = Date.now() - 1000;
    const done = lifecycle.shutdown('SIGTERM', { terminationStartedAt: startedAt });
    assert.equal(lifecycle.timing.deadlineAt, startedAt + 10_000 - 100);
    lifecycle.adoptGracePeriod(60_000, 'pod');
    assert.equal(
      lifecycle.timing.deadlineAt,
      startedAt + 60_000 - 100,
      'a longer pod grace period extends it',
    );
    assert.equal(lifecycle.timing.gracePeriodMs, 60_000);
    lifecycle.adoptGracePeriod(1500, 'pod');
    const summary = await done;
    assert.equal(summary.outcome, 'deadline');
    assert.equal(summary.deadlineAt, startedAt + 1500 - 100);
    assert.throws(
      () => lifecycle.adoptGracePeriod(0, 'pod'),
      /grace period must be a positive number of ms, received 0/,
    );
  });

  it('adoptGracePeriod never moves a deadline past what tightenKillTime or a fired deadline fixed', async () => {
    const { lifecycle } = setup({ gracePeriodMs: 10_000, safetyMarginMs: 100 });
    lifecycle.register({
      name: 'slow',
      drain: (ctx) => new Promise((r) => ctx.signal.addEventListener('abort', r)),
    });
    const startedAt = Date.now();
    const done = lifecycle.shutdown('SIGTERM', { terminationStartedAt: startedAt });
    // The kubelet's kill time (from the deletion) arrives first, then the pod's longer grace period.
    lifecycle.tightenKillTime(startedAt + 600, 'deletion');
    lifecycle.adoptGracePeriod(60_000, 'pod');
    assert.equal(lifecycle.timing.deadlineAt, startedAt + 600 - 100, 'the tighter kill time still holds');
    lifecycle.adoptGracePeriod(300, 'pod');
    assert.equal(
      lifecycle.timing.deadlineAt,
      startedAt + 300 - 100,
      'a shorter grace period still tightens it',
    );
    const summary = await done;
    assert.equal(summary.outcome, 'deadline');
    lifecycle.adoptGracePeriod(60_000, 'pod');
    assert.equal(
      lifecycle.timing.deadlineAt,
      startedAt + 300 - 100,
      'a deadline that fired stays where it fired',
    );
  });

  it('counts what participants force and reports outcome forced', async () => {
    const { lifecycle, exits } = setup();
    lifecycle.register({ name: 'sockets', drain: (ctx) => ctx.reportForced(3) });
    const summary = await lifecycle.shutdown();
    assert.equal(summary.forced, 3);
    assert.equal(summary.outcome, 'forced');
    assert.deepEqual(exits, [1]);
  });

  it('lets an abort handler finish its force-close before the participant counts as overrun', async () => {
    const { lifecycle } = setup({ budgets: { unready: 500, propagate: 500, drain: 100, cleanup: 500 } });
    lifecycle.register({
      name: 'drainer',
      drain: (ctx) =>
        new Promise<void>((resolve) => {
          ctx.signal.addEventListener('abort', () => {
            ctx.reportForced(2);
            resolve();
          });
        }),
    });
    const summary = await lifecycle.shutdown();
    assert.equal(summary.outcome, 'forced');
    assert.equal(summary.failures.length, 0, 'resolved in its abort handler, so not a failure');
  });

  it('a propagation wait that reaches its budget is a warning, not a failure', async () => {
    const { lifecycle } = setup({ budgets: { unready: 500, propagate: 100, drain: 500, cleanup: 500 } });
    const warnings: string[] = [];
    lifecycle.on('warning', ({ message }) => warnings.push(message));
    lifecycle.register({ name: 'strategy', propagate: () => new Promise(() => {}) });
    const summary = await lifecycle.shutdown();
    assert.equal(summary.outcome, 'clean');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /strategy: propagate overran/);
  });

  it('fatal fails liveness, skips the propagation wait and exits with the fatal code', async () => {
    const { lifecycle, exits } = setup({
      budgets: { unready: 500, propagate: 5000, drain: 500, cleanup: 500 },
    });
    let propagated = false;
    lifecycle.register({ name: 'strategy', propagate: () => delay(3000).then(() => (propagated = true)) });
    lifecycle.ready();
    const start = Date.now();
    const summary = await lifecycle.fatal(new Error('db gone'));
    assert.ok(Date.now() - start < 1000);
    assert.equal(propagated, false);
    assert.equal(lifecycle.live, false);
    assert.equal(summary.exitCode, 70);
    assert.equal(summary.outcome, 'failed', 'a fatal error is never a clean shutdown');
    assert.equal(summary.trigger, 'fatal');
    assert.match(String(summary.fatalError), /db gone/);
    assert.deepEqual(exits, [70]);
  });

  it('fatal during a shutdown shortens the deadline to the fatal budget and exits 70', async () => {
    const { lifecycle, exits } = setup({
      fatalTimeoutMs: 300,
      budgets: { unready: 500, propagate: 500, drain: 5000, cleanup: 500 },
    });
    lifecycle.register({
      name: 'slow',
      drain: (ctx) => new Promise((r) => ctx.signal.addEventListener('abort', r)),
    });
    const done = lifecycle.shutdown('SIGTERM');
    await delay(50);
    const start = Date.now();
    void lifecycle.fatal(new Error('late'));
    const summary = await done;
    assert.ok(Date.now() - start < 900, `fatal shutdown took ${Date.now() - start} ms`);
    assert.deepEqual(exits, [70]);
    assert.equal(summary.exitCode, 70);
  });

  it('fatal in the exit phase (after the summary was built) still exits 70 and is not clean', async () => {
    const { lifecycle, exits } = setup();
    const emitted: [string, number][] = [];
    lifecycle.on('shutdown', (s) => emitted.push([s.outcome, s.exitCode]));
    lifecycle.register({
      name: 'reporter',
      exit: async (ctx) => {
        assert.equal(ctx.summary?.outcome, 'clean', 'clean until the fatal error');
        await delay(5);
        void lifecycle.fatal(new Error('push crashed'));
        await delay(20);
      },
    });
    const summary = await lifecycle.shutdown('SIGTERM');
    assert.deepEqual(exits, [70]);
    assert.deepEqual(emitted, [['failed', 70]]);
    assert.equal(summary.outcome, 'failed');
    assert.match(String(summary.fatalError), /push crashed/);
  });

  it('fatal in the exit phase of a shutdown that reached its deadline keeps outcome deadline, exits 70', async () => {
    const { lifecycle, exits } = setup({ gracePeriodMs: 400, safetyMarginMs: 200 });
    lifecycle.register({ name: 'stuck', drain: () => new Promise(() => {}) });
    lifecycle.register({ name: 'reporter', exit: () => void lifecycle.fatal(new Error('late')) });
    const summary = await lifecycle.shutdown('SIGTERM');
    assert.deepEqual(exits, [70]);
    assert.equal(summary.outcome, 'deadline');
  });

  it('expire() after the shutdown ended returns the summary it ended with, and exits no second time', async () => {
    const { lifecycle, exits } = setup();
    assert.equal(lifecycle.expire(), undefined, 'no shutdown ran');
    const summary = await lifecycle.shutdown('SIGTERM');
    assert.equal(lifecycle.expire(), summary);
    assert.deepEqual(exits, [0]);
  });

  it('forceExit leaves at once with the given code and outcome forced', async () => {
    const { lifecycle, exits } = setup();
    const summaries: string[] = [];
    lifecycle.on('shutdown', (s) => summaries.push(s.outcome));
    lifecycle.register({ name: 'slow', drain: () => delay(2000) });
    const done = lifecycle.shutdown('SIGTERM');
    await delay(30);
    lifecycle.forceExit(143, 'second SIGTERM');
    assert.deepEqual(exits, [143]);
    assert.deepEqual(summaries, ['forced']);
    assert.equal(lifecycle.state, 'stopped');
    await done;
    assert.deepEqual(exits, [143], 'the running shutdown does not exit a second time');
  });

  it('calls ready() of participants, including ones registered after ready', async () => {
    const { lifecycle } = setup();
    const calls: string[] = [];
    lifecycle.register({ name: 'early', ready: () => void calls.push('early') });
    lifecycle.ready();
    lifecycle.register({ name: 'late', ready: () => void calls.push('late') });
    await delay(5);
    assert.deepEqual(calls.sort(), ['early', 'late']);
  });

  it('an unregistered participant takes no part', async () => {
    const { lifecycle } = setup();
    let ran = false;
    const off = lifecycle.register({ name: 'gone', drain: () => void (ran = true) });
    off();
    await lifecycle.shutdown();
    assert.equal(ran, false);
  });

  it('a drain that ran past its budget with the loop blocked is failed, not clean', async () => {
    const { lifecycle, exits } = setup({ budgets: { unready: 500, propagate: 0, drain: 100, cleanup: 500 } });
    // Finishes "on time" by its own reckoning, but holds the loop well past the drain budget.
    lifecycle.register({ name: 'stall', drain: () => busyWait(400) });
    const summary = await lifecycle.shutdown();
    assert.equal(summary.outcome, 'failed');
    assert.deepEqual(
      summary.failures.map((f) => `${f.phase}:${f.name}:${f.status}`),
      ['drain:budget:timeout'],
    );
    assert.deepEqual(exits, [1]);
  });

  it('a shutdown whose cleanup ends past the deadline (its timer could not fire) is deadline', async () => {
    const { lifecycle } = setup({ gracePeriodMs: 400, safetyMarginMs: 100 });
    lifecycle.register({ name: 'stall', cleanup: () => busyWait(500) });
    const summary = await lifecycle.shutdown();
    assert.equal(summary.outcome, 'deadline');
    assert.equal(summary.exitCode, 1);
  });

  it("emits the deadline with the report slice and the watchdog's hard exit time, again when it moves", async () => {
    const { lifecycle } = setup({ gracePeriodMs: 10_000, safetyMarginMs: 1000 });
    const seen: { deadlineAt: number; reportUntil: number; hardExitAt: number; trigger: string }[] = [];
    lifecycle.on('deadline', (d) => seen.push(d));
    lifecycle.register({ name: 'slow', drain: () => delay(50) });
    const done = lifecycle.shutdown('SIGTERM', { terminationStartedAt: 1_000_000 });
    lifecycle.tightenKillTime(1_005_000, 'deletion');
    await done;
    assert.deepEqual(
      seen.map((d) => [d.deadlineAt, d.reportUntil, d.hardExitAt, d.trigger]),
      [
        [1_009_000, 1_009_500, 1_009_600, 'SIGTERM'],
        [1_004_000, 1_004_500, 1_004_600, 'SIGTERM'],
      ],
    );
  });

  it('expire() ends a running shutdown with outcome deadline, the phase it cut off, and one exit', async () => {
    const { lifecycle, exits } = setup();
    const summaries: unknown[] = [];
    lifecycle.on('shutdown', (s) => summaries.push(s));
    lifecycle.register({ name: 'forever', drain: () => new Promise(() => {}) });
    const done = lifecycle.shutdown('SIGTERM');
    await delay(50);
    const summary = lifecycle.expire();
    assert.equal(summary?.outcome, 'deadline');
    assert.equal(summary?.exitCode, 1);
    assert.equal(summary?.unfinished, 'drain');
    assert.equal(typeof summary?.phases.drain, 'number');
    assert.equal(lifecycle.expire(), summary, 'once: later calls return the same summary, no new one');
    lifecycle.exiting(1);
    assert.deepEqual(exits, [1]);
    assert.equal(summaries.length, 1);
    assert.equal(lifecycle.state, 'stopped');
    void done;
  });

  it('expire() after fatal() leaves with the fatal code', async () => {
    const { lifecycle, exits } = setup();
    lifecycle.register({ name: 'forever', cleanup: () => new Promise(() => {}) });
    void lifecycle.fatal(new Error('boom'));
    await delay(50);
    const summary = lifecycle.expire();
    assert.equal(summary?.outcome, 'deadline');
    assert.equal(summary?.exitCode, 70);
    assert.deepEqual(exits, [70]);
  });

  it('exiting(code) writes the summary of a shutdown a hook ended with process.exit, never clean, without calling exit', async () => {
    const { lifecycle, exits } = setup();
    const summaries: { outcome: string; exitCode: number; unfinished?: string }[] = [];
    lifecycle.on('shutdown', (s) => summaries.push(s));
    lifecycle.register({ name: 'quits', cleanup: () => new Promise(() => {}) });
    void lifecycle.shutdown('SIGTERM');
    await delay(50);
    lifecycle.exiting(0);
    lifecycle.exiting(0);
    assert.deepEqual(summaries, [
      summaries[0] && { ...summaries[0], outcome: 'failed', exitCode: 0, unfinished: 'cleanup' },
    ]);
    assert.deepEqual(exits, [], 'the process is leaving already');
    assert.equal(lifecycle.expire()?.exitCode, 0, 'a watchdog leaves with the code already reported');
    assert.equal(summaries.length, 1);
  });

  it('expire() and exiting() do nothing without a shutdown', () => {
    const { lifecycle, exits } = setup();
    assert.equal(lifecycle.expire(), undefined);
    lifecycle.exiting(3);
    assert.deepEqual(exits, []);
    assert.equal(lifecycle.state, 'starting');
  });
});

function busyWait(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // a CPU-bound stall
  }
}
