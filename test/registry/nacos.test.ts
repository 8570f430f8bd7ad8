/** The Nacos adapter against a fake that speaks Nacos 2.x's v2 Open API (and, opt-in, a real Nacos). */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { createNacosRegistry, type NacosRegistryOptions } from '../../src/registry/nacos/index.js';
import {
  createRegistryParticipant,
  type RegistryParticipantOptions,
} from '../../src/registry/participant.js';
import {
  assertFailedOnBudget,
  createHarness,
  realServer,
  startFakeNacos,
  until,
  type FakeNacos,
  type Harness,
} from '../support/fake-registries.js';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function fake(options: Parameters<typeof startFakeNacos>[0] = {}): Promise<FakeNacos> {
  const nacos = await startFakeNacos(options);
  cleanups.push(() => nacos.close());
  return nacos;
}

let ports = 8000;

function setup(
  url: string,
  registryOptions: Partial<NacosRegistryOptions> = {},
  participantOptions: Partial<RegistryParticipantOptions> = {},
): Harness & { key: string } {
  const harness = createHarness();
  const port = ++ports;
  const registry = createNacosRegistry({
    url,
    serviceName: 'checkout',
    address: '10.0.0.7',
    port,
    env: {},
    heartbeatIntervalMs: 200,
    ...registryOptions,
  });
  const participant = createRegistryParticipant(registry, {
    env: {},
    callTimeoutMs: 400,
    retryBackoffMs: 50,
    onDeregistration: harness.onDeregistration,
    onWarning: (message) => harness.warnings.push(message),
    ...participantOptions,
  });
  harness.kg.addParticipant(participant);
  cleanups.push(
    () => participant.close(),
    () => harness.kg.destroy(),
  );
  const ns = registryOptions.namespace ?? 'public';
  return { ...harness, key: `${ns}#DEFAULT_GROUP@@checkout#DEFAULT#10.0.0.7:${port}` };
}

describe('Nacos registry', () => {
  it('registers an ephemeral instance, beats (light beats, grouped name), then stops beating and deregisters', async () => {
    // Instances without a beat for 600 ms are deleted: only the beats can keep it.
    const nacos = await fake({ deleteTimeoutMs: 600, clientBeatInterval: 150 });
    const s = setup(nacos.url, { metadata: { zone: 'a' }, namespace: 'dev' });
    s.kg.ready();
    await until(() => nacos.instances.has(s.key), 3000, 'the registration');
    const register = nacos.requests[0];
    assert.equal(register?.method, 'POST');
    assert.equal(register?.path, '/nacos/v2/ns/instance');
    const form = new URLSearchParams(register?.body);
    assert.equal(form.get('ephemeral'), 'true');
    assert.equal(form.get('namespaceId'), 'dev');
    assert.equal(form.get('metadata'), '{"zone":"a"}');
    assert.deepEqual(nacos.instances.get(s.key)?.metadata, { zone: 'a' });
    await delay(1000);
    assert.ok(nacos.instances.has(s.key), 'beats keep the ephemeral instance');
    const beat = nacos.requests.find((r) => r.path.endsWith('/beat'));
    assert.equal(beat?.query.get('serviceName'), 'DEFAULT_GROUP@@checkout');
    assert.equal(
      beat?.query.get('beat'),
      null,
      'light beats only: a full beat would re-create a removed instance',
    );

    const startedAt = performance.now();
    const summary = await s.kg.shutdown('SIGTERM');
    const removal = nacos.requests.findIndex((r) => r.method === 'DELETE');
    assert.ok(removal !== -1);
    assert.ok((nacos.requests[removal]?.at ?? Infinity) - startedAt < 100);
    assert.deepEqual(
      nacos.requests.slice(removal).filter((r) => r.path.endsWith('/beat')),
      [],
      'beats stopped first',
    );
    assert.equal(nacos.instances.has(s.key), false);
    await delay(400);
    assert.equal(nacos.instances.has(s.key), false, 'and it does not come back');
    assert.equal(summary.outcome, 'clean');
    assert.equal(s.outcomes[0]?.[1], 'success');
  });

  it('follows the server-given beat interval and registers again on code 20404', async () => {
    const nacos = await fake({ clientBeatInterval: 100 });
    const s = setup(nacos.url, { heartbeatIntervalMs: 300 });
    s.kg.ready();
    await until(() => nacos.requests.some((r) => r.path.endsWith('/beat')), 3000, 'the first beat');
    const firstBeat = nacos.requests.filter((r) => r.path.endsWith('/beat')).length;
    await delay(600);
    const beats = nacos.requests.filter((r) => r.path.endsWith('/beat')).length - firstBeat;
    assert.ok(beats >= 3, `${beats} beats in 600 ms: the server asked for one every 100 ms`);
    nacos.instances.delete(s.key);
    await until(() => nacos.instances.has(s.key), 3000, 'the re-registration');
    assert.ok(s.warnings.some((w) => /registering again/.test(w)));
    await s.kg.shutdown('SIGTERM');
    assert.equal(nacos.instances.has(s.key), false);
  });

  it('logs in with username and password, sends the token, and renews it after a 403', async () => {
    const nacos = await fake({ users: { nacos: 'pw' }, clientBeatInterval: 100 });
    const s = setup(`${nacos.url}/`, { username: 'nacos', password: 'pw' });
    s.kg.ready();
    await until(() => nacos.instances.has(s.key), 3000, 'the registration');
    assert.equal(nacos.requests[0]?.path, '/nacos/v1/auth/login', 'a bare URL gets the /nacos context');
    // Invalidate the token: the next beat is refused, the adapter logs in again.
    nacos.tokens.clear();
    await until(() => nacos.tokens.size === 1, 3000, 'a new login');
    const summary = await s.kg.shutdown('SIGTERM');
    assert.equal(summary.outcome, 'clean');
    assert.equal(nacos.instances.has(s.key), false);
    const removal = nacos.requests.find((r) => r.method === 'DELETE');
    assert.ok(nacos.tokens.has(removal?.query.get('accessToken') ?? ''), 'the removal carries a valid token');
  });

  it('a fixed access token is sent as accessToken; a wrong one fails the deregistration', async () => {
    const nacos = await fake({ accessToken: 'right' });
    const good = setup(nacos.url, { accessToken: 'right' });
    good.kg.ready();
    await until(() => nacos.instances.has(good.key), 3000, 'the registration');
    assert.equal((await good.kg.shutdown('SIGTERM')).outcome, 'clean');

    const bad = setup(nacos.url, { accessToken: 'wrong' }, { retries: 0 });
    const summary = await bad.kg.shutdown('SIGTERM');
    assert.equal(summary.outcome, 'failed');
    assert.equal(bad.outcomes[0]?.[1], 'failed');
  });

  it('Nacos down: failed, exit 1, on budget', async () => {
    const nacos = await fake();
    const s = setup(nacos.url);
    s.kg.ready();
    await until(() => nacos.instances.has(s.key), 3000, 'the registration');
    await nacos.down();
    assertFailedOnBudget(await s.kg.shutdown('SIGTERM'), s, 'nacos', 'failed');
  });

  it('Nacos hung: timeout, exit 1, on budget', async () => {
    const nacos = await fake();
    const s = setup(nacos.url);
    s.kg.ready();
    await until(() => nacos.instances.has(s.key), 3000, 'the registration');
    nacos.fault('hang');
    assertFailedOnBudget(await s.kg.shutdown('SIGTERM'), s, 'nacos', 'timeout');
  });

  it('Nacos refusing (500 with a v2 error body): failed, exit 1, on budget', async () => {
    const nacos = await fake();
    const s = setup(nacos.url);
    s.kg.ready();
    await until(() => nacos.instances.has(s.key), 3000, 'the registration');
    nacos.fault({ status: 500, body: '{"code":30000,"message":"server error","data":null}' });
    assertFailedOnBudget(await s.kg.shutdown('SIGTERM'), s, 'nacos', 'failed');
  });

  it('validates its settings with the option or variable named', () => {
    const base = { url: 'http://n:8848/nacos', serviceName: 'x', port: 1, address: '10.0.0.1' };
    assert.throws(() => createNacosRegistry({ ...base, env: {}, username: 'u' }), {
      code: 'ERR_KUBEGRACE_INVALID_OPTION',
      message:
        'nacos.password (or KUBEGRACE_REGISTRY_NACOS_PASSWORD) must be set together with the username, received undefined',
    });
    assert.throws(() => createNacosRegistry({ ...base, env: {}, weight: -1 }), {
      message: 'nacos.weight must be a number from 0 to 10000, received -1',
    });
    assert.throws(
      () =>
        createNacosRegistry({ ...base, env: { KUBEGRACE_REGISTRY_NACOS_HEARTBEAT_INTERVAL_MS: 'often' } }),
      {
        message:
          'KUBEGRACE_REGISTRY_NACOS_HEARTBEAT_INTERVAL_MS must be an integer at least 100, received "often"',
      },
    );
  });
});

const real = realServer('KUBEGRACE_TEST_NACOS_URL', 'Nacos 2.x server');
describe('Nacos registry against a real Nacos 2.x', { skip: real.skip }, () => {
  it('registers, stays healthy on beats, and is gone after the shutdown', async () => {
    const url = (real.url as string).replace(/\/$/, '');
    const serviceName = `kubegrace-test-${process.pid}`;
    const s = setup(url, {
      serviceName,
      ...(process.env.KUBEGRACE_TEST_NACOS_USERNAME
        ? {
            username: process.env.KUBEGRACE_TEST_NACOS_USERNAME,
            password: process.env.KUBEGRACE_TEST_NACOS_PASSWORD ?? '',
          }
        : {}),
      heartbeatIntervalMs: 5000,
    });
    const hosts = async (): Promise<unknown[]> => {
      const list = new URL(`${url}/v2/ns/instance/list`);
      list.searchParams.set('serviceName', serviceName);
      const body = (await (await fetch(list)).json()) as { data?: { hosts?: unknown[] } };
      return body.data?.hosts ?? [];
    };
    s.kg.ready();
    await until(async () => (await hosts()).length === 1, 10_000, 'the registration');
    const summary = await s.kg.shutdown('SIGTERM');
    assert.equal(summary.outcome, 'clean');
    await until(async () => (await hosts()).length === 0, 5000, 'the instance to disappear');
  });
});
