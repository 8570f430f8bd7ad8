/**
 * The example service: a plain `node:http` server with kubegrace attached. It is what the Helm chart
 * runs by default (examples/Dockerfile builds it) and what the demo's services are modelled on.
 *
 *   node --import tsx examples/http/server.ts
 *   curl 'localhost:8080/work?ms=500'; curl localhost:9000/readyz; curl localhost:9000/metrics
 *
 * - `GET /work?ms=N` answers after N ms (at most 60 s): a request of a known length.
 * - Probes and `/metrics` are on the management port (KUBEGRACE_PROBES_PORT, default 9000).
 * - In a cluster (the chart's RBAC and Downward API env), kubegrace/kubernetes reads the pod's real
 *   grace period, starts the shutdown on deletion and confirms the EndpointSlice removal; outside a
 *   cluster it does nothing.
 * - Every setting comes from KUBEGRACE_* variables, which the chart computes (docs/helm.md).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createKubegrace } from '../../src/index.js';
import { kubernetes } from '../../src/kubernetes/index.js';
import { metrics } from '../../src/metrics/index.js';

const port = Number(process.env.PORT ?? 8080);
const pod = process.env.POD_NAME ?? 'local';

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname === '/work') {
    const ms = Math.min(Math.max(Number(url.searchParams.get('ms')) || 0, 0), 60_000);
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ pod, ms }));
    }, ms);
    return;
  }
  if (url.pathname === '/') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`hello from ${pod}\n`);
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
}

const kg = createKubegrace();
kg.use(metrics()); // kubegrace_* metrics on the management port's /metrics, until the very end
const server = createServer(handle);
kg.attach(server); // Connection: close during the shutdown, then a drain without resets
await kg.start(); // management server, SIGTERM/SIGINT handlers
await kg.use(kubernetes()); // enabled: false outside a cluster

server.listen(port, () => {
  const { port: bound } = server.address() as AddressInfo;
  console.log(`example http listening on :${bound}, management on :${kg.managementAddress?.port}`);
  kg.ready();
});
