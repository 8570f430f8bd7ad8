/**
 * WebSocket handshakes in progress: from Node's `'upgrade'` (where the HTTP drainer lets go of the
 * socket) to the moment a `ws` server kubegrace drains holds the client. An application that
 * authenticates first (`verifyClient`, or an `'upgrade'` listener that awaits a token check before
 * `handleUpgrade`) leaves a gap in which neither drainer holds the socket: a drain that began in it
 * found nothing to wait for, the process left, and the client's handshake was reset. The HTTP
 * drainer notes each one here; every drainer of the same kubegrace instance waits for them, and
 * forces what is left at its budget (each socket counted once). One set per instance: another
 * instance in the process has its own servers and shutdown.
 *
 * A handshake ends when a WebSocket drainer takes the socket (its `'connection'`), when the socket
 * closes, or once its owner has written to it (the 101, or a refusal): a `ws` server kubegrace does
 * not drain must not hold the drain with its long-lived connections. Writes are seen by the bytes the
 * socket has sent, read whenever a drainer looks and every POLL_MS while one waits; nothing of the
 * socket is wrapped. An answered socket is first offered to the WebSocket drainers (`claimers`): a
 * drained `ws` server that wrote the 101 may emit `'connection'` later (after an `await` in the
 * callback), or never; it holds the client in `wss.clients` meanwhile. A client taken after its
 * drainer's own drain ended (its handshake began during the drain) is closed at once and held here
 * until its socket closes, so that the HTTP drainer, still draining, waits for its close.
 */
import type { Socket } from 'node:net';
import { createNotifier } from '../wait.js';

const POLL_MS = 50;

/** Takes `socket` if it is one of its server's clients; true if it did. */
export type HandshakeClaimer = (socket: Socket) => boolean;

export interface Handshakes {
  /** Called by the HTTP drainer for an upgrade request that asks for a WebSocket. */
  note(socket: Socket): void;
  /**
   * A WebSocket drainer took the socket. `untilClose`: its own drain has ended, so it will not wait
   * for this client's close; the socket is then held here until it closes.
   */
  claim(socket: unknown, untilClose: boolean): void;
  /** Returns the function that removes `claimer`. */
  addClaimer(claimer: HandshakeClaimer): () => void;
  /** Handshakes in progress and late clients still closing. */
  readonly size: number;
  subscribe(listener: () => void): () => void;
  /** Destroys every handshake and late client still open; returns how many (each counted once). */
  destroyAll(): number;
}

export function createHandshakes(): Handshakes {
  /** Each handshake's socket, with what it had sent when the upgrade came (earlier responses). */
  const pending = new Map<Socket, number>();
  /** Clients taken after their drainer's drain ended, until their socket closes. */
  const closing = new Set<Socket>();
  const claimers = new Set<HandshakeClaimer>();
  const changed = createNotifier();
  let waiters = 0;
  let poll: NodeJS.Timeout | undefined;

  const sent = (socket: Socket): number => socket.bytesWritten ?? 0;

  function onClose(this: Socket): void {
    if (pending.delete(this) || closing.delete(this)) changed.notify();
  }

  /** The poll runs only while a drainer waits and a handshake is in progress. */
  function pollWhileNeeded(): void {
    if (waiters > 0 && pending.size > 0) {
      poll ??= setInterval(() => {
        if (settleAnswered()) changed.notify();
        pollWhileNeeded();
      }, POLL_MS).unref();
    } else if (poll !== undefined) {
      clearInterval(poll);
      poll = undefined;
    }
  }

  /** Settles the handshakes whose owner has answered; true if there were any. */
  function settleAnswered(): boolean {
    const answered = [...pending].filter(([socket, before]) => socket.destroyed || sent(socket) > before);
    for (const [socket] of answered) {
      // A drained server's client whose 'connection' has not come (yet): its drainer takes it.
      if (!socket.destroyed) for (const claimer of claimers) if (claimer(socket)) break;
      if (pending.delete(socket)) socket.off('close', onClose);
    }
    return answered.length > 0;
  }

  return {
    note(socket) {
      if (pending.has(socket) || closing.has(socket) || socket.destroyed) return;
      pending.set(socket, sent(socket));
      socket.once('close', onClose);
      pollWhileNeeded();
    },
    claim(socket, untilClose) {
      const s = socket as Socket;
      if (!pending.delete(s)) return;
      if (untilClose && !s.destroyed) closing.add(s);
      else s.off('close', onClose);
      // Told a turn later: a claim can come from inside `size` (a claimer), while a drainer looks.
      queueMicrotask(changed.notify);
    },
    addClaimer(claimer) {
      claimers.add(claimer);
      return () => claimers.delete(claimer);
    },
    get size() {
      settleAnswered();
      return pending.size + closing.size;
    },
    subscribe(listener) {
      const off = changed.subscribe(listener);
      waiters++;
      pollWhileNeeded();
      return () => {
        off();
        waiters--;
        pollWhileNeeded();
      };
    },
    destroyAll() {
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
}

/** For drainers created on their own (not through a kubegrace instance): one set between them. */
export const sharedHandshakes = createHandshakes();
