/**
 * A socket.io service with kubegrace/socket.io, for the SIGTERM run of test/socket-io/shutdown.test.ts.
 * Every connected client gets a numbered `tick` every 10 ms while its engine.io session is open
 * (engine.io drops what is emitted once a session's close began: not accepted, not counted).
 * Prints JSON-line events on stdout: `listening` (ports), `disconnected` (the client's name, the
 * last tick emitted to it, the transport, the server-side reason), `phase` (each phase's start and
 * end), `shutdown` (the summary and the
 * paced closes the metrics observer saw).
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { createKubegrace } from '../../src/index.js';
import { socketIo } from '../../src/socket-io/index.js';

const emit = (event: string, fields: Record<string, unknown> = {}): void => {
  process.stdout.write(`${JSON.stringify({ t: Date.now(), event, ...fields })}\n`);
};

const paced: string[] = [];
const kg = createKubegrace({
  observer: {
    pacedClose(protocol, step) {
      paced.push(`${protocol}:${step}`);
    },
  },
});
kg.on('phase', ({ phase, status }) => emit('phase', { phase, status }));
kg.on('shutdown', ({ outcome, exitCode, forced }) => emit('shutdown', { outcome, exitCode, forced, paced }));

const server = http.createServer();
const io = new Server(server);
io.on('connection', (socket) => {
  const name = String((socket.handshake.auth as { name?: unknown }).name);
  let n = 0;
  const timer = setInterval(() => {
    if (socket.conn.readyState !== 'open') return;
    n++;
    socket.emit('tick', { server: 'old', n });
  }, 10);
  socket.on('disconnect', (reason) => {
    clearInterval(timer);
    emit('disconnected', { name, last: n, transport: socket.conn.transport.name, reason });
  });
});
kg.use(socketIo(io));

await kg.start();
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
kg.ready();
emit('listening', {
  port: (server.address() as AddressInfo).port,
  managementPort: kg.managementAddress?.port,
});
