/** The registry participant against scripted registries, on the pure lifecycle: ordering, retries, budgets. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { createLifecycle, type Lifecycle, type LifecycleOptions } from '../../src/lifecycle.js';
import {
  createRegistryParticipant,
  type DeregistrationOutcome,
  type RegistryParticipantOptions,
} from '../../src/registry/participant.js';
import type { Registry, RegistryCall } from '../../src/registry/index.js';
import { createTiming } from '../../src/timing.js';

interface Script {
  readonly registry: Registry;
  /** What happened, in order: `register`, `heartbeat`, `stop`, `deregister`, `close`, with times. */
  readonly log: { readonly what: string; readonly at: number }[];
  readonly calls: RegistryCall[];
}

/** A registry whose calls do what `behave` says, logging every call. */
function scripted(
  behave: {
    register?: (n: number, call: RegistryCall) => Promise<void>;
    deregister?: (n: number, call: RegistryCall) => Promise<void>;
    heartbeat?: (n: number) => Promise<'ok' | 'lost'>;
  } = {},
  extra: Partial<Registry> = {},
): Script {
  const log: Script['log'] = [];
  const calls: RegistryCall[] = [];
  const count = new Map<string, number>();
  const note = (what: string): number => {
    log.push({ what, at: performance.now() });
    const n = (count.get(what) ?? 0) + 1;
    count.set(what, n);
    return n;
  };
  const registry: Registry = {
    name: 'scripted',
    async register(call) {
      calls.push(call);
      const n = note('register');
      await behave.register?.(n, call);
    },
    ...(behave.heartbeat
      ? {
          heartbeatIntervalMs: 50,
          async heartbeat() {
            return (behave.heartbeat as (n: number) => Promise<'ok' | 'lost'>)(note('heartbeat'));
          },
        }
      : {}),
    stopHeartbeats() {
      note('stop');
    },
    async deregister(call) {
      calls.push(call);
      const n = note('deregister');
      await behave.deregister?.(n, call);
      note('deregistered');
    },
    close() {
      note('close');
    },
    ...extra,
  };
  return { registry, log, calls };
}

function lifecycle(overrides: Partial<LifecycleOptions> = {}): Lifecycle & { exits: number[] } {
  const exits: number[] = [];
  const l = createLifecycle({
    budgets: { unready: 500, propagate: 50, drain: 50, cleanup: 500 },
    timing: createTiming({ gracePeriodMs: 10_000, gracePeriodSource: 'option', safetyMarginMs: 1000 }),
    fatalTimeoutMs: 2000,
    exitCodes: { clean: 0, incomplete: 1, fatal: 70 },
    exit: (code) => exits.push(code),
    ...overrides,
  });
  return Object.assign(l, { exits });
}

function participant(
  script: Script,
  options: Partial<RegistryParticipantOptions> = {},
): {
  p: ReturnType<typeof createRegistryParticipant>;
  outcomes: [string, DeregistrationOutcome, number][];
  warnings: string[];
} {
  const outcomes: [string, DeregistrationOutcome, number][] = [];
  const warnings: string[] = [];
  const p = createRegistryParticipant(script.registry, {
    env: {},
    callTimeoutMs: 200,
    retryBackoffMs: 20,
    onDeregistration: (...args) => outcomes.push(args),
    onWarning: (m) => warnings.push(m),
    ...options,
  });
  return { p, outcomes, warnings };
}

const whats = (script: Script): string[] => script.log.map((e) => e.what);

describe('registry participant', () => {
  it('registers once on ready, stops heartbeats before deregistering, then closes the client', async () => {
    const script = scripted({ heartbeat: async () => 'ok' });
    const { p, outcomes } = participant(script);
    const l = lifecycle();
    l.register(p);
    l.ready();
    l.ready();
    await delay(130);
    assert.equal(p.registered, true);
    const summary = await l.shutdown('SIGTERM');
    const log = whats(script);
    assert.equal(log.filter((w) => w === 'register').length, 1);
    assert.ok(log.filter((w) => w === 'heartbeat').length >= 1);
    const stop = log.indexOf('stop');
    assert.ok(stop !== -1 && stop < log.indexOf('deregister'), log.join(','));
    assert.equal(log.slice(stop).includes('heartbeat'), false, 'no heartbeat after stop');
    assert.ok(log.indexOf('close') > log.indexOf('deregistered'));
    assert.equal(summary.outcome, 'clean');
    assert.equal(outcomes[0]?.[0], 'scripted');
    assert.equal(outcomes[0]?.[1], 'success');
    assert.equal(p.registered, false);
  });

  it('retries a failing deregistration with growing backoff and reports success', async () => {
    const script = scripted({
      deregister: async (n) => {
        if (n < 3) throw new Error(`refused ${n}`);
      },
    });
    const { p, outcomes } = participant(script, { retryBackoffMs: 40 });
    const l = lifecycle();
    l.register(p);
    l.ready();
    await delay(20);
    const summary = await l.shutdown();
    const attempts = script.log.filter((e) => e.what === 'deregister').map((e) => e.at);
    assert.equal(attempts.length, 3);
    const [a = 0, b = 0, c = 0] = attempts;
    // Equal jitter: the pauses are 20–40 ms, then 40–80 ms.
    assert.ok(b - a >= 18, `first pause ${b - a} ms`);
    assert.ok(c - b >= 38, `second pause ${c - b} ms`);
    assert.equal(outcomes[0]?.[1], 'success');
    assert.equal(summary.outcome, 'clean');
  });

  it('gives up after the retries with outcome failed, and the shutdown is failed (exit 1)', async () => {
    const script = scripted({ deregister: async () => Promise.reject(new Error('nope')) });
    const { p, outcomes } = participant(script, { retries: 2 });
    const l = lifecycle();
    l.register(p);
    const summary = await l.shutdown();
    assert.equal(whats(script).filter((w) => w === 'deregister').length, 3);
    assert.equal(outcomes[0]?.[1], 'failed');
    assert.equal(summary.outcome, 'failed');
    assert.equal(summary.exitCode, 1);
    assert.deepEqual(l.exits, [1]);
    const failure = summary.failures[0];
    assert.equal(failure?.phase, 'unready');
    assert.equal((failure?.error as { code?: string }).code, 'ERR_KUBEGRACE_DEREGISTRATION_FAILED');
    assert.match(
      (failure?.error as Error).message,
      /^scripted deregistration failed after 3 attempt\(s\) in \d+ ms$/,
    );
  });

  it('never waits past the budget for a registry that ignores its signal', async () => {
    const script = scripted({ deregister: () => new Promise<void>(() => {}) });
    const { p, outcomes } = participant(script, { callTimeoutMs: 1000 });
    const l = lifecycle({ budgets: { unready: 300, propagate: 0, drain: 0, cleanup: 0 } });
    l.register(p);
    const summary = await l.shutdown();
    assert.ok((summary.phases.unready ?? Infinity) < 600, `unready took ${summary.phases.unready} ms`);
    assert.equal(outcomes[0]?.[1], 'timeout');
    assert.ok((outcomes[0]?.[2] ?? 1) < 0.6);
    assert.equal(summary.outcome, 'failed');
  });

  it('each call gets its own time limit and a deadline no later than the shutdown deadline', async () => {
    const script = scripted({
      deregister: (n, call) =>
        n === 1
          ? new Promise<void>((_, reject) =>
              call.signal.addEventListener('abort', () => reject(new Error('aborted'))),
            )
          : Promise.resolve(),
    });
    const { p, outcomes } = participant(script, { callTimeoutMs: 100 });
    const l = lifecycle();
    l.register(p);
    const summary = await l.shutdown();
    const [first, second] = script.calls;
    assert.ok(first && second);
    assert.equal(first.signal.aborted, true, 'the first attempt was cut at its time limit');
    assert.ok(second.deadline <= (l.timing.deadlineAt ?? 0));
    assert.equal(outcomes[0]?.[1], 'success');
    assert.equal(summary.outcome, 'clean');
  });

  it('waits for a registration in flight before deregistering, so a late one cannot bring the instance back', async () => {
    const script = scripted({ register: () => delay(150) });
    const { p } = participant(script);
    const l = lifecycle();
    l.register(p);
    l.ready();
    await delay(20);
    await l.shutdown();
    const registered = script.log.find((e) => e.what === 'register');
    const deregister = script.log.find((e) => e.what === 'deregister');
    assert.ok(registered && deregister);
    assert.ok(deregister.at - registered.at >= 140, 'deregistration began after the registration settled');
  });

  it('registers again after a lost heartbeat, and retries a failed registration later', async () => {
    let lose = true;
    const script = scripted({
      register: async (n) => {
        if (n === 2) throw new Error('registry busy');
      },
      heartbeat: async () => {
        if (lose) {
          lose = false;
          return 'lost';
        }
        return 'ok';
      },
    });
    const { p, warnings } = participant(script, { retries: 0, registerRetryIntervalMs: 50 });
    const l = lifecycle();
    l.register(p);
    l.ready();
    await delay(400);
    const registers = whats(script).filter((w) => w === 'register').length;
    assert.ok(registers >= 3, `registered ${registers} times: first, after the loss (failed), and again`);
    assert.equal(p.registered, true);
    assert.ok(warnings.some((w) => /no longer knows this instance/.test(w)));
    assert.ok(warnings.some((w) => /registration failed after 1 attempt/.test(w)));
    await l.shutdown();
  });

  it('register: false never registers or beats, but still deregisters', async () => {
    const script = scripted({ heartbeat: async () => 'ok' });
    const { p, outcomes } = participant(script, { register: false });
    const l = lifecycle();
    l.register(p);
    l.ready();
    await delay(100);
    await l.shutdown();
    assert.deepEqual(
      whats(script).filter((w) => w !== 'stop' && w !== 'close'),
      ['deregister', 'deregistered'],
    );
    assert.equal(outcomes[0]?.[1], 'success');
  });

  it("deregister: 'afterDrain' deregisters in cleanup, after the drain", async () => {
    const script = scripted();
    const { p } = participant(script, { deregister: 'afterDrain' });
    const l = lifecycle();
    const phases: string[] = [];
    l.on('participant', (r) => {
      if (r.name === 'registry:scripted') phases.push(`${r.phase}:${r.status}`);
    });
    l.register({
      name: 'drainer',
      drain: () => void script.log.push({ what: 'drained', at: performance.now() }),
    });
    l.register(p);
    await l.shutdown();
    assert.deepEqual(phases, ['propagate:ok', 'cleanup:ok', 'exit:ok']);
    assert.ok(whats(script).indexOf('drained') < whats(script).indexOf('deregister'));
  });

  it('extends the propagation wait to the client cache time after the deregistration, not for fatal', async () => {
    const script = scripted({}, { clientCacheMs: 250 });
    const { p } = participant(script);
    const l = lifecycle({ budgets: { unready: 500, propagate: 1000, drain: 50, cleanup: 50 } });
    l.register(p);
    const summary = await l.shutdown();
    assert.ok((summary.phases.propagate ?? 0) >= 200, `propagate took ${summary.phases.propagate} ms`);

    const fatal = lifecycle({ budgets: { unready: 500, propagate: 1000, drain: 50, cleanup: 50 } });
    fatal.register(participant(scripted({}, { clientCacheMs: 250 })).p);
    const fatalSummary = await fatal.fatal(new Error('boom'));
    assert.ok((fatalSummary.phases.propagate ?? 0) < 100, 'fatal skips the cache wait');
  });

  it("keeps the adapter's own client cache time over KUBEGRACE_REGISTRY_CLIENT_CACHE_MS (the adapter resolved it)", async () => {
    // e.g. createEurekaRegistry({ clientCacheMs: 250 }) with the variable at 0: the option wins.
    const { p } = participant(scripted({}, { clientCacheMs: 250 }), {
      env: { KUBEGRACE_REGISTRY_CLIENT_CACHE_MS: '0' },
    });
    const l = lifecycle({ budgets: { unready: 500, propagate: 1000, drain: 50, cleanup: 50 } });
    l.register(p);
    const summary = await l.shutdown();
    assert.ok((summary.phases.propagate ?? 0) >= 200, `propagate took ${summary.phases.propagate} ms`);
  });

  it('survives a throwing onDeregistration callback', async () => {
    const script = scripted();
    const { p, warnings } = participant(script, {
      onDeregistration: () => {
        throw new Error('metrics down');
      },
    });
    const l = lifecycle();
    l.register(p);
    const summary = await l.shutdown();
    assert.equal(summary.outcome, 'clean');
    assert.ok(warnings.some((w) => /onDeregistration threw/.test(w)));
  });

  it('close() stops without deregistering', async () => {
    const script = scripted({ heartbeat: async () => 'ok' });
    const { p } = participant(script);
    const l = lifecycle();
    l.register(p);
    l.ready();
    await delay(80);
    await p.close();
    const count = script.log.length;
    await delay(150);
    assert.equal(script.log.length, count, 'nothing runs after close');
    assert.deepEqual(
      whats(script).filter((w) => w === 'deregister'),
      [],
    );
    assert.ok(whats(script).includes('close'));
  });

  it('validates its options, naming the option or the variable', () => {
    const { registry } = scripted();
    assert.throws(() => createRegistryParticipant(registry, { env: {}, callTimeoutMs: 0 }), {
      code: 'ERR_KUBEGRACE_INVALID_OPTION',
      message: 'callTimeoutMs must be an integer at least 1, received 0',
    });
    assert.throws(
      () => createRegistryParticipant(registry, { env: { KUBEGRACE_REGISTRY_DEREGISTER: 'later' } }),
      {
        message: "KUBEGRACE_REGISTRY_DEREGISTER must be one of 'unready', 'afterDrain', received \"later\"",
      },
    );
    assert.throws(
      () => createRegistryParticipant(registry, { env: { KUBEGRACE_REGISTRY_REGISTER: 'yes' } }),
      {
        message: 'KUBEGRACE_REGISTRY_REGISTER must be true or false, received "yes"',
      },
    );
    assert.throws(() => createRegistryParticipant(registry, { env: {}, retries: 100 }), {
      message: 'retries must be an integer from 0 to 20, received 100',
    });
    assert.throws(() => createRegistryParticipant({ name: 'x' } as unknown as Registry), {
      message: 'registry must be an object with name, register() and deregister(), received an object',
    });
    const fromEnv = createRegistryParticipant(registry, {
      env: { KUBEGRACE_REGISTRY_DEREGISTER: 'afterDrain', KUBEGRACE_REGISTRY_REGISTER: 'false' },
    });
    assert.equal(typeof fromEnv.cleanup, 'function');
    assert.equal(fromEnv.unready, undefined);
  });
});
