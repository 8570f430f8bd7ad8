/** examples/fastify: keep-alive load, SIGTERM, zero failed requests, the pool closed in onClose after the drain, exit 0. */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { assertServedThroughShutdown, get, startExample, type RunningExample } from './harness.js';

describe('examples/fastify', () => {
  let example: RunningExample | undefined;
  after(() => example?.kill());

  it('answers every request through the shutdown, closes the pool in onClose, and exits 0', async () => {
    example = await startExample('fastify');
    assert.equal(await get(example.port, '/orders/7'), 200);
    // probes: true puts them on the app port too.
    assert.equal(await get(example.port, '/readyz'), 200);

    await assertServedThroughShutdown(example, { path: '/orders/42', concurrency: 8 });
    assert.ok(example.stdout.includes('pool closed'), example.output());
  });
});
