/**
 * WebSockets with `ws`: an echo server that also sends each client a tick every second.
 *
 *   node --import tsx examples/websocket/server.ts
 *   npx wscat -c ws://localhost:8080/     (or any WebSocket client)
 *
 * On shutdown, sockets stay open through the propagation wait (the pod may still be in a load
 * balancer's pool), then every client gets close code 1001 (Going Away): the signal for a client
 * to reconnect, which now lands on another pod. Plain HTTP on the same server drains as usual.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { createKubegrace } from '../../src/index.js';

const port = Number(process.env.PORT ?? 8080);

const server = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' }).end('connect with a WebSocket client\n');
});
const wss = new WebSocketServer({ server });
wss.on('connection', (socket) => {
  const tick = setInterval(() => socket.send(JSON.stringify({ tick: Date.now() })), 1000);
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
  socket.on('close', () => clearInterval(tick));
});

const kg = createKubegrace();
kg.attach(server);
kg.attachWebSocketServer(wss, { closeReason: 'server restarting, reconnect' });
await kg.start();
server.listen(port, () => {
  const { port: bound } = server.address() as AddressInfo;
  console.log(`example websocket listening on :${bound}, management on :${kg.managementAddress?.port}`);
  kg.ready();
});
