/**
 * Fault matrix, exhausted resources: file descriptors (EMFILE while draining, under a real
 * `ulimit -n`) and management-port connections held by a slowloris client.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { metricValue, startFaultService, type FaultChild } from '../support/fault-child.js';
import { get } from '../support/http.js';

const children = new Set<FaultChild>();
const sockets = new Set<Socket>();
after(() => {
  for (const c of children) c.kill();
  for (const s of sockets) s.destroy();
});

/** A socket that records when (and whether) the server closed it and what it answered. */
function open(port: number): { socket: Socket; closedAt: () => number | undefined; received: () => string } {
  const socket = connect(port, '127.0.0.1');
  sockets.add(socket);
  let closedAt: number | undefined;
  let received = '';
  socket.on('error', () => {});
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  socket.on('close', () => (closedAt ??= Date.now()));
  return { socket, closedAt: () => closedAt, received: () => received };
}

/** Sends a request line, then one more header line every `everyMs`, never the blank line. */
function slowloris(port: number, everyMs = 400): ReturnType<typeof open> & { stop(): void } {
  const s = open(port);
  s.socket.write('GET /livez HTTP/1.1\r\nHost: x\r\n');
  let n = 0;
  const timer = setInterval(() => {
    if (!s.socket.destroyed) s.socket.write(`X-Slow-${n++}: y\r\n`);
  }, everyMs);
  s.socket.on('close', () => clearInterval(timer));
  return { ...s, stop: () => clearInterval(timer) };
}

describe('fault matrix: exhausted resources', () => {
  it('EMFILE while draining: no crash, requests accepted before are served, the process exits 0 on time', async () => {
    const limit = 64;
    const child = await startFaultService(
      {
        KUBEGRACE_PROPAGATION_STRATEGY: 'fixed',
        KUBEGRACE_PROPAGATION_DELAY_MS: '1500',
        FAULT_APP_ERROR_LISTENER: '1',
      },
      { fdLimit: limit },
    );
    children.add(child);
    assert.ok(child.fds < limit - 20, `${child.fds} descriptors open at start under ulimit -n ${limit}`);
    const inflight = get(child.port, '/work?ms=1200');
    await delay(100);
    const sentAt = Date.now();
    child.process.kill('SIGTERM');
    await child.waitFor((e) => e.event === 'phase' && e.phase === 'propagate' && e.status === 'start');
    // Open connections until accept fails: more than the descriptors left.
    const flood = Array.from({ length: limit }, () => open(child.port));
    await delay(500);
    const refused = flood.filter((s) => s.closedAt() !== undefined).length;
    assert.ok(refused > 0, 'some connections were closed unaccepted: accept() hit EMFILE');
    assert.ok(refused < flood.length, 'the connections accepted before the limit stay open');
    assert.equal(child.process.exitCode, null, 'the process is still running');
    assert.equal((await inflight).status, 200, 'the request accepted before the fault is served');
    const exit = await child.exited;
    assert.equal(exit.code, 0, child.stderr.join(''));
    assert.ok(exit.at - sentAt < 6000, `exited ${exit.at - sentAt} ms after SIGTERM`);
    const summary = child.summary();
    assert.equal(summary?.outcome, 'clean');
    // Every connection that was accepted ended with FIN at the drain (idle), none was forced.
    assert.ok(flood.every((s) => s.closedAt() !== undefined));
    const metrics = child.finalMetrics();
    assert.equal(metricValue(metrics, 'kubegrace_shutdowns_total', { outcome: 'clean' }), 1);
    assert.equal(metricValue(metrics, 'kubegrace_connections_closed_total', { reason: 'forced' }) ?? 0, 0);
    // libuv closes the connections it cannot accept; Node reports nothing, so neither can the app.
    assert.equal(child.events.filter((e) => e.event === 'server-error').length, 0);
  });

  it('a slowloris client on the management port: probes still answer, it gets 408, and it cannot hold the exit', async () => {
    const child = await startFaultService({ KUBEGRACE_PROPAGATION_QUIET_PERIOD_MS: '200' });
    children.add(child);
    const slow = Array.from({ length: 20 }, () => slowloris(child.managementPort));
    await delay(300);
    for (const path of ['/readyz', '/livez', '/startupz']) {
      const startedAt = performance.now();
      const { status } = await get(child.managementPort, path, { timeoutMs: 3000 });
      const took = performance.now() - startedAt;
      assert.equal(status, 200, path);
      assert.ok(took < 1000, `${path} answered in ${took.toFixed(0)} ms beside 20 slowloris connections`);
    }
    // headersTimeout (5 s), checked every second.
    const until = Date.now() + 9000;
    while (slow.some((s) => s.closedAt() === undefined) && Date.now() < until) await delay(200);
    for (const s of slow) {
      assert.ok(s.closedAt() !== undefined, 'cut off by the header timeout');
      assert.match(s.received(), /^HTTP\/1\.1 408 Request Timeout\r\n/);
    }
    // Fresh ones, held across the shutdown.
    const held = Array.from({ length: 10 }, () => slowloris(child.managementPort));
    await delay(200);
    const sentAt = Date.now();
    child.process.kill('SIGTERM');
    const exit = await child.exited;
    assert.equal(exit.code, 0);
    assert.ok(exit.at - sentAt < 3000, `exited ${exit.at - sentAt} ms after SIGTERM`);
    assert.equal(child.summary()?.outcome, 'clean');
    for (const s of held) s.stop();
  });
});
