/**
 * A gRPC service with kubegrace: `kg.use(grpc(server, { services: ['shop.Orders'] }))`.
 *
 *   node --import tsx examples/grpc/server.ts
 *   grpcurl -plaintext localhost:50051 grpc.health.v1.Health/Check
 *
 * kubegrace adds `grpc.health.v1.Health` to the server (Kubernetes `grpc:` probes ask it; the chart
 * switches to them with kubegrace.probes.grpc.enabled): "" and "shop.Orders" follow readiness and
 * turn NOT_SERVING the moment SIGTERM comes, "liveness" stays SERVING while draining. The server
 * keeps serving through the propagation wait, then GOAWAY: calls in flight finish, clients move on.
 * Do not call `server.tryShutdown()` on SIGTERM yourself: it would stop accepting at once.
 *
 * The messages are JSON here, to keep the example to one file; a proto-loader service is the same.
 */
import { setTimeout as delay } from 'node:timers/promises';
import * as grpcJs from '@grpc/grpc-js';
import { createKubegrace } from '../../src/index.js';
import { grpc } from '../../src/grpc/index.js';

const port = Number(process.env.PORT ?? 50051);

const json = {
  requestSerialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
  requestDeserialize: (bytes: Buffer): unknown => JSON.parse(bytes.toString()),
  responseSerialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
  responseDeserialize: (bytes: Buffer): unknown => JSON.parse(bytes.toString()),
};

/** `GetOrder` (unary) and `TrackOrder` (server streaming: one update per 100 ms, `steps` of them). */
const ordersDefinition = {
  GetOrder: { path: '/shop.Orders/GetOrder', requestStream: false, responseStream: false, ...json },
  TrackOrder: { path: '/shop.Orders/TrackOrder', requestStream: false, responseStream: true, ...json },
} as const;

interface OrderRequest {
  readonly id: string;
  readonly steps?: number;
}

const kg = createKubegrace();
const server = new grpcJs.Server();
server.addService(ordersDefinition, {
  async GetOrder(
    call: grpcJs.ServerUnaryCall<OrderRequest, unknown>,
    callback: grpcJs.sendUnaryData<unknown>,
  ) {
    await delay(20); // stands in for a database query
    callback(null, { id: call.request.id, status: 'shipped' });
  },
  async TrackOrder(call: grpcJs.ServerWritableStream<OrderRequest, unknown>) {
    const steps = call.request.steps ?? 5;
    for (let step = 1; step <= steps && !call.cancelled; step++) {
      await delay(100);
      call.write({ id: call.request.id, step, of: steps });
    }
    call.end();
  },
});
kg.use(grpc(server, { services: ['shop.Orders'] })); // before bindAsync: kubegrace sees every connection

await kg.start(); // management server and signal handlers first
const bound = await new Promise<number>((resolve, reject) =>
  server.bindAsync(`0.0.0.0:${port}`, grpcJs.ServerCredentials.createInsecure(), (error, actual) =>
    error ? reject(error) : resolve(actual),
  ),
);
console.log(`example grpc listening on :${bound}, management on :${kg.managementAddress?.port}`);
kg.ready();
