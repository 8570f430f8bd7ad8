/**
 * Values that reach timers from outside the option resolver (a pod's own grace period read from the
 * API) must not overflow Node's 2^31−1 ms timer limit, which would fire at once and spin.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { createLifecycle } from '../../src/lifecycle.js';
import { createTiming } from '../../src/timing.js';

describe('long timers', () => {
  it('a grace period of a year arms the deadline once, without TimeoutOverflowWarning', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning.name);
    process.on('warning', onWarning);
    let releaseHook: () => void = () => undefined;
    const lifecycle = createLifecycle({
      budgets: { unready: 100, propagate: 0, drain: 100, cleanup: 100 },
      timing: createTiming({
        gracePeriodMs: 365 * 24 * 3600 * 1000,
        gracePeriodSource: 'option',
        safetyMarginMs: 1000,
      }),
      fatalTimeoutMs: 1000,
      exitCodes: { clean: 0, incomplete: 1, fatal: 70 },
      exit: () => undefined,
    });
    lifecycle.register({
      name: 'held',
      unready: () => new Promise<void>((resolve) => (releaseHook = resolve)),
    });
    try {
      lifecycle.ready();
      const done = lifecycle.shutdown('SIGTERM');
      // Pod grace periods from the API are not bounded by the option resolver.
      lifecycle.adoptGracePeriod(10 * 365 * 24 * 3600 * 1000, 'pod');
      await delay(50);
      assert.equal(lifecycle.state, 'draining', 'the deadline did not fire at once');
      releaseHook();
      const summary = await done;
      assert.equal(summary.outcome, 'clean');
      assert.deepEqual(
        warnings.filter((name) => name === 'TimeoutOverflowWarning'),
        [],
        'no timer overflowed',
      );
    } finally {
      process.off('warning', onWarning);
    }
  });
});
