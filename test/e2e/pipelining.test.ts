/**
 * Pipelined HTTP/1.1 requests through a shutdown: a real service in a child process, a real SIGTERM,
 * and a raw socket that writes five requests in one write. Every request Node parsed is answered;
 * only the last response says `Connection: close`.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { faultServices } from '../support/fault-child.js';

const service = faultServices();

interface Pipelined {
  /** Resolves with every response the socket carried, in order, once the server closed it. */
  readonly responses: Promise<{ status: number; connection: string | undefined; body: string }[]>;
}

/** Five (or `count`) GETs of `path` written in one `write` on one socket. */
function pipeline(port: number, path: string, count = 5): Pipelined {
  const socket = connect(port, '127.0.0.1');
  let received = '';
  socket.setEncoding('latin1').on('data', (chunk: string) => (received += chunk));
  socket.on('error', () => {});
  socket.once('connect', () => {
    socket.write(
      Array.from({ length: count }, (_, i) => `GET ${path}&n=${i} HTTP/1.1\r\nHost: x\r\n\r\n`).join(''),
    );
  });
  const responses = new Promise<string>((resolve) => socket.on('close', () => resolve(received))).then(
    (text) =>
      text
        .split(/(?=HTTP\/1\.1 \d{3} )/)
        .filter((part) => part !== '')
        .map((part) => {
          const [head = '', body = ''] = part.split('\r\n\r\n');
          return {
            status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]),
            connection: /\r\nconnection: ([^\r]*)/i.exec(head)?.[1]?.toLowerCase(),
            body,
          };
        }),
  );
  return { responses };
}

function assertAllAnswered(responses: Awaited<Pipelined['responses']>): void {
  assert.deepEqual(
    responses.map((r) => r.status),
    [200, 200, 200, 200, 200],
    'every pipelined request is answered',
  );
  // The others say nothing (HTTP/1.1 keeps the connection by default) or keep-alive.
  assert.deepEqual(
    responses.map((r) => r.connection === 'close'),
    [false, false, false, false, true],
    'only the last response says Connection: close',
  );
  for (const r of responses) assert.equal(r.body, 'ok');
}

describe('pipelined HTTP/1.1 requests through a shutdown (real child, real SIGTERM, raw socket)', () => {
  it('five requests pipelined 100 ms before SIGTERM: five responses, only the last says close; exit 0, clean', async () => {
    const child = await service({
      KUBEGRACE_PROPAGATION_STRATEGY: 'fixed',
      KUBEGRACE_PROPAGATION_DELAY_MS: '300',
    });
    const { responses } = pipeline(child.port, '/work?ms=400');
    await delay(100);
    child.process.kill('SIGTERM');
    assertAllAnswered(await responses);
    const exit = await child.exited;
    assert.equal(exit.code, 0);
    const summary = child.summary();
    assert.equal(summary?.outcome, 'clean');
    assert.equal(summary?.forced, 0);
  });

  it('five requests pipelined during the propagation wait: five responses, only the last says close; exit 0, clean', async () => {
    const child = await service({
      KUBEGRACE_PROPAGATION_STRATEGY: 'fixed',
      KUBEGRACE_PROPAGATION_DELAY_MS: '1500',
    });
    child.process.kill('SIGTERM');
    await child.waitFor((e) => e.event === 'phase' && e.phase === 'propagate' && e.status === 'start');
    await delay(100);
    const { responses } = pipeline(child.port, '/work?ms=200');
    assertAllAnswered(await responses);
    const exit = await child.exited;
    assert.equal(exit.code, 0);
    assert.equal(child.summary()?.outcome, 'clean');
  });

  it('five requests pipelined during the drain with rejectDuringDrain: five 503s, only the last says close', async () => {
    const child = await service({
      KUBEGRACE_PROPAGATION_STRATEGY: 'fixed',
      KUBEGRACE_PROPAGATION_DELAY_MS: '300',
      KUBEGRACE_DRAIN_REJECT_DURING_DRAIN: 'true',
    });
    // A request in flight keeps the drain open while the pipeline is answered.
    const holder = pipeline(child.port, '/work?ms=1500', 1);
    await delay(100);
    child.process.kill('SIGTERM');
    await child.waitFor((e) => e.event === 'phase' && e.phase === 'propagate' && e.status === 'start');
    // Connected during the propagation wait (the listener closes at the drain); a socket this young
    // is not ended as idle before it sends its first request.
    const socket = connect(child.port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    let received = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => (received += chunk));
    socket.on('error', () => {});
    const closed = new Promise((resolve) => socket.on('close', resolve));
    await child.waitFor((e) => e.event === 'phase' && e.phase === 'drain' && e.status === 'start');
    socket.write(Array.from({ length: 5 }, () => 'GET /work?ms=0 HTTP/1.1\r\nHost: x\r\n\r\n').join(''));
    await closed;
    const heads = received.split(/(?=HTTP\/1\.1 \d{3} )/).filter((p) => p !== '');
    assert.deepEqual(
      heads.map((h) => Number(/^HTTP\/1\.1 (\d{3})/.exec(h)?.[1])),
      [503, 503, 503, 503, 503],
      received,
    );
    assert.deepEqual(
      heads.map((h) => /\r\nconnection: close\r\n/i.test(h)),
      [false, false, false, false, true],
      'only the last 503 says Connection: close',
    );
    assert.equal((await holder.responses)[0]?.status, 200);
    assert.equal((await child.exited).code, 0);
  });
});
