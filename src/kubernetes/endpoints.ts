/**
 * This pod's endpoints in every EndpointSlice of its namespace, and the propagation confirmation
 * built on them: traffic can still be routed here while any of them shows `ready` not false.
 *
 * All slices of the namespace are watched (only those owned by a Service, via the
 * `kubernetes.io/service-name` label) rather than the Services that select the pod: it needs no
 * access to Services, no selector evaluation, and sees manual slices and every address family alike.
 */
import type { PropagationConfirmation } from '../propagation/adaptive.js';
import { settle } from '../wait.js';
import type { ListWatch } from './list-watch.js';

export interface EndpointRef {
  readonly slice: string;
  readonly service: string | undefined;
  /** `conditions.ready`; nil means ready, as the API documents. */
  readonly ready: boolean;
  readonly serving: boolean | undefined;
  readonly terminating: boolean | undefined;
}

export interface OwnIdentity {
  readonly uid: string | undefined;
  readonly ip: string | undefined;
  readonly name: string | undefined;
  readonly namespace: string | undefined;
}

export interface EndpointTracker {
  /** Feed for the list-watch. */
  replace(items: readonly unknown[]): void;
  apply(type: 'ADDED' | 'MODIFIED' | 'DELETED', object: unknown): void;
  /** This pod's endpoints as last seen. */
  own(): readonly EndpointRef[];
  /** True while some slice still lists this pod as ready. */
  routed(): boolean;
  /** Epoch ms at which the last ready endpoint of this pod went away (undefined while routed or never seen). */
  readonly removedAt: number | undefined;
}

interface SliceLike {
  readonly metadata?: { readonly name?: unknown; readonly namespace?: unknown; readonly labels?: unknown };
  readonly endpoints?: unknown;
}

interface EndpointLike {
  readonly addresses?: unknown;
  readonly conditions?: {
    readonly ready?: unknown;
    readonly serving?: unknown;
    readonly terminating?: unknown;
  } | null;
  readonly targetRef?: {
    readonly kind?: unknown;
    readonly uid?: unknown;
    readonly name?: unknown;
    readonly namespace?: unknown;
  } | null;
}

export function createEndpointTracker(
  identity: () => OwnIdentity,
  now: () => number = Date.now,
): EndpointTracker {
  const slices = new Map<string, SliceLike>();
  let removedAt: number | undefined;
  let wasRouted = false;

  const keyOf = (slice: SliceLike): string | undefined =>
    typeof slice.metadata?.name === 'string' ? slice.metadata.name : undefined;

  function isOwn(endpoint: EndpointLike, me: OwnIdentity): boolean {
    const ref = endpoint.targetRef;
    // The UID identifies this incarnation of the pod; a StatefulSet's replacement has the same name and may
    // even get the same IP, so the UID wins whenever both sides have it.
    if (me.uid !== undefined && typeof ref?.uid === 'string' && ref.uid !== '') return ref.uid === me.uid;
    if (
      me.uid === undefined &&
      me.name !== undefined &&
      ref?.kind === 'Pod' &&
      ref.name === me.name &&
      (ref.namespace === undefined || ref.namespace === me.namespace)
    ) {
      return true;
    }
    return me.ip !== undefined && Array.isArray(endpoint.addresses) && endpoint.addresses.includes(me.ip);
  }

  function own(): EndpointRef[] {
    const me = identity();
    const found: EndpointRef[] = [];
    for (const [name, slice] of slices) {
      if (!Array.isArray(slice.endpoints)) continue;
      const labels = (slice.metadata?.labels ?? {}) as Record<string, unknown>;
      const service =
        typeof labels['kubernetes.io/service-name'] === 'string'
          ? labels['kubernetes.io/service-name']
          : undefined;
      for (const endpoint of slice.endpoints as EndpointLike[]) {
        if (typeof endpoint !== 'object' || endpoint === null || !isOwn(endpoint, me)) continue;
        const c = endpoint.conditions ?? {};
        found.push({
          slice: name,
          service,
          ready: c.ready !== false,
          serving: typeof c.serving === 'boolean' ? c.serving : undefined,
          terminating: typeof c.terminating === 'boolean' ? c.terminating : undefined,
        });
      }
    }
    return found;
  }

  const routed = (): boolean => own().some((e) => e.ready);

  function settle(): void {
    const isRouted = routed();
    if (wasRouted && !isRouted) removedAt = now();
    if (isRouted) removedAt = undefined;
    wasRouted = isRouted;
  }

  return {
    replace(items) {
      slices.clear();
      for (const item of items) {
        const slice = item as SliceLike;
        const key = keyOf(slice);
        if (key !== undefined) slices.set(key, slice);
      }
      settle();
    },
    apply(type, object) {
      const slice = object as SliceLike;
      const key = keyOf(slice);
      if (key === undefined) return;
      if (type === 'DELETED') slices.delete(key);
      else slices.set(key, slice);
      settle();
    },
    own,
    routed,
    get removedAt() {
      return removedAt;
    },
  };
}

export interface ConfirmationOptions {
  readonly tracker: EndpointTracker;
  readonly listWatch: Pick<ListWatch, 'synced' | 'connected' | 'failure' | 'subscribe' | 'acceptedAt'>;
  /** How long to wait for a watch that is reconnecting or has not synced yet, before relying on the quiet period. */
  readonly unknownForMs: number;
  /** Can this pod be recognised in a slice at all (UID, IP or name known)? */
  readonly identified: () => boolean;
  /** Called once per confirmation when it gives up on the API and lets the quiet period decide. */
  readonly onDegraded: (why: 'failure' | 'no-answer' | 'unidentified') => void;
  readonly onConfirmed?: () => void;
}

/**
 * Resolves `true` once no EndpointSlice lists this pod as ready — or `false` when the API cannot tell
 * (the watch failed, never synced within `unknownForMs`, or the pod cannot be recognised), at once,
 * so the adaptive strategy falls back to the silence alone instead of waiting for its maximum.
 */
export function endpointConfirmation(options: ConfirmationOptions): PropagationConfirmation {
  const { tracker, listWatch } = options;
  return async (signal) => {
    if (signal.aborted) return false;
    /** True only while the unknownForMs check runs: a later reconnect must not count as no answer. */
    let atUnknownLimit = false;
    let confirmed = false;
    const decided = (): boolean => {
      if (!options.identified()) {
        options.onDegraded('unidentified');
        return true;
      }
      if (listWatch.synced && !tracker.routed()) {
        options.onConfirmed?.();
        confirmed = true;
        return true;
      }
      if (listWatch.failure !== undefined) {
        options.onDegraded('failure');
        return true;
      }
      // A watch accepted within the limit answered, even if it is between two connections now (a
      // middlebox that cuts every watch after a while): the change is replayed when it resumes.
      const answered =
        listWatch.connected ||
        (listWatch.acceptedAt !== undefined && Date.now() - listWatch.acceptedAt <= options.unknownForMs);
      if (atUnknownLimit && !(listWatch.synced && answered)) {
        options.onDegraded('no-answer');
        return true;
      }
      return false;
    };
    await settle({
      isDone: decided,
      subscribe(onChange) {
        const unsubscribe = listWatch.subscribe(onChange);
        // Not a limit of the wait: one look at whether the watch has answered by then.
        const timer = setTimeout(() => {
          atUnknownLimit = true;
          onChange();
          atUnknownLimit = false;
        }, options.unknownForMs).unref();
        return () => {
          unsubscribe();
          clearTimeout(timer);
        };
      },
      signal,
    });
    return confirmed;
  };
}
