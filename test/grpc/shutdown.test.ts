/**
 * kubegrace/grpc in a real child process across a real SIGTERM, with the real grpc-js client (retries
 * off): Watch turns NOT_SERVING in the unready phase, before the propagation wait ends; new
 * connections are served through the wait; no call started before the drain fails, except one the
 * client was still sending as the GOAWAY went out, which is refused unrun (docs/grpc.md, Limits); a
 * stream held past the drain budget ends with UNAVAILABLE and the process exits 1.
 */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as grpcJs from '@grpc/grpc-js';
import { healthServiceDefinition } from '../../src/grpc/index.js';
import { spawnEventChild, type EventChild } from '../support/child.js';
import { Echo, NO_RETRIES, ping, stalledFlood, ticks } from '../support/grpc-echo.js';
import { FAST_SHUTDOWN, within } from '../examples/harness.js';

const SERVICE = fileURLToPath(new URL('../support/grpc-service.ts', import.meta.url));
const Health = grpcJs.makeGenericClientConstructor(healthServiceDefinition, 'Health');
const NOT_SERVING = 2;
/** How long before the drain a call may start and still cross the GOAWAY on a loaded machine. */
const CROSSING_MS = 100;

const children: EventChild[] = [];
const clients: grpcJs.Client[] = [];
after(() => {
  for (const client of clients) client.close();
  for (const child of children) child.kill();
});

describe('kubegrace/grpc, SIGTERM under unary and streaming load', () => {
  it('flips health first, serves through the wait, fails no call, ends the held stream UNAVAILABLE, exits 1', async () => {
    const child = await spawnEventChild(
      process.execPath,
      ['--import', 'tsx', SERVICE],
      { ...FAST_SHUTDOWN, KUBEGRACE_PROBES_PORT: '0', KUBEGRACE_DRAIN_TIMEOUT_MS: '1500' },
      20_000,
    );
    children.push(child);
    const output = (): string =>
      [...child.events.map((e) => JSON.stringify(e)), ...child.stderr].join('\n').slice(-6000);
    const address = `127.0.0.1:${String(child.listening.port)}`;
    // grpc-js shares one connection between the clients of a target unless told otherwise.
    const make = <T extends typeof Echo>(Ctor: T, ownConnection = false): InstanceType<T> => {
      const options = ownConnection ? { ...NO_RETRIES, 'grpc.use_local_subchannel_pool': 1 } : NO_RETRIES;
      const made = new Ctor(address, grpcJs.credentials.createInsecure(), options) as InstanceType<T>;
      clients.push(made);
      return made;
    };
    const echo = make(Echo);
    const health = make(Health);

    const watch = (
      health as unknown as Record<string, (r: object) => grpcJs.ClientReadableStream<{ status: number }>>
    ).Watch!({ service: '' });
    watch.on('error', () => {});
    let notServingAt: number | undefined;
    watch.on('data', (message: { status: number }) => {
      if (message.status === NOT_SERVING) notServingAt ??= Date.now();
    });
    const watchEnded = new Promise<grpcJs.StatusObject>((resolve) => watch.on('status', resolve));

    const held = ticks(echo, 0); // never ends by itself
    const finite = ticks(echo, 20); // 400 ms: finishes across the drain
    const calls: { startedAt: number; error: unknown }[] = [];
    let stop = false;
    const loops = [0, 1, 2].map(async () => {
      for (let i = 0; i < 5000 && !stop; i++) {
        const startedAt = Date.now();
        try {
          await ping(echo);
          calls.push({ startedAt, error: undefined });
        } catch (error) {
          calls.push({ startedAt, error });
          await delay(10);
        }
      }
    });
    await delay(300);
    const signalledAt = Date.now();
    child.process.kill('SIGTERM');
    const unready = await child.waitFor((e) => e.event === 'phase' && e.phase === 'propagate', 5000);
    // The propagation wait: a new connection is served, health says NOT_SERVING.
    const fresh = make(Echo, true);
    await ping(fresh);
    const drainStart = await child.waitFor((e) => e.event === 'phase' && e.phase === 'drain', 10_000);
    await delay(200);
    stop = true;
    await within(Promise.all(loops), 10_000, 'the unary loops');
    const exit = await within(child.exited, 20_000, 'exit after SIGTERM');
    const heldResult = await within(held, 5000, 'the held stream');
    const finiteResult = await within(finite, 5000, 'the finite stream');

    assert.ok(notServingAt !== undefined, `Watch never said NOT_SERVING\n${output()}`);
    assert.ok(notServingAt < drainStart.t, 'NOT_SERVING came before the drain');
    console.log(
      `# Watch NOT_SERVING ${notServingAt - signalledAt} ms after SIGTERM (propagate began ${unready.t - signalledAt} ms after)`,
    );
    const watchStatus = await watchEnded;
    assert.equal(watchStatus.code, grpcJs.status.OK, `${JSON.stringify(watchStatus)}\n${output()}`);
    // With retries off, a call started in the last moments before the drain can still be on its way
    // when the GOAWAY goes out: the server ignores it and the client reports it refused (grpc-js
    // retries it when retries are on). Only that refusal, and only at the boundary, is allowed; CI
    // on a loaded 2-core machine saw two such calls under Node 26.
    const beforeDrain = calls.filter((c) => c.startedAt < drainStart.t);
    assert.ok(beforeDrain.length > 0);
    const failed = beforeDrain.filter((c) => c.error !== undefined);
    const early = failed.filter((c) => c.startedAt < drainStart.t - CROSSING_MS);
    if (failed.length > 0) {
      const gaps = failed.map((c) => `${String(drainStart.t - c.startedAt)} ms`).join(', ');
      console.log(
        `# ${String(failed.length)} call(s) refused as they crossed the GOAWAY, started ${gaps} before the drain`,
      );
    }
    assert.deepEqual(
      early.map((c) => `${String(drainStart.t - c.startedAt)} ms before the drain: ${String(c.error)}`),
      [],
      'no unary call started well before the drain failed',
    );
    assert.deepEqual(
      failed.map((c) => String(c.error)).filter((e) => !e.includes('Stream refused by server')),
      [],
      'a call that crossed the GOAWAY was refused, not failed otherwise',
    );
    assert.deepEqual(finiteResult, { received: 20, code: grpcJs.status.OK });
    assert.equal(heldResult.code, grpcJs.status.UNAVAILABLE, output());
    assert.equal(exit.code, 1, output());
    const summary = child.events.find((e) => e.event === 'shutdown');
    assert.equal(summary?.outcome, 'forced', output());
  });
});

describe('kubegrace/grpc, streams still running at the deadline', () => {
  it('end with UNAVAILABLE: the status of a stream that can take it, a dropped connection where the client stopped reading', async () => {
    // The deadline (grace 4 s − margin 1 s) comes long before the drain budget (20 s): the cleanup
    // phase has no time left, so the statuses leave in the exit phase, within the report's slice.
    const child = await spawnEventChild(
      process.execPath,
      ['--import', 'tsx', SERVICE],
      {
        ...FAST_SHUTDOWN,
        KUBEGRACE_GRACE_PERIOD_SECONDS: '4',
        KUBEGRACE_PROPAGATION_MAX_MS: '1000',
        KUBEGRACE_DRAIN_TIMEOUT_MS: '20000',
        KUBEGRACE_BUDGET_CHECK: 'warn',
        KUBEGRACE_PROBES_PORT: '0',
      },
      20_000,
    );
    children.push(child);
    const output = (): string =>
      [...child.events.map((e) => JSON.stringify(e)), ...child.stderr].join('\n').slice(-6000);
    const address = `127.0.0.1:${String(child.listening.port)}`;
    // Each call on a connection of its own: dropping one connection must not decide the other's status.
    const own = (): grpcJs.Client => {
      const made = new Echo(address, grpcJs.credentials.createInsecure(), {
        ...NO_RETRIES,
        'grpc.use_local_subchannel_pool': 1,
      });
      clients.push(made);
      return made;
    };
    const heldTicks = ticks(own(), 0);
    const stalled = stalledFlood(own(), 3);
    await delay(300);
    child.process.kill('SIGTERM');
    const exit = await within(child.exited, 15_000, 'exit after SIGTERM');
    const ticksResult = await within(heldTicks, 5000, 'the held stream');
    const stalledResult = await within(stalled, 5000, 'the stalled stream');
    const summary = child.events.find((e) => e.event === 'shutdown');
    assert.equal(summary?.outcome, 'deadline', output());
    assert.equal(summary?.forced, 2, output());
    assert.equal(exit.code, 1, output());
    // Before: CANCELLED ("Call cancelled"), which no retry policy retries.
    assert.equal(ticksResult.code, grpcJs.status.UNAVAILABLE, output());
    assert.equal(stalledResult.code, grpcJs.status.UNAVAILABLE, `${stalledResult.details}\n${output()}`);
    assert.match(output(), /1 of the 2 gRPC call\(s\) .* could not be sent status UNAVAILABLE/);
  });
});
