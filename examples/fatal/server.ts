/**
 * The `fatal` path: an error the process cannot recover from (here, losing its only database
 * connection for good) ends it through kubegrace instead of a bare `process.exit(1)`.
 *
 *   node --import tsx examples/fatal/server.ts
 *   curl localhost:8080/orders/1; curl -X POST localhost:8080/simulate/connection-lost; echo $?
 *
 * `kg.fatal(error)` turns /livez and /readyz 503, drains what is in flight (no propagation wait: the
 * process is broken, there is nothing to wait for), runs the cleanup hooks within fatalTimeoutMs,
 * logs the error in the shutdown summary and exits 70. An uncaught exception or unhandled rejection
 * takes the same path (`catchErrors`, on by default).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventEmitter } from 'node:events';
import { createKubegrace } from '../../src/index.js';

const port = Number(process.env.PORT ?? 8080);

/** Stands in for a database client whose connection can be lost for good ('error' event). */
const db = Object.assign(new EventEmitter(), {
  connected: true,
  async query(id: string): Promise<{ id: string }> {
    await new Promise((resolve) => setTimeout(resolve, 100));
    return { id };
  },
});

const kg = createKubegrace();
db.on('error', (error: Error) => {
  db.connected = false;
  void kg.fatal(error);
});
kg.addLivenessCheck('db', () => db.connected);
kg.onCleanup(() => console.log('cleanup ran: closing what is left of the pool'), { name: 'db' });

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (req.method === 'POST' && url.pathname === '/simulate/connection-lost') {
    res.writeHead(202).end('losing the database connection\n');
    setImmediate(() =>
      db.emit('error', new Error('database connection lost: ECONNRESET, retries exhausted')),
    );
    return;
  }
  const order = /^\/orders\/(\w+)$/.exec(url.pathname);
  if (order?.[1] !== undefined) {
    db.query(order[1]).then(
      (row) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(row)),
      (error: unknown) => res.writeHead(500).end(String(error)),
    );
    return;
  }
  res.writeHead(404).end();
});
kg.attach(server);
await kg.start();
server.listen(port, () => {
  const { port: bound } = server.address() as AddressInfo;
  console.log(`example fatal listening on :${bound}, management on :${kg.managementAddress?.port}`);
  kg.ready();
});
