/** Shared pieces of the drain tests: phase contexts, a recording observer, servers, TLS, clients. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import type * as https from 'node:https';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PhaseContext, PhaseName } from '../../src/lifecycle.js';
import type {
  CloseReason,
  ConnectionProtocol,
  DrainObserver,
  PacedProtocol,
} from '../../src/drain/observer.js';
import type { PacedStep } from '../../src/drain/pacer.js';
import { createRequestTracker, type RequestTracker } from '../../src/drain/requests.js';

export interface TestPhase {
  readonly ctx: PhaseContext;
  /** Abort the phase, as a budget or the deadline would. */
  abort(): void;
  /** Every count passed to reportForced. */
  readonly forced: number[];
  readonly warnings: string[];
}

export function phaseContext(phase: PhaseName): TestPhase {
  const controller = new AbortController();
  const forced: number[] = [];
  const warnings: string[] = [];
  const ctx: PhaseContext = {
    phase,
    signal: controller.signal,
    trigger: 'test',
    triggerKind: 'manual',
    deadline: Date.now() + 30_000,
    reportForced: (count) => forced.push(count),
    warn: (message) => warnings.push(message),
    summary: undefined,
  };
  return { ctx, abort: () => controller.abort(), forced, warnings };
}

export interface RecordingObserver extends Required<DrainObserver> {
  readonly opened: ConnectionProtocol[];
  readonly closed: { protocol: ConnectionProtocol; reason: CloseReason | undefined }[];
  readonly requests: { started: number; finished: number };
  readonly paced: { protocol: PacedProtocol; step: PacedStep }[];
  /** How many connections of `protocol` closed for `reason`. */
  count(protocol: ConnectionProtocol, reason: CloseReason | undefined): number;
}

export function recordingObserver(): RecordingObserver {
  const opened: ConnectionProtocol[] = [];
  const closed: { protocol: ConnectionProtocol; reason: CloseReason | undefined }[] = [];
  const requests = { started: 0, finished: 0 };
  const paced: { protocol: PacedProtocol; step: PacedStep }[] = [];
  return {
    opened,
    closed,
    requests,
    paced,
    pacedClose: (protocol, step) => void paced.push({ protocol, step }),
    requestStarted: () => void requests.started++,
    requestFinished: () => void requests.finished++,
    connectionOpened: (protocol) => void opened.push(protocol),
    connectionClosed: (protocol, reason) => void closed.push({ protocol, reason }),
    count: (protocol, reason) => closed.filter((c) => c.protocol === protocol && c.reason === reason).length,
  };
}

/** Shutdown flags the tests flip by hand, the way the lifecycle glue would. */
export interface ShutdownFlags {
  shuttingDown: boolean;
  draining: boolean;
}

export function trackerWithFlags(options: { rejectDuringDrain?: boolean; observer?: DrainObserver } = {}): {
  tracker: RequestTracker;
  flags: ShutdownFlags;
} {
  const flags: ShutdownFlags = { shuttingDown: false, draining: false };
  const tracker = createRequestTracker({
    isShuttingDown: () => flags.shuttingDown,
    isDraining: () => flags.draining,
    rejectDuringDrain: options.rejectDuringDrain ?? false,
    retryAfterSeconds: 1,
    ...(options.observer ? { observer: options.observer } : {}),
  });
  return { tracker, flags };
}

export function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });
}

/** Close a server and everything on it, whatever state a test left it in. */
export function closeHard(server: net.Server & { closeAllConnections?: () => void }): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      server.closeAllConnections?.();
      resolve();
      return;
    }
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}

let cert: { key: string; cert: string } | undefined;

/** A throwaway self-signed certificate for localhost / 127.0.0.1, made with openssl per test run. */
export function selfSignedCert(): { key: string; cert: string } {
  if (cert) return cert;
  const dir = mkdtempSync(join(tmpdir(), 'kubegrace-cert-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    cert = {
      key: readFileSync(join(dir, 'key.pem'), 'utf8'),
      cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
    };
    return cert;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface Response {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** One request through `request` (http.request or https.request); rejects on any client error. */
export function fetchVia(
  request: (
    options: https.RequestOptions,
    callback: (res: http.IncomingMessage) => void,
  ) => http.ClientRequest,
  options: https.RequestOptions,
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = request(options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Resolves with the error code of connecting to `port` (undefined when the connection succeeds). */
export function connectOutcome(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

/** A raw TCP client that records everything it receives and how the connection ended. */
export interface RawClient {
  readonly socket: net.Socket;
  /** Everything received so far, as latin1 text. */
  readonly received: () => string;
  /** Resolves once `text` has been received. */
  waitFor(text: string, timeoutMs?: number): Promise<void>;
  /** Resolves when the server's FIN arrived ('end') or the socket failed. */
  readonly ended: Promise<{ how: 'end' | 'error'; code?: string | undefined }>;
}

export function rawClient(port: number): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    const watchers = new Set<() => void>();
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      data += chunk;
      for (const watch of watchers) watch();
    });
    const ended = new Promise<{ how: 'end' | 'error'; code?: string | undefined }>((done) => {
      socket.once('end', () => done({ how: 'end' }));
      socket.once('error', (error: NodeJS.ErrnoException) => done({ how: 'error', code: error.code }));
    });
    const client: RawClient = {
      socket,
      received: () => data,
      waitFor(text, timeoutMs = 5000) {
        return new Promise<void>((ok, fail) => {
          const timer = setTimeout(() => {
            watchers.delete(check);
            fail(new Error(`timed out waiting for ${JSON.stringify(text)}; got ${JSON.stringify(data)}`));
          }, timeoutMs);
          const check = (): void => {
            if (!data.includes(text)) return;
            clearTimeout(timer);
            watchers.delete(check);
            ok();
          };
          watchers.add(check);
          check();
        });
      },
      ended,
    };
    socket.once('connect', () => resolve(client));
    socket.once('error', reject);
  });
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
