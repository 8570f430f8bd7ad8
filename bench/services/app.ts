/**
 * The application every benchmark pod runs, whatever shuts it down: `/work?ms=N` answered after N ms
 * over HTTP/1.1 or h2c, or a WebSocket echo (`{"id":1,"ms":50}` answered after 50 ms), picked by
 * `BENCH_PROTOCOL` (`http1`, `h2`, `ws`). Each tool's module in this folder adds its shutdown
 * handling the way its README shows and then calls `listen()`, which tells the harness where to
 * probe readiness (the line protocol of `src/cli/demo/pod-events.ts`).
 */
import { createServer, Server, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createH2Server, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { WebSocketServer, type WebSocket } from 'ws';
import { exitWithParent, handleWork, writeEvent } from '../../src/cli/demo/pod-events.js';

export type Protocol = 'http1' | 'h2' | 'ws';

export interface BenchApp {
  readonly protocol: Protocol;
  readonly pod: string;
  /** HTTP/1.1 for `http1` and `ws` (the WebSocket server rides on it), h2c for `h2`. */
  readonly server: Server | Http2Server;
  readonly wss: WebSocketServer | undefined;
  /**
   * Listen on a free loopback port and announce it. `readyPath` (default `/readyz` on the app port,
   * which this app answers itself) is what the harness polls before it adds the endpoint; null when
   * there is nothing to poll over HTTP/1 (an h2c-only server): the pod is ready once listening.
   */
  listen(readiness?: {
    readonly path?: string | null;
    readonly port?: number;
    readonly managementPort?: number | null;
  }): Promise<number>;
}

const protocols: readonly Protocol[] = ['http1', 'h2', 'ws'];

export function benchProtocol(): Protocol {
  const raw = process.env.BENCH_PROTOCOL ?? 'http1';
  if (!(protocols as readonly string[]).includes(raw)) {
    throw new Error(`BENCH_PROTOCOL must be one of ${protocols.join(', ')}, received ${raw}`);
  }
  return raw as Protocol;
}

const OPEN = 1;

function echo(pod: string, ws: WebSocket): void {
  ws.on('message', (data) => {
    let message: { id?: unknown; ms?: unknown };
    try {
      message = JSON.parse(messageText(data)) as typeof message;
    } catch {
      return;
    }
    const ms = typeof message.ms === 'number' ? Math.min(Math.max(0, message.ms), 120_000) : 0;
    setTimeout(() => {
      // A reply after the close began cannot be sent: the client resends on its next connection.
      if (ws.readyState === OPEN) ws.send(JSON.stringify({ id: message.id, pod }));
    }, ms);
  });
}

export function createBenchApp(): BenchApp {
  const protocol = benchProtocol();
  const pod = process.env.DEMO_POD_NAME ?? 'pod';
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    if (req.url === '/readyz')
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ready"}');
    else handleWork(pod, req, res);
  };
  let server: Server | Http2Server;
  let wss: WebSocketServer | undefined;
  if (protocol === 'h2') {
    // The compatibility API's request and response have the members handleWork uses.
    server = createH2Server((req, res) =>
      handler(req as unknown as IncomingMessage, res as unknown as ServerResponse),
    );
  } else {
    server = createServer(handler);
    if (protocol === 'ws') {
      wss = new WebSocketServer({ server });
      wss.on('connection', (ws) => echo(pod, ws));
    }
  }

  exitWithParent(() => process.exit(1));
  if (process.env.BENCH_STATS === '1') {
    reportMemory();
    // The scale benchmark holds idle keep-alive connections for as long as it measures: Node's own
    // idle timeout (5 s) must not close them before the drain does.
    if (server instanceof Server) server.keepAliveTimeout = 0;
  }
  // Unlike a pod's PID 1, this process holds the harness's stdin: unref it, so a library that waits
  // for the event loop to empty (lightship, a plain close()) sees the same loop it would in a pod.
  (process.stdin as { unref?: () => void }).unref?.();

  return {
    protocol,
    pod,
    server,
    wss,
    listen(readiness = {}) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
          const port = (server.address() as AddressInfo).port;
          const path = readiness.path === undefined ? (protocol === 'h2' ? null : '/readyz') : readiness.path;
          writeEvent({
            event: 'listening',
            port,
            managementPort: readiness.managementPort ?? null,
            readyPath: path,
            ...(readiness.port === undefined ? {} : { readyPort: readiness.port }),
          });
          resolve(port);
        });
      });
    },
  };
}

/**
 * `mem` on stdin: a `log` event with the memory figures after a full GC, so heap growth is live
 * objects (the scale benchmark prices a connection with it).
 */
function reportMemory(): void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line !== 'mem') return;
    gc();
    const { rss, heapUsed, external, arrayBuffers } = process.memoryUsage();
    writeEvent({
      event: 'log',
      level: 'stats',
      msg: 'memory',
      fields: { rss, heapUsed, external, arrayBuffers },
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A WebSocket message as text (`ws` hands a Buffer, an ArrayBuffer or fragments). */
export function messageText(data: Buffer | ArrayBuffer | Buffer[]): string {
  return (
    Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)
  ).toString();
}
