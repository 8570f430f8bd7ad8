/**
 * The management server: one small `node:http` server for probes, `/metrics` and the preStop
 * endpoint. It faces the kubelet and Prometheus, not users, so limits are tight and
 * nothing a client sends can take it down.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { invalidOption, KubegraceError } from '../errors.js';
import { sendJson } from './handler.js';
import type { RouteHandler } from './handler.js';

export interface ManagementServerOptions {
  /** 0 picks a free port. */
  readonly port: number;
  /** `''` listens on every interface, IPv6 and IPv4 (dual stack), or IPv4 only where IPv6 is missing. */
  readonly host: string;
  readonly routes?: ReadonlyMap<string, RouteHandler>;
  /** Server-level errors after `listen()` resolved (e.g. EMFILE on accept); `createKubegrace` logs them. */
  readonly onError?: (error: Error) => void;
  /**
   * How errors name the port and the host: the option or variable that set them.
   * @default { port: 'probes.port', host: 'probes.host' }
   */
  readonly names?: { readonly port?: string; readonly host?: string };
}

export interface ManagementServer {
  /** Exact path match after the query string is stripped; returns a function that removes the route. */
  addRoute(path: string, handler: RouteHandler): () => void;
  /** Idempotent: every caller gets the same promise. */
  listen(): Promise<AddressInfo>;
  /** Idempotent; open keep-alive sockets are destroyed (probes and scrapes are short). */
  close(): Promise<void>;
  readonly address: AddressInfo | undefined;
}

// Probes and scrapes take milliseconds; anything slower is a stuck or hostile client.
const HEADERS_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 10_000;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;
// Node checks the two timeouts above only this often (default 30 s).
const CONNECTIONS_CHECKING_INTERVAL_MS = 1_000;
const MAX_HEADERS_COUNT = 50;
const MAX_HEADER_SIZE = 8 * 1024;

const CLIENT_ERROR_STATUS: Readonly<Record<string, string>> = {
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
};

export function createManagementServer(options: ManagementServerOptions): ManagementServer {
  const { port, host } = options;
  const portName = options.names?.port ?? 'probes.port';
  const hostName = options.names?.host ?? 'probes.host';
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw invalidOption(portName, 'an integer port from 0 to 65535', port);
  }
  if (typeof host !== 'string') throw invalidOption(hostName, 'a string', host);

  const routes = new Map<string, RouteHandler>();
  for (const [path, handler] of options.routes ?? []) addRoute(path, handler);

  const server = createServer(
    {
      headersTimeout: HEADERS_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS,
      maxHeaderSize: MAX_HEADER_SIZE,
    },
    onRequest,
  );
  server.maxHeadersCount = MAX_HEADERS_COUNT;
  // Node 26 raised the default keep-alive timeout to 65 s; set it whatever the version.
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.on('clientError', onClientError);

  let listening: Promise<AddressInfo> | undefined;
  let closing: Promise<void> | undefined;
  let listened = false;

  function addRoute(path: string, handler: RouteHandler): () => void {
    if (typeof path !== 'string' || !path.startsWith('/') || /[?#]/.test(path)) {
      throw invalidOption('route path', "a path starting with '/' and without a query string", path);
    }
    if (typeof handler !== 'function') throw invalidOption(`route ${path}`, 'a function', handler);
    if (routes.has(path)) {
      throw new KubegraceError('ERR_KUBEGRACE_INVALID_OPTION', `route ${path} is already registered`, {
        option: 'route path',
      });
    }
    // A fresh wrapper per registration: a stale remover must not drop a later registration, even
    // of the same function.
    const entry: RouteHandler = (req, res) => handler(req, res);
    routes.set(path, entry);
    return () => {
      if (routes.get(path) === entry) routes.delete(path);
    };
  }

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    const path = pathOf(req.url);
    const handler = path === undefined ? undefined : routes.get(path);
    if (!handler) {
      sendJson(req, res, 404, { status: 'not_found' });
      return;
    }
    try {
      const result = handler(req, res);
      if (result !== undefined) Promise.resolve(result).catch(() => failed(req, res));
    } catch {
      failed(req, res);
    }
  }

  function onClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
    // Writing a status line into a response already under way would corrupt it.
    const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (error.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent === true) {
      socket.destroy();
      return;
    }
    const status = CLIENT_ERROR_STATUS[error.code ?? ''] ?? '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () =>
      socket.destroy(),
    );
  }

  function onServerError(error: Error): void {
    try {
      options.onError?.(error);
    } catch {
      // A failing error reporter must not turn into an uncaught exception.
    }
  }

  function listen(): Promise<AddressInfo> {
    if (closing) {
      return Promise.reject(
        new KubegraceError(
          'ERR_KUBEGRACE_INVALID_STATE',
          'the management server was closed; create a new one',
        ),
      );
    }
    listening ??= new Promise<AddressInfo>((resolve, reject) => {
      const onListenError = (error: Error): void => {
        server.off('listening', onListening);
        listening = undefined; // a later call may try again (e.g. the port was freed)
        reject(listenError(error, { port, host, portName, hostName }));
      };
      const onListening = (): void => {
        server.off('error', onListenError);
        if (!listened) server.on('error', onServerError);
        listened = true;
        resolve(server.address() as AddressInfo);
      };
      server.once('error', onListenError);
      server.once('listening', onListening);
      // Without a host, Node binds `::` in dual-stack mode and falls back to 0.0.0.0 by itself
      // when the machine has no IPv6.
      server.listen(host === '' ? { port } : { port, host });
    });
    return listening;
  }

  function close(): Promise<void> {
    closing ??= (async () => {
      await listening?.catch(() => undefined);
      if (!server.listening) return;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // After close(), so no connection can slip in between.
        server.closeAllConnections();
      });
    })();
    return closing;
  }

  return {
    addRoute,
    listen,
    close,
    get address() {
      const address = server.listening ? server.address() : null;
      return address !== null && typeof address === 'object' ? address : undefined;
    },
  };
}

/**
 * A listen failure as the setting that caused it: which option, what came, and the fix. Errors that
 * no setting explains (EMFILE, …) pass through as they are.
 */
function listenError(
  error: NodeJS.ErrnoException,
  at: { port: number; host: string; portName: string; hostName: string },
): Error {
  const where = at.host === '' ? 'every interface' : at.host;
  const fail = (name: string, expected: string, received: unknown, why: string, fix: string): Error =>
    invalidOption(name, expected, received, { cause: error, fix: `${why} (${error.code}); ${fix}` });
  switch (error.code) {
    case 'EADDRINUSE':
      return fail(
        at.portName,
        `a port free on ${where}`,
        at.port,
        'something already listens there',
        'stop it (another process, or another server in this one) or choose another port (0 picks a free one)',
      );
    case 'EACCES':
      return fail(
        at.portName,
        'a port this process may bind',
        at.port,
        'permission denied',
        'ports below 1024 need root or CAP_NET_BIND_SERVICE; choose one from 1024 up',
      );
    case 'EADDRNOTAVAIL':
      return fail(
        at.hostName,
        'an address of this machine',
        at.host,
        'no interface has it',
        "use '' for every interface, or one of the pod's own addresses",
      );
    case 'EAFNOSUPPORT':
      return fail(
        at.hostName,
        'an address of a family this machine has',
        at.host,
        'IPv6 or IPv4 is missing here',
        "use '' for every interface, or an address of the other family",
      );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
    case 'EAI_NODATA':
      return fail(
        at.hostName,
        'a host name that resolves to an address of this machine',
        at.host,
        'it does not resolve',
        "use '' for every interface, or an IP address",
      );
    default:
      return error;
  }
}

function failed(req: IncomingMessage, res: ServerResponse): void {
  if (!res.headersSent) sendJson(req, res, 500, { status: 'error' });
  else res.destroy();
}

/** The path without query or fragment; absolute-form targets (from proxies) are reduced too. */
function pathOf(url: string | undefined): string | undefined {
  const target = url ?? '/';
  const end = target.search(/[?#]/);
  const path = end === -1 ? target : target.slice(0, end);
  if (path.startsWith('/')) return path;
  try {
    return new URL(target).pathname;
  } catch {
    return undefined; // `*` (OPTIONS *) or garbage: no route matches
  }
}
