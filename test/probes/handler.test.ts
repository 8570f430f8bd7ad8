import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { KubegraceError } from '../../src/errors.js';
import { createLifecycle } from '../../src/lifecycle.js';
import type { Lifecycle, PhaseName } from '../../src/lifecycle.js';
import { createCheckSet } from '../../src/probes/checks.js';
import type { CheckSet } from '../../src/probes/checks.js';
import { createProbeRoutes } from '../../src/probes/handler.js';
import { createManagementServer } from '../../src/probes/server.js';
import type { ManagementServer } from '../../src/probes/server.js';
import { get, type Reply } from '../support/http.js';
import { createTiming } from '../../src/timing.js';

const request = (port: number, path: string, method = 'GET'): Promise<Reply> => get(port, path, { method });

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** A real lifecycle whose shutdown phases each wait for the test to let them go. */
function createHarness(options: {
  readinessUntil: 'shutdown' | 'drain';
  details?: boolean;
  checkTimeoutMs?: number;
}): {
  lifecycle: Lifecycle;
  readiness: CheckSet;
  liveness: CheckSet;
  /** Ends the current phase (or starts the shutdown) and resolves when `phase` has begun. */
  advanceTo(phase: PhaseName | 'stopped'): Promise<void>;
  server: ManagementServer;
  port(): number;
  finish(): Promise<void>;
} {
  const gates = new Map<PhaseName, ReturnType<typeof deferred>>(
    (['unready', 'propagate', 'drain', 'cleanup'] as const).map((p) => [p, deferred()]),
  );
  const lifecycle = createLifecycle({
    budgets: { unready: 20_000, propagate: 20_000, drain: 20_000, cleanup: 20_000 },
    timing: createTiming({ gracePeriodMs: 120_000, gracePeriodSource: 'option', safetyMarginMs: 0 }),
    fatalTimeoutMs: 20_000,
    exitCodes: { clean: 0, incomplete: 1, fatal: 70 },
    exit: () => {},
  });
  lifecycle.register({
    name: 'hold',
    unready: () => gates.get('unready')?.promise,
    propagate: () => gates.get('propagate')?.promise,
    drain: () => gates.get('drain')?.promise,
    cleanup: () => gates.get('cleanup')?.promise,
  });
  const readiness = createCheckSet();
  const liveness = createCheckSet();
  const routes = createProbeRoutes({
    lifecycle,
    readiness,
    liveness,
    checkTimeoutMs: options.checkTimeoutMs ?? 1000,
    details: options.details ?? false,
    readinessUntil: options.readinessUntil,
  });
  const server = createManagementServer({ port: 0, host: '127.0.0.1', routes });

  async function advanceTo(target: PhaseName | 'stopped'): Promise<void> {
    const reached = new Promise<void>((resolve) => {
      const offPhase = lifecycle.on('phase', ({ phase, status }) => {
        if (status === 'start' && phase === target) {
          offPhase();
          offState();
          resolve();
        }
      });
      const offState = lifecycle.on('state', ({ state }) => {
        if (state === target) {
          offPhase();
          offState();
          resolve();
        }
      });
    });
    const current = lifecycle.phase;
    if (lifecycle.state !== 'draining') void lifecycle.shutdown('SIGTERM');
    else if (current !== undefined) gates.get(current)?.resolve();
    await reached;
  }

  return {
    lifecycle,
    readiness,
    liveness,
    advanceTo,
    server,
    port: () => server.address?.port ?? 0,
    async finish() {
      for (const gate of gates.values()) gate.resolve();
      await server.close();
    },
  };
}

/** GET answers `status` with `body`; HEAD the same status and headers without a body; POST 405. */
async function expectRoute(
  port: number,
  path: string,
  status: number,
  body: unknown,
  label: string,
): Promise<void> {
  const get = await request(port, path);
  assert.equal(get.status, status, `${label}: GET ${path} status (body ${get.body})`);
  assert.deepEqual(JSON.parse(get.body), body, `${label}: GET ${path} body`);
  assert.equal(get.headers['content-type'], 'application/json', `${label}: content-type`);
  assert.equal(get.headers['cache-control'], 'no-store', `${label}: cache-control`);
  assert.equal(
    get.headers['content-length'],
    String(Buffer.byteLength(get.body)),
    `${label}: content-length`,
  );

  const head = await request(port, path, 'HEAD');
  assert.equal(head.status, status, `${label}: HEAD ${path} status`);
  assert.equal(head.body, '', `${label}: HEAD has no body`);
  assert.equal(head.headers['content-type'], 'application/json');
  assert.equal(head.headers['cache-control'], 'no-store');
  assert.equal(
    head.headers['content-length'],
    get.headers['content-length'],
    `${label}: HEAD content-length`,
  );

  const post = await request(port, path, 'POST');
  assert.equal(post.status, 405, `${label}: POST ${path}`);
  assert.equal(post.headers['allow'], 'GET, HEAD');
  assert.deepEqual(JSON.parse(post.body), { status: 'method_not_allowed' });
}

const LIVE = { status: 'live' };
const READY = { status: 'ready' };
const STARTED = { status: 'started' };
const notReady = (reason: string) => ({ status: 'not_ready', reason });

type Stage = 'starting' | 'ready' | PhaseName | 'stopped';

/** What each route answers at each stage, with healthy checks. */
function expected(readinessUntil: 'shutdown' | 'drain'): Record<Stage, [unknown, unknown, unknown]> {
  const keepsReady = readinessUntil === 'drain';
  const down = [503, notReady('draining')];
  return {
    starting: [
      [200, LIVE],
      [503, notReady('starting')],
      [503, { status: 'not_started', reason: 'starting' }],
    ],
    ready: [
      [200, LIVE],
      [200, READY],
      [200, STARTED],
    ],
    unready: [[200, LIVE], keepsReady ? [200, READY] : down, [200, STARTED]],
    propagate: [[200, LIVE], keepsReady ? [200, READY] : down, [200, STARTED]],
    drain: [[200, LIVE], down, [200, STARTED]],
    cleanup: [[200, LIVE], down, [200, STARTED]],
    exit: [[200, LIVE], down, [200, STARTED]],
    stopped: [
      [200, LIVE],
      [503, notReady('stopped')],
      [200, STARTED],
    ],
  };
}

for (const readinessUntil of ['shutdown', 'drain'] as const) {
  describe(`probe routes through the lifecycle, readinessUntil '${readinessUntil}'`, () => {
    it('answers each route with GET, HEAD and POST at every stage', async () => {
      const h = createHarness({ readinessUntil });
      let readinessRuns = 0;
      let livenessRuns = 0;
      h.readiness.add('db', () => {
        readinessRuns++;
        return true;
      });
      h.liveness.add('loop', () => {
        livenessRuns++;
        return true;
      });
      await h.server.listen();
      const table = expected(readinessUntil);
      try {
        const check = async (stage: Stage) => {
          const [livez, readyz, startupz] = table[stage] as [
            [number, unknown],
            [number, unknown],
            [number, unknown],
          ];
          await expectRoute(h.port(), '/livez', livez[0], livez[1], stage);
          await expectRoute(h.port(), '/readyz', readyz[0], readyz[1], stage);
          await expectRoute(h.port(), '/startupz', startupz[0], startupz[1], stage);
        };
        await check('starting');
        assert.equal(readinessRuns, 0, 'readiness checks do not run while starting');
        h.lifecycle.ready();
        await check('ready');
        assert.ok(readinessRuns > 0, 'readiness checks ran while ready');
        for (const phase of ['unready', 'propagate', 'drain', 'cleanup'] as const) {
          await h.advanceTo(phase);
          assert.equal(h.lifecycle.phase, phase);
          const runsBefore: number = readinessRuns;
          await check(phase);
          const keepsReady = readinessUntil === 'drain' && (phase === 'unready' || phase === 'propagate');
          assert.equal(
            readinessRuns > runsBefore,
            keepsReady,
            `${phase}: readiness checks ran only while still serving`,
          );
        }
        const livenessBefore = livenessRuns;
        await h.advanceTo('stopped');
        assert.equal(h.lifecycle.state, 'stopped');
        await check('stopped');
        assert.ok(livenessRuns > livenessBefore, 'liveness checks keep running to the end');
      } finally {
        await h.finish();
      }
    });
  });
}

describe('probe routes: checks', () => {
  let h: ReturnType<typeof createHarness>;
  before(async () => {
    h = createHarness({ readinessUntil: 'shutdown', checkTimeoutMs: 150 });
    await h.server.listen();
    h.lifecycle.ready();
  });
  after(() => h.finish());

  it('fails readiness only when a readiness check fails', async () => {
    const remove = h.readiness.add('db', () => false);
    try {
      await expectRoute(h.port(), '/readyz', 503, notReady('check_failed'), 'failing readiness');
      await expectRoute(h.port(), '/livez', 200, LIVE, 'failing readiness');
      await expectRoute(h.port(), '/startupz', 200, STARTED, 'failing readiness');
    } finally {
      remove();
    }
    await expectRoute(h.port(), '/readyz', 200, READY, 'check removed');
  });

  it('fails liveness when a liveness check throws or rejects, not readiness', async () => {
    const removeThrow = h.liveness.add('throws', () => {
      throw new Error('wedged');
    });
    await expectRoute(
      h.port(),
      '/livez',
      503,
      { status: 'not_live', reason: 'check_failed' },
      'throwing liveness',
    );
    await expectRoute(h.port(), '/readyz', 200, READY, 'throwing liveness');
    removeThrow();
    const removeReject = h.liveness.add('rejects', async () => Promise.reject(new Error('gone')));
    await expectRoute(
      h.port(),
      '/livez',
      503,
      { status: 'not_live', reason: 'check_failed' },
      'rejecting liveness',
    );
    removeReject();
    await expectRoute(h.port(), '/livez', 200, LIVE, 'recovered');
  });

  it('answers 503 for a hanging check within checkTimeoutMs plus a little', async () => {
    for (const [set, path] of [
      [h.readiness, '/readyz'],
      [h.liveness, '/livez'],
    ] as const) {
      let aborted = false;
      const remove = set.add('hangs', (signal) => {
        signal.addEventListener('abort', () => (aborted = true));
        return new Promise(() => {});
      });
      try {
        const started = performance.now();
        const reply = await request(h.port(), path);
        const elapsed = performance.now() - started;
        assert.equal(reply.status, 503, path);
        assert.equal((JSON.parse(reply.body) as { reason: string }).reason, 'check_failed');
        assert.ok(elapsed >= 140 && elapsed < 150 + 250, `${path} answered after ${Math.round(elapsed)} ms`);
        assert.equal(aborted, true, 'the check was told to stop');
      } finally {
        remove();
      }
    }
  });

  it('runs a check once for concurrent probes', async () => {
    let runs = 0;
    const remove = h.readiness.add('slow', async () => {
      runs++;
      await sleep(80);
      return true;
    });
    try {
      const replies = await Promise.all(Array.from({ length: 5 }, () => request(h.port(), '/readyz')));
      assert.deepEqual(
        replies.map((r) => r.status),
        [200, 200, 200, 200, 200],
      );
      assert.equal(runs, 1);
    } finally {
      remove();
    }
  });
});

describe('probe routes: details', () => {
  it('lists each check (name, ok, durationMs, error) when on, never a stack', async () => {
    const h = createHarness({ readinessUntil: 'shutdown', details: true });
    h.readiness.add('db', () => {
      throw new Error('db down\n    at connect (/app/src/db.ts:10:5)');
    });
    h.readiness.add('cache', () => true);
    h.liveness.add('loop', () => true);
    await h.server.listen();
    h.lifecycle.ready();
    try {
      const reply = await request(h.port(), '/readyz');
      assert.equal(reply.status, 503);
      const body = JSON.parse(reply.body) as {
        status: string;
        reason: string;
        checks: { durationMs: number }[];
      };
      assert.equal(body.status, 'not_ready');
      assert.equal(body.reason, 'check_failed');
      assert.deepEqual(
        body.checks.map((c) => ({ ...c, durationMs: typeof c.durationMs })),
        [
          { name: 'db', ok: false, durationMs: 'number', error: 'db down' },
          { name: 'cache', ok: true, durationMs: 'number' },
        ],
      );
      assert.ok(!reply.body.includes('db.ts'), 'no stack in the body');

      const live = await request(h.port(), '/livez');
      assert.equal(live.status, 200);
      assert.deepEqual(
        (JSON.parse(live.body) as { checks: { name: string; ok: boolean }[] }).checks.map((c) => [
          c.name,
          c.ok,
        ]),
        [['loop', true]],
      );

      // Once draining, readiness answers without running checks, so there is nothing to list.
      await h.advanceTo('unready');
      await expectRoute(h.port(), '/readyz', 503, notReady('draining'), 'details while draining');
    } finally {
      await h.finish();
    }
  });

  it('keeps bodies to status and reason when off', async () => {
    const h = createHarness({ readinessUntil: 'shutdown', details: false });
    h.readiness.add('db', () => {
      throw new Error('db down');
    });
    h.liveness.add('loop', () => true);
    await h.server.listen();
    h.lifecycle.ready();
    try {
      const ready = await request(h.port(), '/readyz');
      assert.equal(ready.body, '{"status":"not_ready","reason":"check_failed"}');
      const live = await request(h.port(), '/livez');
      assert.equal(live.body, '{"status":"live"}');
    } finally {
      await h.finish();
    }
  });
});

describe('probe routes: shutdown timing', () => {
  it('turns /readyz 503 within 50 ms of the shutdown without running checks', async () => {
    const h = createHarness({ readinessUntil: 'shutdown', checkTimeoutMs: 2000 });
    let calls = 0;
    h.readiness.add('hangs', () => {
      calls++;
      return new Promise(() => {});
    });
    await h.server.listen();
    h.lifecycle.ready();
    // Warm the connection path so the measurement is of the probe, not of the first connect.
    await request(h.port(), '/startupz');
    try {
      const started = performance.now();
      void h.lifecycle.shutdown('SIGTERM');
      const reply = await request(h.port(), '/readyz');
      const elapsed = performance.now() - started;
      assert.equal(reply.status, 503);
      assert.deepEqual(JSON.parse(reply.body), notReady('draining'));
      // How soon is a figure (printed), not a check: that no check ran is what makes it immediate.
      console.log(`# /readyz 503 answered ${elapsed.toFixed(1)} ms after the shutdown began`);
      assert.equal(calls, 0, 'no check ran');
    } finally {
      await h.finish();
    }
  });

  it('answers 503 to a readiness probe whose checks were running when the shutdown began', async () => {
    const h = createHarness({ readinessUntil: 'shutdown' });
    h.readiness.add('slow', () => sleep(150, true));
    await h.server.listen();
    h.lifecycle.ready();
    try {
      const pending = request(h.port(), '/readyz');
      await sleep(50);
      void h.lifecycle.shutdown('SIGTERM');
      const reply = await pending;
      assert.equal(reply.status, 503);
      assert.deepEqual(JSON.parse(reply.body), notReady('draining'));
    } finally {
      await h.finish();
    }
  });

  it('after fatal: /livez and /readyz 503 (fatal), /startupz stays 200', async () => {
    const h = createHarness({ readinessUntil: 'drain' });
    let livenessRuns = 0;
    h.liveness.add('loop', () => {
      livenessRuns++;
      return true;
    });
    await h.server.listen();
    h.lifecycle.ready();
    try {
      void h.lifecycle.fatal(new Error('boom'));
      assert.equal(h.lifecycle.live, false);
      await expectRoute(h.port(), '/livez', 503, { status: 'not_live', reason: 'fatal' }, 'fatal');
      await expectRoute(h.port(), '/readyz', 503, notReady('fatal'), 'fatal');
      await expectRoute(h.port(), '/startupz', 200, STARTED, 'fatal');
      assert.equal(livenessRuns, 0, 'no liveness check can undo a fatal error');
    } finally {
      await h.finish();
    }
  });

  it('/startupz stays 503 when the service shuts down before it was ever ready', async () => {
    const h = createHarness({ readinessUntil: 'shutdown' });
    await h.server.listen();
    try {
      await h.advanceTo('unready');
      await expectRoute(
        h.port(),
        '/startupz',
        503,
        { status: 'not_started', reason: 'draining' },
        'never ready',
      );
    } finally {
      await h.finish();
    }
  });
});

describe('createProbeRoutes options', () => {
  it('rejects a non-positive checkTimeoutMs and an unknown readinessUntil', () => {
    const base = {
      lifecycle: { state: 'starting', phase: undefined, live: true, started: false } as const,
      readiness: createCheckSet(),
      liveness: createCheckSet(),
      details: false,
    };
    const invalid = (error: unknown) =>
      error instanceof KubegraceError && error.code === 'ERR_KUBEGRACE_INVALID_OPTION';
    assert.throws(
      () => createProbeRoutes({ ...base, checkTimeoutMs: 0, readinessUntil: 'shutdown' }),
      invalid,
    );
    assert.throws(
      () => createProbeRoutes({ ...base, checkTimeoutMs: 100, readinessUntil: 'never' as 'drain' }),
      invalid,
    );
    assert.deepEqual(
      [...createProbeRoutes({ ...base, checkTimeoutMs: 100, readinessUntil: 'drain' }).keys()],
      ['/livez', '/readyz', '/startupz'],
    );
  });
});
