/**
 * The demo's multi-process pod with kubegrace (`kubegrace demo --cluster`): a `node:cluster`
 * primary with `clusterPrimary()` (signals, the deadline, the probes on the management port) and 2
 * workers serving `/work` on one shared port, each with `clusterWorker()` (its drain a participant
 * of the primary's shutdown). Only the primary reports to the harness; the workers inherit its
 * `KUBEGRACE_*` settings.
 */
import cluster from 'node:cluster';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { clusterPrimary, clusterWorker } from '../../cluster/index.js';
import { createKubegrace } from '../../kubegrace.js';
import { eventLogger, exitWithParent, handleWork, reportLifecycle, writeEvent } from './pod-events.js';

const pod = process.env.DEMO_POD_NAME ?? 'pod';

if (cluster.isPrimary) {
  // A free port for the workers to share (the primary listens on their behalf).
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));

  const kubegrace = createKubegrace({ logger: eventLogger() });
  reportLifecycle(kubegrace);
  const workers = kubegrace.use(clusterPrimary({ workers: 2, env: { DEMO_CLUSTER_PORT: String(port) } }));
  exitWithParent(() => process.exit(1));
  await kubegrace.start();
  await workers.ready;
  const managementPort = kubegrace.managementAddress?.port ?? 0;
  writeEvent({ event: 'listening', port, managementPort, readyPath: '/readyz', readyPort: managementPort });
} else {
  const kubegrace = createKubegrace({ logger: false });
  kubegrace.use(clusterWorker());
  const server = createServer((req, res) => handleWork(pod, req, res));
  kubegrace.attach(server);
  await kubegrace.start();
  server.listen(Number(process.env.DEMO_CLUSTER_PORT), '127.0.0.1', () => kubegrace.ready());
}
