import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  closeSchedule,
  createPacer,
  MIN_RATE_PER_SECOND,
  pacingWindow,
  WARN_RATE_PER_SECOND,
} from '../../src/drain/pacer.js';

/** The pacer's timers do not hold the process open; this does, until `pacing` settles. */
async function held(pacing: Promise<void>): Promise<void> {
  const keepAlive = setInterval(() => {}, 1000);
  try {
    await pacing;
  } finally {
    clearInterval(keepAlive);
  }
}

describe('pacer', () => {
  it('sizes the window: at once for a few connections, capped by the option and half the budget left', () => {
    const options = { windowMs: 5000, budgetMs: 10_000 };
    // A few connections: count / MIN_RATE_PER_SECOND, i.e. well under a second.
    assert.equal(pacingWindow(5, options, 0, 0), (5 / MIN_RATE_PER_SECOND) * 1000);
    assert.equal(pacingWindow(1, options, 0, 0), 0);
    assert.equal(pacingWindow(20_000, options, 0, 0), 5000);
    // Half of what is left of the budget: 3 s into a 10 s budget leaves 7 s, so 3.5 s.
    assert.equal(pacingWindow(20_000, options, 0, 3000), 3500);
    // The deadline comes before the budget's end.
    assert.equal(pacingWindow(20_000, options, 0, 0, 2000), 1000);
    assert.equal(pacingWindow(20_000, { windowMs: 0, budgetMs: 10_000 }, 0, 0), 0);
    assert.equal(pacingWindow(20_000, options, 0, 12_000), 0);
  });

  it('schedules one jittered close per slot, in order, inside the window', () => {
    const times = closeSchedule(1000, 2000);
    assert.equal(times.length, 1000);
    for (let i = 0; i < times.length; i++) {
      const t = times[i] as number;
      assert.ok(t >= i * 2 && t <= (i + 1) * 2, `close ${i} at ${t} is outside its slot`);
    }
    // Jitter: not every close at the start of its slot.
    assert.ok(times.some((t, i) => t !== i * 2));
    assert.deepEqual(closeSchedule(3, 0), [0, 0, 0]);
  });

  it('closes oldest first, spread over the window, and the rest at once when the signal fires', async () => {
    let clock = 0;
    const pacer = createPacer({ windowMs: 1000, budgetMs: 10_000, now: () => clock, random: () => 0.5 });
    const items = Array.from({ length: 300 }, (_, i) => i);
    const closed: { item: number; at: number; step: string }[] = [];
    const controller = new AbortController();
    // A fake clock that runs 20x faster than the timers the pacer sleeps on.
    const ticker = setInterval(() => (clock += 100), 5);
    try {
      await pacer.pace(items, (item, step) => closed.push({ item, at: clock, step }) > 0, {
        signal: controller.signal,
      });
    } finally {
      clearInterval(ticker);
    }
    assert.deepEqual(
      closed.map((c) => c.item),
      items,
      'every item, oldest first',
    );
    assert.ok(closed.some((c) => c.step === 'paced'));
    // Spread: the first and last closes are most of the window apart.
    assert.ok((closed.at(-1)?.at ?? 0) - (closed[0]?.at ?? 0) >= 500);

    const aborted = createPacer({ windowMs: 60_000, budgetMs: 600_000 });
    const seen: number[] = [];
    const stop = new AbortController();
    const running = aborted.pace(items, (item) => seen.push(item) > 0, { signal: stop.signal });
    stop.abort();
    await running;
    assert.ok(seen.length < items.length, 'the signal ends the pacing: the drainer forces the rest');
  });

  it('warns when the window is too short for the connections, and when the window ends with a burst', async () => {
    // 3,000 connections in the default 5 s window: 600 closes a second, over the bound.
    const options = { windowMs: 5000, budgetMs: 10_000, random: () => 0.5 };
    let clock = 0;
    const busy = createPacer({ ...options, now: () => clock });
    const warnings: string[] = [];
    const many = Array.from({ length: 5 * WARN_RATE_PER_SECOND + 500 }, (_, i) => i);
    const stop = new AbortController();
    const running = busy.pace(many, () => true, { signal: stop.signal, warn: (m) => warnings.push(m) });
    stop.abort();
    await running;
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0] ?? '', /3000 connections over a 5000 ms window is 600 closes a second/);
    assert.match(warnings[0] ?? '', /drain\.pacingWindowMs and drain\.timeoutMs/);

    // Just under the bound: no warning.
    const quiet: string[] = [];
    const calm = createPacer({ ...options, now: () => clock });
    const stopCalm = new AbortController();
    const calmRun = calm.pace(many.slice(0, 5 * WARN_RATE_PER_SECOND - 1), () => true, {
      signal: stopCalm.signal,
      warn: (m) => quiet.push(m),
    });
    stopCalm.abort();
    await calmRun;
    assert.deepEqual(quiet, []);

    // A process that falls behind: the clock is past the window at the first wake, so all 300 are
    // closed at the window's end, and the pacer says so, counting those due 50 ms or more before it
    // (slots of 3.33 ms, each close in the middle of its slot: the first 285).
    clock = 0;
    const late = createPacer({ windowMs: 1000, budgetMs: 10_000, now: () => clock, random: () => 0.5 });
    const steps: string[] = [];
    const behind: string[] = [];
    const lateRun = late.pace(
      Array.from({ length: 300 }, (_, i) => i),
      (_, step) => steps.push(step) > 0,
      { warn: (m) => behind.push(m) },
    );
    clock = 5000;
    await held(lateRun);
    assert.equal(steps.length, 300);
    assert.ok(steps.every((step) => step === 'window_end'));
    assert.equal(behind.length, 1, behind.join('\n'));
    assert.match(
      behind[0] ?? '',
      /285 of 300 connections were still open 50 ms or more after their turn when the 1000 ms window ended/,
    );

    // The same, but every connection had closed by itself meanwhile: nothing to warn about.
    clock = 0;
    const gone = createPacer({ windowMs: 1000, budgetMs: 10_000, now: () => clock, random: () => 0.5 });
    const none: string[] = [];
    const goneRun = gone.pace(
      Array.from({ length: 300 }, (_, i) => i),
      () => false,
      { warn: (m) => none.push(m) },
    );
    clock = 5000;
    await held(goneRun);
    assert.deepEqual(none, []);
  });

  it('does not warn about a short window over a few connections (real timers, five tries)', async () => {
    // 50 in 100 ms is 500 a second, but 50 reconnects in all: no storm. And the last batch of a
    // window is always a timer's delay late, which is not falling behind.
    for (let attempt = 0; attempt < 5; attempt++) {
      const warnings: string[] = [];
      const pacer = createPacer({ windowMs: 100, budgetMs: 10_000 });
      const steps: string[] = [];
      await held(
        pacer.pace(
          Array.from({ length: 50 }, (_, i) => i),
          (_, step) => steps.push(step) > 0,
          { warn: (m) => warnings.push(m) },
        ),
      );
      assert.equal(steps.length, 50);
      assert.deepEqual(warnings, [], `try ${attempt + 1}`);
    }
  });
});
