import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { WebSocketServer } from 'ws';
import { createKubegrace, KubegraceError, type Logger } from '../src/index.js';
import { metrics } from '../src/metrics/index.js';

function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, info() {}, error() {}, warn: (message) => void warnings.push(message) };
}

const quiet = { handleSignals: false, managementServer: false, exit: () => {} } as const;

describe('createKubegrace', () => {
  it('warns once about KUBEGRACE_* variables it does not know, naming them', () => {
    const logger = recordingLogger();
    createKubegrace({
      ...quiet,
      logger,
      env: {
        KUBEGRACE_GRACE_PERIOD_SECOND: '60',
        KUBEGRACE_DRAIN_TIMEOUT_MS: '100',
        KUBEGRACE_REGISTRY_URL: 'x',
      },
    });
    assert.equal(logger.warnings.length, 1);
    assert.match(
      logger.warnings[0] ?? '',
      /ignoring unknown environment variable\(s\) KUBEGRACE_GRACE_PERIOD_SECOND \(did you mean KUBEGRACE_GRACE_PERIOD_SECONDS\?\):/,
    );
    const clean = recordingLogger();
    createKubegrace({ ...quiet, logger: clean, env: { KUBEGRACE_DRAIN_TIMEOUT_MS: '100' } });
    assert.deepEqual(clean.warnings, []);
  });

  it('reports where the grace period came from', () => {
    assert.equal(createKubegrace({ ...quiet, logger: false, env: {} }).timing.gracePeriodSource, 'default');
    assert.equal(
      createKubegrace({ ...quiet, logger: false, env: { KUBEGRACE_GRACE_PERIOD_SECONDS: '40' } }).timing
        .gracePeriodSource,
      'env',
    );
    assert.equal(
      createKubegrace({ ...quiet, logger: false, env: {}, gracePeriodSeconds: 40 }).timing.gracePeriodSource,
      'option',
    );
  });

  it('rejects bad hooks, servers and exit functions with errors that name them', () => {
    const kg = createKubegrace({ ...quiet, logger: false, env: {} });
    assert.throws(
      () => kg.onCleanup('close' as never),
      /^KubegraceError: onCleanup hook must be a function, received "close"$/,
    );
    assert.throws(
      () => kg.beforeShutdown(() => {}, { timeoutMs: -1 }),
      /beforeShutdown timeoutMs must be a non-negative integer \(ms\), received -1/,
    );
    assert.throws(
      () => kg.attach({} as never),
      (e: unknown) => e instanceof KubegraceError && e.code === 'ERR_KUBEGRACE_UNSUPPORTED_SERVER',
    );
    assert.throws(
      () => kg.addManagementRoute('/x', () => {}),
      /the management server is disabled \(managementServer: false\)/,
    );
    assert.throws(
      () => createKubegrace({ ...quiet, logger: false, env: {}, exit: 1 as never }),
      /exit must be a function \(code: number\) => void, received 1$/,
    );
  });

  it('warns in a pod when signals leave out SIGTERM (the kubelet would end the process at once)', async () => {
    const warnings: string[] = [];
    const logger = { info: () => {}, warn: (m: string) => warnings.push(m), error: () => {} };
    const inPod = { KUBERNETES_SERVICE_HOST: '10.96.0.1' };
    // Signals are handled from start(); creating and destroying installs nothing.
    const handled = { ...quiet, handleSignals: true };
    await createKubegrace({ ...handled, logger, env: { ...inPod, KUBEGRACE_SIGNALS: 'SIGINT' } }).destroy();
    assert.equal(
      warnings.filter((w) => /^signals \(SIGINT\) leave out SIGTERM, which the kubelet/.test(w)).length,
      1,
    );
    warnings.length = 0;
    await createKubegrace({
      ...handled,
      logger,
      env: { ...inPod, KUBEGRACE_SIGNALS: 'SIGINT,SIGTERM' },
    }).destroy();
    await createKubegrace({ ...handled, logger, env: { KUBEGRACE_SIGNALS: 'SIGINT' } }).destroy();
    await createKubegrace({
      ...quiet,
      logger,
      env: inPod,
      handleSignals: false,
      signals: ['SIGINT'],
    }).destroy();
    assert.deepEqual(
      warnings.filter((w) => w.includes('SIGTERM')),
      [],
      'with SIGTERM, outside a pod, or signals not handled',
    );
  });

  it("a signal the app forwards itself is reckoned as kubegrace's own handler does (the preStop sleep)", async () => {
    const kg = createKubegrace({
      ...quiet,
      logger: false,
      env: {},
      gracePeriodSeconds: 30,
      preStopSleepSeconds: 3,
      propagation: { strategy: 'fixed', delayMs: 0 },
    });
    const before = Date.now();
    const done = kg.shutdown({ kind: 'signal', signal: 'SIGTERM' });
    const killAt = kg.timing.killAt ?? Number.NaN;
    await done;
    // The kubelet's clock started 3 s before the signal: it kills 27 s after it, not 30.
    assert.ok(
      killAt >= before + 27_000 - 50 && killAt <= Date.now() + 27_000,
      `kill ${killAt - before} ms after`,
    );
    await kg.destroy();
  });

  it('throws at start-up when the phases do not fit the grace period', () => {
    assert.throws(
      () => createKubegrace({ ...quiet, logger: false, env: { KUBEGRACE_GRACE_PERIOD_SECONDS: '10' } }),
      (e: unknown) => e instanceof KubegraceError && e.code === 'ERR_KUBEGRACE_BUDGET_EXCEEDS_GRACE',
    );
  });

  it('methods work detached and the summary reaches the exit function', async () => {
    const codes: number[] = [];
    const { ready, shutdown, lease, onCleanup } = createKubegrace({
      ...quiet,
      logger: false,
      env: {},
      exit: (code) => codes.push(code),
      propagation: { maxMs: 50, quietPeriodMs: 10 },
    });
    ready();
    const held = lease('job');
    let closed = false;
    onCleanup(() => void (closed = true));
    setTimeout(() => held.release(), 100);
    const summary = await shutdown('manual');
    assert.equal(summary.outcome, 'clean');
    assert.equal(closed, true);
    assert.deepEqual(codes, [0]);
  });

  it('an observer that throws costs no request: answered, counted by the other observers, one warning', async () => {
    const { get } = await import('./support/http.js');
    const warnings: string[] = [];
    const logger: Logger = { info: () => undefined, warn: (m) => warnings.push(m), error: () => undefined };
    let seen = 0;
    const kg = createKubegrace({
      handleSignals: false,
      logger,
      exit: () => undefined,
      managementServer: false,
      observer: {
        requestStarted() {
          throw new Error('observer bug');
        },
      },
    });
    kg.addObserver({ requestStarted: () => void seen++ });
    const server = createServer((_req, res) => res.end('ok'));
    kg.attach(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as { port: number }).port;
      for (let i = 0; i < 3; i++) {
        const reply = await get(port, '/');
        assert.equal(reply.status, 200);
        assert.equal(reply.body, 'ok');
      }
      assert.equal(seen, 3, 'the other observer saw every request');
      assert.equal(warnings.filter((w) => w.includes('observer bug')).length, 1);
    } finally {
      await kg.destroy();
      server.close();
    }
  });

  it('refuses to install anything again after destroy(), naming the call', async () => {
    const kg = createKubegrace({ managementServer: false, handleSignals: false });
    kg.use(metrics({ registry: new Registry() }));
    await kg.destroy();
    const destroyed = (call: string) => (error: unknown) =>
      error instanceof KubegraceError &&
      error.code === 'ERR_KUBEGRACE_INVALID_STATE' &&
      error.message.startsWith(`${call}: this kubegrace instance was destroyed`);
    assert.throws(() => kg.use(metrics({ registry: new Registry() })), destroyed('kg.use()'));
    assert.throws(() => kg.attach(createServer()), destroyed('attach(server)'));
    assert.throws(
      () => kg.attachWebSocketServer(new WebSocketServer({ noServer: true })),
      destroyed('attachWebSocketServer(wss)'),
    );
    await assert.rejects(kg.start(), destroyed('start()'));
  });
});
