/**
 * express with kubegrace: the basic set-up.
 *
 *   node --import tsx examples/express/server.ts
 *   curl localhost:8080/orders/42; curl localhost:8080/readyz
 *
 * `app.listen()` returns a `node:http` server: attach it and kubegrace drains it. The probes are on
 * the management port (9000) and, with `probeRouter`, on the app port too. A cleanup hook closes
 * the (pretend) database pool after the last request has finished.
 */
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createKubegrace } from '../../src/index.js';
import { probeRouter } from '../../src/express/index.js';

const port = Number(process.env.PORT ?? 8080);

/** Stands in for a database pool: queries take a little while; `end()` closes it. */
const pool = {
  open: true,
  async query(id: string): Promise<{ id: string; status: string }> {
    if (!this.open) throw new Error('pool is closed');
    await new Promise((resolve) => setTimeout(resolve, 50));
    return { id, status: 'shipped' };
  },
  async end(): Promise<void> {
    this.open = false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  },
};

const kg = createKubegrace();
const app = express();
app.disable('x-powered-by');
app.use(probeRouter(kg)); // /livez /readyz /startupz on the app port as well

app.get('/orders/:id', async (req, res, next) => {
  try {
    res.json(await pool.query(req.params.id));
  } catch (error) {
    next(error);
  }
});

await kg.start(); // management server and signal handlers first, so probes answer from the start
const server = app.listen(port, () => {
  const { port: bound } = server.address() as AddressInfo;
  console.log(`example express listening on :${bound}, management on :${kg.managementAddress?.port}`);
  kg.ready();
});
kg.attach(server);
// Runs in the cleanup phase, after the drain: no request can still need the pool.
kg.onCleanup(() => pool.end(), { name: 'db-pool' });
