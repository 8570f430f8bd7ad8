/**
 * WebSocket handshakes in progress: from Node's `'upgrade'` (where the HTTP drainer lets go of the
 * socket) to the `ws` server's `'connection'` (where a WebSocket drainer takes it). An application
 * that authenticates first (`verifyClient`, or an `'upgrade'` listener that awaits a token check
 * before `handleUpgrade`) leaves a gap in which neither drainer holds the socket: a drain that
 * began in it found nothing to wait for, the process left, and the client's handshake was reset.
 * The HTTP drainer notes each one here; every WebSocket drainer waits for them, and forces what is
 * left at its budget. Process-wide: which `ws` server will take a socket is only known when one does.
 *
 * A handshake ends when a WebSocket drainer takes the socket, when the socket closes, or when its
 * owner first writes to it (the 101, or a refusal): a `ws` server kubegrace does not drain answers
 * too, and its long-lived connection must not hold the drain. `ws` emits `'connection'` in the
 * same turn as it writes the 101, so that end is told a microtask later, once the drainer counts
 * the new client.
 */
import type { Socket } from 'node:net';
import { createNotifier } from '../wait.js';

const pending = new Set<Socket>();
const changed = createNotifier();

function onClose(this: Socket): void {
  settleHandshake(this);
}

/** In place of `socket.write` while the handshake is pending (an own property, removed at its end). */
function firstWrite(this: Socket, ...args: unknown[]): boolean {
  if (release(this)) queueMicrotask(changed.notify);
  return (this.write as (...a: unknown[]) => boolean)(...args);
}

/** Called by the HTTP drainer for an upgrade request that asks for a WebSocket. */
export function noteHandshake(socket: Socket): void {
  if (pending.has(socket) || socket.destroyed) return;
  pending.add(socket);
  socket.once('close', onClose);
  socket.write = firstWrite;
}

/** The handshake ended: a WebSocket drainer took the socket, or it closed. */
export function settleHandshake(socket: unknown): void {
  if (release(socket as Socket)) changed.notify();
}

function release(socket: Socket): boolean {
  if (!pending.delete(socket)) return false;
  socket.off('close', onClose);
  if (Object.hasOwn(socket, 'write')) delete (socket as { write?: unknown }).write;
  return true;
}

export const handshakes = {
  get size(): number {
    return pending.size;
  },
  subscribe: changed.subscribe,
  /** Destroys every handshake still in progress; returns how many (each is counted once). */
  destroyAll(): number {
    const sockets = [...pending];
    for (const socket of sockets) {
      release(socket);
      socket.destroy();
    }
    if (sockets.length > 0) changed.notify();
    return sockets.length;
  },
};
