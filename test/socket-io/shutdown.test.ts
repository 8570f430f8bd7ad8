/**
 * kubegrace/socket.io across a real SIGTERM: a child process (test/support/socket-io-service.ts)
 * streams numbered emits to real socket.io-client clients (WebSocket only, long-polling only, and
 * polling upgraded to WebSocket) through a TCP proxy standing in for the Service, which sends new
 * connections to another socket.io server a moment (250 ms) into the old one's shutdown: the
 * endpoint leaving during the propagation wait, as kubegrace expects it to. Every message
 * the old server emitted arrives, every client is told `transport close` (no transport error, no
 * connect error), each reconnects to the other server, and the old process exits 0, nothing forced.
 */
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Server } from 'socket.io';
import { io as connect, type Socket as ClientSocket } from 'socket.io-client';
import { spawnEventChild, type EventChild } from '../support/child.js';
import { FAST_SHUTDOWN, within } from '../examples/harness.js';

const SERVICE = fileURLToPath(new URL('../support/socket-io-service.ts', import.meta.url));

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** Forwards each new TCP connection to `target()`, ending and failing each side with the other. */
async function proxy(target: () => number): Promise<{ port: number; close(): void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target(), '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    }
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close() {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

interface Tick {
  readonly server: 'old' | 'new';
  readonly n: number;
}

interface Client {
  readonly name: string;
  readonly socket: ClientSocket;
  readonly ticks: Tick[];
  readonly disconnects: string[];
  readonly errors: string[];
  /** Resolves when the client is connected to the new server. */
  readonly moved: Promise<void>;
}

function client(port: number, name: string, transports: string[]): Promise<Client> {
  const socket = connect(`http://127.0.0.1:${port}`, {
    transports,
    auth: { name },
    // socket.io-client's own backoff (first retry after 0.5 to 1.5 s): the endpoint has left by then.
  });
  const ticks: Tick[] = [];
  const disconnects: string[] = [];
  const errors: string[] = [];
  socket.on('tick', (tick: Tick) => ticks.push(tick));
  socket.on('disconnect', (reason) => disconnects.push(reason));
  socket.on('connect_error', (error) => errors.push(String(error)));
  const moved = new Promise<void>((resolve) => {
    socket.on('tick', (tick: Tick) => {
      if (tick.server === 'new') resolve();
    });
  });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve({ name, socket, ticks, disconnects, errors, moved }));
    socket.once('connect_error', reject);
  });
}

describe('kubegrace/socket.io, SIGTERM with clients streaming', () => {
  it('delivers every emitted message, closes with transport close, and the clients reconnect elsewhere', async () => {
    // The pod the clients move to.
    const newServer = http.createServer();
    const newIo = new Server(newServer);
    newIo.on('connection', (socket) => socket.emit('tick', { server: 'new', n: 1 }));
    await new Promise<void>((resolve) => newServer.listen(0, '127.0.0.1', resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          void newIo.close(() => resolve());
        }),
    );
    const newPort = (newServer.address() as AddressInfo).port;

    const child: EventChild = await spawnEventChild(
      process.execPath,
      ['--import', 'tsx', SERVICE],
      { ...FAST_SHUTDOWN },
      20_000,
    );
    cleanups.push(() => child.kill());
    const output = (): string =>
      [...child.events.map((e) => JSON.stringify(e)), ...child.stderr].join('\n').slice(-6000);
    const oldPort = child.listening.port as number;
    let endpointGone = false;
    const service = await proxy(() => (endpointGone ? newPort : oldPort));
    cleanups.push(() => service.close());

    const clients = await Promise.all([
      ...[1, 2, 3].map((i) => client(service.port, `websocket-${i}`, ['websocket'])),
      ...[1, 2, 3].map((i) => client(service.port, `polling-${i}`, ['polling'])),
      ...[1, 2].map((i) => client(service.port, `upgrade-${i}`, ['polling', 'websocket'])),
    ]);
    cleanups.push(() => {
      for (const c of clients) c.socket.close();
    });
    await delay(400);
    assert.ok(
      clients.every((c) => c.ticks.length > 5),
      'messages flow before the signal',
    );

    child.process.kill('SIGTERM');
    await child.waitFor((e) => e.event === 'phase' && e.phase === 'unready' && e.status === 'start');
    await delay(250);
    endpointGone = true;
    const exit = await within(child.exited, 20_000, 'exit after SIGTERM');
    await within(Promise.all(clients.map((c) => c.moved)), 10_000, 'every client on the new server');

    assert.equal(exit.code, 0, output());
    const summary = child.events.find((e) => e.event === 'shutdown');
    assert.ok(summary, output());
    assert.equal(summary.outcome, 'clean', output());
    assert.equal(summary.forced, 0, output());
    const paced = summary.paced as string[];
    assert.ok(paced.length >= clients.length, `a paced close per session: ${paced.join(', ')}`);
    assert.ok(
      paced.every((p) => p.startsWith('socket_io:')),
      paced.join(', '),
    );

    for (const c of clients) {
      const gone = child.events.filter((e) => e.event === 'disconnected' && e.name === c.name);
      // A polling client may reconnect to the old pod before the endpoint leaves: closed again at once.
      assert.ok(gone.length >= 1, `${c.name}: a session on the old server\n${output()}`);
      const old = c.ticks.filter((t) => t.server === 'old').map((t) => t.n);
      assert.deepEqual(
        old,
        gone.flatMap((e) => Array.from({ length: e.last as number }, (_, i) => i + 1)),
        `${c.name}: every message the old server emitted arrived, in order`,
      );
      assert.ok(
        c.disconnects.length >= 1 && c.disconnects.every((reason) => reason === 'transport close'),
        `${c.name}: clean closes, not a transport error: ${c.disconnects.join(', ')}`,
      );
      assert.deepEqual(c.errors, [], `${c.name}: no connect error on the way to the new server`);
      assert.ok(c.socket.connected, `${c.name}: connected again`);
    }
    const transports = new Set(
      child.events.filter((e) => e.event === 'disconnected').map((e) => e.transport),
    );
    assert.deepEqual([...transports].sort(), ['polling', 'websocket'], 'both transports were drained');
  });
});
