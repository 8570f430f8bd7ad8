/**
 * The drainer for `ws` WebSocketServers. After the propagation wait (the drain phase) the clients get
 * close code 1001 (Going Away) or 1012 (Service Restart), paced (pacer.ts): oldest first, spread over
 * a window, so they do not all reconnect to the surviving pods at once; a client that still connects
 * during the drain gets its close at once. The server itself is left open: closing it would answer new upgrade
 * requests with 503 (a refusal), and its HTTP listener belongs to the HTTP drainer.
 *
 * `ws` is an optional peer: only its types are imported.
 */
import type { Socket } from 'node:net';
import type { WebSocket, WebSocketServer } from 'ws';
import { invalidOption } from '../errors.js';
import type { Participant, PhaseContext } from '../lifecycle.js';
import { createNotifier, settle, subscribeAll } from '../wait.js';
import { sharedHandshakes, type Handshakes } from './handshakes.js';
import type { CloseReason, DrainObserver } from './observer.js';
import { createPacer, type PacingOptions } from './pacer.js';

export interface WebSocketDrainer extends Participant {
  /** Clients connected and not yet closed. */
  readonly clients: number;
  /** Remove every listener kubegrace added to the server and its clients. */
  detach(): void;
}

export interface WebSocketDrainerOptions {
  /** Participant name. @default 'websocket' */
  readonly name?: string;
  readonly observer?: DrainObserver;
  /** Reason sent with close code 1001; at most 123 bytes of UTF-8. @default 'server shutting down' */
  readonly closeReason?: string;
  /**
   * Close code: 1001 (Going Away) or 1012 (Service Restart, which tells a client the service will be
   * back: some reconnect at once on it). @default 1001
   */
  readonly closeCode?: number;
  /** How the closes are spread (pacer.ts); without it, all at once. */
  readonly pacing?: PacingOptions;
  /**
   * WebSocket handshakes in progress, shared with the instance's HTTP drainers (handshakes.ts).
   * @default one set shared by every drainer created without one
   */
  readonly handshakes?: Handshakes;
}

const GOING_AWAY = 1001;
const SERVICE_RESTART = 1012;
// WebSocket.OPEN; `ws` is imported for its types only.
const OPEN = 1;
/** A close frame's payload is at most 125 bytes, two of which carry the code (RFC 6455 §5.5). */
const MAX_REASON_BYTES = 123;

export function createWebSocketDrainer(
  wss: WebSocketServer,
  options: WebSocketDrainerOptions = {},
): WebSocketDrainer {
  const { observer } = options;
  const name = options.name ?? 'websocket';
  const closeReason = options.closeReason ?? 'server shutting down';
  if (typeof closeReason !== 'string' || Buffer.byteLength(closeReason) > MAX_REASON_BYTES) {
    throw invalidOption('closeReason', `a string of at most ${MAX_REASON_BYTES} bytes`, closeReason);
  }
  const closeCode = options.closeCode ?? GOING_AWAY;
  if (closeCode !== GOING_AWAY && closeCode !== SERVICE_RESTART) {
    throw invalidOption('closeCode', '1001 (Going Away) or 1012 (Service Restart)', closeCode);
  }
  const closedAs: CloseReason = closeCode === GOING_AWAY ? 'websocket_1001' : 'websocket_1012';
  const handshakes = options.handshakes ?? sharedHandshakes;
  const pacer = createPacer(options.pacing ?? { windowMs: 0, budgetMs: 0 });
  /** Each open client (oldest first) and the reason kubegrace closed it for, once it did. */
  const clients = new Map<WebSocket, CloseReason | undefined>();
  let draining: Promise<void> | undefined;
  let stage: 'serving' | 'draining' = 'serving';
  /** The drain's wait is over: a client that connects later is closed at once, and waited for elsewhere. */
  let drained = false;
  let attached = true;
  const changed = createNotifier();

  // Shared by every client (`this` is the client): no closure per connection.
  function onClientClose(this: WebSocket): void {
    if (!clients.has(this)) return;
    const reason = clients.get(this);
    clients.delete(this);
    observer?.connectionClosed?.('websocket', reason);
    if (clients.size === 0) changed.notify();
  }

  function goAway(ws: WebSocket): void {
    if (clients.get(ws) !== undefined) return;
    // A client that is already closing started the close itself: leave its reason unset.
    if (ws.readyState !== OPEN) return;
    clients.set(ws, closedAs);
    ws.close(closeCode, closeReason);
  }

  function onConnection(ws: WebSocket, req?: { readonly socket?: unknown }): void {
    if (clients.has(ws)) return;
    clients.set(ws, undefined);
    // Counted as a client before its handshake is settled: the drain never sees neither. After this
    // drainer's drain ended, the HTTP drainer waits for its close instead.
    handshakes.claim(req?.socket ?? socketOf(ws), drained);
    ws.on('close', onClientClose);
    observer?.connectionOpened?.('websocket');
    if (stage === 'draining') goAway(ws);
  }

  /** Clients `ws` holds that this drainer has not heard of: connected before it was created, or whose
   * `'connection'` the application emits late (after an `await`) or never. */
  function adoptClients(): void {
    for (const ws of wss.clients ?? []) if (ws.readyState === OPEN) onConnection(ws);
  }
  adoptClients();
  wss.on('connection', onConnection);
  // An answered handshake of one of this server's clients, before (or without) its 'connection'.
  const removeClaimer = handshakes.addClaimer((socket) => {
    for (const ws of wss.clients ?? []) {
      if (socketOf(ws) !== socket) continue;
      onConnection(ws, { socket });
      return true;
    }
    return false;
  });

  function drain(ctx: PhaseContext): Promise<void> {
    draining ??= startDrain(ctx);
    return draining;
  }

  async function startDrain(ctx: PhaseContext): Promise<void> {
    stage = 'draining';
    adoptClients();
    // Paced, oldest first; the settle below forces what the signal cut short.
    const pacing = pacer.pace(
      [...clients.keys()],
      (ws, step) => {
        if (clients.get(ws) !== undefined || ws.readyState !== OPEN) return false;
        observer?.pacedClose?.('websocket', step);
        goAway(ws);
        return true;
      },
      ctx,
    );
    await settle({
      // Detached: nothing is tracked any more, so nothing is left to wait for. A handshake still in
      // progress (an application authenticating first) becomes a client to close, or fails.
      isDone: () => !attached || (clients.size === 0 && handshakes.size === 0),
      subscribe: subscribeAll(changed.subscribe, handshakes.subscribe),
      signal: ctx.signal,
      force() {
        let count = handshakes.destroyAll();
        for (const ws of clients.keys()) {
          clients.delete(ws);
          ws.off('close', onClientClose);
          ws.terminate();
          observer?.connectionClosed?.('websocket', 'forced');
          count++;
        }
        ctx.reportForced(count);
      },
    });
    drained = true;
    await pacing;
  }

  function detach(): void {
    wss.off('connection', onConnection);
    removeClaimer();
    for (const ws of clients.keys()) ws.off('close', onClientClose);
    clients.clear();
    attached = false;
    changed.notify();
  }

  return {
    name,
    drain,
    get clients() {
      return clients.size;
    },
    detach,
  };
}

/** The client's TCP socket (`ws` keeps it as `_socket`; its types do not say so). */
function socketOf(ws: WebSocket): Socket | undefined {
  return (ws as { _socket?: Socket })._socket;
}
