/**
 * Registration in etcd: the instance is a key bound to a lease while the service is ready, and the
 * key is deleted (lease revoked) the moment the shutdown starts, alongside the readiness flip —
 * so clients that discover through etcd move away while the pod still serves them.
 *
 *   etcd &    # or any etcd; Debian: apt-get install etcd-server
 *   KUBEGRACE_REGISTRY_ETCD_ENDPOINTS=http://127.0.0.1:2379 node --import tsx examples/etcd/server.ts
 *   etcdctl get --prefix /services/
 *
 * Settings from the environment: KUBEGRACE_REGISTRY_ETCD_ENDPOINTS (required),
 * KUBEGRACE_REGISTRY_SERVICE_NAME (here defaulted to example-etcd), KUBEGRACE_REGISTRY_ETCD_PREFIX,
 * KUBEGRACE_REGISTRY_ETCD_TTL_SECONDS; the instance id and address come from POD_NAME and POD_IP
 * (Downward API) when set.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createKubegrace } from '../../src/index.js';
import { registry } from '../../src/registry/index.js';
import { createEtcdRegistry } from '../../src/registry/etcd/index.js';

const port = Number(process.env.PORT ?? 8080);

const kg = createKubegrace();
const server = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' }).end('registered in etcd\n');
});
kg.attach(server);
await kg.start();
server.listen(port, () => {
  const { port: bound } = server.address() as AddressInfo;
  // The registered port must be the bound one, so the registry is created once listening.
  const etcd = createEtcdRegistry({
    serviceName: process.env.KUBEGRACE_REGISTRY_SERVICE_NAME ?? 'example-etcd',
    port: bound,
  });
  // Registers when the service becomes ready; deregisters in the unready phase, with retries
  // inside the phase budget; a failed deregistration makes the exit code non-zero.
  // Warnings go to kubegrace's logger (JSON lines on stderr).
  kg.use(registry(etcd));
  console.log(
    `example etcd listening on :${bound}, management on :${kg.managementAddress?.port}, key ${etcd.key}`,
  );
  kg.ready();
});
