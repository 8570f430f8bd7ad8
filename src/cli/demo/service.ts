/**
 * The example kubegrace service the demo runs as child processes (the benchmarks run theirs from
 * bench/services/): a plain `node:http` server whose `/work?ms=N` takes N ms, with kubegrace
 * attached. Settings come from `KUBEGRACE_*` variables set by the harness; lifecycle events go to
 * stdout as JSON lines.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createKubegrace } from '../../kubegrace.js';
import { eventLogger, exitWithParent, handleWork, reportLifecycle, writeEvent } from './pod-events.js';

const pod = process.env.DEMO_POD_NAME ?? 'pod';

const server = createServer((req, res) => handleWork(pod, req, res));
const kubegrace = createKubegrace({ logger: eventLogger() });
reportLifecycle(kubegrace);

kubegrace.attach(server);
exitWithParent(() => process.exit(1));
await kubegrace.start();
server.listen(0, '127.0.0.1', () => {
  writeEvent({
    event: 'listening',
    port: (server.address() as AddressInfo).port,
    managementPort: kubegrace.managementAddress?.port ?? null,
  });
  kubegrace.ready();
});
