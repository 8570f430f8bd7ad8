/** The Eureka adapter against a fake that speaks Eureka's REST API (and, opt-in, a real Eureka server). */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { createEurekaRegistry, type EurekaRegistryOptions } from '../../src/registry/eureka/index.js';
import {
  createRegistryParticipant,
  type RegistryParticipantOptions,
} from '../../src/registry/participant.js';
import {
  assertFailedOnBudget,
  createHarness,
  realServer,
  startFakeEureka,
  until,
  type FakeEureka,
  type Harness,
} from '../support/fake-registries.js';
import type { KubegraceOptions } from '../../src/index.js';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function fake(options: { context?: string; basicAuth?: string } = {}): Promise<FakeEureka> {
  const eureka = await startFakeEureka(options);
  cleanups.push(() => eureka.close());
  return eureka;
}

let ids = 0;

function setup(
  url: string,
  registryOptions: Partial<EurekaRegistryOptions> = {},
  participantOptions: Partial<RegistryParticipantOptions> = {},
  kgOptions: Partial<KubegraceOptions> = {},
): Harness & { id: string } {
  const harness = createHarness(kgOptions);
  const id = `checkout-${++ids}`;
  const registry = createEurekaRegistry({
    url,
    serviceName: 'checkout',
    instanceId: id,
    address: '10.0.0.7',
    port: 8080,
    env: {},
    // The cache wait is tested on its own; elsewhere it would only slow the tests down.
    clientCacheMs: 0,
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

describe('Eureka registry', () => {
  it('registers a valid instance, renews it, then stops renewing → OUT_OF_SERVICE → DELETE', async () => {
    const eureka = await fake({ basicAuth: 'eureka:s3cret' });
    const url = eureka.url.replace('http://', 'http://eureka:s3cret@') + '/eureka';
    const s = setup(url, { heartbeatIntervalSeconds: 1, metadata: { zone: 'a' } });
    s.kg.ready();
    await until(() => eureka.apps.get('CHECKOUT')?.has(s.id) === true, 3000, 'the registration');
    const instance = eureka.apps.get('CHECKOUT')?.get(s.id);
    assert.equal(instance?.ipAddr, '10.0.0.7');
    assert.equal(instance?.hostName, '10.0.0.7');
    assert.equal(instance?.port, 8080);
    assert.equal(instance?.vipAddress, 'checkout');
    assert.deepEqual(instance?.leaseInfo, { renewalIntervalInSecs: 1, durationInSecs: 90 });
    assert.deepEqual(instance?.metadata, { zone: 'a' });
    assert.equal(eureka.requests[0]?.path, '/eureka/apps/CHECKOUT');
    await until(
      () => eureka.requests.some((r) => r.method === 'PUT' && r.path === `/eureka/apps/CHECKOUT/${s.id}`),
      3000,
      'a renewal',
    );

    const startedAt = performance.now();
    const summary = await s.kg.shutdown('SIGTERM');
    const outOfService = eureka.requests.findIndex((r) => r.path.endsWith('/status'));
    const deleted = eureka.requests.findIndex((r) => r.method === 'DELETE');
    assert.ok(outOfService !== -1 && deleted > outOfService, 'OUT_OF_SERVICE first, then DELETE');
    assert.equal(eureka.requests[outOfService]?.query.get('value'), 'OUT_OF_SERVICE');
    assert.ok((eureka.requests[outOfService]?.at ?? Infinity) - startedAt < 100);
    const renewalsAfter = eureka.requests
      .slice(outOfService)
      .filter((r) => r.method === 'PUT' && r.path === `/eureka/apps/CHECKOUT/${s.id}`);
    assert.deepEqual(renewalsAfter, [], 'heartbeats stop before the deregistration');
    assert.equal(eureka.apps.get('CHECKOUT')?.has(s.id), false);
    assert.equal(summary.outcome, 'clean');
    assert.equal(s.outcomes[0]?.[1], 'success');
  });

  it('works with the Netflix /eureka/v2 context', async () => {
    const eureka = await fake({ context: '/eureka/v2' });
    const s = setup(`${eureka.url}/eureka/v2/`);
    s.kg.ready();
    await until(() => eureka.apps.get('CHECKOUT')?.has(s.id) === true, 3000, 'the registration');
    await s.kg.shutdown('SIGTERM');
    assert.equal(eureka.apps.get('CHECKOUT')?.has(s.id), false);
  });

  it('registers again after an eviction (renewal answered 404)', async () => {
    const eureka = await fake();
    const s = setup(`${eureka.url}/eureka`, { heartbeatIntervalSeconds: 1 });
    s.kg.ready();
    await until(() => eureka.apps.get('CHECKOUT')?.has(s.id) === true, 3000, 'the registration');
    eureka.apps.get('CHECKOUT')?.delete(s.id);
    await until(() => eureka.apps.get('CHECKOUT')?.has(s.id) === true, 3000, 'the re-registration');
    await s.kg.shutdown('SIGTERM');
  });

  it("holds the propagation wait open for the clients' cache, within the budget", async () => {
    const eureka = await fake();
    const s = setup(
      `${eureka.url}/eureka`,
      { clientCacheMs: 600 },
      {},
      { propagation: { strategy: 'adaptive', quietPeriodMs: 50, minMs: 0, maxMs: 1500 } },
    );
    s.kg.ready();
    await until(() => eureka.apps.get('CHECKOUT')?.has(s.id) === true, 3000, 'the registration');
    const summary = await s.kg.shutdown('SIGTERM');
    const propagate = summary.phases.propagate ?? 0;
    assert.ok(propagate >= 550, `propagation lasted ${propagate} ms; the cache needs 600 ms`);
    assert.ok(propagate < 1500, `propagation lasted ${propagate} ms`);
    assert.equal(summary.outcome, 'clean');
    assert.deepEqual(s.warnings, []);
  });

  it('warns when the cache time does not fit the propagation budget, and never waits past it', async () => {
    const eureka = await fake();
    const s = setup(`${eureka.url}/eureka`, { clientCacheMs: 30_000 });
    s.kg.ready();
    await until(() => eureka.apps.get('CHECKOUT')?.has(s.id) === true, 3000, 'the registration');
    const summary = await s.kg.shutdown('SIGTERM');
    assert.ok((summary.phases.propagate ?? Infinity) < 400, 'bounded by the 100 ms fixed propagation budget');
    assert.ok(
      s.warnings.some((w) => /registry:eureka: .*clientCacheMs 30000.*raise propagation.maxMs/.test(w)),
      s.warnings.join('\n'),
    );
    assert.equal(summary.outcome, 'clean', 'a short propagation wait is a warning, not a failure');
  });

  it('Eureka down: failed, exit 1, on budget', async () => {
    const eureka = await fake();
    const s = setup(`${eureka.url}/eureka`);
    s.kg.ready();
    await until(() => eureka.apps.get('CHECKOUT')?.has(s.id) === true, 3000, 'the registration');
    await eureka.down();
    assertFailedOnBudget(await s.kg.shutdown('SIGTERM'), s, 'eureka', 'failed');
  });

  it('Eureka hung: timeout, exit 1, on budget', async () => {
    const eureka = await fake();
    const s = setup(`${eureka.url}/eureka`);
    s.kg.ready();
    await until(() => eureka.apps.get('CHECKOUT')?.has(s.id) === true, 3000, 'the registration');
    eureka.fault('hang');
    assertFailedOnBudget(await s.kg.shutdown('SIGTERM'), s, 'eureka', 'timeout');
  });

  it('Eureka refusing the DELETE (500): failed, exit 1, on budget', async () => {
    const eureka = await fake();
    const s = setup(`${eureka.url}/eureka`);
    s.kg.ready();
    await until(() => eureka.apps.get('CHECKOUT')?.has(s.id) === true, 3000, 'the registration');
    eureka.fault({ status: 500, body: 'Internal Server Error' }, (r) => r.method === 'DELETE');
    assertFailedOnBudget(await s.kg.shutdown('SIGTERM'), s, 'eureka', 'failed');
    assert.equal(
      eureka.apps.get('CHECKOUT')?.get(s.id)?.status,
      'OUT_OF_SERVICE',
      'still taken out of service',
    );
  });

  it('rejects a URL that is not http(s), naming the variable', () => {
    assert.throws(
      () =>
        createEurekaRegistry({
          env: {
            KUBEGRACE_REGISTRY_EUREKA_URL: 'eureka:8761',
            KUBEGRACE_REGISTRY_SERVICE_NAME: 'x',
            KUBEGRACE_REGISTRY_PORT: '1',
          },
          address: '10.0.0.1',
        }),
      { message: 'KUBEGRACE_REGISTRY_EUREKA_URL must be an http:// or https:// URL, received "eureka:8761"' },
    );
    assert.throws(
      () =>
        createEurekaRegistry({
          url: 'http://e/eureka',
          serviceName: 'x',
          port: 1,
          address: '10.0.0.1',
          env: { KUBEGRACE_REGISTRY_EUREKA_HEARTBEAT_INTERVAL_SECONDS: '0' },
        }),
      {
        message:
          'KUBEGRACE_REGISTRY_EUREKA_HEARTBEAT_INTERVAL_SECONDS must be an integer from 1 to 2147483, received "0"',
      },
    );
  });
});

const real = realServer('KUBEGRACE_TEST_EUREKA_URL', 'Eureka server');
describe('Eureka registry against a real Eureka server', { skip: real.skip }, () => {
  it('registers and is gone after the shutdown', async () => {
    const url = (real.url as string).replace(/\/$/, '');
    const app = `KUBEGRACE-TEST-${process.pid}`;
    const s = setup(url, { serviceName: app });
    const lookup = async (): Promise<number> =>
      (await fetch(`${url}/apps/${app}/${s.id}`, { headers: { accept: 'application/json' } })).status;
    s.kg.ready();
    await until(async () => (await lookup()) === 200, 10_000, 'the registration');
    const summary = await s.kg.shutdown('SIGTERM');
    assert.equal(summary.outcome, 'clean');
    await delay(100);
    assert.equal(await lookup(), 404);
  });
});
