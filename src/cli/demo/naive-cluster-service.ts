/**
 * The multi-process pod most images ship (the baseline of `kubegrace demo --cluster`): a
 * `node:cluster` primary that forwards SIGTERM to its 2 workers and exits at once; each worker
 * does the naive `server.close()` and exits when it calls back. Readiness is whichever worker
 * answers `/readyz` on the shared port.
 */
import cluster from 'node:cluster';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exitWithParent, handleWork, writeEvent } from './pod-events.js';

const pod = process.env.DEMO_POD_NAME ?? 'pod';

if (cluster.isPrimary) {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));

  const workers = [0, 1].map(() => cluster.fork({ DEMO_CLUSTER_PORT: String(port) }));
  process.on('SIGTERM', () => {
    writeEvent({ event: 'signal', signal: 'SIGTERM' });
    for (const worker of workers) worker.process.kill('SIGTERM');
    process.exit(0);
  });
  exitWithParent(() => process.exit(1));
  let listening = 0;
  cluster.on('listening', () => {
    if (++listening === workers.length)
      writeEvent({ event: 'listening', port, managementPort: null, readyPath: '/readyz' });
  });
} else {
  const server = createServer((req, res) => {
    if (req.url === '/readyz') res.writeHead(200).end('{"status":"ready"}');
    else handleWork(pod, req, res);
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
  server.listen(Number(process.env.DEMO_CLUSTER_PORT), '127.0.0.1');
}
