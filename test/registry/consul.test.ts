/** The Consul adapter against a fake that speaks Consul's agent and catalog HTTP APIs (and, opt-in, a real Consul). */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { createConsulRegistry, type ConsulRegistryOptions } from '../../src/registry/consul/index.js';
import {
  createRegistryParticipant,
  type RegistryParticipantOptions,
} from '../../src/registry/participant.js';
import {
  assertFailedOnBudget,
  createHarness,
  realServer,
  startFakeConsul,
  until,
  type FakeConsul,
  type Harness,
} from '../support/fake-registries.js';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function fake(options: { token?: string } = {}): Promise<FakeConsul> {
  const consul = await startFakeConsul(options);
  cleanups.push(() => consul.close());
  return consul;
}

let ids = 0;

function setup(
  url: string,
  registryOptions: Partial<ConsulRegistryOptions> = {},
  participantOptions: Partial<RegistryParticipantOptions> = {},
): Harness & { id: string } {
  const harness = createHarness();
  const id = `checkout-${++ids}`;
  const registry = createConsulRegistry({
    ...(url === '' ? {} : { url }),
    serviceName: 'checkout',
    instanceId: id,
    address: '10.0.0.7',
    port: 8080,
    env: {},
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
  return { ...harness, id };
}

describe('Consul registry (agent API)', () => {
  it('registers with a passing TTL check and the ACL token, keeps the check passing, then maintenance → deregister', async () => {
    const consul = await fake({ token: 'secret' });
    const s = setup(consul.url, {
      token: 'secret',
      checkTtlSeconds: 1,
      tags: ['v1'],
      metadata: { zone: 'a' },
    });
    s.kg.ready();
    await until(() => consul.passing('checkout').includes(s.id), 3000, 'the registration');
    const service = consul.services.get(s.id);
    assert.deepEqual(
      { ...service },
      { ID: s.id, Service: 'checkout', Address: '10.0.0.7', Port: 8080, Tags: ['v1'], Meta: { zone: 'a' } },
    );
    assert.deepEqual(consul.checks.get(`service:${s.id}`), {
      status: 'passing',
      ttlMs: 1000,
      serviceId: s.id,
      deregisterAfter: '60s',
    });
    // A 1 s TTL is passed every 500 ms.
    await until(
      () => consul.requests.filter((r) => r.path.startsWith('/v1/agent/check/pass/')).length >= 2,
      3000,
      'heartbeats',
    );
    assert.ok(consul.requests.every((r) => r.headers['x-consul-token'] === 'secret'));

    const startedAt = performance.now();
    const summary = await s.kg.shutdown('SIGTERM');
    const maintenance = consul.requests.findIndex((r) => r.path === `/v1/agent/service/maintenance/${s.id}`);
    const deregister = consul.requests.findIndex((r) => r.path === `/v1/agent/service/deregister/${s.id}`);
    assert.ok(maintenance !== -1 && deregister > maintenance, 'maintenance mode first, then deregister');
    assert.equal(consul.requests[maintenance]?.query.get('enable'), 'true');
    assert.equal(consul.requests[maintenance]?.query.get('reason'), 'kubegrace: shutting down');
    assert.ok(
      (consul.requests[maintenance]?.at ?? Infinity) - startedAt < 100,
      'out of the catalog within 100 ms',
    );
    assert.equal(
      consul.requests.slice(maintenance).filter((r) => r.path.includes('/check/pass/')).length,
      0,
      'no heartbeat after the deregistration began',
    );
    assert.equal(consul.services.has(s.id), false);
    assert.deepEqual(consul.passing('checkout'), []);
    assert.equal(summary.outcome, 'clean');
    assert.deepEqual(s.exits, [0]);
    assert.equal(s.outcomes[0]?.[1], 'success');
  });

  it('registers again when the agent forgets the service (check pass answers 404)', async () => {
    const consul = await fake();
    const s = setup(consul.url, { checkTtlSeconds: 1 });
    s.kg.ready();
    await until(() => consul.services.has(s.id), 3000, 'the registration');
    consul.services.delete(s.id);
    consul.checks.delete(`service:${s.id}`);
    await until(() => consul.services.has(s.id), 3000, 'the re-registration');
    assert.ok(s.warnings.some((w) => /registering again/.test(w)));
    await s.kg.shutdown('SIGTERM');
    assert.equal(consul.services.has(s.id), false);
  });

  it('checkTtlSeconds: 0 registers no check and sends no heartbeat', async () => {
    const consul = await fake();
    const s = setup(consul.url, { checkTtlSeconds: 0 });
    s.kg.ready();
    await until(() => consul.services.has(s.id), 3000, 'the registration');
    await delay(300);
    assert.equal(consul.checks.size, 0);
    assert.equal(consul.requests.filter((r) => r.path.includes('/check/')).length, 0);
    await s.kg.shutdown('SIGTERM');
    assert.equal(consul.services.has(s.id), false);
  });

  it('a deregistration of a service the agent no longer knows (404) counts as done', async () => {
    const consul = await fake();
    const s = setup(consul.url, {}, { register: false });
    s.kg.ready();
    const summary = await s.kg.shutdown('SIGTERM');
    assert.equal(summary.outcome, 'clean');
    assert.equal(s.outcomes[0]?.[1], 'success');
    assert.equal(
      consul.requests.filter((r) => r.path.includes('/register')).length,
      0,
      'register: false registers nothing',
    );
  });

  it('Consul down: failed, exit 1, on budget', async () => {
    const consul = await fake();
    const s = setup(consul.url);
    s.kg.ready();
    await until(() => consul.services.has(s.id), 3000, 'the registration');
    await consul.down();
    assertFailedOnBudget(await s.kg.shutdown('SIGTERM'), s, 'consul', 'failed');
  });

  it('Consul hung: timeout, exit 1, on budget', async () => {
    const consul = await fake();
    const s = setup(consul.url);
    s.kg.ready();
    await until(() => consul.services.has(s.id), 3000, 'the registration');
    consul.fault('hang');
    assertFailedOnBudget(await s.kg.shutdown('SIGTERM'), s, 'consul', 'timeout');
  });

  it('Consul refusing (500 No cluster leader): maintenance once, deregister retried, then failed, exit 1', async () => {
    const consul = await fake();
    const s = setup(consul.url);
    s.kg.ready();
    await until(() => consul.services.has(s.id), 3000, 'the registration');
    const before = consul.requests.length;
    consul.fault({ status: 500, body: 'No cluster leader' });
    assertFailedOnBudget(await s.kg.shutdown('SIGTERM'), s, 'consul', 'failed');
    const during = consul.requests.slice(before).map((r) => r.path.split('/').slice(0, 5).join('/'));
    assert.deepEqual(during, [
      '/v1/agent/service/maintenance',
      '/v1/agent/service/deregister',
      '/v1/agent/service/deregister',
      '/v1/agent/service/deregister',
      '/v1/agent/service/deregister',
    ]);
  });

  it('a token without service:write: registration fails with a warning, the deregistration fails the shutdown', async () => {
    const consul = await fake({ token: 'right' });
    const s = setup(consul.url, { token: 'wrong' }, { retries: 0 });
    s.kg.ready();
    await until(() => s.warnings.some((w) => /registration failed/.test(w)), 3000, 'the warning');
    const summary = await s.kg.shutdown('SIGTERM');
    assert.equal(summary.outcome, 'failed');
    assert.equal(s.outcomes[0]?.[1], 'failed');
    const error = summary.failures[0]?.error as Error & { code: string; cause: Error & { cause: Error } };
    assert.equal(error.code, 'ERR_KUBEGRACE_DEREGISTRATION_FAILED');
    assert.equal(error.cause.message, 'consul deregister: answered HTTP 403');
    assert.match(error.cause.cause.message, /Permission denied/);
  });
});

describe('Consul registry (catalog API, agentless)', () => {
  it('registers on the node in the catalog, sends no heartbeats, deregisters from the catalog', async () => {
    const consul = await fake();
    const s = setup(consul.url, { mode: 'catalog', node: 'node-a-virtual', datacenter: 'dc2' });
    s.kg.ready();
    await until(
      () => consul.catalog.get('node-a-virtual')?.services.has(s.id) === true,
      3000,
      'the registration',
    );
    const register = consul.requests.find((r) => r.path === '/v1/catalog/register');
    assert.ok(register);
    assert.equal(register.query.get('dc'), 'dc2');
    assert.deepEqual(JSON.parse(register.body), {
      Node: 'node-a-virtual',
      Address: '10.0.0.7',
      Datacenter: 'dc2',
      SkipNodeUpdate: true,
      Service: { ID: s.id, Service: 'checkout', Address: '10.0.0.7', Port: 8080, Tags: [], Meta: {} },
    });
    const summary = await s.kg.shutdown('SIGTERM');
    assert.equal(consul.catalog.get('node-a-virtual')?.services.has(s.id), false);
    assert.equal(consul.requests.filter((r) => r.path.startsWith('/v1/agent/')).length, 0);
    assert.equal(summary.outcome, 'clean');
  });
});

describe('Consul settings', () => {
  it("takes the URL and the token from Consul's own CONSUL_HTTP_ADDR and CONSUL_HTTP_TOKEN", async () => {
    const consul = await fake({ token: 'from-env' });
    const s = setup('', {
      env: { CONSUL_HTTP_ADDR: consul.url.replace('http://', ''), CONSUL_HTTP_TOKEN: 'from-env' },
    });
    s.kg.ready();
    await until(() => consul.services.has(s.id), 3000, 'the registration');
    assert.equal((await s.kg.shutdown('SIGTERM')).outcome, 'clean');
  });

  it('reads CONSUL_HTTP_ADDR (without a scheme) and CONSUL_HTTP_TOKEN, KUBEGRACE_REGISTRY_* first', () => {
    const env = {
      CONSUL_HTTP_ADDR: '127.0.0.1:8500',
      CONSUL_HTTP_TOKEN: 't0',
      KUBEGRACE_REGISTRY_SERVICE_NAME: 'checkout',
      KUBEGRACE_REGISTRY_PORT: '8080',
      KUBEGRACE_REGISTRY_ADDRESS: '10.0.0.1',
      KUBEGRACE_REGISTRY_CONSUL_MODE: 'catalog',
    };
    const registry = createConsulRegistry({ env });
    assert.equal(registry.mode, 'catalog');
    assert.equal(registry.identity.serviceName, 'checkout');
    assert.throws(
      () => createConsulRegistry({ env: { ...env, KUBEGRACE_REGISTRY_CONSUL_URL: 'consul:8500' } }),
      {
        code: 'ERR_KUBEGRACE_INVALID_OPTION',
        message: 'KUBEGRACE_REGISTRY_CONSUL_URL must be an http:// or https:// URL, received "consul:8500"',
      },
    );
    assert.throws(() => createConsulRegistry({ env: { ...env, CONSUL_HTTP_ADDR: '' } }), {
      message:
        'consul.url (or KUBEGRACE_REGISTRY_CONSUL_URL) must be an http:// or https:// URL of the Consul HTTP API, received undefined',
    });
    assert.throws(
      () => createConsulRegistry({ env: { ...env, KUBEGRACE_REGISTRY_CONSUL_MODE: 'sidecar' } }),
      {
        message: "KUBEGRACE_REGISTRY_CONSUL_MODE must be one of 'agent', 'catalog', received \"sidecar\"",
      },
    );
    assert.throws(() => createConsulRegistry({ env, deregisterCriticalAfterSeconds: 30 }), {
      message: 'consul.deregisterCriticalAfterSeconds must be an integer from 60 to 2147483, received 30',
    });
  });
});

const real = realServer('KUBEGRACE_TEST_CONSUL_URL', 'Consul agent');
describe('Consul registry against a real Consul agent', { skip: real.skip }, () => {
  it('registers, shows as passing, and is gone from the health API after the shutdown', async () => {
    const url = real.url as string;
    const token = process.env.KUBEGRACE_TEST_CONSUL_TOKEN;
    const s = setup(url, {
      ...(token ? { token } : {}),
      serviceName: `kubegrace-test-${process.pid}`,
      checkTtlSeconds: 5,
    });
    const headers: Record<string, string> = token ? { 'x-consul-token': token } : {};
    const health = async (): Promise<string[]> => {
      const response = await fetch(
        new URL(`/v1/health/service/kubegrace-test-${process.pid}?passing=true`, url),
        { headers },
      );
      return ((await response.json()) as { Service: { ID: string } }[]).map((e) => e.Service.ID);
    };
    s.kg.ready();
    await until(async () => (await health()).includes(s.id), 10_000, 'the instance to pass');
    const summary = await s.kg.shutdown('SIGTERM');
    assert.equal(summary.outcome, 'clean');
    assert.deepEqual(await health(), []);
  });
});
