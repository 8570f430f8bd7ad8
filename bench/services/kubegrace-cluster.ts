/**
 * A multi-process pod with kubegrace: a `node:cluster` primary (`clusterPrimary()`: signals, the
 * deadline, the probes on the management port) and 2 workers serving `/work` on one shared port
 * (`clusterWorker()`: each drains as a participant of the primary's shutdown). Only the primary
 * reports to the harness; settings come from the `KUBEGRACE_*` variables the harness sets, which the
 * workers inherit.
 */
import cluster from 'node:cluster';
import { createServer } from 'node:http';
import { createKubegrace } from '../../src/kubegrace.js';
import { clusterPrimary, clusterWorker } from '../../src/cluster/index.js';
import {
  eventLogger,
  exitWithParent,
  handleWork,
  reportLifecycle,
  writeEvent,
} from '../../src/cli/demo/pod-events.js';
import { freePort } from './free-port.js';

const pod = process.env.DEMO_POD_NAME ?? process.env.BENCH_POD_NAME ?? 'pod';

if (cluster.isPrimary) {
  const port = await freePort();

  const kubegrace = createKubegrace({ logger: eventLogger() });
  reportLifecycle(kubegrace);
  const workers = kubegrace.use(clusterPrimary({ workers: 2, env: { BENCH_CLUSTER_PORT: String(port) } }));
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
  server.listen(Number(process.env.BENCH_CLUSTER_PORT), '127.0.0.1', () => kubegrace.ready());
}
