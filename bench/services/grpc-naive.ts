/**
 * The practice gRPC services ship today: on SIGTERM `server.tryShutdown()` (GOAWAY, stop
 * accepting, let the calls in flight finish) and exit when it calls back.
 */
import { writeEvent } from '../../src/cli/demo/pod-events.js';
import { createGrpcBenchApp } from './grpc-app.js';

const app = createGrpcBenchApp();
process.on('SIGTERM', () => {
  writeEvent({ event: 'signal', signal: 'SIGTERM' });
  app.server.tryShutdown(() => process.exit(0));
});
await app.listen();
