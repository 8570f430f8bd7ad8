import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { KubegraceError } from '../../src/errors.js';
import { createCheckSet, createEventLoopLagCheck, shortError } from '../../src/probes/checks.js';

/** The guard timers are unref'd, as in production; a test that awaits only them needs a handle. */
async function withLoopAlive<T>(work: () => Promise<T>): Promise<T> {
  const keepAlive = setInterval(() => {}, 1000);
  try {
    return await work();
  } finally {
    clearInterval(keepAlive);
  }
}

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // block the event loop on purpose
  }
}

describe('createCheckSet', () => {
  it('rejects duplicate names, empty names and non-functions with ERR_KUBEGRACE_INVALID_OPTION', () => {
    const set = createCheckSet();
    set.add('db', () => true);
    const invalid = (error: unknown) =>
      error instanceof KubegraceError && error.code === 'ERR_KUBEGRACE_INVALID_OPTION';
    assert.throws(() => set.add('db', () => true), invalid);
    assert.throws(() => set.add('', () => true), invalid);
    assert.throws(() => set.add('cache', 'yes' as never), invalid);
    assert.equal(set.size, 1);
  });

  it('removes a check with the returned function, once, without touching a re-added one', async () => {
    const set = createCheckSet();
    const remove = set.add('db', () => false);
    assert.equal((await set.run(100)).ok, false);
    remove();
    assert.equal(set.size, 0);
    const healthy = () => true;
    const removeHealthy = set.add('db', healthy);
    removeHealthy();
    set.add('db', healthy);
    removeHealthy(); // stale remover: must not drop the new registration, even of the same function
    remove();
    assert.equal(set.size, 1);
    assert.deepEqual(
      (await set.run(100)).results.map((r) => [r.name, r.ok]),
      [['db', true]],
    );
  });

  it('passes with no checks', async () => {
    assert.deepEqual(await createCheckSet().run(100), { ok: true, results: [] });
  });

  it('treats anything but false as healthy, and false, throws and rejections as unhealthy', async () => {
    const set = createCheckSet();
    set.add('undefined', () => undefined);
    set.add('object', () => ({ fine: true }));
    set.add('async-true', async () => true);
    set.add('zero', () => 0);
    set.add('false', () => false);
    set.add('async-false', async () => false);
    set.add('throws', () => {
      throw new Error('db down\n    at secret (/app/src/db.ts:1:1)');
    });
    set.add('rejects', () => Promise.reject(new TypeError('bad reply')));
    set.add('throws-string', () => {
      throw 'plain';
    });
    const run = await set.run(500);
    assert.equal(run.ok, false);
    const byName = Object.fromEntries(run.results.map((r) => [r.name, r]));
    for (const name of ['undefined', 'object', 'async-true', 'zero']) {
      assert.equal(byName[name]?.ok, true, name);
      assert.equal(byName[name]?.error, undefined, name);
    }
    assert.deepEqual(byName['false'], {
      name: 'false',
      ok: false,
      durationMs: byName['false']?.durationMs,
      error: 'returned false',
    });
    assert.equal(byName['async-false']?.error, 'returned false');
    assert.equal(byName['throws']?.error, 'db down', 'first line only, no stack');
    assert.equal(byName['rejects']?.error, 'bad reply');
    assert.equal(byName['throws-string']?.error, 'plain');
    assert.deepEqual(
      run.results.map((r) => r.name),
      [
        'undefined',
        'object',
        'async-true',
        'zero',
        'false',
        'async-false',
        'throws',
        'rejects',
        'throws-string',
      ],
      'results keep registration order',
    );
  });

  it('passes only when every check passes', async () => {
    const set = createCheckSet();
    set.add('a', () => true);
    set.add('b', async () => true);
    assert.equal((await set.run(100)).ok, true);
  });

  it('runs checks in parallel', async () => {
    const set = createCheckSet();
    for (const name of ['a', 'b', 'c', 'd']) set.add(name, () => sleep(150, true));
    const started = performance.now();
    const run = await withLoopAlive(() => set.run(1000));
    const elapsed = performance.now() - started;
    assert.equal(run.ok, true);
    assert.ok(elapsed < 450, `four 150 ms checks took ${elapsed} ms: not parallel`);
    for (const r of run.results) assert.ok(r.durationMs >= 140, `durationMs ${r.durationMs}`);
  });

  it('fails a hanging check at the time limit and aborts its signal', async () => {
    const set = createCheckSet();
    let seen: AbortSignal | undefined;
    set.add('hangs', (signal) => {
      seen = signal;
      return new Promise(() => {});
    });
    set.add('quick', () => true);
    const started = performance.now();
    const run = await withLoopAlive(() => set.run(120));
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 110 && elapsed < 400, `answered after ${elapsed} ms`);
    assert.equal(run.ok, false);
    const hangs = run.results.find((r) => r.name === 'hangs');
    assert.equal(hangs?.ok, false);
    assert.equal(hangs?.error, 'timed out after 120 ms');
    assert.equal(seen?.aborted, true);
    assert.equal((seen?.reason as DOMException).name, 'TimeoutError');
    assert.equal(run.results.find((r) => r.name === 'quick')?.ok, true);
  });

  it('does not let a check that settles after its time limit change the result', async () => {
    const set = createCheckSet();
    set.add('late', () => sleep(200, true));
    const run = await withLoopAlive(() => set.run(50));
    assert.equal(run.ok, false);
    await withLoopAlive(() => sleep(250));
    assert.equal(run.results[0]?.ok, false);
  });
});

describe('shortError', () => {
  it('keeps one bounded line and never a stack', () => {
    const long = new Error(`${'x'.repeat(500)}\nsecond line`);
    const text = shortError(long);
    assert.ok(text.length <= 201, `length ${text.length}`);
    assert.ok(!text.includes('second line'));
    assert.equal(shortError(new RangeError('')), 'RangeError');
    assert.equal(shortError({ secret: 'payload' }), 'threw an object');
  });
});

describe('createEventLoopLagCheck', () => {
  it('validates its threshold and sampling options', () => {
    const invalid = (error: unknown) =>
      error instanceof KubegraceError && error.code === 'ERR_KUBEGRACE_INVALID_OPTION';
    assert.throws(() => createEventLoopLagCheck(0), invalid);
    assert.throws(() => createEventLoopLagCheck(Number.NaN), invalid);
    assert.throws(() => createEventLoopLagCheck(100, { sampleMs: 0 }), invalid);
    assert.throws(() => createEventLoopLagCheck(100, { sampleMs: 50, windowMs: 10 }), invalid);
  });

  it('fails while the loop is blocked past the threshold and recovers after the window', async () => {
    const lag = createEventLoopLagCheck(100, { sampleMs: 20, windowMs: 200 });
    try {
      await withLoopAlive(() => sleep(100));
      assert.doesNotThrow(() => lag.check(new AbortController().signal), 'healthy loop');
      assert.ok(lag.lagMs < 100, `idle lag ${lag.lagMs}`);

      busy(300);
      // Right after the block, before the sampler had a turn: the overdue sample counts.
      assert.throws(() => lag.check(new AbortController().signal), /event loop lag \d+ ms exceeds 100 ms/);
      // After the sampler ran, the recorded lag keeps the check failing within the window.
      await withLoopAlive(() => sleep(30));
      assert.ok(lag.lagMs >= 250, `recorded lag ${lag.lagMs}`);
      assert.throws(() => lag.check(new AbortController().signal));

      await withLoopAlive(() => sleep(400));
      assert.doesNotThrow(() => lag.check(new AbortController().signal), 'recovered');
      assert.ok(lag.lagMs < 100, `lag after recovery ${lag.lagMs}`);
    } finally {
      lag.stop();
    }
  });

  it('passes once stopped', () => {
    const lag = createEventLoopLagCheck(50, { sampleMs: 10 });
    busy(120);
    assert.throws(() => lag.check(new AbortController().signal));
    lag.stop();
    assert.equal(lag.check(new AbortController().signal), true);
    assert.equal(lag.lagMs, 0);
  });
});
