/**
 * A surviving pod of the realtime scenario (bench/loads/realtime.ts): the bench app's WebSocket
 * echo, counting the WebSockets it accepts in 100 ms bins of the wall clock (every process of the
 * run shares it). `bins` on stdin answers with a `log` event `bins` whose fields are
 * `{ "<bin start, epoch ms>": connections }`. It is never terminated during the measurement.
 */
import { createInterface } from 'node:readline';
import { writeEvent } from '../../src/cli/demo/pod-events.js';
import { createBenchApp } from './app.js';

export const BIN_MS = 100;

const app = createBenchApp();
const bins = new Map<number, number>();
app.wss?.on('connection', () => {
  const bin = Math.floor(Date.now() / BIN_MS) * BIN_MS;
  bins.set(bin, (bins.get(bin) ?? 0) + 1);
});
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line !== 'bins') return;
  writeEvent({ event: 'log', level: 'stats', msg: 'bins', fields: Object.fromEntries(bins) });
});
await app.listen();
