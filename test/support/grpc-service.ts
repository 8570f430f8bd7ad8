/**
 * A grpc-js service with kubegrace/grpc, for the SIGTERM runs of test/grpc/shutdown.test.ts. Prints
 * JSON-line events: `listening` (port), `phase` (each phase's start), `shutdown` (the summary).
 */
import * as grpcJs from '@grpc/grpc-js';
import { createKubegrace } from '../../src/index.js';
import { grpc } from '../../src/grpc/index.js';
import { echoDefinition, echoImplementation } from './grpc-echo.js';

const emit = (event: string, fields: Record<string, unknown> = {}): void => {
  process.stdout.write(`${JSON.stringify({ t: Date.now(), event, ...fields })}\n`);
};

const kg = createKubegrace();
kg.on('phase', ({ phase, status }) => {
  if (status === 'start') emit('phase', { phase });
});
kg.on('shutdown', ({ outcome, exitCode, forced }) => emit('shutdown', { outcome, exitCode, forced }));

const server = new grpcJs.Server();
server.addService(echoDefinition, echoImplementation);
kg.use(grpc(server, { services: ['test.Echo'] }));
await kg.start();
const port = await new Promise<number>((resolve, reject) => {
  server.bindAsync('127.0.0.1:0', grpcJs.ServerCredentials.createInsecure(), (error, bound) =>
    error ? reject(error) : resolve(bound),
  );
});
kg.ready();
emit('listening', { port });
