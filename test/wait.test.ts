import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  afterPendingIo,
  backoffDelay,
  createNotifier,
  settle,
  settlePromise,
  sleep,
  subscribeAll,
  timeLimitedSignal,
  type SettleEnd,
} from '../src/wait.js';

/** A countable thing to wait for: `left` items, each `finish()` notifies. */
function work(left: number) {
  const changed = createNotifier();
  let subscriptions = 0;
  let checks = 0;
  return {
    get left() {
      return left;
    },
    get subscriptions() {
      return subscriptions;
    },
    get checks() {
      return checks;
    },
    finish() {
      left--;
      changed.notify();
    },
    isDone: () => {
      checks++;
      return left === 0;
    },
    subscribe(onChange: () => void) {
      subscriptions++;
      const off = changed.subscribe(onChange);
      return () => {
        subscriptions--;
        off();
      };
    },
  };
}

/** Records the timers settle() starts and the ones it clears (the real timers still run). */
let timers: { created: NodeJS.Timeout[]; cleared: Set<unknown> };
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;
// The waits' own timers are unref'd: without a ref'd handle the loop could end before they fire.
let hold: NodeJS.Timeout;
beforeEach(() => {
  hold = setInterval(() => undefined, 60_000);
  timers = { created: [], cleared: new Set() };
  globalThis.setTimeout = ((...args: Parameters<typeof realSetTimeout>) => {
    const timer = realSetTimeout(...args);
    timers.created.push(timer);
    return timer;
  }) as typeof setTimeout;
  globalThis.clearTimeout = ((timer: NodeJS.Timeout | undefined) => {
    timers.cleared.add(timer);
    realClearTimeout(timer);
  }) as typeof clearTimeout;
});
afterEach(() => {
  clearInterval(hold);
  globalThis.setTimeout = realSetTimeout;
  globalThis.clearTimeout = realClearTimeout;
});

describe('settle', () => {
  it('ends as done once the last change makes isDone true, and releases its subscription, listener and timer', async () => {
    const w = work(2);
    const controller = new AbortController();
    const forced: string[] = [];
    let end: SettleEnd | undefined;
    const waiting = settle({
      isDone: w.isDone,
      subscribe: w.subscribe,
      signal: controller.signal,
      timeoutMs: 60_000,
      force: (why) => forced.push(why),
    }).then((e) => (end = e));
    assert.equal(w.subscriptions, 1);
    assert.equal(getEventListeners(controller.signal, 'abort').length, 1);
    w.finish();
    await afterPendingIo();
    assert.equal(end, undefined, 'one item is still left');
    w.finish();
    await waiting;
    assert.equal(end, 'done');
    assert.deepEqual(forced, []);
    assert.equal(w.subscriptions, 0);
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
    assert.equal(timers.created.length, 1);
    const [timer] = timers.created;
    assert.equal(timer?.hasRef(), false, 'the guard timer must not hold the process');
    assert.ok(timers.cleared.has(timer));
    // Aborting afterwards forces nothing.
    controller.abort();
    await afterPendingIo();
    assert.deepEqual(forced, []);
  });

  it('is done at once when nothing is left, even with an aborted signal: no subscription, no force', async () => {
    const w = work(0);
    const forced: string[] = [];
    const end = await settle({
      isDone: w.isDone,
      subscribe: w.subscribe,
      signal: AbortSignal.abort(),
      force: (why) => forced.push(why),
    });
    assert.equal(end, 'done');
    assert.deepEqual(forced, []);
    assert.equal(w.subscriptions, 0);
    assert.equal(timers.created.length, 0);
  });

  it('forces once when the signal fires first, then ignores later changes', async () => {
    const w = work(3);
    const controller = new AbortController();
    const forced: { why: string; left: number }[] = [];
    const waiting = settle({
      isDone: w.isDone,
      subscribe: w.subscribe,
      signal: controller.signal,
      force: (why) => forced.push({ why, left: w.left }),
    });
    w.finish();
    controller.abort();
    assert.equal(await waiting, 'aborted');
    assert.deepEqual(forced, [{ why: 'aborted', left: 2 }]);
    assert.equal(w.subscriptions, 0);
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
    const checks = w.checks;
    w.finish();
    w.finish();
    assert.equal(w.checks, checks, 'isDone is not read after the wait ended');
    assert.equal(forced.length, 1);
  });

  it('forces at once when the signal has already fired', async () => {
    const w = work(1);
    const forced: string[] = [];
    const end = await settle({
      isDone: w.isDone,
      subscribe: w.subscribe,
      signal: AbortSignal.abort(),
      timeoutMs: 60_000,
      force: (why) => forced.push(why),
    });
    assert.equal(end, 'aborted');
    assert.deepEqual(forced, ['aborted']);
    assert.equal(w.subscriptions, 0, 'nothing subscribed for a wait that never began');
    assert.equal(timers.created.length, 0);
  });

  it('ends by its own time limit with force("timeout") and drops its abort listener', async () => {
    const w = work(1);
    const controller = new AbortController();
    const forced: string[] = [];
    const end = await settle({
      isDone: w.isDone,
      subscribe: w.subscribe,
      signal: controller.signal,
      timeoutMs: 5,
      force: (why) => forced.push(why),
    });
    assert.equal(end, 'timeout');
    assert.deepEqual(forced, ['timeout']);
    assert.equal(w.subscriptions, 0);
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
  });

  it('waits without a signal or a limit until done, and without force', async () => {
    const w = work(1);
    const waiting = settle({ isDone: w.isDone, subscribe: w.subscribe });
    setImmediate(() => w.finish());
    assert.equal(await waiting, 'done');
    assert.equal(w.subscriptions, 0);
  });

  it('ignores a change reported from inside subscribe() and still sees the next one', async () => {
    let left = 1;
    let notify: (() => void) | undefined;
    const waiting = settle({
      isDone: () => left === 0,
      subscribe: (onChange) => {
        left = 0;
        onChange(); // too early: the wait has not begun
        notify = onChange;
        return () => (notify = undefined);
      },
    });
    notify?.();
    assert.equal(await waiting, 'done');
    assert.equal(notify, undefined, 'unsubscribed');
  });

  it('rejects with the error force throws, after releasing everything', async () => {
    const w = work(1);
    const controller = new AbortController();
    const waiting = settle({
      isDone: w.isDone,
      subscribe: w.subscribe,
      signal: controller.signal,
      force: () => {
        throw new Error('destroy failed');
      },
    });
    controller.abort();
    await assert.rejects(waiting, /destroy failed/);
    assert.equal(w.subscriptions, 0);
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
    await assert.rejects(
      settle({
        isDone: w.isDone,
        subscribe: w.subscribe,
        signal: AbortSignal.abort(),
        force: () => {
          throw new Error('at once');
        },
      }),
      /at once/,
    );
  });
});

describe('subscribeAll', () => {
  it('wakes a settle from any of its sources and unsubscribes from every one when it ends', async () => {
    const a = createNotifier();
    const b = createNotifier();
    let done = false;
    const listening: string[] = [];
    const counted = (name: string, notifier: ReturnType<typeof createNotifier>) => (listener: () => void) => {
      listening.push(name);
      const off = notifier.subscribe(listener);
      return () => {
        listening.splice(listening.indexOf(name), 1);
        off();
      };
    };
    const waiting = settle({ isDone: () => done, subscribe: subscribeAll(counted('a', a), counted('b', b)) });
    assert.deepEqual(listening, ['a', 'b']);
    done = true;
    b.notify();
    assert.equal(await waiting, 'done');
    assert.deepEqual(listening, [], 'both unsubscribed');
  });
});

describe('settlePromise', () => {
  it('is done when the promise settles either way, else aborted or timed out; the signal keeps no listener', async () => {
    const controller = new AbortController();
    const { signal } = controller;
    assert.equal(await settlePromise(Promise.resolve(1), { signal }), 'done');
    assert.equal(await settlePromise(Promise.reject(new Error('failed')), { signal }), 'done');
    assert.equal(getEventListeners(signal, 'abort').length, 0);
    const never = new Promise(() => undefined);
    const pending = settlePromise(never, { signal });
    assert.equal(getEventListeners(signal, 'abort').length, 1);
    controller.abort();
    assert.equal(await pending, 'aborted');
    assert.equal(getEventListeners(signal, 'abort').length, 0);
    assert.equal(await settlePromise(never, { signal }), 'aborted');
    assert.equal(await settlePromise(never, { timeoutMs: 5 }), 'timeout');
  });
});

describe('timeLimitedSignal', () => {
  it('fires with its parent or after its limit, and dispose() leaves nothing on the parent', async () => {
    const parent = new AbortController();
    const call = timeLimitedSignal(parent.signal, 60_000);
    assert.equal(getEventListeners(parent.signal, 'abort').length, 1);
    parent.abort(new Error('budget'));
    assert.equal(call.signal.aborted, true);
    assert.match(String((call.signal.reason as Error).message), /budget/);
    call.dispose();
    assert.ok(timers.cleared.has(timers.created[0]));

    const other = new AbortController();
    const limited = timeLimitedSignal(other.signal, 5);
    assert.equal(timers.created[1]?.hasRef(), false);
    await new Promise((resolve) => limited.signal.addEventListener('abort', resolve, { once: true }));
    assert.match(String((limited.signal.reason as Error).message), /no answer within 5 ms/);
    assert.equal(other.signal.aborted, false);
    limited.dispose();
    assert.equal(getEventListeners(other.signal, 'abort').length, 0);
  });
});

describe('createNotifier', () => {
  it('wakes every subscriber; an unsubscribed one no more, also when it leaves during a notify', () => {
    const n = createNotifier();
    const calls: string[] = [];
    const offA = n.subscribe(() => {
      calls.push('a');
      offA();
    });
    const offB = n.subscribe(() => calls.push('b'));
    n.notify();
    n.notify();
    offB();
    n.notify();
    assert.deepEqual(calls, ['a', 'b', 'b']);
  });
});

describe('sleep', () => {
  it('resolves early when the signal aborts and drops its listener', async () => {
    const controller = new AbortController();
    const slept = sleep(60_000, controller.signal);
    assert.equal(getEventListeners(controller.signal, 'abort').length, 1);
    controller.abort();
    await slept;
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
    assert.equal(timers.created[0]?.hasRef(), false);
    assert.ok(timers.cleared.has(timers.created[0]));
  });
});

describe('backoffDelay', () => {
  const options = { initialMs: 100, maxMs: 5000 };

  it('doubles the step per attempt up to maxMs and jitters in its upper half', () => {
    const steps = [100, 200, 400, 800, 1600, 3200, 5000, 5000];
    steps.forEach((step, attempt) => {
      assert.equal(
        backoffDelay(attempt, { ...options, random: () => 0 }),
        step / 2,
        `attempt ${attempt} low`,
      );
      assert.equal(
        backoffDelay(attempt, { ...options, random: () => 0.999_999 }),
        step,
        `attempt ${attempt} high`,
      );
    });
  });

  it('stays within [step / 2, maxMs] for any attempt, with Math.random spreading the pauses', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const ms = backoffDelay(3, options);
      assert.ok(ms >= 400 && ms <= 800, `attempt 3 gave ${ms}`);
      seen.add(ms);
    }
    assert.ok(seen.size > 10, `only ${seen.size} distinct pauses in 200`);
    for (const attempt of [50, 1024, Number.MAX_SAFE_INTEGER]) {
      const ms = backoffDelay(attempt, options);
      assert.ok(Number.isFinite(ms) && ms >= 2500 && ms <= 5000, `attempt ${attempt} gave ${ms}`);
    }
    assert.equal(backoffDelay(-1, { ...options, random: () => 0 }), 50, 'a negative attempt is the first');
  });
});
