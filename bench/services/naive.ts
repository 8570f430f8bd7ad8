/** The baseline most Node services ship: on SIGTERM, `server.close()` and exit when it calls back. */
import { writeEvent } from '../../src/cli/demo/pod-events.js';
import { createBenchApp } from './app.js';

const app = createBenchApp();
process.on('SIGTERM', () => {
  writeEvent({ event: 'signal', signal: 'SIGTERM' });
  app.server.close(() => process.exit(0));
});
await app.listen();
