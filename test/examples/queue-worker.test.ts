/**
 * examples/queue-worker: producers keep submitting jobs over keep-alive connections; on SIGTERM the
 * worker stops taking jobs at once, every job already running finishes under its lease, the rest
 * stay queued for another worker — none is lost or cut off — and the process exits 0.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { send, startExample, startLoad, within, type RunningExample } from './harness.js';

interface WorkerSummary {
  readonly started: number;
  readonly completed: number;
  readonly enqueued: number;
  readonly acked: number;
  readonly waiting: number;
}

describe('examples/queue-worker', () => {
  let example: RunningExample | undefined;
  after(() => example?.kill());

  it('finishes every running job before it exits and leaves the rest queued', async () => {
    // The producers stop 300 ms after SIGTERM: a burst of reconnects that stops is no rate the
    // propagation wait may trust (docs/lifecycle.md), so it would run to its maximum and the jobs
    // would finish inside it. A 500 ms maximum leaves them running into the drain this test is about.
    example = await startExample('queue-worker', {
      WORKER_CONCURRENCY: '4',
      KUBEGRACE_PROPAGATION_MAX_MS: '500',
    });
    // Long jobs, so four are running when SIGTERM arrives.
    assert.equal((await send(example.port, 'POST', '/jobs?count=8&ms=1500')).status, 202);
    const producers = startLoad(example.port, {
      method: 'POST',
      path: '/jobs?count=1&ms=100',
      concurrency: 3,
    });
    await delay(400);
    example.process.kill('SIGTERM');
    producers.markSignal();
    await delay(300);
    const load = await within(producers.stop(), 10_000, 'producers');
    const exit = await within(example.exited, 20_000, 'worker exit');

    assert.deepEqual(load.failures, [], example.output());
    assert.ok(load.okAfterSignal > 0, 'submissions after SIGTERM are still accepted (and queued)');
    const line = example.stdout.find((l) => l.includes('"worker-summary"'));
    assert.ok(line, example.output());
    const stats = JSON.parse(line) as WorkerSummary;
    assert.equal(stats.started, 4, `four jobs were running at SIGTERM: ${line}`);
    assert.equal(stats.completed, stats.started, `every started job finished: ${line}`);
    assert.equal(stats.acked, stats.completed);
    assert.equal(stats.enqueued, stats.completed + stats.waiting, `no job lost: ${line}`);
    // The drain waited for the running jobs (about 1.1 s of their 1.5 s were left at SIGTERM).
    const phases = example.summary()?.phases as Record<string, number> | undefined;
    assert.ok((phases?.drain ?? 0) >= 100, `drain ${phases?.drain} ms`);
    assert.equal(example.summary()?.forced, 0);
    assert.equal(exit.code, 0, example.output());
  });
});
