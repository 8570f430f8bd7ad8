/**
 * examples/websocket: WebSocket clients and HTTP keep-alive load on the same server; on SIGTERM the
 * sockets stay open through the propagation wait, then every client gets 1001 Going Away; HTTP loses
 * nothing; exit 0.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { loadThenTerminate, startExample, within, type RunningExample } from './harness.js';

interface Client {
  readonly socket: WebSocket;
  readonly closed: Promise<{ code: number; reason: string; at: number }>;
  readonly messages: string[];
}

function connect(port: number): Promise<Client> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}/`);
  const messages: string[] = [];
  socket.on('message', (data: Buffer) => messages.push(data.toString('utf8')));
  const closed = new Promise<{ code: number; reason: string; at: number }>((resolve) =>
    socket.on('close', (code, reason) => resolve({ code, reason: reason.toString('utf8'), at: Date.now() })),
  );
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve({ socket, closed, messages }));
    socket.once('error', reject);
  });
}

describe('examples/websocket', () => {
  let example: RunningExample | undefined;
  after(() => example?.kill());

  it('closes every WebSocket with 1001 after the propagation wait and loses no HTTP request', async () => {
    example = await startExample('websocket');
    const clients = await Promise.all(Array.from({ length: 5 }, () => connect(example!.port)));
    clients[0]?.socket.send('hello');
    await delay(100);
    assert.ok(clients[0]?.messages.includes('hello'), 'the echo works');

    const { load, exit, signalledAt } = await loadThenTerminate(example, {
      path: '/',
      concurrency: 6,
      warmupMs: 300,
    });
    const closes = await within(Promise.all(clients.map((c) => c.closed)), 5000, 'WebSocket closes');

    assert.deepEqual(load.failures, [], example.output());
    assert.ok(load.okAfterSignal > 0, 'HTTP requests sent after SIGTERM must still be served');
    for (const close of closes) {
      assert.equal(close.code, 1001, `close code ${close.code} (${close.reason})`);
      assert.equal(close.reason, 'server restarting, reconnect');
      // Not at SIGTERM: the sockets outlive the signal by at least the quiet period (300 ms).
      assert.ok(close.at - signalledAt >= 300, `closed ${close.at - signalledAt} ms after SIGTERM`);
    }
    assert.equal(exit.code, 0, example.output());
    assert.equal(example.summary()?.outcome, 'clean', example.output());
  });
});
