import assert from 'node:assert/strict';
import { get } from 'node:http';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { createEndpointTable } from '../../src/cli/demo/endpoint-table.js';
import type { LoadOptions } from '../../src/cli/demo/load.js';
import { killAllPods, startPod, type Pod } from '../../src/cli/demo/pod.js';
import { startHttp2Load } from '../../bench/loads/http2.js';
import { pacingOf } from '../../bench/loads/realtime.js';
import { startWebSocketLoad } from '../../bench/loads/websocket.js';

const TOOLS = ['kubegrace', 'naive', 'sleep', 'terminus', 'lightship', 'http-terminator'] as const;

const service = (tool: string): string =>
  fileURLToPath(new URL(`../../bench/services/${tool}.ts`, import.meta.url));

function start(
  tool: string,
  protocol: 'http1' | 'ws' | 'h2',
  env: Record<string, string> = {},
): Promise<Pod> {
  return startPod({
    name: `${tool}-${protocol}`,
    kind: tool,
    script: service(tool),
    graceSeconds: 30,
    env: { BENCH_PROTOCOL: protocol, KUBEGRACE_PROBES_PORT: '0', KUBEGRACE_PROBES_HOST: '127.0.0.1', ...env },
  });
}

function status(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
}

after(killAllPods);

describe('bench services and clients', { timeout: 20_000 }, () => {
  it('every tool starts, turns ready the way its README says, and serves /work', async () => {
    const pods = await Promise.all(TOOLS.map((tool) => start(tool, 'http1')));
    try {
      await Promise.all(pods.map((pod) => pod.waitReady()));
      const answers = await Promise.all(pods.map((pod) => status(pod.endpoint.port, '/work?ms=1')));
      assert.deepEqual(
        answers,
        TOOLS.map(() => 200),
      );
    } finally {
      for (const pod of pods) pod.kill();
    }
  });

  for (const protocol of ['ws', 'h2'] as const) {
    it(`the ${protocol === 'ws' ? 'WebSocket' : 'HTTP/2'} clients exchange with a pod through the endpoint table`, async () => {
      const pod = await start('kubegrace', protocol);
      const table = createEndpointTable();
      try {
        await pod.waitReady();
        table.add(pod.endpoint);
        const options: LoadOptions = {
          agent: table.agent,
          freshAgent: table.freshAgent,
          endpointOf: table.endpointOf,
          concurrency: 4,
          newConnectionsPerSecond: 20,
          requestMs: 5,
          maxDurationMs: 400,
        };
        const load = protocol === 'ws' ? startWebSocketLoad(options, table) : startHttp2Load(options, table);
        await load.done;
        assert.ok(load.records.length > 20, `records: ${load.records.length}`);
        assert.deepEqual(
          load.records.filter((r) => r.failure !== undefined).map((r) => r.failure),
          [],
        );
        assert.ok(load.records.every((r) => r.endpoint === pod.name));
        assert.ok(
          load.records.some((r) => r.loop === -1),
          'new clients arrived too',
        );
      } finally {
        table.destroy();
        pod.kill();
      }
    });
  }

  it('the realtime scenario: a kubegrace pod reports its paced and window-end closes, which add up', async () => {
    const pod = await start('kubegrace', 'ws', {
      BENCH_PACING: '1',
      KUBEGRACE_PROPAGATION_STRATEGY: 'fixed',
      KUBEGRACE_PROPAGATION_DELAY_MS: '100',
      KUBEGRACE_DRAIN_PACING_WINDOW_MS: '1000',
    });
    const sockets: WebSocket[] = [];
    try {
      await pod.waitReady();
      const closes: number[] = [];
      for (let i = 0; i < 200; i++) {
        const ws = new WebSocket(`ws://127.0.0.1:${String(pod.endpoint.port)}/`);
        ws.on('error', () => {});
        ws.on('close', (code) => closes.push(code));
        sockets.push(ws);
      }
      await Promise.all(sockets.map((ws) => new Promise((resolve) => ws.once('open', resolve))));
      const exit = await pod.terminate();
      assert.equal(exit.exitCode, 0);
      const pacing = pacingOf(pod.events);
      assert.ok(pacing, JSON.stringify(pod.events.slice(-5)));
      const { paced, windowEnd } = pacing;
      assert.equal(
        paced + windowEnd,
        200,
        `paced ${String(paced)}, at the window's end ${String(windowEnd)}`,
      );
      assert.ok(paced > 0, 'a 1 s window over 200 sockets closes some in their slots');
      assert.deepEqual([...new Set(closes)], [1001]);
    } finally {
      for (const ws of sockets) ws.terminate();
      pod.kill();
    }
  });
});
