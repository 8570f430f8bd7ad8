/**
 * The baseline: the same service with the shutdown most Node services ship — on SIGTERM,
 * `server.close()` and exit when it calls back. No readiness flip, no propagation wait.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exitWithParent, handleWork, writeEvent } from './pod-events.js';

const pod = process.env.DEMO_POD_NAME ?? 'pod';

const server = createServer((req, res) => {
  // Readiness for the harness: a naive service is ready whenever it answers.
  if (req.url === '/readyz') res.writeHead(200).end('{"status":"ready"}');
  else handleWork(pod, req, res);
});

process.on('SIGTERM', () => {
  writeEvent({ event: 'signal', signal: 'SIGTERM' });
  server.close(() => {
    writeEvent({ event: 'closed' });
    process.exit(0);
  });
});

exitWithParent(() => process.exit(1));
server.listen(0, '127.0.0.1', () => {
  writeEvent({ event: 'listening', port: (server.address() as AddressInfo).port, managementPort: null });
});
