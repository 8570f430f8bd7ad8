/**
 * Every integration refuses an option it does not know, naming it and the one it probably meant:
 * a misspelt option would otherwise be ignored without a word (found with `fastifyApp(app, { probe:
 * true })`, which silently left the probes off).
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, it } from 'node:test';
import * as grpcJs from '@grpc/grpc-js';
import Fastify from 'fastify';
import { Server as SocketIoServer } from 'socket.io';
import { KubegraceError } from '../../src/index.js';
import { clusterPrimary } from '../../src/cluster/index.js';
import { fastifyApp } from '../../src/fastify/index.js';
import { grpc } from '../../src/grpc/index.js';
import { kubernetes } from '../../src/kubernetes/index.js';
import { metrics } from '../../src/metrics/index.js';
import { socketIo } from '../../src/socket-io/index.js';

/** A Socket.IO server bound to an HTTP server that never listens; closed at once. */
function bound(): SocketIoServer {
  const io = new SocketIoServer(createServer());
  void io.close();
  return io;
}

describe('integration options: an unknown key is refused', () => {
  const cases: [string, () => unknown, RegExp][] = [
    [
      'fastifyApp',
      () => fastifyApp(Fastify(), { probe: true } as never),
      /"probe" \(did you mean probes\?\)/,
    ],
    [
      'grpc',
      () => grpc(new grpcJs.Server(), { service: ['a'] } as never),
      /"service" \(did you mean services\?\)/,
    ],
    [
      'socketIo',
      () => socketIo(bound(), { attached: true } as never),
      /"attached" \(did you mean attach\?\)/,
    ],
    ['clusterPrimary', () => clusterPrimary({ worker: 2 } as never), /"worker" \(did you mean workers\?\)/],
    ['metrics', () => metrics({ paht: '/m' } as never), /"paht" \(did you mean path\?\)/],
    [
      'metrics pushgateway',
      () => metrics({ pushgateway: { url: 'http://127.0.0.1:9091', job: 'j', jobs: 'x' } } as never),
      /"jobs" \(did you mean job\?\)/,
    ],
    [
      'kubernetes',
      () => kubernetes({ namspace: 'shop' } as never),
      /"namspace" \(did you mean namespace\?\)/,
    ],
  ];
  for (const [name, call, message] of cases) {
    it(name, () => {
      assert.throws(
        call,
        (error: unknown) =>
          error instanceof KubegraceError &&
          error.code === 'ERR_KUBEGRACE_INVALID_OPTION' &&
          message.test(error.message),
      );
    });
  }
});
