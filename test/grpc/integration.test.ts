/**
 * kubegrace/grpc with the real grpc-js server and client on loopback: the health service follows the
 * lifecycle (NOT_SERVING from the start of the shutdown, before the propagation wait ends; liveness
 * SERVING throughout), calls keep being served through the propagation wait, Watch streams are told
 * and ended, an in-flight stream finishes across the GOAWAY, and one held past the drain budget ends
 * with UNAVAILABLE and a forced (exit 1) shutdown.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import * as grpcJs from '@grpc/grpc-js';
import {
  createKubegrace,
  KubegraceError,
  type Kubegrace,
  type PhaseName,
  type ShutdownSummary,
} from '../../src/index.js';
import { grpc, healthServiceDefinition } from '../../src/grpc/index.js';
import {
  Echo,
  echoDefinition,
  echoImplementation,
  held,
  heldStreams,
  NO_RETRIES,
  ping,
  stalledFlood,
  ticks,
} from '../support/grpc-echo.js';

interface Harness {
  readonly kg: Kubegrace;
  readonly server: grpcJs.Server;
  readonly address: string;
  phase(): PhaseName | undefined;
  readonly warnings: string[];
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function harness(options: {
  delayMs: number;
  drainMs: number;
  onWarn?: (message: string) => void;
}): Promise<Harness> {
  const warnings: string[] = [];
  const codes: number[] = [];
  const kg = createKubegrace({
    env: {},
    handleSignals: false,
    managementServer: false,
    exit: (code) => codes.push(code),
    logger: {
      info: () => {},
      warn: (message) => {
        warnings.push(message);
        options.onWarn?.(message);
      },
      error: () => {},
    },
    propagation: { strategy: 'fixed', delayMs: options.delayMs },
    drain: { timeoutMs: options.drainMs },
  });
  const server = new grpcJs.Server();
  server.addService(echoDefinition, echoImplementation);
  kg.use(grpc(server, { services: ['test.Echo'] }));
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpcJs.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  let current: PhaseName | undefined;
  kg.on('phase', ({ phase, status }) => {
    if (status === 'start') current = phase;
  });
  cleanups.push(
    () => server.forceShutdown(),
    () => kg.destroy(),
  );
  kg.ready();
  return { kg, server, address: `127.0.0.1:${port}`, phase: () => current, warnings };
}

/**
 * A harness whose drain budget (300 ms) ends the calls still running, then runs `act` on the next
 * tick, before the forced calls' streams have closed; `uncaught` collects what that throws.
 */
async function forcedThen(act: () => void): Promise<{ h: Harness; uncaught: unknown[] }> {
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown): void => {
    uncaught.push(error);
  };
  process.on('uncaughtException', onUncaught);
  cleanups.push(() => process.off('uncaughtException', onUncaught));
  const h = await harness({
    delayMs: 50,
    drainMs: 300,
    onWarn: (message) => {
      if (/still running at the drain budget/.test(message)) process.nextTick(act);
    },
  });
  return { h, uncaught };
}

const Health = grpcJs.makeGenericClientConstructor(healthServiceDefinition, 'Health');

function client<T extends typeof Health>(Ctor: T, address: string): InstanceType<T> {
  const made = new Ctor(address, grpcJs.credentials.createInsecure(), NO_RETRIES) as InstanceType<T>;
  cleanups.push(() => made.close());
  return made;
}

function check(health: grpcJs.Client, service: string): Promise<number> {
  return new Promise((resolve, reject) =>
    (health as unknown as Record<string, (...a: unknown[]) => void>).Check!(
      { service },
      (error: grpcJs.ServiceError | null, value: { status: number }) =>
        error ? reject(error) : resolve(value.status),
    ),
  );
}

const SERVING = 1;
const NOT_SERVING = 2;

describe('kubegrace/grpc', () => {
  it('answers Check from the lifecycle: overall and per service, NOT_FOUND for others, liveness SERVING while draining', async () => {
    const h = await harness({ delayMs: 400, drainMs: 2000 });
    const health = client(Health, h.address);
    const echo = client(Echo, h.address);
    assert.equal(await check(health, ''), SERVING);
    assert.equal(await check(health, 'test.Echo'), SERVING);
    assert.equal(await check(health, 'liveness'), SERVING);
    await assert.rejects(
      check(health, 'nope'),
      (error: grpcJs.ServiceError) => error.code === grpcJs.status.NOT_FOUND,
    );

    const done = h.kg.shutdown('test');
    // The shutdown has started: before the propagation wait ends, health already says NOT_SERVING,
    // liveness still SERVING, and calls on a new connection are still served.
    assert.equal(await check(health, ''), NOT_SERVING);
    assert.equal(await check(health, 'test.Echo'), NOT_SERVING);
    assert.equal(await check(health, 'liveness'), SERVING);
    const fresh = client(Echo, h.address);
    await ping(fresh);
    await ping(echo);
    assert.notEqual(h.phase(), 'drain');
    assert.notEqual(h.phase(), 'cleanup');
    const summary: ShutdownSummary = await done;
    assert.equal(summary.outcome, 'clean');
  });

  it('tells Watch streams NOT_SERVING at the start of the shutdown and ends them in the drain', async () => {
    const h = await harness({ delayMs: 300, drainMs: 2000 });
    const health = client(Health, h.address);
    const seen: { status: number; phase: PhaseName | undefined }[] = [];
    const watch = (
      health as unknown as Record<string, (r: object) => grpcJs.ClientReadableStream<{ status: number }>>
    ).Watch!({
      service: '',
    });
    const ended = new Promise<number>((resolve) => watch.on('status', (status) => resolve(status.code)));
    watch.on('error', () => {});
    const first = new Promise<void>((resolve) =>
      watch.on('data', (message: { status: number }) => {
        seen.push({ status: message.status, phase: h.phase() });
        resolve();
      }),
    );
    await first;
    const summary = await h.kg.shutdown('test');
    assert.equal(await ended, grpcJs.status.OK);
    assert.equal(summary.outcome, 'clean');
    assert.deepEqual(
      seen.map((s) => s.status),
      [SERVING, NOT_SERVING],
    );
    // Told before the drain began: in the unready phase or the propagation wait.
    assert.ok(
      seen[1]?.phase === 'unready' || seen[1]?.phase === 'propagate',
      `told in ${String(seen[1]?.phase)}`,
    );
  });

  it('lets a stream in flight finish across the drain, with zero failed calls under a unary loop', async () => {
    const h = await harness({ delayMs: 300, drainMs: 5000 });
    const echo = client(Echo, h.address);
    const stream = ticks(echo, 30);
    let ok = 0;
    let failed = 0;
    let stop = false;
    const loop = (async () => {
      for (let i = 0; i < 2000 && !stop; i++) {
        try {
          await ping(echo);
          ok++;
        } catch {
          failed++;
          break;
        }
      }
    })();
    const summary = await h.kg.shutdown('test');
    stop = true;
    await loop;
    const result = await stream;
    assert.equal(summary.outcome, 'clean');
    assert.deepEqual(result, { received: 30, code: grpcJs.status.OK });
    assert.ok(ok > 0);
    // The loop stops at its first failure: one after the listener closed is expected, none before.
    assert.ok(failed <= 1);
  });

  it('ends a stream held past the drain budget with UNAVAILABLE and reports it forced (exit 1)', async () => {
    const h = await harness({ delayMs: 100, drainMs: 400 });
    const echo = client(Echo, h.address);
    const stream = ticks(echo, 100_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const summary = await h.kg.shutdown('test');
    const result = await stream;
    assert.equal(result.code, grpcJs.status.UNAVAILABLE, h.warnings.join('\n'));
    assert.ok(result.received > 0);
    assert.equal(summary.exitCode, 1);
    assert.ok(
      h.warnings.some((w) => /UNAVAILABLE/.test(w)),
      h.warnings.join('\n'),
    );
  });
  it('a stream whose client stopped reading, held past the drain budget, gets UNAVAILABLE from a dropped connection, and the log says so', async () => {
    const h = await harness({ delayMs: 100, drainMs: 400 });
    const echo = client(Echo, h.address);
    // The client takes three 64 KiB messages and stops: the server's status would have to wait
    // behind the data it no longer takes.
    const status = stalledFlood(echo, 3);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const summary = await h.kg.shutdown('test');
    const ended = await status;
    // Before: CANCELLED ("Call cancelled"), while the log said "ended with UNAVAILABLE".
    assert.equal(ended.code, grpcJs.status.UNAVAILABLE, `${ended.details}\n${h.warnings.join('\n')}`);
    assert.equal(summary.outcome, 'forced');
    assert.equal(summary.exitCode, 1);
    assert.ok(
      h.warnings.some((w) => /1 of the 1 gRPC call\(s\) .* could not be sent status UNAVAILABLE/.test(w)),
      h.warnings.join('\n'),
    );
  });
  it('a unary call its handler answers right after the drain budget ended it gets UNAVAILABLE, and nothing throws', async () => {
    held.length = 0;
    // The forced end has just written UNAVAILABLE; the handler answers before the stream closed
    // (grpc-js's respond() threw ERR_HTTP2_HEADERS_SENT there, uncaught, in the app's callback).
    const { h, uncaught } = await forcedThen(() => {
      for (const answer of held.splice(0)) answer(null, Buffer.from('late'));
    });
    const echo = client(Echo, h.address);
    const answered = new Promise<grpcJs.ServiceError | null>((resolve) =>
      (echo as unknown as Record<string, (...a: unknown[]) => void>).Hold!(
        Buffer.alloc(0),
        (error: grpcJs.ServiceError | null) => resolve(error),
      ),
    );
    while (held.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    const summary = await h.kg.shutdown('test');
    const error = await answered;
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(uncaught, []);
    assert.equal(error?.code, grpcJs.status.UNAVAILABLE, String(error));
    assert.equal(summary.exitCode, 1);
  });
  it('a stream its handler ends right after the drain budget ended it gets UNAVAILABLE, and nothing throws', async () => {
    heldStreams.length = 0;
    // The forced end has just asked for our trailers; the handler ends the call before they went
    // (grpc-js's second sendTrailers() threw "Trailing headers have already been sent", uncaught).
    const { h, uncaught } = await forcedThen(() => {
      for (const call of heldStreams.splice(0)) call.end();
    });
    const echo = client(Echo, h.address);
    const call = (echo as unknown as Record<string, (r: Buffer) => grpcJs.ClientReadableStream<Buffer>>)
      .HoldStream!(Buffer.alloc(0));
    call.on('data', () => {});
    call.on('error', () => {});
    const status = new Promise<grpcJs.StatusObject>((resolve) => call.on('status', resolve));
    while (heldStreams.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    const summary = await h.kg.shutdown('test');
    const ended = await status;
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(uncaught, []);
    assert.equal(ended.code, grpcJs.status.UNAVAILABLE, ended.details);
    assert.equal(summary.exitCode, 1);
  });
});

describe('grpc() refusals', () => {
  const quiet = (): Kubegrace =>
    createKubegrace({
      env: {},
      handleSignals: false,
      managementServer: false,
      exit: () => {},
      logger: false,
    });

  it('a server that already has a grpc.health.v1 service is refused with a hint at health: false, and can then be given with it', async () => {
    const { HealthImplementation } = await import('grpc-health-check');
    const kg = quiet();
    const server = new grpcJs.Server();
    new HealthImplementation({ '': 'SERVING' }).addToServer(server);
    try {
      // Before: grpc-js's own "Method handler for /grpc.health.v1.Health/Check already provided."
      assert.throws(
        () => kg.use(grpc(server)),
        (error: unknown) =>
          error instanceof KubegraceError &&
          error.code === 'ERR_KUBEGRACE_INVALID_STATE' &&
          /already has a grpc\.health\.v1\.Health service.*\{ health: false \}/.test(error.message),
      );
      const handle = kg.use(grpc(server, { health: false }));
      assert.equal(handle.status(), 'NOT_SERVING');
    } finally {
      await kg.destroy();
    }
  });

  it('status() with a non-string names the number as a number', () => {
    const kg = quiet();
    try {
      const handle = kg.use(grpc(new grpcJs.Server()));
      assert.throws(
        () => handle.status(5 as unknown as string),
        (error: unknown) =>
          error instanceof KubegraceError &&
          error.code === 'ERR_KUBEGRACE_INVALID_OPTION' &&
          error.message === 'status(service) must be a string, received 5',
      );
    } finally {
      void kg.destroy();
    }
  });
});

describe('grpc(server) given twice', () => {
  it('is refused naming grpc(server), not with grpc-js’s duplicate-handler error', () => {
    const kg = createKubegrace({
      env: {},
      handleSignals: false,
      managementServer: false,
      exit: () => {},
      logger: false,
    });
    const server = new grpcJs.Server();
    try {
      kg.use(grpc(server));
      assert.throws(
        () => kg.use(grpc(server, { name: 'other' })),
        (error: unknown) =>
          error instanceof KubegraceError &&
          error.code === 'ERR_KUBEGRACE_INVALID_STATE' &&
          /already given to kubegrace.*kg\.use\(grpc\(server\)\) once per server/.test(error.message),
      );
    } finally {
      void kg.destroy();
    }
  });
});
