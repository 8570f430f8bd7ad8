import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as https from 'node:https';
import { once } from 'node:events';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { describe, it } from 'node:test';
import { createHttpDrainer } from '../../src/drain/http.js';
import { createTrafficActivity } from '../../src/propagation/activity.js';
import {
  closeHard,
  connectOutcome,
  delay,
  fetchVia,
  listen,
  phaseContext,
  rawClient,
  recordingObserver,
  selfSignedCert,
  trackerWithFlags,
} from '../support/drain-fixtures.js';

describe('http drainer', () => {
  it('keep-alive clients under continuous load see zero failed requests across a shutdown', async () => {
    const observer = recordingObserver();
    const { tracker, flags } = trackerWithFlags({ observer });
    const activity = createTrafficActivity();
    const old = http.createServer((_req, res) => setTimeout(() => res.end('old'), 2));
    const replacement = http.createServer((_req, res) => res.end('new'));
    const drainer = createHttpDrainer(old, { tracker, activity, observer });
    const oldPort = await listen(old);
    const newPort = await listen(replacement);
    // The endpoint table of a kube-proxy-style client: it follows the pod's removal with a lag.
    let target = oldPort;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const failures: unknown[] = [];
    let served = 0;
    let oldAfterUnready = 0;
    const keptAliveAfterUnready: string[] = [];
    let running = true;
    const worker = async (): Promise<void> => {
      while (running) {
        const port = target;
        const sentDuringShutdown = flags.shuttingDown;
        try {
          const res = await fetchVia(http.request, { host: '127.0.0.1', port, path: '/', agent });
          assert.equal(res.status, 200);
          served++;
          if (port === oldPort && sentDuringShutdown) {
            oldAfterUnready++;
            if (res.headers.connection !== 'close')
              keptAliveAfterUnready.push(String(res.headers.connection));
          }
        } catch (error) {
          failures.push(error);
        }
      }
    };
    const workers = Array.from({ length: 8 }, worker);
    try {
      await delay(300);
      assert.ok(drainer.connections >= 4, `pooled connections before shutdown: ${drainer.connections}`);

      flags.shuttingDown = true;
      const unreadyAt = Date.now();
      await drainer.unready?.(phaseContext('unready').ctx);

      // The propagation wait: the listener stays open and a brand-new connection is served.
      await delay(150);
      const fresh = await fetchVia(http.request, {
        host: '127.0.0.1',
        port: oldPort,
        path: '/',
        agent: false,
      });
      assert.equal(fresh.status, 200);
      assert.equal(fresh.headers.connection, 'close');
      assert.ok(activity.lastConnectionAt >= unreadyAt, 'new connections are noted for the adaptive wait');
      await delay(350);

      // Traffic has moved away; the drain may begin once the last requests routed here are in.
      target = newPort;
      await delay(100);
      flags.draining = true;
      const drainPhase = phaseContext('drain');
      const drainStarted = Date.now();
      await drainer.drain?.(drainPhase.ctx);
      assert.ok(Date.now() - drainStarted < 1000, 'the drain finishes once the connections are closed');
      assert.equal(drainer.connections, 0);
      assert.deepEqual(drainPhase.forced, []);

      await delay(200);
      running = false;
      await Promise.all(workers);

      assert.deepEqual(failures, []);
      assert.ok(served > 200, `requests served: ${served}`);
      assert.ok(
        oldAfterUnready > 20,
        `old pod served ${oldAfterUnready} requests during the propagation wait`,
      );
      assert.deepEqual(keptAliveAfterUnready, [], 'every response after unready says Connection: close');
      assert.ok(observer.count('http1', 'response_boundary') > 0);
      assert.equal(observer.count('http1', 'forced'), 0);
      assert.equal(await connectOutcome(oldPort), 'ECONNREFUSED', 'the listener is closed after drain()');
      assert.equal(tracker.inflight, 0);
    } finally {
      running = false;
      await Promise.all(workers);
      agent.destroy();
      drainer.detach();
      await closeHard(old);
      await closeHard(replacement);
    }
  });

  it('a long request started before the shutdown completes with 200 and Connection: close', async () => {
    const { tracker, flags } = trackerWithFlags();
    const server = http.createServer((_req, res) => setTimeout(() => res.end('done'), 1500));
    const drainer = createHttpDrainer(server, { tracker, activity: createTrafficActivity() });
    const port = await listen(server);
    try {
      const started = Date.now();
      let answeredAt = 0;
      const long = fetchVia(http.request, {
        host: '127.0.0.1',
        port,
        path: '/',
        agent: new http.Agent({ keepAlive: true }),
      });
      void long.then(() => (answeredAt = Date.now()));
      await delay(100);
      flags.shuttingDown = true;
      await drainer.unready?.(phaseContext('unready').ctx);
      await delay(200);
      flags.draining = true;
      await drainer.drain?.(phaseContext('drain').ctx);
      const drainedAt = Date.now();
      const res = await long;
      assert.equal(res.status, 200);
      assert.equal(res.body, 'done');
      assert.equal(res.headers.connection, 'close');
      assert.ok(drainedAt - started >= 1400, 'the drain waited for the request');
      assert.ok(
        answeredAt > 0 && answeredAt <= drainedAt + 20,
        'the response arrived before the drain ended',
      );
    } finally {
      drainer.detach();
      await closeHard(server);
    }
  });

  it('an answer sent before its request body arrived reaches a client that sends the whole body first', async () => {
    // The handler answers at once (401, 415, 202) and never reads the 4 MB body. Closing the socket
    // with the body unread would make the kernel send RST: a client that writes its whole body before
    // it reads (Python's http.client, most raw clients) would fail with EPIPE and never see the answer.
    const size = 4 * 1024 * 1024;
    const { tracker, flags } = trackerWithFlags();
    const server = http.createServer((_req, res) => res.end('early answer'));
    const drainer = createHttpDrainer(server, { tracker, activity: createTrafficActivity() });
    const port = await listen(server);
    try {
      flags.shuttingDown = true;
      await drainer.unready?.(phaseContext('unready').ctx);
      const socket = net.connect(port, '127.0.0.1');
      let received = '';
      let failure: string | undefined;
      socket.setEncoding('latin1');
      socket.on('error', (error: NodeJS.ErrnoException) => (failure ??= error.code));
      await new Promise((resolve) => socket.once('connect', resolve));
      socket.pause(); // reads nothing until the whole body is out
      socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`);
      const chunk = Buffer.alloc(64 * 1024, 120);
      for (let sent = 0; sent < size && failure === undefined; sent += chunk.length) {
        if (!socket.write(chunk)) await Promise.race([once(socket, 'drain'), once(socket, 'close')]);
      }
      const ended = once(socket, 'end');
      socket.on('data', (text: string) => (received += text));
      socket.resume();
      await Promise.race([ended, once(socket, 'close')]);
      assert.equal(failure, undefined, 'the client sent its whole body without a reset');
      assert.match(received, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(received, /\r\nConnection: close\r\n/i);
      assert.match(received, /early answer$/);
      socket.destroy();
      flags.draining = true;
      const drain = phaseContext('drain');
      await drainer.drain?.(drain.ctx);
      assert.deepEqual(drain.forced, []);
    } finally {
      drainer.detach();
      await closeHard(server);
    }
  });

  it('a request pipelined behind a body answered early is not run: its connection can answer nothing more', async () => {
    // RFC 9112 §9.6: after a Connection: close answer no later request on the connection is
    // processed, and the client may send it again elsewhere; running it would run it twice.
    const { tracker, flags } = trackerWithFlags();
    const ran: string[] = [];
    const server = http.createServer((req, res) => {
      ran.push(req.url ?? '');
      res.end('early answer');
    });
    const drainer = createHttpDrainer(server, { tracker, activity: createTrafficActivity() });
    const port = await listen(server);
    try {
      flags.shuttingDown = true;
      await drainer.unready?.(phaseContext('unready').ctx);
      const client = await rawClient(port);
      const size = 256 * 1024;
      // All at once, as a pipelining client writes: the body and the next request end in one read.
      client.socket.end(
        Buffer.concat([
          Buffer.from(`POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`),
          Buffer.alloc(size, 120),
          Buffer.from('POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n'),
        ]),
      );
      await client.ended;
      assert.deepEqual(ran, ['/first'], 'the request behind the body was not run');
      assert.equal(client.received().match(/HTTP\/1\.1 /g)?.length, 1);
      flags.draining = true;
      const drain = phaseContext('drain');
      await drainer.drain?.(drain.ctx);
      assert.deepEqual(drain.forced, [1], 'counted: it was read and left unanswered');
      assert.match(
        drain.warnings.join('\n'),
        /1 request\(s\) pipelined on closing connections were left unanswered/,
      );
    } finally {
      drainer.detach();
      await closeHard(server);
    }
  });

  it('ends idle keep-alive sockets with FIN at the drain, not with a reset', async () => {
    const observer = recordingObserver();
    const { tracker, flags } = trackerWithFlags();
    const server = http.createServer((_req, res) => res.end('ok'));
    server.keepAliveTimeout = 60_000;
    const drainer = createHttpDrainer(server, { tracker, activity: createTrafficActivity(), observer });
    const port = await listen(server);
    try {
      const clients = await Promise.all([rawClient(port), rawClient(port)]);
      for (const client of clients) client.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      await Promise.all(clients.map((c) => c.waitFor('\r\n\r\nok')));
      for (const client of clients) assert.match(client.received(), /Connection: keep-alive/i);

      flags.shuttingDown = true;
      await drainer.unready?.(phaseContext('unready').ctx);
      await delay(100);
      assert.equal(drainer.connections, 2, 'idle sockets stay open through the propagation wait');
      flags.draining = true;
      await drainer.drain?.(phaseContext('drain').ctx);

      for (const client of clients) assert.deepEqual(await client.ended, { how: 'end' });
      assert.equal(observer.count('http1', 'idle'), 2);
      assert.equal(drainer.connections, 0);
    } finally {
      drainer.detach();
      await closeHard(server);
    }
  });

  it('on abort destroys what is left, reports the count and resolves at once', async () => {
    const observer = recordingObserver();
    const { tracker, flags } = trackerWithFlags();
    const server = http.createServer((req) => {
      if (req.url === '/hang') return; // never answers
    });
    const drainer = createHttpDrainer(server, { tracker, activity: createTrafficActivity(), observer });
    const port = await listen(server);
    try {
      const hanging = [1, 2, 3].map(() =>
        fetchVia(http.request, { host: '127.0.0.1', port, path: '/hang', agent: false }).then(
          () => 'answered',
          (error: NodeJS.ErrnoException) => error.code ?? error.message,
        ),
      );
      while (tracker.inflight < 3) await delay(5);
      assert.equal(drainer.connections, 3);

      flags.shuttingDown = true;
      await drainer.unready?.(phaseContext('unready').ctx);
      flags.draining = true;
      const drainPhase = phaseContext('drain');
      let resolvedAt = 0;
      const drained = Promise.resolve(drainer.drain?.(drainPhase.ctx)).then(() => (resolvedAt = Date.now()));
      await delay(200);
      assert.equal(resolvedAt, 0, 'still waiting for the hanging requests');
      const abortedAt = Date.now();
      drainPhase.abort();
      await drained;
      // At the abort, not at some later timer of its own (the requests hang for good); the bound is
      // loose for a loaded machine.
      assert.ok(resolvedAt - abortedAt < 1000, `resolved ${resolvedAt - abortedAt} ms after the abort`);
      assert.deepEqual(drainPhase.forced, [3]);
      assert.equal(observer.count('http1', 'forced'), 3);
      assert.equal(drainer.connections, 0);
      for (const outcome of await Promise.all(hanging)) assert.notEqual(outcome, 'answered');
      await delay(10);
      assert.equal(tracker.inflight, 0);
    } finally {
      drainer.detach();
      await closeHard(server);
    }
  });

  it('with rejectDuringDrain answers a request arriving during the drain with 503 before the app runs', async () => {
    const observer = recordingObserver();
    const { tracker, flags } = trackerWithFlags({ rejectDuringDrain: true });
    // Headers go out at once, so this response keeps the connection alive.
    const { server, app } = streamingServer();
    const drainer = createHttpDrainer(server, { tracker, activity: createTrafficActivity(), observer });
    const port = await listen(server);
    try {
      const client = await rawClient(port);
      client.socket.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
      await client.waitFor('\r\n\r\n');
      assert.match(client.received(), /Connection: keep-alive/i);

      flags.shuttingDown = true;
      await drainer.unready?.(phaseContext('unready').ctx);
      flags.draining = true;
      const drained = drainer.drain?.(phaseContext('drain').ctx);
      assert.equal(drainer.connections, 1, 'a busy socket is not ended');
      // Pipelined on the same connection while the first response is still streaming.
      client.socket.write('GET /late HTTP/1.1\r\nHost: x\r\n\r\n');
      await delay(100);
      app.finish?.();
      assert.deepEqual(await client.ended, { how: 'end' });
      await drained;

      const text = client.received();
      const second = text.slice(text.indexOf('HTTP/1.1 503'));
      assert.ok(text.indexOf('HTTP/1.1 503') > text.indexOf('HTTP/1.1 200'), text);
      assert.match(second, /Retry-After: 1\r\n/i);
      assert.match(second, /Connection: close\r\n/i);
      assert.equal(app.calls, 1, 'the app never saw the rejected request');
      assert.equal(observer.count('http1', 'response_boundary'), 1);
    } finally {
      drainer.detach();
      await closeHard(server);
    }
  });

  it('a request pipelined behind a response whose Connection: close already went out is counted as forced', async () => {
    const { tracker, flags } = trackerWithFlags();
    // Headers go out at once: the first response commits its Connection: close before the second
    // request arrives, so nothing can move it.
    const { server, app } = streamingServer();
    const drainer = createHttpDrainer(server, { tracker, activity: createTrafficActivity() });
    const port = await listen(server);
    try {
      flags.shuttingDown = true;
      await drainer.unready?.(phaseContext('unready').ctx);
      const client = await rawClient(port);
      client.socket.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
      await client.waitFor('\r\n\r\n');
      assert.match(client.received(), /Connection: close/i);
      client.socket.write('GET /late HTTP/1.1\r\nHost: x\r\n\r\n');
      while (app.calls < 2) await delay(5);
      app.finish?.();
      await client.ended;
      assert.equal(client.received().match(/HTTP\/1\.1 /g)?.length, 1, 'the pipelined request got no answer');
      flags.draining = true;
      const drain = phaseContext('drain');
      await drainer.drain?.(drain.ctx);
      assert.deepEqual(drain.forced, [1]);
      assert.match(
        drain.warnings.join('\n'),
        /1 request\(s\) pipelined on closing connections were left unanswered/,
      );
    } finally {
      drainer.detach();
      await closeHard(server);
    }
  });

  it('HTTPS: a connection accepted in the shutdown whose TLS handshake is still going holds the drain, and is served', async () => {
    // After a stalled loop, connections accepted a moment before the drain are still in their
    // handshake: the drain must not end (and the process leave) under them.
    const { key, cert } = selfSignedCert();
    const { tracker, flags } = trackerWithFlags();
    const server = https.createServer({ key, cert }, (_req, res) => res.end('secure'));
    const drainer = createHttpDrainer(server, { tracker, activity: createTrafficActivity() });
    const port = await listen(server);
    try {
      flags.shuttingDown = true;
      await drainer.unready?.(phaseContext('unready').ctx);
      const tcp = net.connect(port, '127.0.0.1'); // accepted; its ClientHello comes later
      await once(tcp, 'connect');
      await delay(50);
      flags.draining = true;
      const phase = phaseContext('drain');
      let drained = false;
      const draining = Promise.resolve(drainer.drain?.(phase.ctx)).then(() => (drained = true));
      await delay(150);
      assert.equal(drained, false, 'the drain waits for the handshake');
      const answer = await fetchVia(https.request, {
        host: '127.0.0.1',
        port,
        path: '/',
        ca: cert,
        servername: 'localhost',
        createConnection: () => tls.connect({ socket: tcp, ca: cert, servername: 'localhost' }),
      });
      assert.equal(answer.status, 200);
      assert.equal(answer.body, 'secure');
      await draining;
      assert.deepEqual(phase.forced, []);
    } finally {
      drainer.detach();
      await closeHard(server);
    }
  });

  it('HTTPS: an in-flight request completes and new TLS connections are served during the wait', async () => {
    const { key, cert } = selfSignedCert();
    const observer = recordingObserver();
    const { tracker, flags } = trackerWithFlags();
    const activity = createTrafficActivity();
    let slowSeen = false;
    const server = https.createServer({ key, cert }, (req, res) => {
      if (req.url === '/slow') slowSeen = true;
      setTimeout(() => res.end('secure'), req.url === '/slow' ? 800 : 1);
    });
    const drainer = createHttpDrainer(server, { tracker, activity, observer });
    const port = await listen(server);
    const agent = new https.Agent({ keepAlive: true, ca: cert });
    try {
      const idle = await fetchVia(https.request, { host: '127.0.0.1', port, path: '/', agent });
      assert.equal(idle.headers.connection, 'keep-alive');
      const slow = fetchVia(https.request, {
        host: '127.0.0.1',
        port,
        path: '/slow',
        agent: false,
        ca: cert,
      });
      while (!slowSeen) await delay(5);
      assert.equal(drainer.connections, 2);

      flags.shuttingDown = true;
      const unreadyAt = Date.now();
      await drainer.unready?.(phaseContext('unready').ctx);
      const fresh = await fetchVia(https.request, {
        host: '127.0.0.1',
        port,
        path: '/',
        agent: false,
        ca: cert,
      });
      assert.equal(fresh.status, 200);
      assert.equal(fresh.headers.connection, 'close');
      assert.ok(activity.lastConnectionAt >= unreadyAt);

      flags.draining = true;
      await drainer.drain?.(phaseContext('drain').ctx);
      const res = await slow;
      assert.equal(res.status, 200);
      assert.equal(res.body, 'secure');
      assert.equal(res.headers.connection, 'close');
      assert.equal(drainer.connections, 0);
      assert.equal(observer.count('http1', 'forced'), 0);
      assert.equal(observer.count('http1', 'idle'), 1, 'the pooled idle TLS socket was ended');
      assert.equal(await connectOutcome(port), 'ECONNREFUSED');
    } finally {
      agent.destroy();
      drainer.detach();
      await closeHard(server);
    }
  });

  it('counts only TLS sockets that finished the handshake', async () => {
    const { key, cert } = selfSignedCert();
    const { tracker } = trackerWithFlags();
    const server = https.createServer({ key, cert }, (_req, res) => res.end('ok'));
    const drainer = createHttpDrainer(server, { tracker, activity: createTrafficActivity() });
    const port = await listen(server);
    try {
      const secure = tls.connect({ host: '127.0.0.1', port, ca: cert, servername: 'localhost' });
      await new Promise((resolve) => secure.once('secureConnect', resolve));
      await delay(20);
      assert.equal(drainer.connections, 1);
      secure.destroy();
      await delay(20);
      assert.equal(drainer.connections, 0);
    } finally {
      drainer.detach();
      await closeHard(server);
    }
  });

  it('detach() restores the server', async () => {
    const { tracker, flags } = trackerWithFlags({ rejectDuringDrain: true });
    const server = http.createServer((_req, res) => res.end('ok'));
    const before = { emit: server.emit, connection: server.listenerCount('connection') };
    const drainer = createHttpDrainer(server, { tracker, activity: createTrafficActivity() });
    assert.notEqual(server.emit, before.emit);
    drainer.detach();
    assert.equal(server.emit, before.emit);
    assert.equal(Object.hasOwn(server, 'emit'), false);
    assert.equal(server.listenerCount('connection'), before.connection);
    const port = await listen(server);
    try {
      flags.shuttingDown = true;
      flags.draining = true;
      const res = await fetchVia(http.request, { host: '127.0.0.1', port, path: '/', agent: false });
      assert.equal(res.status, 200, 'a detached drainer no longer rejects');
      assert.equal(tracker.inflight, 0);
      assert.equal((server.address() as AddressInfo).port, port);
    } finally {
      await closeHard(server);
    }
  });

  it('refuses a second drainer on the same server until the first is detached', () => {
    const server = http.createServer();
    const options = { tracker: trackerWithFlags().tracker, activity: createTrafficActivity() };
    const first = createHttpDrainer(server, options);
    assert.throws(() => createHttpDrainer(server, options), { code: 'ERR_KUBEGRACE_INVALID_STATE' });
    first.detach();
    createHttpDrainer(server, options).detach();
  });

  it('refuses a server it cannot drain', () => {
    assert.throws(
      () =>
        createHttpDrainer({} as http.Server, {
          tracker: trackerWithFlags().tracker,
          activity: createTrafficActivity(),
        }),
      { code: 'ERR_KUBEGRACE_UNSUPPORTED_SERVER' },
    );
  });
});

/** Answers each request with its headers and a first byte at once; the first one ends on `finish()`. */
function streamingServer(): { server: http.Server; app: { calls: number; finish?: () => void } } {
  const app: { calls: number; finish?: () => void } = { calls: 0 };
  const server = http.createServer((_req, res) => {
    app.calls++;
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('a');
    app.finish ??= () => res.end('b');
  });
  return { server, app };
}
