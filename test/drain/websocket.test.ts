import assert from 'node:assert/strict';
import * as http from 'node:http';
import { describe, it } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { createHttpDrainer } from '../../src/drain/http.js';
import { createHandshakes } from '../../src/drain/handshakes.js';
import { createWebSocketDrainer } from '../../src/drain/websocket.js';
import { createTrafficActivity } from '../../src/propagation/activity.js';
import {
  closeHard,
  delay,
  listen,
  phaseContext,
  rawClient,
  recordingObserver,
  trackerWithFlags,
} from '../support/drain-fixtures.js';

interface Client {
  readonly ws: WebSocket;
  /** Resolves with the close code and reason the client received. */
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly errors: unknown[];
}

function wsClient(port: number): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    const errors: unknown[] = [];
    const closed = new Promise<{ code: number; reason: string }>((done) =>
      ws.once('close', (code, reason) => done({ code, reason: reason.toString() })),
    );
    ws.on('error', (error) => errors.push(error));
    ws.once('open', () => resolve({ ws, closed, errors }));
    ws.once('unexpected-response', () => reject(new Error('upgrade refused')));
  });
}

describe('websocket drainer', () => {
  it('sends 1001 to every client at the drain, not before, and resolves when all are closed', async () => {
    const observer = recordingObserver();
    const { tracker, flags } = trackerWithFlags();
    const server = http.createServer((_req, res) => res.end('ok'));
    const wss = new WebSocketServer({ server });
    wss.on('connection', (ws) => ws.on('message', (data) => ws.send(data)));
    const httpDrainer = createHttpDrainer(server, { tracker, activity: createTrafficActivity(), observer });
    const wsDrainer = createWebSocketDrainer(wss, { observer, closeReason: 'pod terminating' });
    const port = await listen(server);
    const clients = await Promise.all([wsClient(port), wsClient(port), wsClient(port)]);
    try {
      await delay(20);
      assert.equal(wsDrainer.clients, 3);
      assert.equal(httpDrainer.connections, 0, 'upgraded sockets are not HTTP connections');
      assert.equal(observer.count('http1', undefined), 3, 'each socket left HTTP when it was upgraded');

      flags.shuttingDown = true;
      await Promise.all([
        httpDrainer.unready?.(phaseContext('unready').ctx),
        wsDrainer.unready?.(phaseContext('unready').ctx),
      ]);
      await delay(150);
      // The propagation wait: WebSockets keep working.
      const [first] = clients;
      const echo = new Promise((resolve) =>
        first.ws.once('message', (data) => resolve(Buffer.isBuffer(data) ? data.toString() : data)),
      );
      first.ws.send('still here');
      assert.equal(await echo, 'still here');
      assert.equal(wsDrainer.clients, 3);

      flags.draining = true;
      const httpPhase = phaseContext('drain');
      const wsPhase = phaseContext('drain');
      await Promise.all([httpDrainer.drain?.(httpPhase.ctx), wsDrainer.drain?.(wsPhase.ctx)]);

      for (const client of clients) {
        assert.deepEqual(await client.closed, { code: 1001, reason: 'pod terminating' });
        assert.deepEqual(client.errors, []);
      }
      assert.equal(wsDrainer.clients, 0);
      assert.equal(observer.count('websocket', 'websocket_1001'), 3);
      assert.deepEqual([...httpPhase.forced, ...wsPhase.forced], []);
    } finally {
      for (const client of clients) client.ws.terminate();
      httpDrainer.detach();
      wsDrainer.detach();
      wss.close();
      await closeHard(server);
    }
  });

  it('paces the closes over the window, oldest first, with 1012 when asked, and none forced', async () => {
    const observer = recordingObserver();
    const server = http.createServer();
    const wss = new WebSocketServer({ server });
    const wsDrainer = createWebSocketDrainer(wss, {
      observer,
      closeCode: 1012,
      pacing: { windowMs: 5000, budgetMs: 10_000 },
    });
    const port = await listen(server);
    const clients: Client[] = [];
    // 150 clients: above what the pacer closes at once (100 a second of window).
    for (let i = 0; i < 150; i++) clients.push(await wsClient(port));
    const order: number[] = [];
    clients.forEach((client, i) => void client.closed.then(() => order.push(i)));
    try {
      const phase = phaseContext('drain');
      await wsDrainer.drain?.(phase.ctx);
      for (const client of clients) {
        assert.deepEqual(await client.closed, { code: 1012, reason: 'server shutting down' });
        assert.deepEqual(client.errors, []);
      }
      assert.deepEqual(phase.forced, []);
      assert.equal(observer.count('websocket', 'websocket_1012'), 150);
      const paced = observer.paced.filter((p) => p.protocol === 'websocket');
      assert.equal(paced.length, 150);
      assert.ok(
        paced.some((p) => p.step === 'paced'),
        'spread over the window, not all at its end',
      );
      // Oldest first: the first client heard its close before the last one did.
      assert.ok(order.indexOf(0) < order.indexOf(149));
    } finally {
      for (const client of clients) client.ws.terminate();
      wsDrainer.detach();
      wss.close();
      await closeHard(server);
    }
  });

  it('refuses a close code other than 1001 or 1012, naming the option', () => {
    const wss = new WebSocketServer({ noServer: true });
    assert.throws(() => createWebSocketDrainer(wss, { closeCode: 1000 }), {
      code: 'ERR_KUBEGRACE_INVALID_OPTION',
      message: /closeCode.*1001.*1012.*1000/,
    });
  });

  it('a client that connects during the drain gets 1001 at once', async () => {
    const server = http.createServer();
    const wss = new WebSocketServer({ server });
    const wsDrainer = createWebSocketDrainer(wss);
    const port = await listen(server);
    try {
      const early = await wsClient(port);
      const drained = wsDrainer.drain?.(phaseContext('drain').ctx);
      const late = await wsClient(port);
      assert.deepEqual(await late.closed, { code: 1001, reason: 'server shutting down' });
      assert.deepEqual(await early.closed, { code: 1001, reason: 'server shutting down' });
      await drained;
      assert.equal(wsDrainer.clients, 0);
    } finally {
      wsDrainer.detach();
      wss.close();
      await closeHard(server);
    }
  });

  describe('a handshake still in progress when the drain begins (the application authenticates first)', () => {
    /** An HTTP server whose 'upgrade' listener takes `authMs` before handing the socket to `wss`. */
    async function authenticating(authMs: number) {
      const { tracker, flags } = trackerWithFlags();
      const server = http.createServer();
      const wss = new WebSocketServer({ noServer: true });
      const upgrades: string[] = [];
      server.on('upgrade', (req: http.IncomingMessage, socket, head: Buffer) => {
        upgrades.push(req.url ?? '');
        socket.on('error', () => undefined);
        if (!Number.isFinite(authMs)) return; // the check never answers
        setTimeout(
          () => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)),
          authMs,
        );
      });
      const httpDrainer = createHttpDrainer(server, { tracker, activity: createTrafficActivity() });
      const wsDrainer = createWebSocketDrainer(wss);
      const port = await listen(server);
      const drain = async (phase = phaseContext('drain')): Promise<void> => {
        flags.shuttingDown = true;
        flags.draining = true;
        await Promise.all([httpDrainer.drain?.(phase.ctx), wsDrainer.drain?.(phase.ctx)]);
      };
      const close = async (): Promise<void> => {
        httpDrainer.detach();
        wsDrainer.detach();
        wss.close();
        await closeHard(server);
      };
      return { port, upgrades, wsDrainer, drain, close };
    }

    it('is waited for: the client opens, then gets 1001; nothing forced', async () => {
      const service = await authenticating(300);
      try {
        const events: string[] = [];
        const ws = new WebSocket(`ws://127.0.0.1:${service.port}/`);
        ws.on('open', () => events.push('open'));
        ws.on('error', (error: NodeJS.ErrnoException) => events.push(`error ${error.code ?? error.message}`));
        const closed = new Promise<number>((done) => ws.once('close', (code) => done(code)));
        while (service.upgrades.length === 0) await delay(5);
        const phase = phaseContext('drain');
        let drainedAt = 0;
        const drained = service.drain(phase).then(() => (drainedAt = Date.now()));
        assert.equal(await closed, 1001);
        await drained;
        assert.deepEqual(events, ['open']);
        assert.ok(drainedAt > 0);
        assert.deepEqual(phase.forced, []);
        assert.equal(service.wsDrainer.clients, 0);
      } finally {
        await service.close();
      }
    });

    it('one that never completes is forced at the budget and counted once', async () => {
      const service = await authenticating(Infinity);
      try {
        const raw = await rawClient(service.port);
        raw.socket.write(
          'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
        );
        while (service.upgrades.length === 0) await delay(5);
        const phase = phaseContext('drain');
        let resolved = false;
        const drained = service.drain(phase).then(() => (resolved = true));
        await delay(150);
        assert.equal(resolved, false, 'the drain waits for the handshake');
        phase.abort();
        await drained;
        assert.deepEqual(phase.forced, [1]);
        await raw.ended; // destroyed by the force
      } finally {
        await service.close();
      }
    });

    it('one that begins during the drain, on a connection accepted before it: held, opened, closed with 1001', async () => {
      // The HTTP drainer gives a young idle connection a grace to send its first request; here that
      // request is an upgrade, whose check outlasts the grace and ends after the WebSocket drain did.
      const service = await authenticating(1000);
      try {
        const raw = await rawClient(service.port);
        await delay(50);
        const phase = phaseContext('drain');
        let drained = false;
        const draining = service.drain(phase).then(() => (drained = true));
        await delay(100);
        raw.socket.write(
          'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
        );
        await raw.waitFor('101 Switching Protocols', 5000);
        await raw.waitFor('server shutting down'); // the close frame, 1001
        assert.equal(drained, false, 'the drain waits for the close handshake');
        // The client's close frame (masked, code 1000), as a WebSocket client answers.
        raw.socket.write(Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]));
        await draining;
        assert.deepEqual(phase.forced, []);
      } finally {
        await service.close();
      }
    });

    it("leaves the socket's own methods alone: an application's write wrapper sees every write", async () => {
      const { tracker } = trackerWithFlags();
      const server = http.createServer();
      const wss = new WebSocketServer({ noServer: true });
      let writes = 0;
      server.on('upgrade', (req: http.IncomingMessage, socket, head: Buffer) => {
        const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
        socket.write = ((...args: unknown[]) => {
          writes++;
          return write(...args);
        }) as typeof socket.write;
        wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
      });
      wss.on('connection', (ws) => ws.on('message', (data) => ws.send(data)));
      const httpDrainer = createHttpDrainer(server, { tracker, activity: createTrafficActivity() });
      const wsDrainer = createWebSocketDrainer(wss);
      const port = await listen(server);
      try {
        const client = await wsClient(port);
        for (const text of ['a', 'b', 'c']) {
          const echo = new Promise((resolve) => client.ws.once('message', resolve));
          client.ws.send(text);
          await echo;
        }
        assert.ok(writes >= 4, `the wrapper saw ${writes} writes: the 101 and three echoes`);
        client.ws.terminate();
      } finally {
        httpDrainer.detach();
        wsDrainer.detach();
        wss.close();
        await closeHard(server);
      }
    });

    it("a client whose 'connection' comes late, or never, is still closed with 1001 and waited for", async () => {
      for (const emit of ['late', 'never'] as const) {
        const { tracker, flags } = trackerWithFlags();
        const server = http.createServer();
        const wss = new WebSocketServer({ noServer: true });
        const timers = new Set<NodeJS.Timeout>();
        server.on('upgrade', (req: http.IncomingMessage, socket, head: Buffer) => {
          socket.on('error', () => undefined);
          timers.add(
            setTimeout(
              () =>
                wss.handleUpgrade(req, socket, head, (ws) => {
                  // `late`: after loading a session; `never`: the app keeps the client itself.
                  if (emit === 'late') timers.add(setTimeout(() => wss.emit('connection', ws, req), 200));
                }),
              100,
            ),
          );
        });
        const httpDrainer = createHttpDrainer(server, { tracker, activity: createTrafficActivity() });
        const wsDrainer = createWebSocketDrainer(wss);
        const port = await listen(server);
        try {
          const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
          const closed = new Promise<number>((done) => ws.once('close', (code) => done(code)));
          ws.on('error', () => undefined);
          await delay(20);
          flags.shuttingDown = true;
          flags.draining = true;
          const phase = phaseContext('drain');
          await Promise.all([httpDrainer.drain?.(phase.ctx), wsDrainer.drain?.(phase.ctx)]);
          assert.equal(await closed, 1001, emit);
          assert.deepEqual(phase.forced, [], emit);
        } finally {
          for (const timer of timers) clearTimeout(timer);
          httpDrainer.detach();
          wsDrainer.detach();
          wss.close();
          await closeHard(server);
        }
      }
    });

    it("another kubegrace instance's handshake neither holds this drain nor is forced by it", async () => {
      const mine = createHandshakes();
      const theirs = createHandshakes();
      const { tracker, flags } = trackerWithFlags();
      const serverA = http.createServer();
      const serverB = http.createServer();
      const wssB = new WebSocketServer({ noServer: true });
      const gate: { release: () => void } = { release: () => undefined };
      const checked = new Promise<void>((resolve) => (gate.release = resolve));
      let upgrades = 0;
      serverB.on('upgrade', (req: http.IncomingMessage, socket, head: Buffer) => {
        upgrades++;
        socket.on('error', () => undefined);
        // B checks a token until the test says; its instance is not shutting down.
        void checked.then(() =>
          wssB.handleUpgrade(req, socket, head, (ws) => wssB.emit('connection', ws, req)),
        );
      });
      const drainerA = createHttpDrainer(serverA, {
        tracker,
        activity: createTrafficActivity(),
        handshakes: mine,
      });
      const wsDrainerA = createWebSocketDrainer(new WebSocketServer({ noServer: true }), {
        handshakes: mine,
      });
      const drainerB = createHttpDrainer(serverB, {
        tracker: trackerWithFlags().tracker,
        activity: createTrafficActivity(),
        handshakes: theirs,
      });
      await listen(serverA);
      const portB = await listen(serverB);
      const ws = new WebSocket(`ws://127.0.0.1:${portB}/`);
      ws.on('error', () => undefined);
      try {
        while (upgrades === 0) await delay(5);
        flags.shuttingDown = true;
        flags.draining = true;
        const phase = phaseContext('drain');
        // Had A waited for B's handshake, its budget would end it, and it would destroy B's socket.
        setTimeout(phase.abort, 3000).unref();
        await Promise.all([drainerA.drain?.(phase.ctx), wsDrainerA.drain?.(phase.ctx)]);
        assert.deepEqual(phase.forced, []);
        assert.equal(ws.readyState, WebSocket.CONNECTING, "B's handshake is still going");
        gate.release();
        await new Promise((resolve) => ws.once('open', resolve));
      } finally {
        ws.terminate();
        drainerA.detach();
        wsDrainerA.detach();
        drainerB.detach();
        wssB.close();
        await closeHard(serverA);
        await closeHard(serverB);
      }
    });

    it('one answered by a ws server kubegrace does not drain does not hold the drain', async () => {
      const { tracker, flags } = trackerWithFlags();
      const server = http.createServer();
      const drained = new WebSocketServer({ noServer: true });
      const other = new WebSocketServer({ noServer: true }); // an application's own, left to it
      server.on('upgrade', (req: http.IncomingMessage, socket, head: Buffer) => {
        const target = req.url === '/other' ? other : drained;
        target.handleUpgrade(req, socket, head, (ws) => target.emit('connection', ws, req));
      });
      const httpDrainer = createHttpDrainer(server, { tracker, activity: createTrafficActivity() });
      const wsDrainer = createWebSocketDrainer(drained);
      const port = await listen(server);
      const ws = new WebSocket(`ws://127.0.0.1:${port}/other`);
      try {
        await new Promise((resolve) => ws.once('open', resolve));
        flags.shuttingDown = true;
        flags.draining = true;
        const phase = phaseContext('drain');
        await Promise.all([httpDrainer.drain?.(phase.ctx), wsDrainer.drain?.(phase.ctx)]);
        assert.deepEqual(phase.forced, []);
        assert.equal(ws.readyState, WebSocket.OPEN, 'left to its owner');
      } finally {
        ws.terminate();
        httpDrainer.detach();
        wsDrainer.detach();
        drained.close();
        other.close();
        await closeHard(server);
      }
    });
  });

  it('on abort terminates clients that ignore the close frame and reports them', async () => {
    const observer = recordingObserver();
    const server = http.createServer();
    const wss = new WebSocketServer({ server });
    const wsDrainer = createWebSocketDrainer(wss, { observer });
    const port = await listen(server);
    // A raw client that completes the handshake and then never answers the close frame.
    const raw = await rawClient(port);
    try {
      raw.socket.write(
        'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      );
      await raw.waitFor('101 Switching Protocols');
      const polite = await wsClient(port);
      await delay(20);
      assert.equal(wsDrainer.clients, 2);

      const drainPhase = phaseContext('drain');
      let resolvedAt = 0;
      const drained = Promise.resolve(wsDrainer.drain?.(drainPhase.ctx)).then(
        () => (resolvedAt = Date.now()),
      );
      assert.deepEqual(await polite.closed, { code: 1001, reason: 'server shutting down' });
      await raw.waitFor('\x88'); // the close frame reached the raw client
      await delay(100);
      assert.equal(resolvedAt, 0, 'waiting for the raw client to answer');
      const abortedAt = Date.now();
      drainPhase.abort();
      await drained;
      // At the abort, not at some later timer of its own (the requests hang for good); the bound is
      // loose for a loaded machine.
      assert.ok(resolvedAt - abortedAt < 1000, `resolved ${resolvedAt - abortedAt} ms after the abort`);
      assert.deepEqual(drainPhase.forced, [1]);
      assert.equal(observer.count('websocket', 'forced'), 1);
      assert.equal(observer.count('websocket', 'websocket_1001'), 1);
      await raw.ended;
      assert.equal(wsDrainer.clients, 0);
    } finally {
      raw.socket.destroy();
      wsDrainer.detach();
      wss.close();
      await closeHard(server);
    }
  });

  it('counts clients connected before it was created, and detach() removes its listeners', async () => {
    const server = http.createServer();
    const wss = new WebSocketServer({ server });
    const port = await listen(server);
    const before = await wsClient(port);
    try {
      await delay(20);
      const listeners = wss.listenerCount('connection');
      const wsDrainer = createWebSocketDrainer(wss);
      assert.equal(wsDrainer.clients, 1);
      assert.equal(wss.listenerCount('connection'), listeners + 1);
      wsDrainer.detach();
      assert.equal(wss.listenerCount('connection'), listeners);
      assert.equal(wsDrainer.clients, 0);
    } finally {
      before.ws.terminate();
      wss.close();
      await closeHard(server);
    }
  });

  it('rejects a close reason longer than a close frame can carry', () => {
    const wss = new WebSocketServer({ noServer: true });
    assert.throws(() => createWebSocketDrainer(wss, { closeReason: 'x'.repeat(124) }), {
      code: 'ERR_KUBEGRACE_INVALID_OPTION',
      message: /closeReason must be a string of at most 123 bytes/,
    });
    wss.close();
  });
});
