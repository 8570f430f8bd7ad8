/**
 * examples/fatal: a lost database connection calls kg.fatal(); the requests in flight still get
 * their answers, the cleanup hook runs, the summary carries the error, and the exit code is 70.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { get, send, startExample, startLoad, within, type RunningExample } from './harness.js';

describe('examples/fatal', () => {
  let example: RunningExample | undefined;
  after(() => example?.kill());

  it('answers what is in flight, then exits 70 with the error in the summary', async () => {
    example = await startExample('fatal');
    assert.equal(await get(example.port, '/orders/1'), 200);
    assert.equal(await get(example.managementPort, '/livez'), 200);

    const load = startLoad(example.port, { path: '/orders/2', concurrency: 6 });
    await delay(600);
    // Routing stops (the probes are about to fail) with ~6 requests of 100 ms still in flight, and
    // the connection is lost at that moment.
    const inFlight = load.stop();
    const broken = await send(example.port, 'POST', '/simulate/connection-lost');
    assert.equal(broken.status, 202);
    const result = await within(inFlight, 10_000, 'requests in flight');
    const exit = await within(example.exited, 10_000, 'exit after fatal');

    assert.deepEqual(result.failures, [], example.output());
    assert.ok(result.ok > 10, `only ${result.ok} requests answered`);
    assert.equal(exit.code, 70, example.output());
    const summary = example.summary();
    assert.equal(summary?.trigger, 'fatal', example.output());
    assert.match(String(summary?.fatalError), /database connection lost/);
    assert.ok(
      example.stdout.some((l) => l.includes('cleanup ran')),
      example.output(),
    );
  });
});
