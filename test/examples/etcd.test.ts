/**
 * examples/etcd against a real etcd (test/support/etcd.ts; Debian etcd-server): the instance key
 * appears once the service is ready; on SIGTERM it is deleted at the start of the shutdown while the
 * service still answers the requests that keep arriving; nothing fails; exit 0. Skipped loudly when
 * etcd is missing — except under CI, where that fails.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Etcd3 } from 'etcd3';
import { etcdSkipReason, startEtcd, type EtcdServer } from '../support/etcd.js';
import { startExample, startLoad, within, type RunningExample } from './harness.js';

const skip = etcdSkipReason();

describe('examples/etcd', { skip }, () => {
  let etcd: EtcdServer | undefined;
  let client: Etcd3 | undefined;
  let example: RunningExample | undefined;

  before(async () => {
    etcd = await startEtcd();
    client = new Etcd3({ hosts: etcd.url });
  });
  after(async () => {
    example?.kill();
    client?.close();
    await etcd?.stop();
  });

  it('registers when ready and deregisters at the start of the shutdown, losing no request', async () => {
    example = await startExample('etcd', {
      KUBEGRACE_REGISTRY_ETCD_ENDPOINTS: etcd!.url,
      KUBEGRACE_REGISTRY_SERVICE_NAME: 'smoke',
      POD_NAME: 'smoke-0',
    });
    const key = '/services/smoke/smoke-0';
    const deadline = Date.now() + 10_000;
    let value: string | null = null;
    while ((value = await client!.get(key).string()) === null && Date.now() < deadline) await delay(50);
    assert.ok(value, `key ${key} never appeared:\n${example.output()}`);
    assert.equal((JSON.parse(value) as { port: number }).port, example.port);

    const watcher = await client!.watch().key(key).create();
    const deleted = new Promise<number>((resolve) => watcher.on('delete', () => resolve(Date.now())));
    const load = startLoad(example.port, { concurrency: 6 });
    await delay(400);
    example.process.kill('SIGTERM');
    load.markSignal();
    const deletedAt = await within(deleted, 5000, 'deregistration');
    // Clients that learned of the delete move away; stragglers keep arriving for a while.
    await delay(300);
    const result = await within(load.stop(), 10_000, 'requests in flight');
    const exit = await within(example.exited, 20_000, 'exit after SIGTERM');
    await watcher.cancel();

    assert.deepEqual(result.failures, [], example.output());
    assert.ok(result.okAfterSignal > 0, 'requests after SIGTERM must still be served');
    assert.ok(deletedAt < exit.at, 'deregistered before exit');
    assert.equal(await client!.get(key).string(), null);
    assert.equal(exit.code, 0, example.output());
    assert.equal(example.summary()?.outcome, 'clean', example.output());
  });
});
