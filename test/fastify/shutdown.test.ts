/**
 * kubegrace/fastify across a real SIGTERM, on fastify 5 and fastify 4: a child process
 * (test/support/fastify-service.ts) under keep-alive load answers every request, fastify's onClose
 * hook runs in kubegrace's cleanup phase with the listener already closed by the drain, and the
 * process exits 0 with a clean summary.
 */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { spawnEventChild, type EventChild } from '../support/child.js';
import { get } from '../support/http.js';
import { FAST_SHUTDOWN, startLoad, within } from '../examples/harness.js';

const SERVICE = fileURLToPath(new URL('../support/fastify-service.ts', import.meta.url));

const children: EventChild[] = [];
after(() => {
  for (const child of children) child.kill();
});

for (const major of ['5', '4']) {
  describe(`kubegrace/fastify on fastify ${major}, SIGTERM under keep-alive load`, () => {
    it('answers every request, runs onClose in cleanup after the drain, and exits 0', async () => {
      const child = await spawnEventChild(
        process.execPath,
        ['--import', 'tsx', SERVICE],
        { ...FAST_SHUTDOWN, KUBEGRACE_PROBES_PORT: '0', FASTIFY_MAJOR: major },
        20_000,
      );
      children.push(child);
      const output = (): string =>
        [...child.events.map((e) => JSON.stringify(e)), ...child.stderr].join('\n').slice(-6000);
      const port = child.listening.port as number;
      assert.match(String(child.listening.fastify), new RegExp(`^${major}\\.`));
      assert.equal((await get(port, '/readyz')).status, 200, 'probes on the app port');

      const load = startLoad(port, { path: '/work', concurrency: 8 });
      await delay(400);
      child.process.kill('SIGTERM');
      load.markSignal();
      // Endpoints still point here for a while: new connections must be served, readiness must fail.
      await delay(150);
      const readyz = await get(port, '/readyz');
      const livez = await get(port, '/livez');
      const fresh = await get(port, '/work');
      await delay(350);
      const result = await within(load.stop(), 15_000, 'the requests in flight');
      const exit = await within(child.exited, 20_000, 'exit after SIGTERM');

      assert.deepEqual(result.failures, [], output());
      assert.ok(result.okAfterSignal > 0, `no request sent after SIGTERM was answered\n${output()}`);
      assert.ok(result.connectionClose > 0, 'keep-alive connections are ended at a response boundary');
      assert.equal(readyz.status, 503);
      assert.equal(livez.status, 200);
      assert.equal(fresh.status, 200, 'a new connection during the propagation wait is served');
      assert.equal(exit.code, 0, output());

      const onClose = child.events.find((e) => e.event === 'onClose');
      assert.ok(onClose, `fastify's onClose hook did not run\n${output()}`);
      assert.equal(onClose.phase, 'cleanup', output());
      assert.equal(onClose.listening, false, 'the drain closed the listener before fastify closed');
      const shutdown = child.events.find((e) => e.event === 'shutdown');
      assert.deepEqual(
        { outcome: shutdown?.outcome, exitCode: shutdown?.exitCode, forced: shutdown?.forced },
        { outcome: 'clean', exitCode: 0, forced: 0 },
        output(),
      );
      assert.ok(child.events.indexOf(onClose) < child.events.indexOf(shutdown!), 'onClose before the end');
    });
  });
}

for (const major of ['5', '4']) {
  describe(`kubegrace/fastify on fastify ${major} with attach: false, a request past the drain budget`, () => {
    it('is cut at the budget, counted as forced and named in a warning, and onClose still runs in cleanup', async () => {
      const child = await spawnEventChild(
        process.execPath,
        ['--import', 'tsx', SERVICE],
        {
          ...FAST_SHUTDOWN,
          KUBEGRACE_PROBES_PORT: '0',
          KUBEGRACE_PROPAGATION_MAX_MS: '1000',
          KUBEGRACE_DRAIN_TIMEOUT_MS: '1500',
          FASTIFY_MAJOR: major,
          FASTIFY_ATTACH: '0',
        },
        20_000,
      );
      children.push(child);
      const output = (): string =>
        [...child.events.map((e) => JSON.stringify(e)), ...child.stderr].join('\n').slice(-6000);
      const port = child.listening.port as number;
      const slow = get(port, '/slow?ms=30000&token=secret').then(
        (reply) => `answered ${String(reply.status)}`,
        (error: NodeJS.ErrnoException) => error.code ?? error.message,
      );
      await delay(300);
      child.process.kill('SIGTERM');
      const exit = await within(child.exited, 15_000, 'exit after SIGTERM');
      const shutdown = child.events.find((e) => e.event === 'shutdown');
      // Before: forced 0 and no warning; app.close() waited for the request until its limit
      // (outcome failed), and onClose never ran.
      assert.deepEqual(
        { outcome: shutdown?.outcome, exitCode: shutdown?.exitCode, forced: shutdown?.forced },
        { outcome: 'forced', exitCode: 1, forced: 1 },
        output(),
      );
      assert.equal(exit.code, 1, output());
      const onClose = child.events.find((e) => e.event === 'onClose');
      assert.equal(onClose?.phase, 'cleanup', output());
      assert.match(output(), /1 request\(s\) still in flight at the drain budget .*: GET \/slow"/);
      assert.doesNotMatch(output(), /token=secret/, 'the query string is not logged');
      assert.equal(await within(slow, 5000, 'the cut request'), 'ECONNRESET');
    });
  });
}
