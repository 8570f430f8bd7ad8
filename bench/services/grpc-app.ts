/**
 * The gRPC application the benchmark's gRPC pods run, whatever shuts it down: a grpc-js server with
 * `bench.Bench/Echo` (unary, answered after `ms` ms) and `bench.Bench/Ticks` (server streaming:
 * `count` messages, `ms` apart, then OK). Messages are JSON, so no .proto file is needed. Each
 * tool's `grpc-*.ts` module adds its shutdown handling and then calls `listen()`, which binds a free
 * loopback port and tells the harness where the pod is (the line protocol of
 * `src/cli/demo/pod-events.ts`).
 */
import * as grpcJs from '@grpc/grpc-js';
import { exitWithParent, writeEvent } from '../../src/cli/demo/pod-events.js';

const MAX_MS = 120_000;

export interface EchoRequest {
  readonly ms?: number;
}
export interface TicksRequest {
  readonly count?: number;
  readonly ms?: number;
}
export interface Reply {
  readonly pod: string;
  readonly seq?: number;
}

const json = {
  serialize: (value: unknown): Buffer => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer): unknown => JSON.parse(bytes.toString()) as unknown,
};

export const benchServiceDefinition = {
  Echo: {
    path: '/bench.Bench/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
  Ticks: {
    path: '/bench.Bench/Ticks',
    requestStream: false,
    responseStream: true,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
} satisfies grpcJs.ServiceDefinition;

const clampMs = (ms: unknown): number =>
  typeof ms === 'number' && Number.isFinite(ms) ? Math.min(Math.max(0, ms), MAX_MS) : 0;

export interface GrpcBenchApp {
  readonly pod: string;
  readonly server: grpcJs.Server;
  /** Bind a free loopback port and announce it; readiness is polled at `readiness.path` on `managementPort`, or none (ready once listening). */
  listen(readiness?: {
    readonly path?: string | null;
    readonly managementPort?: number | null;
  }): Promise<number>;
}

export function createGrpcBenchApp(): GrpcBenchApp {
  const pod = process.env.DEMO_POD_NAME ?? 'pod';
  const server = new grpcJs.Server();
  server.addService(benchServiceDefinition, {
    Echo(call: grpcJs.ServerUnaryCall<EchoRequest, Reply>, callback: grpcJs.sendUnaryData<Reply>): void {
      setTimeout(() => callback(null, { pod }), clampMs(call.request.ms));
    },
    Ticks(call: grpcJs.ServerWritableStream<TicksRequest, Reply>): void {
      const count = Math.min(Math.max(1, Math.floor(Number(call.request.count) || 1)), 10_000);
      const ms = clampMs(call.request.ms);
      let seq = 0;
      const timer = setInterval(() => {
        if (call.cancelled) {
          clearInterval(timer);
          return;
        }
        call.write({ pod, seq: ++seq });
        if (seq >= count) {
          clearInterval(timer);
          call.end();
        }
      }, ms);
      call.on('cancelled', () => clearInterval(timer));
    },
  });

  exitWithParent(() => process.exit(1));
  // As in app.ts: a library waiting for the loop to empty must see the loop it would see in a pod.
  (process.stdin as { unref?: () => void }).unref?.();

  return {
    pod,
    server,
    listen(readiness = {}) {
      return new Promise((resolve, reject) => {
        server.bindAsync('127.0.0.1:0', grpcJs.ServerCredentials.createInsecure(), (error, port) => {
          if (error) {
            reject(error);
            return;
          }
          writeEvent({
            event: 'listening',
            port,
            managementPort: readiness.managementPort ?? null,
            readyPath: readiness.path ?? null,
          });
          resolve(port);
        });
      });
    },
  };
}
