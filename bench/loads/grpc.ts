/**
 * gRPC clients (@grpc/grpc-js with no retry policy: a call that failed after the server took it is
 * failed; grpc-js's transparent retry of a refused stream stays on unless turned off) behind the
 * endpoint table, recorded like the HTTP loads (one record per call):
 * - pooled clients, each one channel carrying `CALLS_PER_CHANNEL` closed-loop call loops
 *   (`concurrency` loops in all): the first loop of each channel makes server-streaming `Ticks`
 *   calls (`TICKS` messages, the work time apart), the others unary `Echo` calls answered after the
 *   work time. A channel that got GOAWAY or lost its connection (it left READY), or whose call
 *   failed while it was not connected, is closed and replaced by a new one through the Service, as
 *   client pools do (and as a channel to a ClusterIP reconnects through kube-proxy);
 * - `newConnectionsPerSecond` new clients, each opening a channel for one unary call.
 *
 * Routing, as through a ClusterIP: each channel talks to a hop of its own on loopback (grpc-js takes
 * no socket from outside), and every connection the channel opens there is routed by the Service
 * table at that moment (`table.connect()`, which also counts it for the pod's arrival rate) and
 * piped both ways. So a channel's reconnect, and grpc-js's transparent retry of a call the server
 * refused unprocessed (REFUSED_STREAM at a GOAWAY), land where the Service sends them now, as they
 * do through kube-proxy. Each channel has its own subchannel pool, so no two channels share a
 * connection. `transparentRetries: false` (`--grpc-retries off`) turns grpc-js's retries off
 * altogether (`grpc.enable_retries: 0`): the strictest client, which fails every refused stream.
 *
 * Failed: every call that did not end with status OK (UNAVAILABLE from a refused connect, or from a
 * refused stream with `--grpc-retries off`, CANCELLED, DEADLINE_EXCEEDED after the work time + 10 s, ...), by status name;
 * streaming calls as `stream <STATUS>`; `HARNESS` when the harness could not open a hop. `failures`
 * keeps each one's time, pod and details.
 */
import * as grpcJs from '@grpc/grpc-js';
import * as net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConnectionKind, EndpointTable } from '../../src/cli/demo/endpoint-table.js';
import {
  loadBasics,
  startArrivals,
  type Load,
  type LoadOptions,
  type RequestRecord,
} from '../../src/cli/demo/load.js';
import { benchServiceDefinition } from '../services/grpc-app.js';

/** Calls in flight per pooled channel: one streaming loop and the rest unary. */
const CALLS_PER_CHANNEL = 4;
/** Messages per server-streaming call, the work time apart. */
export const TICKS = 10;

/**
 * The channel options of every client: grpc-js's defaults (no retry policy: a call that failed after
 * the server processed it is failed; transparent retries of refused streams on), a connection of
 * its own; with `transparentRetries: false`, no retries at all.
 */
function channelOptions(transparentRetries: boolean): grpcJs.ChannelOptions {
  return {
    'grpc.use_local_subchannel_pool': 1,
    ...(transparentRetries ? {} : { 'grpc.enable_retries': 0 }),
  };
}

interface GrpcLoadOptions {
  /** grpc-js's transparent retries (its default). @default true */
  readonly transparentRetries?: boolean;
}

export interface GrpcFailure {
  /** Epoch ms (fractional) the call ended. */
  readonly at: number;
  readonly startedAt: number;
  readonly endpoint: string | undefined;
  readonly kind: string;
  readonly details: string;
}

export interface GrpcLoad extends Load {
  /** Every failed call, with grpc-js's details. */
  readonly failures: readonly GrpcFailure[];
  /** Channels replaced after they left READY (GOAWAY or a lost connection). */
  readonly replaced: number;
}

const BenchClient = grpcJs.makeGenericClientConstructor(benchServiceDefinition, 'Bench');

/** The methods makeGenericClientConstructor adds, typed. */
interface BenchStub {
  Echo(
    request: { ms: number },
    metadata: grpcJs.Metadata,
    options: grpcJs.CallOptions,
    callback: (error: grpcJs.ServiceError | null) => void,
  ): grpcJs.ClientUnaryCall;
  Ticks(
    request: { count: number; ms: number },
    metadata: grpcJs.Metadata,
    options: grpcJs.CallOptions,
  ): grpcJs.ClientReadableStream<unknown>;
}

interface Channel {
  readonly client: grpcJs.Client;
  /** The pod its current connection was routed to. */
  readonly endpoint: () => string | undefined;
  readonly hop: net.Server;
  /** It left READY after being READY: replaced before its next call. */
  gone: boolean;
  /** Replaced: closed once its calls in flight have ended. */
  retired: boolean;
  closed: boolean;
  /** Calls started on it and not ended. */
  inFlight: number;
}

type Outcome = { readonly failure?: undefined } | { readonly failure: string; readonly details: string };

const statusName = (code: number): string => grpcJs.status[code] ?? `status ${code}`;

export function startGrpcLoad(
  options: LoadOptions,
  table: EndpointTable,
  grpcOptions: GrpcLoadOptions = {},
): GrpcLoad {
  const channelOptionsInUse = channelOptions(grpcOptions.transparentRetries ?? true);
  const { now, timeoutMs, backoffMs, pickWork } = loadBasics(options);
  const records: RequestRecord[] = [];
  const failures: GrpcFailure[] = [];
  const channels = new Set<Channel>();
  let stopped = false;
  let aborted = false;
  let replaced = 0;
  /** The hops' piped sockets still open: destroyed when the load ends. */
  const piped = new Set<net.Socket>();
  const track = (socket: net.Socket): void => {
    piped.add(socket);
    socket.once('close', () => piped.delete(socket));
  };
  /** When the load ends: every channel (and its hop) closed, every piped socket destroyed. */
  const closeAll = (): void => {
    for (const entry of [...channels]) close(entry);
    for (const socket of piped) socket.destroy();
  };

  const bound = setTimeout(() => {
    stopped = true;
  }, options.maxDurationMs);
  bound.unref();

  function close(entry: Channel): void {
    if (entry.closed) return;
    entry.closed = true;
    channels.delete(entry);
    entry.client.close();
    entry.hop.close();
  }

  /**
   * The hop of one channel, listening on loopback: each connection the channel opens is routed by
   * the Service table as it opens. A refused connect to the pod resets the channel's connection.
   */
  async function openHop(
    kind: ConnectionKind,
  ): Promise<{ server: net.Server; endpoint: () => string | undefined }> {
    let endpoint: string | undefined;
    // Closing the hop stops new connections only: the channel's calls in flight finish on theirs
    // (grpc-js's close() is graceful too), and each piped pair ends when either side does.
    const server = net.createServer((downstream) => {
      track(downstream);
      const connection = table.connect(kind);
      if (connection === undefined) {
        // No endpoint: a call failing on this connection belongs to no pod.
        endpoint = undefined;
        downstream.resetAndDestroy();
        return;
      }
      endpoint = connection.endpoint.name;
      const upstream = connection.socket;
      track(upstream);
      upstream.on('error', () => downstream.resetAndDestroy());
      downstream.on('error', () => {}); // its 'close' below ends the upstream
      upstream.once('close', () => downstream.destroy());
      downstream.once('close', () => upstream.destroy());
      upstream.pipe(downstream);
      downstream.pipe(upstream);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    // An accept that fails (out of descriptors) leaves the channel's connect to time out; it must
    // not take the harness down.
    server.on('error', () => {});
    return { server, endpoint: () => endpoint };
  }

  /** Follows the channel's state: once it was READY, any other state means the connection is gone. */
  function follow(entry: Channel, wasReady: boolean): void {
    const channel = entry.client.getChannel();
    const state = channel.getConnectivityState(false);
    if (wasReady && state !== grpcJs.connectivityState.READY) {
      entry.gone = true;
      return;
    }
    if (entry.closed) return;
    channel.watchConnectivityState(state, Date.now() + 3_600_000, (error) => {
      if (error === undefined && !entry.closed)
        follow(entry, wasReady || state === grpcJs.connectivityState.READY);
    });
  }

  async function open(kind: ConnectionKind): Promise<Channel> {
    const hop = await openHop(kind);
    const { port } = hop.server.address() as net.AddressInfo;
    const client = new BenchClient(
      `127.0.0.1:${port}`,
      grpcJs.credentials.createInsecure(),
      channelOptionsInUse,
    );
    const entry: Channel = {
      client,
      endpoint: hop.endpoint,
      hop: hop.server,
      gone: false,
      retired: false,
      closed: false,
      inFlight: 0,
    };
    channels.add(entry);
    follow(entry, false);
    return entry;
  }

  const usable = (entry: Channel): boolean => !entry.gone && !entry.closed;

  /** A replaced channel closes once its calls in flight have ended. */
  const closeIfIdle = (entry: Channel): void => {
    if (entry.retired && entry.inFlight === 0) close(entry);
  };

  const deadline = (workMs: number): Date => new Date(Date.now() + timeoutMs + workMs);

  /**
   * `onMetadata` runs when the server's response headers arrive: the connection the call runs on
   * is the channel's newest then (a transparent retry opens a new one through the hop).
   */
  function unary(entry: Channel, workMs: number, onMetadata: () => void): Promise<Outcome> {
    return new Promise((resolve) => {
      const call = (entry.client as unknown as BenchStub).Echo(
        { ms: workMs },
        new grpcJs.Metadata(),
        { deadline: deadline(workMs) },
        (error) => resolve(error ? { failure: statusName(error.code), details: error.details } : {}),
      );
      call.on('metadata', onMetadata);
    });
  }

  function stream(entry: Channel, workMs: number, onMetadata: () => void): Promise<Outcome> {
    return new Promise((resolve) => {
      const call = (entry.client as unknown as BenchStub).Ticks(
        { count: TICKS, ms: workMs },
        new grpcJs.Metadata(),
        {
          deadline: deadline(workMs * TICKS),
        },
      );
      call.on('metadata', onMetadata);
      let received = 0;
      call.on('data', () => received++);
      // 'error' carries a non-OK status; 'status' comes either way.
      call.on('error', () => {});
      call.on('status', (status: grpcJs.StatusObject) => {
        if (status.code === grpcJs.status.OK && received === TICKS) resolve({});
        else if (status.code === grpcJs.status.OK)
          resolve({ failure: 'stream short', details: `${received} of ${TICKS} messages` });
        else
          resolve({
            failure: `stream ${statusName(status.code)}`,
            details: `${status.details} (after ${received} of ${TICKS} messages)`,
          });
      });
    });
  }

  function push(record: RequestRecord, details?: string): void {
    if (aborted) return;
    records.push(record);
    if (record.failure !== undefined) {
      failures.push({
        at: record.endedAt,
        startedAt: record.startedAt,
        endpoint: record.endpoint,
        kind: record.failure,
        details: details ?? '',
      });
    }
    options.onRecord?.(record);
  }

  async function call(loop: number, streaming: boolean, current: () => Promise<Channel>): Promise<boolean> {
    const workMs = pickWork();
    const startedAt = now();
    const base = {
      loop,
      startedAt,
      workMs: streaming ? workMs * TICKS : workMs,
      reusedSocket: false,
      connectionClose: false,
    };
    let entry: Channel;
    try {
      entry = await current();
    } catch (error) {
      // The harness could not open a hop (out of descriptors): counted, not a crash.
      push(
        { ...base, endedAt: now(), status: undefined, failure: 'HARNESS', endpoint: undefined },
        String(error),
      );
      return false;
    }
    // The pod the call runs on: its connection's when the response headers come; for a call that
    // failed before any answer, the channel's connection when it failed (its first connection may
    // only be opened by this call).
    let pod: string | undefined;
    entry.inFlight++;
    const outcome = await (streaming ? stream : unary)(entry, workMs, () => (pod = entry.endpoint()));
    pod ??= entry.endpoint();
    entry.inFlight--;
    closeIfIdle(entry);
    // A failed call on a channel that is not connected (its connect was refused, or the connection
    // dropped): the client's next connection goes through the Service again, not back to this pod.
    if (
      outcome.failure !== undefined &&
      entry.client.getChannel().getConnectivityState(false) !== grpcJs.connectivityState.READY
    ) {
      entry.gone = true;
    }
    push(
      {
        ...base,
        endedAt: now(),
        status: outcome.failure === undefined ? 200 : undefined,
        failure: outcome.failure,
        endpoint: pod,
      },
      outcome.failure === undefined ? undefined : outcome.details,
    );
    return outcome.failure === undefined;
  }

  async function pooledClient(first: number, loops: number): Promise<void> {
    let entry: Promise<Channel> | undefined;
    let settled: Channel | undefined;
    const current = (): Promise<Channel> => {
      if (entry === undefined || (settled !== undefined && !usable(settled))) {
        if (settled !== undefined) {
          // Its calls in flight finish first: closing a grpc-js channel cancels the calls it has
          // queued, such as a transparent retry waiting for its new connection.
          settled.retired = true;
          closeIfIdle(settled);
          replaced++;
        }
        settled = undefined;
        const opening = open('pooled').then(
          (opened) => (settled = opened),
          (error: unknown) => {
            if (entry === opening) entry = undefined;
            throw error;
          },
        );
        entry = opening;
      }
      return entry;
    };
    await Promise.all(
      Array.from({ length: loops }, async (_, i) => {
        while (!stopped) {
          if (!(await call(first + i, i === 0, current)) && !stopped) await sleep(backoffMs);
        }
      }),
    );
    if (entry !== undefined) await entry.then(close, () => undefined);
  }

  async function newClient(): Promise<void> {
    const entry = open('new-client');
    await call(-1, false, () => entry);
    await entry.then(close, () => undefined);
  }

  const arrivals = startArrivals(options, () => stopped, newClient);

  const clients: Promise<void>[] = [];
  for (let first = 0; first < options.concurrency; first += CALLS_PER_CHANNEL) {
    clients.push(pooledClient(first, Math.min(CALLS_PER_CHANNEL, options.concurrency - first)));
  }
  const done = Promise.all(clients).then(async () => {
    clearTimeout(bound);
    arrivals.stop();
    await arrivals.settled();
    closeAll();
  });

  return {
    records,
    failures,
    done,
    get replaced() {
      return replaced;
    },
    stop() {
      stopped = true;
      return done;
    },
    abort() {
      stopped = true;
      aborted = true;
      arrivals.stop();
      closeAll();
    },
  };
}
