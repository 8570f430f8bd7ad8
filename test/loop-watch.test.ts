/** The loop watch credits a trigger that a blocked event loop held back with when the block began. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { createLoopWatch } from '../src/loop-watch.js';

function block(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // spin
  }
}

describe('loop watch', () => {
  it('on an idle loop, the earliest arrival is now', async () => {
    const watch = createLoopWatch(100);
    await delay(350);
    const now = Date.now();
    const arrival = watch.earliestArrival();
    watch.stop();
    assert.ok(arrival <= now + 1 && arrival >= now - 60, `${now - arrival} ms before now`);
  });

  it('after a block, it is no later than the start of the block, even once the overdue timer ran', async () => {
    const watch = createLoopWatch(100);
    await delay(350);
    const blockedAt = Date.now();
    block(800);
    // The watch's own overdue callback runs first in this timers phase, as before a signal's poll.
    const arrival = await new Promise<number>((resolve) =>
      setTimeout(() => resolve(watch.earliestArrival()), 0),
    );
    watch.stop();
    assert.ok(arrival <= blockedAt + 5, `credited ${arrival - blockedAt} ms after the block began`);
    assert.ok(arrival >= blockedAt - 300, `credited ${blockedAt - arrival} ms before the block began`);
  });

  it('never keeps the process alive and stops', () => {
    const watch = createLoopWatch();
    watch.stop();
    assert.ok(watch.earliestArrival() <= Date.now());
  });
});
