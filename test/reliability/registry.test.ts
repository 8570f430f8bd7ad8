/**
 * Fault matrix, the service registry: a real service in a child process registered in a fake Consul
 * (test/support/fake-registries.ts speaks Consul's HTTP API), then down, slow or refusing its token
 * when SIGTERM comes. The deregistration fails inside the unready budget, the shutdown goes on, and
 * the exit code and the metrics say the instance may still be listed.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { metricValue, startFaultService, type FaultChild } from '../support/fault-child.js';
import { get } from '../support/http.js';
import { startFakeConsul, until, type FakeConsul } from '../support/fake-registries.js';

const children = new Set<FaultChild>();
const fakes = new Set<FakeConsul>();
after(async () => {
  for (const c of children) c.kill();
  for (const f of fakes) await f.close();
});

const UNREADY_MS = 2000;

async function setup(
  options: { readonly serverToken?: string; readonly clientToken?: string } = {},
): Promise<{ consul: FakeConsul; child: FaultChild }> {
  const consul = await startFakeConsul(
    options.serverToken === undefined ? {} : { token: options.serverToken },
  );
  fakes.add(consul);
  const child = await startFaultService({
    FAULT_REGISTRY: 'consul',
    KUBEGRACE_UNREADY_TIMEOUT_MS: String(UNREADY_MS),
    KUBEGRACE_PROPAGATION_QUIET_PERIOD_MS: '200',
    // A client or two before SIGTERM is no arrival rate: bound the wait, which is not under test here.
    KUBEGRACE_PROPAGATION_MAX_MS: '400',
    KUBEGRACE_REGISTRY_CONSUL_URL: consul.url,
    KUBEGRACE_REGISTRY_SERVICE_NAME: 'web',
    KUBEGRACE_REGISTRY_INSTANCE_ID: 'web-1',
    KUBEGRACE_REGISTRY_ADDRESS: '127.0.0.1',
    KUBEGRACE_REGISTRY_PORT: '8080',
    KUBEGRACE_REGISTRY_CALL_TIMEOUT_MS: '300',
    KUBEGRACE_REGISTRY_RETRIES: '2',
    ...(options.clientToken === undefined ? {} : { KUBEGRACE_REGISTRY_CONSUL_TOKEN: options.clientToken }),
  });
  children.add(child);
  return { consul, child };
}

async function shutDown(child: FaultChild, outcome: 'failed' | 'timeout'): Promise<void> {
  const inflight = get(child.port, '/work?ms=700');
  await delay(100);
  const sentAt = Date.now();
  child.process.kill('SIGTERM');
  assert.equal((await inflight).status, 200, 'the request accepted before the fault is served');
  const exit = await child.exited;
  assert.equal(exit.code, 1, 'a registration that may be stale is never a clean exit');
  assert.ok(exit.at - sentAt < UNREADY_MS + 4000, `exited ${exit.at - sentAt} ms after SIGTERM`);
  const summary = child.summary();
  assert.equal(summary?.outcome, 'failed');
  assert.deepEqual(summary?.failures, ['unready:registry:consul:error']);
  const unready = summary?.phases.unready ?? Infinity;
  assert.ok(unready <= UNREADY_MS + 300, `unready took ${unready} ms against its ${UNREADY_MS} ms budget`);
  const metrics = child.finalMetrics();
  assert.equal(metricValue(metrics, 'kubegrace_shutdowns_total', { outcome: 'failed' }), 1);
  assert.equal(
    metricValue(metrics, 'kubegrace_registry_deregistration_duration_seconds_count', {
      registry: 'consul',
      outcome,
    }),
    1,
  );
}

describe('fault matrix: service registry', () => {
  it('registry down at SIGTERM: deregistration failed inside the unready budget; exit 1', async () => {
    const { consul, child } = await setup();
    await until(() => consul.services.has('web-1'), 5000, 'the registration');
    await consul.down();
    await shutDown(child, 'failed');
  });

  it('registry slow (answers nothing): every call cut at its time limit; deregistration timeout; exit 1', async () => {
    const { consul, child } = await setup();
    await until(() => consul.services.has('web-1'), 5000, 'the registration');
    consul.fault('hang');
    await shutDown(child, 'timeout');
  });

  it('wrong credentials (403): registration warned, deregistration failed; exit 1', async () => {
    const { consul, child } = await setup({ serverToken: 'right', clientToken: 'wrong' });
    await child.waitFor((e) => e.event === 'warning' && /registration failed/.test(String(e.message)), 5000);
    assert.equal(consul.services.size, 0);
    await shutDown(child, 'failed');
    assert.ok(
      consul.requests.some((r) => r.path.startsWith('/v1/agent/service/deregister/')),
      'it still tried to deregister',
    );
  });
});
