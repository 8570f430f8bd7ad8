/**
 * The plain answer for a WebSocket service, without a library: on SIGTERM wait as long as the
 * kubegrace pods of the realtime scenario wait for propagation (`BENCH_CLOSE_DELAY_MS`, default
 * 1000), then close every WebSocket with 1001 (Going Away) at once and `server.close()`, and exit
 * when it calls back (every close handshake done).
 */
import { writeEvent } from '../../src/cli/demo/pod-events.js';
import { createBenchApp, sleep } from './app.js';

const app = createBenchApp();
const delay = Number(process.env.BENCH_CLOSE_DELAY_MS ?? 1000);
process.on('SIGTERM', () => {
  writeEvent({ event: 'signal', signal: 'SIGTERM' });
  void sleep(delay).then(() => {
    for (const ws of app.wss?.clients ?? []) ws.close(1001, 'server shutting down');
    app.server.close(() => process.exit(0));
  });
});
await app.listen();
