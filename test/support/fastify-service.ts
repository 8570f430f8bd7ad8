/**
 * A fastify service with kubegrace/fastify, for the SIGTERM runs of test/fastify/shutdown.test.ts.
 * `FASTIFY_MAJOR=4` runs it on fastify 4 (the `fastify-4` alias), anything else on fastify 5;
 * `FASTIFY_ATTACH=0` gives `fastifyApp` `attach: false` (and attaches the server nowhere).
 * Prints JSON-line events on stdout: `listening` (ports, fastify's version), `onClose` (the
 * kubegrace phase it ran in, and whether the listener was still open), `shutdown` (the summary).
 */
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import type Fastify5 from 'fastify';
import { createKubegrace, type PhaseName } from '../../src/index.js';
import { fastifyApp } from '../../src/fastify/index.js';

const emit = (event: string, fields: Record<string, unknown> = {}): void => {
  process.stdout.write(`${JSON.stringify({ t: Date.now(), event, ...fields })}\n`);
};

// fastify 4 typed as 5: this service calls only what both have (get, addHook, listen, server, version).
const { default: Fastify } = (
  process.env.FASTIFY_MAJOR === '4' ? await import('fastify-4') : await import('fastify')
) as { default: typeof Fastify5 };

const kg = createKubegrace();
let phase: PhaseName | undefined;
kg.on('phase', ({ phase: current, status }) => {
  if (status === 'start') phase = current;
});
kg.on('shutdown', ({ outcome, exitCode, forced }) => emit('shutdown', { outcome, exitCode, forced }));

const app = Fastify();
app.get('/work', async () => {
  await delay(20);
  return { ok: true };
});
/** Answers after `ms` (a request that outlives the drain budget). */
app.get('/slow', async (request) => {
  await delay(Number((request.query as { ms?: string }).ms ?? 100));
  return { ok: true };
});
app.addHook('onClose', async () => {
  await delay(50); // a pool's end(): the exit must wait for it
  emit('onClose', { phase, listening: app.server.listening });
});
kg.use(fastifyApp(app, { probes: true, attach: process.env.FASTIFY_ATTACH !== '0' }));

await kg.start();
await app.listen({ port: 0, host: '127.0.0.1' });
kg.ready();
emit('listening', {
  port: (app.server.address() as AddressInfo).port,
  managementPort: kg.managementAddress?.port,
  fastify: app.version,
});
