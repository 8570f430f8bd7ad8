import assert from 'node:assert/strict';
import * as http from 'node:http';
import { describe, it } from 'node:test';
import { createRequestTracker, type RequestTracker } from '../../src/drain/requests.js';
import {
  closeHard,
  delay,
  fetchVia,
  listen,
  rawClient,
  recordingObserver,
  trackerWithFlags,
} from '../support/drain-fixtures.js';

/** A server that tracks every request the way the express middleware does, and holds /slow ones. */
async function trackedServer(tracker: RequestTracker, onApp?: (req: http.IncomingMessage) => void) {
  const held: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    if (tracker.track(req, res)) return;
    // Tracking twice is harmless and says nothing new.
    assert.equal(tracker.track(req, res), false);
    onApp?.(req);
    if (req.url === '/slow') held.push(res);
    else res.end('ok');
  });
  const port = await listen(server);
  const release = (): void => {
    for (const res of held.splice(0)) res.end('slow');
  };
  return { server, port, release, held };
}

describe('request tracker', () => {
  it('counts requests in flight up and down, once per request', async () => {
    const observer = recordingObserver();
    const { tracker } = trackerWithFlags({ observer });
    const { server, port, release, held } = await trackedServer(tracker);
    const agent = new http.Agent({ keepAlive: true });
    try {
      assert.equal(tracker.inflight, 0);
      const slow = [1, 2, 3].map(() =>
        fetchVia(http.request, { port, host: '127.0.0.1', path: '/slow', agent }),
      );
      while (held.length < 3) await delay(5);
      assert.equal(tracker.inflight, 3);
      const fast = await fetchVia(http.request, { port, host: '127.0.0.1', path: '/', agent });
      assert.equal(fast.status, 200);
      await delay(10);
      assert.equal(tracker.inflight, 3, 'the finished request is no longer counted');
      release();
      const done = await Promise.all(slow);
      assert.deepEqual(
        done.map((r) => r.body),
        ['slow', 'slow', 'slow'],
      );
      await delay(10);
      assert.equal(tracker.inflight, 0);
      assert.deepEqual(observer.requests, { started: 4, finished: 4 });
    } finally {
      agent.destroy();
      await closeHard(server);
    }
  });

  it('calls onDone once when the request stops being in flight, for the first track() only', async () => {
    const { tracker } = trackerWithFlags();
    const done: string[] = [];
    const server = http.createServer((req, res) => {
      tracker.track(req, res, () => done.push(`first ${req.url}`));
      tracker.track(req, res, () => done.push(`second ${req.url}`));
      res.end('ok');
    });
    const port = await listen(server);
    try {
      await fetchVia(http.request, { port, host: '127.0.0.1', path: '/a', agent: false });
      await delay(10);
      assert.deepEqual(done, ['first /a']);
    } finally {
      await closeHard(server);
    }
  });

  it('stops counting a request whose client went away', async () => {
    const { tracker } = trackerWithFlags();
    const { server, port, held } = await trackedServer(tracker);
    try {
      const client = await rawClient(port);
      client.socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
      while (held.length < 1) await delay(5);
      assert.equal(tracker.inflight, 1);
      client.socket.destroy();
      await delay(50);
      assert.equal(tracker.inflight, 0);
    } finally {
      await closeHard(server);
    }
  });

  it('idle(signal) resolves when the last request finishes, or when the signal aborts', async () => {
    const { tracker } = trackerWithFlags();
    const { server, port, release, held } = await trackedServer(tracker);
    const agent = new http.Agent({ keepAlive: true });
    try {
      await tracker.idle(new AbortController().signal); // nothing in flight: at once
      const slow = fetchVia(http.request, { port, host: '127.0.0.1', path: '/slow', agent });
      while (held.length < 1) await delay(5);

      let idle = false;
      const waiting = tracker.idle(new AbortController().signal).then(() => (idle = true));
      await delay(50);
      assert.equal(idle, false, 'a request is still in flight');
      release();
      await slow;
      await waiting;
      assert.equal(tracker.inflight, 0);

      const again = fetchVia(http.request, { port, host: '127.0.0.1', path: '/slow', agent });
      while (held.length < 1) await delay(5);
      const controller = new AbortController();
      const aborted = tracker.idle(controller.signal);
      controller.abort();
      await aborted;
      assert.equal(tracker.inflight, 1, 'resolved by the signal, not by the request');
      release();
      await again;
    } finally {
      agent.destroy();
      await closeHard(server);
    }
  });

  it('sets Connection: close during shutdown, and on in-flight responses at shutdownStarted()', async () => {
    const { tracker, flags } = trackerWithFlags();
    const { server, port, release, held } = await trackedServer(tracker);
    const agent = new http.Agent({ keepAlive: true });
    try {
      const before = await fetchVia(http.request, { port, host: '127.0.0.1', path: '/', agent });
      assert.equal(before.headers.connection, 'keep-alive');

      const inflight = fetchVia(http.request, { port, host: '127.0.0.1', path: '/slow', agent });
      while (held.length < 1) await delay(5);
      flags.shuttingDown = true;
      tracker.shutdownStarted();
      release();
      assert.equal((await inflight).headers.connection, 'close');

      const during = await fetchVia(http.request, { port, host: '127.0.0.1', path: '/', agent });
      assert.equal(during.status, 200);
      assert.equal(during.headers.connection, 'close');
    } finally {
      agent.destroy();
      await closeHard(server);
    }
  });

  it('with rejectDuringDrain answers 503 + Retry-After during the drain and keeps the app out', async () => {
    const { tracker, flags } = trackerWithFlags({ rejectDuringDrain: true });
    let appCalls = 0;
    const { server, port } = await trackedServer(tracker, () => appCalls++);
    try {
      flags.shuttingDown = true;
      const propagating = await fetchVia(http.request, { port, host: '127.0.0.1', path: '/', agent: false });
      assert.equal(propagating.status, 200, 'served normally before the drain');
      flags.draining = true;
      const rejected = await fetchVia(http.request, {
        port,
        host: '127.0.0.1',
        path: '/',
        method: 'POST',
        agent: false,
        headers: { 'content-length': '5' },
      });
      assert.equal(rejected.status, 503);
      assert.equal(rejected.headers['retry-after'], '1');
      assert.equal(rejected.headers.connection, 'close');
      assert.equal(appCalls, 1);
      await delay(10);
      assert.equal(tracker.inflight, 0);
    } finally {
      await closeHard(server);
    }
  });

  it('rejects a retryAfterSeconds that is not a non-negative integer', () => {
    assert.throws(
      () =>
        createRequestTracker({
          isShuttingDown: () => false,
          isDraining: () => false,
          rejectDuringDrain: true,
          retryAfterSeconds: -1,
        }),
      { code: 'ERR_KUBEGRACE_INVALID_OPTION', message: /retryAfterSeconds.*received -1/ },
    );
  });
});
