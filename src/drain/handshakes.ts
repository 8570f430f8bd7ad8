/**
 * WebSocket handshakes in progress: from Node's `'upgrade'` (where the HTTP drainer lets go of the
 * socket) to the `ws` server's `'connection'` (where a WebSocket drainer takes it). An application
 * that authenticates first (`verifyClient`, or an `'upgrade'` listener that awaits a token check
 * before `handleUpgrade`) leaves a gap in which neither drainer holds the socket: a drain that
 * began in it found nothing to wait for, the process left, and the client's handshake was reset.
 * The HTTP drainer notes each one here; every drainer waits for them, and forces what is left at its
 * budget (each socket counted once). Process-wide: which `ws` server will take a socket is only
 * known when one does.
 *
 * A handshake ends when a WebSocket drainer takes the socket, when the socket closes, or once its
 * owner has written to it (the 101 of a `ws` server kubegrace does not drain, or a refusal): that
 * server's long-lived connection must not hold the drain. Writes are seen by the bytes the socket
 * has sent, read whenever a drainer looks and every POLL_MS while one waits; nothing of the socket
 * is wrapped. A client that a WebSocket drainer takes after its own drain ended (its handshake began
 * during the drain) is closed at once and held here until the socket closes, so that the HTTP
 * drainer, still draining, waits for its close.
 */
import type { Socket } from 'node:net';
import { createNotifier } from '../wait.js';

/** Each handshake's socket, with what it had sent when the upgrade came (earlier responses). */
const pending = new Map<Socket, number>();
/** Clients taken after their drainer's drain ended, until their socket closes. */
const closing = new Set<Socket>();
const changed = createNotifier();
const POLL_MS = 50;
let waiters = 0;
let poll: NodeJS.Timeout | undefined;

const sent = (socket: Socket): number => socket.bytesWritten ?? 0;

function onClose(this: Socket): void {
  if (pending.delete(this) || closing.delete(this)) changed.notify();
}

/** Drops the handshakes whose owner has answered; true if there were any. */
function dropAnswered(): boolean {
  let dropped = false;
  for (const [socket, before] of pending) {
    if (socket.destroyed || sent(socket) > before) {
      pending.delete(socket);
      if (!socket.destroyed) socket.off('close', onClose);
      dropped = true;
    }
  }
  return dropped;
}

/** Called by the HTTP drainer for an upgrade request that asks for a WebSocket. */
export function noteHandshake(socket: Socket): void {
  if (pending.has(socket) || closing.has(socket) || socket.destroyed) return;
  pending.set(socket, sent(socket));
  socket.once('close', onClose);
}

/**
 * A WebSocket drainer took the socket. `untilClose`: its own drain has ended, so it will not wait for
 * this client's close; the socket is then held here until it closes.
 */
export function claimHandshake(socket: unknown, untilClose: boolean): void {
  const s = socket as Socket;
  if (!pending.delete(s)) return;
  if (untilClose && !s.destroyed) closing.add(s);
  else {
    s.off('close', onClose);
    changed.notify();
  }
}

export const handshakes = {
  /** Handshakes in progress and late clients still closing. */
  get size(): number {
    dropAnswered();
    return pending.size + closing.size;
  },
  subscribe(listener: () => void): () => void {
    const off = changed.subscribe(listener);
    if (waiters++ === 0) {
      poll = setInterval(() => {
        if (dropAnswered()) changed.notify();
      }, POLL_MS).unref();
    }
    return () => {
      off();
      if (--waiters === 0) clearInterval(poll);
    };
  },
  /** Destroys every handshake and late client still open; returns how many (each counted once). */
  destroyAll(): number {
    const sockets = [...pending.keys(), ...closing];
    pending.clear();
    closing.clear();
    for (const socket of sockets) {
      socket.off('close', onClose);
      socket.destroy();
    }
    if (sockets.length > 0) changed.notify();
    return sockets.length;
  },
};
