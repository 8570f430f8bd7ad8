/**
 * kubegrace/fastify in one process, on fastify 5 and fastify 4 alike: the probe routes on the app's
 * port, app.close() in the cleanup phase after the drain (the listener kept open through the
 * propagation wait), the warning when someone else closes the app mid-shutdown, request tracking
 * without attach, and the errors. The SIGTERM runs under load are in shutdown.test.ts.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, it } from 'node:test';
import Fastify5, { type FastifyInstance } from 'fastify';
import Fastify4 from 'fastify-4';
import { createKubegrace, type Kubegrace, KubegraceError, type PhaseName } from '../../src/index.js';
import { fastifyApp, type FastifyAppLike } from '../../src/fastify/index.js';
import { get } from '../support/http.js';

/** fastify 4 typed as 5: the members these tests call (route, hooks, listen, close) are the same. */
const MAJORS: readonly (readonly [string, () => FastifyInstance])[] = [
  ['fastify 5', () => Fastify5()],
  ['fastify 4', () => Fastify4() as unknown as FastifyInstance],
];

interface Harness {
  readonly kg: Kubegrace;
  readonly warnings: string[];
  /** The phase running now (undefined before the shutdown). */
  phase(): PhaseName | undefined;
}

const instances: Kubegrace[] = [];
afterEach(async () => {
  for (const kg of instances.splice(0)) await kg.destroy();
});

function harness(options: { readonly delayMs?: number } = {}): Harness {
  const warnings: string[] = [];
  const kg = createKubegrace({
    env: {},
    handleSignals: false,
    managementServer: false,
    exit: () => {},
    logger: { info: () => {}, warn: (message) => warnings.push(message), error: () => {} },
    propagation: { strategy: 'fixed', delayMs: options.delayMs ?? 300 },
    drain: { timeoutMs: 5000 },
  });
  instances.push(kg);
  let current: PhaseName | undefined;
  kg.on('phase', ({ phase, status }) => {
    if (status === 'start') current = phase;
  });
  return { kg, warnings, phase: () => current };
}

async function listen(app: FastifyInstance): Promise<number> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  return (app.server.address() as AddressInfo).port;
}

for (const [major, create] of MAJORS) {
  describe(`kubegrace/fastify on ${major}`, () => {
    it('serves the probes on the app port, as the management server does', async () => {
      const { kg } = harness();
      const app = create();
      kg.use(fastifyApp(app, { probes: true }));
      const port = await listen(app);

      const starting = await get(port, '/readyz');
      assert.equal(starting.status, 503);
      assert.deepEqual(JSON.parse(starting.body), { status: 'not_ready', reason: 'starting' });
      kg.ready();
      const ready = await get(port, '/readyz?verbose=1');
      assert.equal(ready.status, 200);
      assert.deepEqual(JSON.parse(ready.body), { status: 'ready' });
      const head = await get(port, '/livez', { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.body, '');
      const post = await get(port, '/startupz', { method: 'POST' });
      assert.equal(post.status, 405);
      assert.equal(post.headers.allow, 'GET, HEAD');
      await app.close();
    });

    it('keeps the listener open through the propagation wait and runs app.close() in cleanup, after the drain', async () => {
      const { kg, phase } = harness({ delayMs: 400 });
      const app = create();
      let closedIn: { phase: PhaseName | undefined; listening: boolean } | undefined;
      const order: string[] = [];
      app.addHook('onClose', async () => {
        closedIn = { phase: phase(), listening: app.server.listening };
        order.push('onClose');
      });
      app.get('/slow', async () => {
        await delay(600);
        order.push('slow answered');
        return 'done';
      });
      kg.use(fastifyApp(app));
      const port = await listen(app);
      kg.ready();

      const slow = get(port, '/slow');
      await delay(50);
      const shutdown = kg.shutdown('test');
      await delay(100);
      // In the propagation wait: a new connection is still accepted and served.
      assert.equal(phase(), 'propagate');
      const during = await get(port, '/slow');
      assert.equal(during.status, 200);
      assert.equal(during.headers.connection, 'close');
      assert.equal((await slow).status, 200);

      const summary = await shutdown;
      assert.equal(summary.outcome, 'clean', JSON.stringify(summary));
      assert.deepEqual(closedIn, { phase: 'cleanup', listening: false });
      assert.deepEqual(order, ['slow answered', 'slow answered', 'onClose']);
    });

    it('warns when the app is closed by someone else during the shutdown', async () => {
      const { kg, warnings, phase } = harness({ delayMs: 400 });
      const app = create();
      kg.use(fastifyApp(app, { name: 'api' }));
      await listen(app);
      kg.ready();
      const shutdown = kg.shutdown('test');
      await delay(50);
      assert.equal(phase(), 'propagate');
      await app.close();
      await shutdown;
      const warning = warnings.find((w) => w.includes('app.close()'));
      assert.ok(warning, warnings.join('\n'));
      assert.match(warning, /^api: app\.close\(\) was called during kubegrace's propagate phase/);
    });

    it('with attach: false, tracks requests in an onRequest hook (probes excepted) and the drain waits for them', async () => {
      const { kg } = harness({ delayMs: 50 });
      let started = 0;
      kg.addObserver({ requestStarted: () => started++ });
      const app = create();
      const order: string[] = [];
      app.addHook('onClose', async () => {
        order.push('onClose');
      });
      app.get('/slow', async () => {
        await delay(500);
        order.push('slow answered');
        return 'done';
      });
      kg.use(fastifyApp(app, { attach: false, probes: true }));
      const port = await listen(app);
      kg.ready();
      assert.equal((await get(port, '/livez')).status, 200);
      assert.equal(started, 0, 'a probe is not a request in flight');

      const slow = get(port, '/slow');
      await delay(50);
      assert.equal(started, 1);
      const summary = await kg.shutdown('test');
      assert.equal((await slow).status, 200);
      assert.equal(summary.outcome, 'clean', JSON.stringify(summary));
      assert.deepEqual(order, ['slow answered', 'onClose']);
    });

    it('detach() takes the server and app.close() out of the shutdown', async () => {
      const { kg } = harness({ delayMs: 50 });
      const app = create();
      let closed = false;
      app.addHook('onClose', async () => {
        closed = true;
      });
      const handle = kg.use(fastifyApp(app));
      const port = await listen(app);
      kg.ready();
      handle.detach();
      await kg.shutdown('test');
      assert.equal(closed, false, 'kubegrace did not close the app');
      // The listener was not kubegrace's to close any more.
      assert.equal((await get(port, '/nothing')).status, 404);
      await app.close();
      assert.equal(closed, true);
    });

    it('refuses to plug in once the app listens, saying where kg.use() belongs', async () => {
      const { kg } = harness();
      const app = create();
      await listen(app);
      assert.throws(
        () => kg.use(fastifyApp(app)),
        (error: unknown) =>
          error instanceof KubegraceError &&
          error.code === 'ERR_KUBEGRACE_INVALID_STATE' &&
          /before app\.listen\(\)/.test(error.message),
      );
      await app.close();
    });

    it('refuses to plug in after app.ready() with its own error, whatever the options, and leaves no hook behind', async () => {
      const { kg } = harness();
      const app = create();
      const preCloseHooks: unknown[] = [];
      await app.ready();
      const addHook = app.addHook.bind(app) as (...args: unknown[]) => unknown;
      (app as unknown as { addHook: (...args: unknown[]) => unknown }).addHook = (...args) => {
        // Recorded once fastify took it: an attempt it refused leaves nothing behind.
        const added = addHook(...args);
        if (args[0] === 'preClose') preCloseHooks.push(args[1]);
        return added;
      };
      // Default options too: fastify 5 took them (nothing but a preClose hook, which it still takes).
      for (const options of [{}, { probes: true }, { attach: false }]) {
        assert.throws(
          () => kg.use(fastifyApp(app, options)),
          (error: unknown) =>
            error instanceof KubegraceError &&
            error.code === 'ERR_KUBEGRACE_INVALID_STATE' &&
            /before app\.listen\(\) or app\.ready\(\)/.test(error.message),
          JSON.stringify(options),
        );
      }
      assert.deepEqual(preCloseHooks, [], 'a refused kg.use() added no preClose hook');
      await app.close();
    });

    it('refuses the same app twice, naming fastifyApp, not an internal', () => {
      const { kg } = harness();
      const app = create();
      kg.use(fastifyApp(app, { probes: true }));
      for (const name of ['fastify', 'other']) {
        assert.throws(
          () => kg.use(fastifyApp(app, { probes: true, name })),
          (error: unknown) =>
            error instanceof KubegraceError &&
            error.code === 'ERR_KUBEGRACE_INVALID_STATE' &&
            /already given to kubegrace.*kg\.use\(fastifyApp\(app\)\) once per app/.test(error.message),
          name,
        );
      }
    });
  });
}

describe('fastifyApp options', () => {
  it('takes fastify 4 and fastify 5 instances as their own types declare them (this file type-checks)', () => {
    for (const app of [Fastify4(), Fastify5(), Fastify5({ http2: true })]) {
      assert.equal(fastifyApp(app).name, 'fastify');
    }
  });

  it('names the option at fault, at once', () => {
    const app = Fastify5();
    const cases: [() => unknown, string][] = [
      [() => fastifyApp({} as FastifyAppLike), 'app'],
      [() => fastifyApp(app, { probes: 'yes' as unknown as boolean }), 'probes'],
      [() => fastifyApp(app, { attach: 1 as unknown as boolean }), 'attach'],
      [() => fastifyApp(app, { name: '' }), 'name'],
      [() => fastifyApp(app, { closeTimeoutMs: -1 }), 'closeTimeoutMs'],
      // 0 ms would fail every shutdown at app.close()
      [() => fastifyApp(app, { closeTimeoutMs: 0 }), 'closeTimeoutMs'],
    ];
    for (const [call, option] of cases) {
      assert.throws(
        call,
        (error: unknown) =>
          error instanceof KubegraceError &&
          error.code === 'ERR_KUBEGRACE_INVALID_OPTION' &&
          error.option === option &&
          error.message.startsWith(`${option} must be`),
        option,
      );
    }
  });

  it('refuses an option it does not know, with the name it probably meant', () => {
    const app = Fastify5();
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ probe: true }, /unknown option "probe" \(did you mean probes\?\)/],
      [{ closeTimeout: 10 }, /unknown option "closeTimeout" \(did you mean closeTimeoutMs\?\)/],
      [{ port: 8080 }, /unknown option "port"; the options are probes, attach, name, closeTimeoutMs/],
    ];
    for (const [options, message] of cases) {
      assert.throws(
        () => fastifyApp(app, options),
        (error: unknown) =>
          error instanceof KubegraceError &&
          error.code === 'ERR_KUBEGRACE_INVALID_OPTION' &&
          message.test(error.message),
        JSON.stringify(options),
      );
    }
  });

  it('kg.use(fastifyApp), the factory uncalled, says to call it', () => {
    const kg = createKubegrace({ env: {}, handleSignals: false, managementServer: false, exit: () => {} });
    instances.push(kg);
    assert.throws(
      () => kg.use(fastifyApp),
      (error: unknown) =>
        error instanceof KubegraceError &&
        error.code === 'ERR_KUBEGRACE_INVALID_OPTION' &&
        /fastifyApp\(app\).*call it: kg\.use\(fastifyApp\(…\)\)/.test(error.message),
    );
  });
});
