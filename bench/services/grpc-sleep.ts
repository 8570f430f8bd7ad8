/**
 * A `preStop: sleep 10` in front of `server.tryShutdown()`: the kubelet delays SIGTERM by the sleep
 * and the grace period counts from the hook's start, which is the same as sleeping 10 s after SIGTERM.
 */
import { writeEvent } from '../../src/cli/demo/pod-events.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { createGrpcBenchApp } from './grpc-app.js';

const PRESTOP_SLEEP_MS = 10_000;

const app = createGrpcBenchApp();
process.on('SIGTERM', () => {
  writeEvent({ event: 'signal', signal: 'SIGTERM' });
  void sleep(PRESTOP_SLEEP_MS).then(() => app.server.tryShutdown(() => process.exit(0)));
});
await app.listen();
