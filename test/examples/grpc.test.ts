/**
 * examples/grpc: unary calls from several grpc-js clients (retries off, so a failure shows) and an
 * order-tracking stream across SIGTERM; health turns NOT_SERVING while calls are still served, no call
 * fails, the stream finishes, exit 0, clean.
 */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import * as grpcJs from '@grpc/grpc-js';
import { healthServiceDefinition } from '../../src/grpc/index.js';
import { startExample, within, type RunningExample } from './harness.js';

const json = {
  requestSerialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
  requestDeserialize: (bytes: Buffer): unknown => JSON.parse(bytes.toString()),
  responseSerialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
  responseDeserialize: (bytes: Buffer): unknown => JSON.parse(bytes.toString()),
};
const Orders = grpcJs.makeGenericClientConstructor(
  {
    GetOrder: { path: '/shop.Orders/GetOrder', requestStream: false, responseStream: false, ...json },
    TrackOrder: { path: '/shop.Orders/TrackOrder', requestStream: false, responseStream: true, ...json },
  },
  'Orders',
);
const Health = grpcJs.makeGenericClientConstructor(healthServiceDefinition, 'Health');
type Methods = Record<string, (...args: unknown[]) => unknown>;

describe('examples/grpc', () => {
  let example: RunningExample | undefined;
  const clients: grpcJs.Client[] = [];
  after(() => {
    for (const client of clients) client.close();
    example?.kill();
  });

  it('serves every call through SIGTERM, finishes the stream in flight, turns health NOT_SERVING, exits 0', async () => {
    example = await startExample('grpc');
    const address = `127.0.0.1:${example.port}`;
    // Each client on a connection of its own, as separate client pods would be; retries off.
    const make = <T extends typeof Orders>(Ctor: T): InstanceType<T> => {
      const client = new Ctor(address, grpcJs.credentials.createInsecure(), {
        'grpc.enable_retries': 0,
        'grpc.use_local_subchannel_pool': 1,
      }) as InstanceType<T>;
      clients.push(client);
      return client;
    };
    const health = make(Health);
    const checkHealth = (service: string): Promise<number> =>
      new Promise((resolve, reject) => {
        (health as unknown as Methods).Check!(
          { service },
          (error: Error | null, value: { status: number }) => (error ? reject(error) : resolve(value.status)),
        );
      });
    assert.equal(await checkHealth('shop.Orders'), 1);

    const getOrder = (client: grpcJs.Client, id: string): Promise<void> =>
      new Promise((resolve, reject) => {
        (client as unknown as Methods).GetOrder!({ id }, (error: Error | null) =>
          error ? reject(error) : resolve(),
        );
      });
    const track = new Promise<{ steps: number; code: number }>((resolve) => {
      const call = (make(Orders) as unknown as Methods).TrackOrder!({
        id: 'o-1',
        steps: 15,
      }) as grpcJs.ClientReadableStream<unknown>;
      let steps = 0;
      call.on('data', () => steps++);
      call.on('error', () => {});
      call.on('status', (status) => resolve({ steps, code: status.code }));
    });

    let ok = 0;
    let okAfterSignal = 0;
    let signalled = false;
    let stop = false;
    const failures: string[] = [];
    const loops = [0, 1, 2, 3].map(async (n) => {
      const client = make(Orders);
      while (!stop) {
        try {
          await getOrder(client, `o-${n}`);
          ok++;
          if (signalled) okAfterSignal++;
        } catch (error) {
          failures.push(String(error));
          break;
        }
      }
    });
    await delay(400);
    example.process.kill('SIGTERM');
    signalled = true;
    await delay(150);
    const notServing = await checkHealth('shop.Orders');
    await delay(150); // the endpoints take a moment to drop the pod; calls keep coming meanwhile
    stop = true;
    await within(Promise.all(loops), 10_000, 'the calls in flight');
    const exit = await within(example.exited, 20_000, 'exit after SIGTERM');
    const tracked = await within(track, 5000, 'the tracking stream');

    assert.deepEqual(failures, [], example.output());
    assert.ok(ok > 20, `only ${ok} calls answered`);
    assert.ok(okAfterSignal > 0, 'calls after SIGTERM must still be served');
    assert.equal(notServing, 2, 'health says NOT_SERVING once SIGTERM came');
    assert.deepEqual(tracked, { steps: 15, code: grpcJs.status.OK });
    assert.equal(exit.code, 0, example.output());
    const summary = example.summary();
    assert.equal(summary?.outcome, 'clean', example.output());
    assert.deepEqual(summary?.failures, []);
  });
});
