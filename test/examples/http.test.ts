/**
 * examples/http (the image's default service): under keep-alive load, SIGTERM, traffic that keeps
 * arriving for a while → every request answered, exit 0, and the metrics endpoint up until the end.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { get, loadThenTerminate, send, startExample, type RunningExample } from './harness.js';

describe('examples/http', () => {
  let example: RunningExample | undefined;
  after(() => example?.kill());

  it('serves /work and /metrics, then shuts down under load with zero failures and exit 0', async () => {
    example = await startExample('http');
    assert.equal(await get(example.port, '/work?ms=10'), 200);
    const metrics = await send(example.managementPort, 'GET', '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /^kubegrace_lifecycle_state\{state="ready"\} 1$/m);

    const { load, exit } = await loadThenTerminate(example, { path: '/work?ms=40', concurrency: 8 });
    assert.deepEqual(load.failures, [], example.output());
    assert.ok(load.ok > 20, `only ${load.ok} requests answered`);
    assert.ok(load.okAfterSignal > 0, 'requests sent after SIGTERM must still be served');
    assert.ok(load.connectionClose > 0, 'responses during the shutdown must say Connection: close');
    assert.equal(exit.code, 0, example.output());
    assert.equal(example.summary()?.outcome, 'clean', example.output());
    assert.equal(example.summary()?.trigger, 'SIGTERM');
  });
});
