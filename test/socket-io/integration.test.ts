/**
 * kubegrace/socket.io in process: what socketIo() refuses (naming the option), an io.httpServer
 * attached twice, and detach(), with a real socket.io server and client on real sockets. The
 * shutdown across SIGTERM is test/socket-io/shutdown.test.ts.
 */
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { Server } from 'socket.io';
import { io as connect, type Socket as ClientSocket } from 'socket.io-client';
import { createKubegrace, type Kubegrace, KubegraceError } from '../../src/index.js';
import { socketIo, type SocketIoLike } from '../../src/socket-io/index.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function instance(): Kubegrace {
  const kg = createKubegrace({
    env: {},
    handleSignals: false,
    managementServer: false,
    exit: () => {},
    logger: { info: () => {}, warn: () => {}, error: () => {} },
    propagation: { strategy: 'fixed', delayMs: 50 },
    drain: { timeoutMs: 3000 },
  });
  cleanups.push(() => kg.destroy());
  return kg;
}

function socketServer(): { server: http.Server; io: Server } {
  const server = http.createServer();
  const io = new Server(server);
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        void io.close(() => resolve());
      }),
  );
  return { server, io };
}

function invalid(option: string): (error: unknown) => boolean {
  return (error) =>
    error instanceof KubegraceError &&
    error.code === 'ERR_KUBEGRACE_INVALID_OPTION' &&
    error.option === option;
}

describe('kubegrace/socket.io', () => {
  it('refuses what is not a bound socket.io server, and bad options, naming the option', () => {
    const { io } = socketServer();
    assert.throws(() => socketIo({} as SocketIoLike), invalid('socketIo(io)'));
    // new Server() without an HTTP server has no engine yet.
    const unbound = new Server();
    assert.throws(() => socketIo(unbound), invalid('socketIo(io)'));
    assert.throws(() => socketIo(io, null as never), invalid('socketIo options'));
    assert.throws(() => socketIo(io, { attach: 'yes' as never }), invalid('attach'));
    assert.throws(() => socketIo(io, { name: 7 as never }), invalid('name'));
    const noServer = { engine: io.engine } as SocketIoLike;
    assert.throws(() => socketIo(noServer), invalid('socketIo attach'));
    assert.doesNotThrow(() => socketIo(noServer, { attach: false }));
  });

  it('says to pass attach: false when io.httpServer is already attached', () => {
    const kg = instance();
    const { server, io } = socketServer();
    kg.attach(server);
    assert.throws(
      () => kg.use(socketIo(io)),
      (error) =>
        error instanceof KubegraceError &&
        error.code === 'ERR_KUBEGRACE_INVALID_STATE' &&
        error.option === 'attach' &&
        /attach: false/.test(error.message),
    );
    assert.doesNotThrow(() => kg.use(socketIo(io, { attach: false })));
  });

  it('counts sessions, and after detach() leaves them and the server open through a shutdown', async () => {
    const kg = instance();
    const { server, io } = socketServer();
    const handle = kg.use(socketIo(io));
    await kg.start();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    kg.ready();
    const port = (server.address() as AddressInfo).port;
    const client: ClientSocket = connect(`http://127.0.0.1:${port}`, {
      transports: ['websocket'],
      reconnection: false,
    });
    cleanups.push(() => client.close());
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
    assert.equal(handle.sessions, 1);
    handle.detach();
    const summary = await kg.shutdown('test');
    assert.equal(summary.outcome, 'clean');
    assert.ok(client.connected, 'a detached server keeps its sessions');
    assert.ok(server.listening, 'a detached server keeps its listener');
  });
});
