/**
 * The README's start-up, as a real child process: `createKubegrace()` with nothing but `KUBEGRACE_*`
 * variables and the default logger (JSON lines on stderr), `attach`, `listen`, `await kg.start()`
 * at the top level, `kg.ready()`. What a misconfigured service prints and how it exits is what a
 * user sees. On stdout: `{"event":"listening","port":…,"managementPort":…}`, then `state` events.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createKubegrace } from '../../src/index.js';

const emit = (payload: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify({ t: Date.now(), ...payload })}\n`);
};

const kg = createKubegrace();
kg.on('state', ({ state }) => emit({ event: 'state', state }));
const server = createServer((_req, res) => res.end('ok'));
kg.attach(server);
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
await kg.start();
kg.ready();
emit({
  event: 'listening',
  port: (server.address() as AddressInfo).port,
  managementPort: kg.managementAddress?.port,
});
