/** examples/express: keep-alive load, SIGTERM, zero failed requests, the pool closed after the drain, exit 0. */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { assertServedThroughShutdown, get, startExample, type RunningExample } from './harness.js';

describe('examples/express', () => {
  let example: RunningExample | undefined;
  after(() => example?.kill());

  it('answers every request through the shutdown and exits 0', async () => {
    example = await startExample('express');
    assert.equal(await get(example.port, '/orders/7'), 200);
    // probeRouter: the probes are on the app port too.
    assert.equal(await get(example.port, '/readyz'), 200);

    // The pool hook ran in cleanup, after the drain, and did not fail (the summary's failures).
    await assertServedThroughShutdown(example, { path: '/orders/42', concurrency: 8 });
  });
});
