/**
 * http-terminator as its README shows it (`createHttpTerminator({ server })` before the server
 * accepts connections, `terminate()` instead of `server.close()`, default gracefulTerminationTimeout).
 * Its README says nothing about Kubernetes; its author's advice for Kubernetes (lightship's README,
 * "Add a delay before stop handling incoming requests") is a delay first, so SIGTERM waits 5 s, the
 * same as lightship's and terminus's recommended delay, then terminates and exits.
 */
import type { Server } from 'node:http';
import { createHttpTerminator } from 'http-terminator';
import { writeEvent } from '../../src/cli/demo/pod-events.js';
import { createBenchApp, sleep } from './app.js';

const app = createBenchApp();
// Its types take http, https and secure HTTP/2 servers; an h2c server gets the same treatment.
const terminator = createHttpTerminator({ server: app.server as Server });
process.on('SIGTERM', () => {
  writeEvent({ event: 'signal', signal: 'SIGTERM' });
  void sleep(5000)
    .then(() => terminator.terminate())
    .then(() => process.exit(0));
});
await app.listen();
