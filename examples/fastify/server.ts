/**
 * fastify with kubegrace: one line, `kg.use(fastifyApp(app, { probes: true }))`.
 *
 *   node --import tsx examples/fastify/server.ts
 *   curl localhost:8080/orders/42; curl localhost:8080/readyz
 *
 * kubegrace drains `app.server` (the listener stays open through the propagation wait), serves the
 * probes on the app port as well as the management port (9000), and runs `app.close()` in its cleanup
 * phase: the pool below closes in fastify's own `onClose` hook, after the last request has finished.
 * Do not call `app.close()` on SIGTERM yourself: it would close the listener at once.
 */
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import Fastify from 'fastify';
import { createKubegrace } from '../../src/index.js';
import { fastifyApp } from '../../src/fastify/index.js';

const port = Number(process.env.PORT ?? 8080);

/** Stands in for a database pool: queries take a little while; `end()` closes it. */
const pool = {
  open: true,
  async query(id: string): Promise<{ id: string; status: string }> {
    if (!this.open) throw new Error('pool is closed');
    await delay(50);
    return { id, status: 'shipped' };
  },
  async end(): Promise<void> {
    this.open = false;
    await delay(10);
  },
};

const kg = createKubegrace();
const app = Fastify();
app.get<{ Params: { id: string } }>('/orders/:id', (request) => pool.query(request.params.id));
app.addHook('onClose', async () => {
  await pool.end();
  console.log('pool closed');
});
kg.use(fastifyApp(app, { probes: true })); // before app.listen(): fastify takes no routes after

await kg.start(); // management server and signal handlers first, so probes answer from the start
await app.listen({ port, host: '0.0.0.0' }); // fastify's default is localhost: unreachable in a pod
console.log(
  `example fastify listening on :${(app.server.address() as AddressInfo).port}, management on :${kg.managementAddress?.port}`,
);
kg.ready();
