/** examples/fastify: keep-alive load, SIGTERM, zero failed requests, the pool closed in onClose after the drain, exit 0. */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { get, loadThenTerminate, startExample, type RunningExample } from './harness.js';

describe('examples/fastify', () => {
  let example: RunningExample | undefined;
  after(() => example?.kill());

  it('answers every request through the shutdown, closes the pool in onClose, and exits 0', async () => {
    example = await startExample('fastify');
    assert.equal(await get(example.port, '/orders/7'), 200);
    // probes: true puts them on the app port too.
    assert.equal(await get(example.port, '/readyz'), 200);

    const { load, exit } = await loadThenTerminate(example, { path: '/orders/42', concurrency: 8 });
    assert.deepEqual(load.failures, [], example.output());
    assert.ok(load.ok > 20, `only ${load.ok} requests answered`);
    assert.ok(load.okAfterSignal > 0, 'requests sent after SIGTERM must still be served');
    assert.equal(exit.code, 0, example.output());
    assert.ok(example.stdout.includes('pool closed'), example.output());
    const summary = example.summary();
    assert.equal(summary?.outcome, 'clean', example.output());
    assert.deepEqual(summary?.failures, []);
  });
});
