/**
 * kubegrace as a gRPC service uses it: `kg.use(grpc(server))` before `bindAsync()` (grpc.health.v1
 * driven by the lifecycle, the drain: serve through the propagation wait, then GOAWAY via
 * `tryShutdown()`), probes on their own port, every propagation setting at kubegrace's default.
 * Settings come from the `KUBEGRACE_*` variables the harness sets. With `BENCH_KUBERNETES=1` (the
 * `in-cluster` shape) it also runs the Kubernetes integration, as services/kubegrace.ts does.
 */
import { createKubegrace } from '../../src/kubegrace.js';
import { grpc } from '../../src/grpc/index.js';
import { eventLogger, reportLifecycle } from '../../src/cli/demo/pod-events.js';
import { createGrpcBenchApp } from './grpc-app.js';

const app = createGrpcBenchApp();
const kubegrace = createKubegrace({ logger: eventLogger() });
reportLifecycle(kubegrace);
kubegrace.use(grpc(app.server));

await kubegrace.start();
if (process.env.BENCH_KUBERNETES === '1') {
  const { kubernetes } = await import('../../src/kubernetes/index.js');
  const serviceAccountDir = process.env.BENCH_SERVICE_ACCOUNT_DIR;
  await kubegrace.use(kubernetes({ ...(serviceAccountDir === undefined ? {} : { serviceAccountDir }) }));
}
await app.listen({ path: '/readyz', managementPort: kubegrace.managementAddress?.port ?? null });
kubegrace.ready();
