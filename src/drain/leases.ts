import type { Participant } from '../lifecycle.js';
import { createNotifier, settle } from '../wait.js';

/** A unit of background work (a job, a message being handled) that holds the drain open. */
export interface Lease {
  readonly name: string;
  /** Idempotent. */
  release(): void;
  [Symbol.dispose](): void;
}

export interface Leases extends Participant {
  lease(name: string): Lease;
  /** Names of the leases held now. */
  readonly held: readonly string[];
}

/** Work leases: the drain phase waits until every lease is released, or forces at its budget. */
export function createLeases(): Leases {
  const active = new Set<Lease>();
  const emptied = createNotifier();

  function lease(name: string): Lease {
    let released = false;
    const handle: Lease = {
      name,
      release() {
        if (released) return;
        released = true;
        active.delete(handle);
        if (active.size === 0) emptied.notify();
      },
      [Symbol.dispose]() {
        handle.release();
      },
    };
    active.add(handle);
    return handle;
  }

  return {
    name: 'leases',
    lease,
    get held() {
      return [...active].map((l) => l.name);
    },
    async drain(ctx) {
      await settle({
        isDone: () => active.size === 0,
        subscribe: emptied.subscribe,
        signal: ctx.signal,
        force() {
          ctx.warn(`abandoned ${active.size} work lease(s): ${[...active].map((l) => l.name).join(', ')}`);
          ctx.reportForced(active.size);
        },
      });
    },
  };
}
