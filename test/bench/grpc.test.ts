import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createEndpointTable } from '../../src/cli/demo/endpoint-table.js';
import type { LoadOptions } from '../../src/cli/demo/load.js';
import { killAllPods, startPod, type Pod } from '../../src/cli/demo/pod.js';
import { startGrpcLoad, TICKS } from '../../bench/loads/grpc.js';

const service = (module: string): string =>
  fileURLToPath(new URL(`../../bench/services/${module}.ts`, import.meta.url));

function start(module: string): Promise<Pod> {
  return startPod({
    name: module,
    kind: module,
    script: service(module),
    graceSeconds: 30,
    env: { KUBEGRACE_PROBES_PORT: '0', KUBEGRACE_PROBES_HOST: '127.0.0.1' },
  });
}

const loadOptions = (table: ReturnType<typeof createEndpointTable>, maxDurationMs: number): LoadOptions => ({
  agent: table.agent,
  freshAgent: table.freshAgent,
  endpointOf: table.endpointOf,
  concurrency: 4,
  newConnectionsPerSecond: 10,
  requestMs: 5,
  maxDurationMs,
});

after(killAllPods);

describe('bench gRPC services and clients', { timeout: 30_000 }, () => {
  for (const module of ['grpc-kubegrace', 'grpc-naive', 'grpc-sleep']) {
    it(`${module}: unary and streaming calls and new clients go through the endpoint table and end OK`, async () => {
      const pod = await start(module);
      const table = createEndpointTable();
      try {
        await pod.waitReady();
        table.add(pod.endpoint);
        const load = startGrpcLoad(loadOptions(table, 600), table);
        await load.done;
        assert.deepEqual(
          load.failures.map((f) => `${f.kind}: ${f.details}`),
          [],
        );
        assert.ok(
          load.records.every((r) => r.endpoint === pod.name),
          'every call went to the pod',
        );
        assert.ok(
          load.records.some((r) => r.workMs === 5 * TICKS && r.loop !== -1),
          'server-streaming calls',
        );
        assert.ok(
          load.records.some((r) => r.loop === -1),
          'new clients',
        );
        // Present, not counted: how many fit in 600 ms depends on the machine (a loaded one managed
        // fewer than 10 while the first channel connected).
        assert.ok(
          load.records.some((r) => r.workMs === 5 && r.loop !== -1),
          'unary loops',
        );
        assert.ok(table.connectionsOpened(pod.endpoint) > 1, 'new channels are counted at the Service');
      } finally {
        table.destroy();
        pod.kill();
      }
    });
  }

  it('a call to a listed pod that is gone fails UNAVAILABLE and is counted with its pod', async () => {
    const pod = await start('grpc-naive');
    const table = createEndpointTable();
    try {
      await pod.waitReady();
      table.add(pod.endpoint);
      // tryShutdown() on SIGTERM: the pod leaves while the Service still lists it.
      assert.equal((await pod.terminate()).exitCode, 0);
      const load = startGrpcLoad({ ...loadOptions(table, 300), newConnectionsPerSecond: 0 }, table);
      await load.done;
      assert.ok(load.failures.length > 0, 'calls failed');
      assert.deepEqual(
        new Set(load.failures.map((f) => f.kind.replace(/^stream /, ''))),
        new Set(['UNAVAILABLE']),
      );
      assert.ok(load.failures.every((f) => f.endpoint === pod.name));
      assert.equal(load.records.filter((r) => r.failure === undefined).length, 0, 'no call succeeded');
    } finally {
      table.destroy();
      pod.kill();
    }
  });
});
