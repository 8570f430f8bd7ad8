import assert from 'node:assert/strict';
import * as http from 'node:http';
import { describe, it } from 'node:test';
import { Server } from 'socket.io';
import { io as connect, type Socket as ClientSocket } from 'socket.io-client';
import { createHttpDrainer } from '../../src/drain/http.js';
import { createSocketIoDrainer, type SocketIoServerLike } from '../../src/drain/socket-io.js';
import { createTrafficActivity } from '../../src/propagation/activity.js';
import {
  closeHard,
  delay,
  listen,
  phaseContext,
  recordingObserver,
  trackerWithFlags,
} from '../support/drain-fixtures.js';

interface Client {
  readonly socket: ClientSocket;
  readonly received: number[];
  readonly errors: unknown[];
  /** Resolves with the reason the client was told when the server closed it. */
  readonly disconnected: Promise<string>;
}

function client(port: number, transport: 'websocket' | 'polling'): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket = connect(`http://127.0.0.1:${port}`, { transports: [transport], reconnection: false });
    const received: number[] = [];
    const errors: unknown[] = [];
    socket.on('tick', (n: number) => received.push(n));
    socket.on('connect_error', (error) => errors.push(error));
    const disconnected = new Promise<string>((done) => socket.once('disconnect', (reason) => done(reason)));
    socket.once('connect', () => resolve({ socket, received, errors, disconnected }));
    socket.once('connect_error', reject);
  });
}

describe('socket.io drainer', () => {
  it('closes websocket and polling sessions with transport close, after every emitted message', async () => {
    const observer = recordingObserver();
    const { tracker, flags } = trackerWithFlags();
    const server = http.createServer();
    const io = new Server(server);
    /** What the server emitted to each client while its session was open, by socket id. */
    const emitted = new Map<string, number[]>();
    io.on('connection', (socket) => {
      const mine: number[] = [];
      emitted.set(socket.id, mine);
      let n = 0;
      const timer = setInterval(() => {
        // engine.io drops what is emitted once its close began: only count what it took.
        if (socket.conn.readyState !== 'open') return;
        n++;
        socket.emit('tick', n);
        mine.push(n);
      }, 3);
      socket.on('disconnect', () => clearInterval(timer));
    });
    const httpDrainer = createHttpDrainer(server, { tracker, activity: createTrafficActivity(), observer });
    const ioDrainer = createSocketIoDrainer(io as unknown as SocketIoServerLike, {
      observer,
      pacing: { windowMs: 5000, budgetMs: 10_000 },
    });
    const port = await listen(server);
    const clients = [
      ...(await Promise.all([1, 2, 3].map(() => client(port, 'websocket')))),
      ...(await Promise.all([1, 2, 3].map(() => client(port, 'polling')))),
    ];
    try {
      await delay(60);
      flags.shuttingDown = true;
      await httpDrainer.unready?.(phaseContext('unready').ctx);
      await ioDrainer.unready?.(phaseContext('unready').ctx);
      // The propagation wait: each polling session's close goes out with its next poll (on a busy
      // machine a poll can come later than 30 ms; in the drain the listener is closed).
      await Promise.race([Promise.all(clients.slice(3).map((c) => c.disconnected)), delay(3000)]);
      flags.draining = true;
      const httpPhase = phaseContext('drain');
      const ioPhase = phaseContext('drain');
      // The budget, so that a drain that waits for nothing fails instead of hanging.
      setTimeout(() => {
        httpPhase.abort();
        ioPhase.abort();
      }, 8000).unref();
      await Promise.all([httpDrainer.drain?.(httpPhase.ctx), ioDrainer.drain?.(ioPhase.ctx)]);
      for (const c of clients) {
        const id = c.socket.id;
        const reason = await c.disconnected;
        assert.equal(
          reason,
          'transport close',
          `a clean close, not a transport error (client ${clients.indexOf(c)})`,
        );
        assert.deepEqual(c.errors, []);
        assert.ok(id === undefined || emitted.has(id));
      }
      // Every message the server emitted reached its client, in order.
      const sent = [...emitted.values()].map((m) => m.join(',')).sort();
      const got = clients.map((c) => c.received.join(',')).sort();
      assert.deepEqual(got, sent);
      assert.ok(
        clients.every((c) => c.received.length > 3),
        'messages flowed before the drain',
      );
      assert.deepEqual([...httpPhase.forced, ...ioPhase.forced], []);
      assert.equal(observer.paced.filter((p) => p.protocol === 'socket_io').length, 6);
      assert.equal(ioDrainer.sessions, 0);
    } finally {
      for (const c of clients) c.socket.close();
      ioDrainer.detach();
      httpDrainer.detach();
      await new Promise<void>((resolve) => {
        void io.close(() => resolve());
      });
      await closeHard(server);
    }
  });
});
