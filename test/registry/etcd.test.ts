/**
 * The etcd adapter against a real etcd (Debian `etcd-server`): the key is there while ready, gone at
 * `unready`, and never seen again by a watcher; a registry that is down, hung or refusing leaves the
 * shutdown on budget with a `failed` outcome and exit code 1.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Etcd3, type Watcher } from 'etcd3';
import {
  createKubegrace,
  type Kubegrace,
  type KubegraceOptions,
  type ShutdownSummary,
} from '../../src/index.js';
import { createEtcdRegistry, type EtcdRegistryOptions } from '../../src/registry/etcd/index.js';
import {
  createRegistryParticipant,
  type DeregistrationOutcome,
  type RegistryParticipant,
  type RegistryParticipantOptions,
} from '../../src/registry/participant.js';
import { etcdSkipReason, startEtcd, startTcpProxy, type EtcdServer, type TcpProxy } from '../support/etcd.js';

const skip = etcdSkipReason();

/** Budgets small enough for tests, with room for a loaded 2-core machine: 1.5 + 0.1 + 0.3 + 1.5 + 1 s. */
const BUDGET: KubegraceOptions = {
  env: {},
  gracePeriodSeconds: 10,
  safetyMarginMs: 1000,
  unreadyTimeoutMs: 1500,
  propagation: { strategy: 'fixed', delayMs: 100 },
  drain: { timeoutMs: 300 },
  cleanupTimeoutMs: 1500,
};
const BUDGET_SUM_MS = 1500 + 100 + 300 + 1500;

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  // Bounded: a call to a stopped etcd may never settle, and a cleanup must not hold the run.
  for (const cleanup of cleanups.reverse()) {
    await Promise.race([
      Promise.resolve()
        .then(cleanup)
        .catch(() => undefined),
      delay(2000, undefined, { ref: false }),
    ]);
  }
});

async function etcd(): Promise<EtcdServer> {
  const server = await startEtcd();
  cleanups.push(() => server.stop());
  return server;
}

function client(url: string): Etcd3 {
  const c = new Etcd3({ hosts: url });
  cleanups.push(() => c.close());
  return c;
}

interface WatchEvent {
  readonly type: 'put' | 'delete';
  readonly key: string;
  readonly at: number;
}

async function watchPrefix(c: Etcd3, prefix: string): Promise<{ events: WatchEvent[]; watcher: Watcher }> {
  const events: WatchEvent[] = [];
  const watcher = await c.watch().prefix(prefix).create();
  watcher.on('put', (kv) => events.push({ type: 'put', key: kv.key.toString(), at: Date.now() }));
  watcher.on('delete', (kv) => events.push({ type: 'delete', key: kv.key.toString(), at: Date.now() }));
  // Cancel before the client closes: etcd3's watch manager otherwise retries the stream forever,
  // on a closed client, and holds the test process open.
  cleanups.push(() => watcher.cancel());
  return { events, watcher };
}

async function until(
  predicate: () => boolean | Promise<boolean>,
  limitMs: number,
  what: string,
): Promise<void> {
  const start = Date.now();
  while (!(await predicate())) {
    if (Date.now() - start > limitMs) throw new Error(`timed out after ${limitMs} ms waiting for ${what}`);
    await delay(20);
  }
}

interface Setup {
  readonly kg: Kubegrace;
  readonly participant: RegistryParticipant;
  readonly key: string;
  readonly outcomes: [string, DeregistrationOutcome, number][];
  readonly exits: number[];
  readonly warnings: string[];
}

let instances = 0;

function setup(
  endpoint: string,
  registryOptions: Partial<EtcdRegistryOptions> = {},
  participantOptions: Partial<RegistryParticipantOptions> = {},
  kgOptions: Partial<KubegraceOptions> = {},
): Setup {
  const exits: number[] = [];
  const outcomes: [string, DeregistrationOutcome, number][] = [];
  const warnings: string[] = [];
  const kg = createKubegrace({
    ...BUDGET,
    ...kgOptions,
    exit: (code) => exits.push(code),
    handleSignals: false,
    logger: false,
    managementServer: false,
  });
  kg.on('warning', ({ message }) => warnings.push(message));
  const registry = createEtcdRegistry({
    endpoints: [endpoint],
    serviceName: 'checkout',
    instanceId: `checkout-${++instances}`,
    address: '10.0.0.7',
    port: 8080,
    ttlSeconds: 2,
    env: {},
    ...registryOptions,
  });
  const participant = createRegistryParticipant(registry, {
    env: {},
    callTimeoutMs: 400,
    retryBackoffMs: 50,
    onDeregistration: (...args) => outcomes.push(args),
    onWarning: (message) => warnings.push(message),
    ...participantOptions,
  });
  kg.addParticipant(participant);
  cleanups.push(() => participant.close());
  cleanups.push(() => kg.destroy());
  return { kg, participant, key: registry.key, outcomes, exits, warnings };
}

async function exists(c: Etcd3, key: string): Promise<boolean> {
  return (await c.get(key).string()) !== null;
}

function assertFailedOnBudget(summary: ShutdownSummary, s: Setup, outcome: DeregistrationOutcome): void {
  assert.equal(s.outcomes.length, 1, 'onDeregistration is called exactly once');
  assert.equal(s.outcomes[0]?.[0], 'etcd');
  assert.equal(s.outcomes[0]?.[1], outcome, `outcome ${s.outcomes[0]?.[1]}, expected ${outcome}`);
  assert.equal(summary.outcome, 'failed');
  assert.equal(summary.exitCode, 1);
  assert.deepEqual(s.exits, [1]);
  const failure = summary.failures.find((f) => f.name === 'registry:etcd');
  assert.ok(failure, 'the registry participant is listed among the failures');
  assert.equal(failure.phase, 'unready');
  const unready = summary.phases.unready ?? Infinity;
  assert.ok(unready <= 1500 + 250, `unready took ${unready} ms against a 1500 ms budget`);
  assert.ok(summary.durationMs < BUDGET_SUM_MS + 500, `shutdown took ${summary.durationMs} ms`);
  assert.ok(Date.now() < summary.deadlineAt, 'finished before the deadline');
}

describe('etcd registry against a real etcd', { skip, concurrency: false }, () => {
  it('registers while ready, keeps the lease alive, and the key is gone before the propagation wait ends, for good', async () => {
    const server = await etcd();
    const c = client(server.url);
    const { events } = await watchPrefix(c, '/services/checkout/');
    const s = setup(server.url);
    s.kg.ready();
    await until(() => events.some((e) => e.type === 'put' && e.key === s.key), 5000, 'the registration');
    assert.deepEqual(JSON.parse((await c.get(s.key).string()) ?? 'null'), {
      name: 'checkout',
      id: s.key.split('/').pop(),
      address: '10.0.0.7',
      port: 8080,
      metadata: {},
    });
    assert.equal(s.participant.registered, true);
    // Past the 2 s TTL: only the keep-alive can have kept it.
    await delay(2600);
    assert.equal(await exists(c, s.key), true, 'the key outlives its TTL while ready');

    const summary = await s.kg.shutdown('SIGTERM');
    const deleted = events.find((e) => e.type === 'delete' && e.key === s.key);
    assert.ok(deleted, 'the watcher saw the delete');
    const latency = deleted.at - summary.startedAt;
    process.stderr.write(`# etcd key gone ${latency} ms after the shutdown start\n`);
    // The figure is printed; what must hold is that the key went before traffic moved on: within
    // the unready phase and the propagation wait (100 ms) after it, plus the watcher's own delivery.
    const propagationEnd = (summary.phases.unready ?? 0) + (summary.phases.propagate ?? 0);
    assert.ok(latency <= propagationEnd + 100, `key gone ${latency} ms after the shutdown start`);
    assert.equal(summary.outcome, 'clean');
    assert.deepEqual(s.exits, [0]);
    assert.equal(s.outcomes.length, 1);
    assert.equal(s.outcomes[0]?.[1], 'success');
    assert.ok((s.outcomes[0]?.[2] ?? 1) < 0.1);

    // Longer than a keep-alive period and a lost-lease check: nothing may bring the key back.
    await delay(1500);
    const afterDelete = events.filter((e) => e.key === s.key && e.at > deleted.at);
    assert.deepEqual(afterDelete, [], 'no event for the key after its delete');
    assert.equal(await exists(c, s.key), false);
    assert.equal(s.participant.registered, false);
  });

  it('registers again when the lease is lost (revoked behind its back)', async () => {
    const server = await etcd();
    const c = client(server.url);
    const { events } = await watchPrefix(c, '/services/checkout/');
    const s = setup(server.url);
    s.kg.ready();
    await until(() => events.some((e) => e.type === 'put' && e.key === s.key), 5000, 'the registration');
    const [kv] = (await c.get(s.key).exec()).kvs;
    assert.ok(kv);
    await c.leaseClient.leaseRevoke({ ID: kv.lease });
    await until(
      () => events.filter((e) => e.type === 'put' && e.key === s.key).length >= 2,
      5000,
      'the re-registration',
    );
    assert.equal(await exists(c, s.key), true);
    await s.kg.shutdown('SIGTERM');
    assert.equal(await exists(c, s.key), false);
    assert.equal(s.outcomes[0]?.[1], 'success');
  });

  it('deregister: afterDrain keeps the key through the drain and removes it in cleanup', async () => {
    const server = await etcd();
    const c = client(server.url);
    const s = setup(server.url, {}, { deregister: 'afterDrain' });
    const seenDuringDrain: boolean[] = [];
    s.kg.onDrain(async () => {
      seenDuringDrain.push(await exists(c, s.key));
    });
    s.kg.ready();
    await until(() => exists(c, s.key), 5000, 'the registration');
    const summary = await s.kg.shutdown('SIGTERM');
    assert.deepEqual(seenDuringDrain, [true]);
    assert.equal(await exists(c, s.key), false);
    assert.equal(summary.outcome, 'clean');
    assert.equal(s.outcomes[0]?.[1], 'success');
  });

  it('register: false only deregisters: it deletes a key someone else wrote', async () => {
    const server = await etcd();
    const c = client(server.url);
    const s = setup(server.url, {}, { register: false });
    await c.put(s.key).value('{"written":"elsewhere"}');
    s.kg.ready();
    await delay(200);
    assert.equal(await c.get(s.key).string(), '{"written":"elsewhere"}', 'nothing registered over it');
    const summary = await s.kg.shutdown('SIGTERM');
    assert.equal(await exists(c, s.key), false);
    assert.equal(summary.outcome, 'clean');
  });

  it('etcd down (stopped after registering): failed outcome, exit 1, on budget', async () => {
    const server = await etcd();
    const c = client(server.url);
    const s = setup(server.url);
    s.kg.ready();
    await until(() => exists(c, s.key), 5000, 'the registration');
    await server.stop();
    const summary = await s.kg.shutdown('SIGTERM');
    assertFailedOnBudget(summary, s, 'failed');
  });

  describe('through a proxy', () => {
    let proxy: TcpProxy;
    let server: EtcdServer;

    async function proxied(): Promise<{ s: Setup; c: Etcd3 }> {
      server = await etcd();
      const started = await startTcpProxy(server.port);
      proxy = started;
      cleanups.push(() => started.close());
      const c = client(server.url);
      const s = setup(proxy.url);
      s.kg.ready();
      await until(() => exists(c, s.key), 5000, 'the registration');
      return { s, c };
    }

    it('etcd hung (answers nothing): timeout outcome, exit 1, on budget; the key still expires by its TTL', async () => {
      const { s, c } = await proxied();
      proxy.setMode('stall');
      const summary = await s.kg.shutdown('SIGTERM');
      assertFailedOnBudget(summary, s, 'timeout');
      // Keep-alives stopped with the shutdown, so the lease runs out (2 s TTL) without kubegrace.
      await until(async () => !(await exists(c, s.key)), 4000, 'the key to expire');
    });

    it('etcd refusing (every connection reset): failed outcome, exit 1, on budget', async () => {
      const { s } = await proxied();
      proxy.setMode('reset');
      const summary = await s.kg.shutdown('SIGTERM');
      assertFailedOnBudget(summary, s, 'failed');
      assert.ok((s.outcomes[0]?.[2] ?? Infinity) < 1.5, 'a refusing registry fails fast, inside the budget');
    });
  });

  describe('a real child process on a real SIGTERM', () => {
    let script: string | undefined;
    /** The child's program, written on first use (a skipped suite writes nothing). */
    function childScript(): string {
      if (script) return script;
      const dir = mkdtempSync(join(tmpdir(), 'kubegrace-etcd-child-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      const src = (path: string): string =>
        pathToFileURL(fileURLToPath(new URL(`../../src/${path}`, import.meta.url))).href;
      script = join(dir, 'service.mts');
      writeFileSync(
        script,
        `
import { createServer } from 'node:http';
import { createKubegrace } from ${JSON.stringify(src('index.js'))};
import { registry } from ${JSON.stringify(src('registry/index.js'))};
import { createEtcdRegistry } from ${JSON.stringify(src('registry/etcd/index.js'))};
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
// Every warning, the lifecycle's and the registry's, comes through the instance's logger.
const logger = { info() {}, warn: (message) => out({ event: 'warning', message }), error() {} };
const kg = createKubegrace({ ...${JSON.stringify(BUDGET)}, logger, managementServer: false });
const etcd = kg.use(registry(
  createEtcdRegistry({ endpoints: [process.env.ETCD_URL], serviceName: 'checkout', instanceId: 'child-1',
    address: '10.0.0.9', port: 8080, ttlSeconds: 2, env: {} }),
  { env: {}, callTimeoutMs: 400, retryBackoffMs: 50 },
));
// The deregistration's result, as metrics record it.
const OUTCOME = { ok: 'success', error: 'failed', timeout: 'timeout' };
kg.on('participant', (r) => {
  if (r.name === 'registry:etcd' && r.phase === 'unready') {
    out({ event: 'deregistration', outcome: OUTCOME[r.status], seconds: r.durationMs / 1000 });
  }
});
// A real service's server: it is what keeps the process alive (kubegrace's own timers are unref'd).
const server = createServer((req, res) => res.end('ok'));
kg.attach(server);
server.listen(0, '127.0.0.1');
kg.on('shutdown', (s) =>
  out({ event: 'summary', outcome: s.outcome, exitCode: s.exitCode, startedAt: s.startedAt, phases: s.phases }),
);
await kg.start();
kg.ready();
out({ event: 'started' });
const poll = setInterval(() => {
  if (etcd.registered) {
    out({ event: 'registered' });
    clearInterval(poll);
  }
}, 50);
poll.unref();
`,
      );
      return script;
    }

    async function child(url: string): Promise<{
      lines: Record<string, unknown>[];
      exit: Promise<{ code: number | null; at: number }>;
      kill: (signal: NodeJS.Signals) => void;
    }> {
      const proc = spawn(process.execPath, ['--import', 'tsx', childScript()], {
        env: { ...process.env, ETCD_URL: url },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      cleanups.push(() => void proc.kill('SIGKILL'));
      const lines: Record<string, unknown>[] = [];
      createInterface({ input: proc.stdout }).on('line', (line) =>
        lines.push(JSON.parse(line) as Record<string, unknown>),
      );
      const exit = once(proc, 'exit').then(([code]) => ({ code: code as number | null, at: Date.now() }));
      return { lines, exit, kill: (signal) => proc.kill(signal) };
    }

    /**
     * Wait for the child's registration. Its start-up (tsx compiling the sources on a cold cache, on
     * a loaded machine) can take many seconds, so the wait is long and a failure says what was seen.
     */
    async function registered(
      proc: Awaited<ReturnType<typeof child>>,
      c: Etcd3,
      events: WatchEvent[],
      seen: () => boolean,
    ): Promise<void> {
      try {
        let exited: { code: number | null } | undefined;
        void proc.exit.then((e) => (exited = e));
        await until(() => seen() || exited !== undefined, 45_000, 'the child to register');
        if (exited) throw new Error(`the child exited with code ${exited.code} before registering`);
      } catch (error) {
        const stored = await c
          .getAll()
          .prefix('/services/')
          .keys()
          .catch((e: unknown) => [`get failed: ${String(e)}`]);
        throw new Error(
          `${(error as Error).message}; child said ${JSON.stringify(proc.lines)}; ` +
            `watcher saw ${JSON.stringify(events)}; etcd holds ${JSON.stringify(stored)}`,
          { cause: error },
        );
      }
    }

    it('SIGTERM: the key is gone before the propagation wait ends and the process exits 0', async () => {
      const server = await etcd();
      const c = client(server.url);
      const { events } = await watchPrefix(c, '/services/checkout/');
      const proc = await child(server.url);
      await registered(proc, c, events, () =>
        events.some((e) => e.type === 'put' && e.key === '/services/checkout/child-1'),
      );
      const sentAt = Date.now();
      proc.kill('SIGTERM');
      const { code, at } = await proc.exit;
      const deleted = events.find((e) => e.type === 'delete');
      assert.ok(deleted, 'the watcher saw the delete');
      const summary = proc.lines.find((l) => l.event === 'summary');
      assert.ok(summary);
      const fromStart = deleted.at - (summary.startedAt as number);
      process.stderr.write(
        `# child: key gone ${deleted.at - sentAt} ms after SIGTERM was sent, ${fromStart} ms after the shutdown start\n`,
      );
      // Before traffic moved on: within the unready phase and the propagation wait after it, plus the
      // watcher's own delivery.
      const phases = summary.phases as Record<string, number>;
      const propagationEnd = (phases.unready ?? 0) + (phases.propagate ?? 0);
      assert.ok(fromStart <= propagationEnd + 100, `key gone ${fromStart} ms after the shutdown start`);
      assert.equal(code, 0);
      assert.ok(at - sentAt < BUDGET_SUM_MS + 1000);
      await delay(1000);
      assert.equal(events.filter((e) => e.at > deleted.at).length, 0, 'never seen again');
    });

    it('SIGTERM with etcd down: exits 1, inside the budget', async () => {
      const server = await etcd();
      const c = client(server.url);
      const { events, watcher } = await watchPrefix(c, '/services/checkout/');
      const proc = await child(server.url);
      await registered(proc, c, events, () => events.some((e) => e.type === 'put'));
      await watcher.cancel(); // while etcd still answers (see watchPrefix)
      await server.stop();
      const sentAt = Date.now();
      proc.kill('SIGTERM');
      const { code, at } = await proc.exit;
      assert.equal(code, 1);
      assert.ok(at - sentAt < BUDGET_SUM_MS + 1000, `exited ${at - sentAt} ms after SIGTERM`);
      const deregistration = proc.lines.find((l) => l.event === 'deregistration');
      assert.equal(deregistration?.outcome, 'failed');
      assert.equal(proc.lines.find((l) => l.event === 'summary')?.outcome, 'failed');
    });
  });
});
