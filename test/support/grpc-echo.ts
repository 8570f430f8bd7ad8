/**
 * A tiny gRPC service for the kubegrace/grpc tests (raw bytes, no proto): `Ping` (unary) and `Ticks`
 * (server streaming: one message per 20 ms, as many as the request's uint32 says, 0 for no end).
 */
import * as grpcJs from '@grpc/grpc-js';

const raw = {
  requestSerialize: (value: Buffer) => value,
  requestDeserialize: (bytes: Buffer) => bytes,
  responseSerialize: (value: Buffer) => value,
  responseDeserialize: (bytes: Buffer) => bytes,
};

export const echoDefinition = {
  Ping: { path: '/test.Echo/Ping', requestStream: false, responseStream: false, ...raw },
  Ticks: { path: '/test.Echo/Ticks', requestStream: false, responseStream: true, ...raw },
  /** Unary, answered only when the test calls the callback left in `held`. */
  Hold: { path: '/test.Echo/Hold', requestStream: false, responseStream: false, ...raw },
  /** Server streaming: 64 KiB messages as fast as the client's flow control lets them go, no end. */
  Flood: { path: '/test.Echo/Flood', requestStream: false, responseStream: true, ...raw },
  /** Server streaming: one message, then open until the test ends the call left in `heldStreams`. */
  HoldStream: { path: '/test.Echo/HoldStream', requestStream: false, responseStream: true, ...raw },
} as const;

/** The callbacks of the `Hold` calls not answered yet. */
export const held: ((error: null, value: Buffer) => void)[] = [];
/** The `HoldStream` calls not ended yet. */
export const heldStreams: grpcJs.ServerWritableStream<Buffer, Buffer>[] = [];

export const echoImplementation = {
  Hold: (_call: unknown, callback: (error: null, value: Buffer) => void) => {
    held.push(callback);
  },
  HoldStream: (call: grpcJs.ServerWritableStream<Buffer, Buffer>) => {
    call.write(Buffer.from([1]));
    heldStreams.push(call);
  },
  Flood: (call: grpcJs.ServerWritableStream<Buffer, Buffer>) => {
    const message = Buffer.alloc(65_536, 7);
    const more = (): void => {
      while (!call.cancelled && call.write(message));
      if (!call.cancelled) call.once('drain', more);
    };
    more();
  },
  Ping: (_call: unknown, callback: (error: null, value: Buffer) => void) =>
    callback(null, Buffer.from('pong')),
  Ticks: (call: grpcJs.ServerWritableStream<Buffer, Buffer>) => {
    const count = call.request.readUInt32BE(0);
    let sent = 0;
    const timer = setInterval(() => {
      if (call.cancelled) return clearInterval(timer);
      call.write(Buffer.from([sent & 0xff]));
      if (++sent === count) {
        clearInterval(timer);
        call.end();
      }
    }, 20);
  },
};

export const Echo = grpcJs.makeGenericClientConstructor(echoDefinition, 'Echo');
export const NO_RETRIES = { 'grpc.enable_retries': 0 };

type Methods = Record<string, (...args: unknown[]) => unknown>;

export function ping(echo: grpcJs.Client): Promise<void> {
  return new Promise((resolve, reject) => {
    (echo as unknown as Methods).Ping!(Buffer.alloc(0), (error: unknown) =>
      error ? reject(error) : resolve(),
    );
  });
}

/**
 * A Flood call whose client stops reading after `read` messages (its flow-control window fills, so
 * the server cannot send anything more on it): resolves with the status it ended with.
 */
export function stalledFlood(echo: grpcJs.Client, read: number): Promise<grpcJs.StatusObject> {
  const call = (echo as unknown as Methods).Flood!(Buffer.alloc(0)) as grpcJs.ClientReadableStream<Buffer>;
  let received = 0;
  call.on('data', () => {
    if (++received === read) call.pause();
  });
  call.on('error', () => {});
  return new Promise((resolve) => call.on('status', resolve));
}

/** A Ticks call: resolves with the messages received and the status code it ended with. */
export function ticks(echo: grpcJs.Client, count: number): Promise<{ received: number; code: number }> {
  const request = Buffer.alloc(4);
  request.writeUInt32BE(count);
  const call = (echo as unknown as Methods).Ticks!(request) as grpcJs.ClientReadableStream<Buffer>;
  let received = 0;
  call.on('data', () => received++);
  call.on('error', () => {});
  return new Promise((resolve) => call.on('status', (status) => resolve({ received, code: status.code })));
}
