import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import { probeRouter, trackRequests } from '../../src/express/index.js';
import { setHost, type Host } from '../../src/host.js';
import { createKubegrace, type Kubegrace } from '../../src/kubegrace.js';
import { createLifecycle } from '../../src/lifecycle.js';
import type { Lifecycle } from '../../src/lifecycle.js';
import { createCheckSet } from '../../src/probes/checks.js';
import type { CheckSet } from '../../src/probes/checks.js';
import { createProbeRoutes } from '../../src/probes/handler.js';
import { get, type Reply } from '../support/http.js';
import { createTiming } from '../../src/timing.js';

const request = (port: number, path: string, method = 'GET'): Promise<Reply> => get(port, path, { method });

/**
 * A kubegrace stand-in for what the helpers use: `trackRequest` (public) and the probe routes (from
 * the package-private host, registered here as createKubegrace does).
 */
function standIn(
  probeRoutes: Host['probeRoutes'],
  trackRequest: (req: IncomingMessage, res: ServerResponse) => boolean,
): Kubegrace {
  const kg = { trackRequest } as unknown as Kubegrace;
  setHost(kg, { probeRoutes } as unknown as Host);
  return kg;
}

/** A kubegrace stand-in: a real lifecycle and real probe routes; trackRequest counts and can refuse. */
function createFakeKubegrace(): {
  kg: Kubegrace;
  lifecycle: Lifecycle;
  readiness: CheckSet;
  tracked: string[];
  refuse: { value: boolean };
  release: () => void;
} {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const lifecycle = createLifecycle({
    budgets: { unready: 20_000, propagate: 20_000, drain: 20_000, cleanup: 20_000 },
    timing: createTiming({ gracePeriodMs: 120_000, gracePeriodSource: 'option', safetyMarginMs: 0 }),
    fatalTimeoutMs: 20_000,
    exitCodes: { clean: 0, incomplete: 1, fatal: 70 },
    exit: () => {},
  });
  // Holds the shutdown in its first phase so the test sees `draining`.
  lifecycle.register({ name: 'hold', unready: () => held });
  const readiness = createCheckSet();
  const probeRoutes = createProbeRoutes({
    lifecycle,
    readiness,
    liveness: createCheckSet(),
    checkTimeoutMs: 500,
    details: false,
    readinessUntil: 'shutdown',
  });
  const tracked: string[] = [];
  const refuse = { value: false };
  const kg = standIn(probeRoutes, (req, res) => {
    tracked.push(req.url ?? '');
    if (!refuse.value) return false;
    res.writeHead(503, { 'retry-after': '1', connection: 'close' }).end('draining');
    return true;
  });
  return { kg, lifecycle, readiness, tracked, refuse, release };
}

describe('kubegrace/express on an express 5 app', () => {
  let fake: ReturnType<typeof createFakeKubegrace>;
  let server: Server;
  let port: number;
  let appHits: string[];

  before(async () => {
    fake = createFakeKubegrace();
    appHits = [];
    const app = express();
    // Tracking first on purpose: probe paths must pass through it untouched.
    app.use(trackRequests(fake.kg));
    app.use(probeRouter(fake.kg));
    app.get('/work', (req, res) => {
      appHits.push(req.url);
      res.json({ done: true });
    });
    app.post('/livez-like', (_req, res) => {
      res.status(201).end();
    });
    server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', resolve));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    fake.release();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
  });

  it('serves the probes with GET and HEAD, 405 with Allow for other methods', async () => {
    const expectations: [string, number, unknown][] = [
      ['/livez', 200, { status: 'live' }],
      ['/readyz', 503, { status: 'not_ready', reason: 'starting' }],
      ['/startupz', 503, { status: 'not_started', reason: 'starting' }],
    ];
    for (const [path, status, body] of expectations) {
      const get = await request(port, path);
      assert.equal(get.status, status, `GET ${path}`);
      assert.deepEqual(JSON.parse(get.body), body);
      assert.equal(get.headers['content-type'], 'application/json');
      assert.equal(get.headers['cache-control'], 'no-store');
      const head = await request(port, path, 'HEAD');
      assert.equal(head.status, status, `HEAD ${path}`);
      assert.equal(head.body, '');
      assert.equal(head.headers['content-length'], get.headers['content-length']);
      for (const method of ['POST', 'PUT', 'DELETE']) {
        const other = await request(port, path, method);
        assert.equal(other.status, 405, `${method} ${path}`);
        assert.equal(other.headers['allow'], 'GET, HEAD');
      }
    }
  });

  it('follows the lifecycle, ignores query strings, and leaves other paths to the app', async () => {
    fake.lifecycle.ready();
    assert.equal((await request(port, '/readyz?verbose=1')).status, 200);
    assert.equal((await request(port, '/startupz')).status, 200);
    const removeFailing = fake.readiness.add('db', () => false);
    const failing = await request(port, '/readyz');
    assert.equal(failing.status, 503);
    assert.deepEqual(JSON.parse(failing.body), { status: 'not_ready', reason: 'check_failed' });
    removeFailing();
    assert.equal((await request(port, '/readyz')).status, 200);
    assert.equal((await request(port, '/livez/')).status, 404, 'exact paths, as on the management server');
    assert.equal((await request(port, '/work')).status, 200);
    assert.equal((await request(port, '/nothing')).status, 404);
  });

  it('tracks app requests but not probes, and stops the chain when trackRequest answered', async () => {
    fake.tracked.length = 0;
    appHits.length = 0;
    assert.equal((await request(port, '/work?n=1')).status, 200);
    assert.deepEqual(fake.tracked, ['/work?n=1']);
    assert.deepEqual(appHits, ['/work?n=1']);

    await request(port, '/livez');
    await request(port, '/readyz?x=1');
    assert.deepEqual(fake.tracked, ['/work?n=1'], 'probes are not tracked');

    fake.refuse.value = true;
    void fake.lifecycle.shutdown('SIGTERM');
    const refused = await request(port, '/work?n=2');
    assert.equal(refused.status, 503);
    assert.equal(refused.body, 'draining');
    assert.deepEqual(fake.tracked, ['/work?n=1', '/work?n=2']);
    assert.deepEqual(appHits, ['/work?n=1'], 'the app handler did not run');

    // Liveness stays 200 while draining, even with the middleware in front of the router.
    assert.equal((await request(port, '/livez')).status, 200);
    assert.equal((await request(port, '/readyz')).status, 503);
  });
});

describe('trackRequests', () => {
  it('passes an error thrown by trackRequest to express', async () => {
    const app = express();
    app.use(
      trackRequests(
        standIn(new Map(), () => {
          throw new Error('tracker broke');
        }),
      ),
    );
    app.get('/work', (_req, res) => {
      res.end('ran');
    });
    app.use((error: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(500).end(`caught: ${error.message}`);
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', resolve));
    try {
      const reply = await request((server.address() as AddressInfo).port, '/work');
      assert.equal(reply.status, 500);
      assert.equal(reply.body, 'caught: tracker broke');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('trackRequests at the drain budget', () => {
  /** An express app whose `/hang` never answers, behind `trackRequests(kg)`; `attached`: kg.attach(server) too. */
  async function hangingApp(
    attached: boolean,
  ): Promise<{ summary: Promise<unknown>; warnings: string[]; reply: Promise<string> }> {
    const warnings: string[] = [];
    const kg = createKubegrace({
      env: {},
      handleSignals: false,
      managementServer: false,
      exit: () => {},
      logger: { info: () => {}, warn: (message) => warnings.push(message), error: () => {} },
      propagation: { strategy: 'fixed', delayMs: 50 },
      drain: { timeoutMs: 300 },
      hookTimeoutMs: 2000,
    });
    const app = express();
    app.use(trackRequests(kg));
    app.get('/hang', () => {});
    const server = createServer(app);
    if (attached) kg.attach(server);
    // What an app without attach does in cleanup: close the server, which waits for its connections.
    kg.onCleanup(() => new Promise<void>((resolve) => server.close(() => resolve())), { name: 'server' });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    kg.ready();
    const reply = get((server.address() as AddressInfo).port, '/hang?key=secret').then(
      (r) => `answered ${String(r.status)}`,
      (error: NodeJS.ErrnoException) => error.code ?? error.message,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    return { summary: kg.shutdown('test'), warnings, reply };
  }

  it('on a server kubegrace does not drain, cuts what is still in flight, counts it forced and names it; cleanup runs', async () => {
    const { summary, warnings, reply } = await hangingApp(false);
    // Before: forced 0, no warning, and server.close() in cleanup waited for /hang until its limit.
    assert.deepEqual(
      await summary.then((s) => {
        const { outcome, forced, failures } = s as { outcome: string; forced: number; failures: unknown[] };
        return { outcome, forced, failures };
      }),
      { outcome: 'forced', forced: 1, failures: [] },
      warnings.join('\n'),
    );
    assert.ok(
      warnings.some((w) => /^requests: 1 request\(s\) still in flight .*: GET \/hang$/.test(w)),
      warnings.join('\n'),
    );
    assert.equal(await reply, 'ECONNRESET');
  });

  it('on an attached server, leaves the request to the drainer: counted once', async () => {
    const { summary, warnings, reply } = await hangingApp(true);
    const { outcome, forced } = (await summary) as { outcome: string; forced: number };
    assert.deepEqual({ outcome, forced }, { outcome: 'forced', forced: 1 }, warnings.join('\n'));
    assert.ok(!warnings.some((w) => /on a server kubegrace does not drain/.test(w)), warnings.join('\n'));
    assert.equal(await reply, 'ECONNRESET');
  });
});
