/**
 * The own pod through the API: completes the identity (uid, IP), reads the timing from its spec
 * (grace period, the container's preStop hook) and reports its deletion with the exact kill time.
 */
import type { ApiWarnings } from './warnings.js';
import type { KubeApi } from './client.js';
import type { PodIdentity } from './detect.js';
import { createListWatch, type ListWatch } from './list-watch.js';
import {
  deletionTiming,
  graceOf,
  nameOf,
  preStopOf,
  selectContainer,
  shortenedDeletion,
  type DeletionTiming,
  type PodSpecLike,
  type PreStop,
} from './pod-timing.js';
import { RBAC_RULES } from './rbac.js';

export interface PodTiming {
  readonly container: string;
  readonly graceSeconds: number;
  readonly preStop: PreStop;
}

export interface OwnPodWatch {
  /** The pod as last seen. */
  readonly pod: unknown;
  readonly identity: PodIdentity;
  /** Grace period and preStop from the spec, once read. */
  readonly timing: PodTiming | undefined;
  /** The deletion as seen through the API. */
  readonly deletion: DeletionTiming | undefined;
  /** Undefined when the pod name is unknown (nothing to watch). */
  readonly listWatch: ListWatch | undefined;
}

export interface OwnPodOptions {
  readonly api: KubeApi;
  readonly namespace: string;
  readonly identity: PodIdentity;
  readonly containerName: string | undefined;
  readonly requestTimeoutMs: number;
  readonly retry: { readonly initialMs: number; readonly maxMs: number };
  readonly warnings: ApiWarnings;
  /**
   * The deletion was seen for the first time (`again` false), or again with a shorter grace period
   * (`again` true: the kill time moved earlier).
   */
  onDeletion(seen: DeletionTiming, again: boolean): void;
  /** The pod object is gone (force-deleted, or already finished) before a deletion was seen. */
  onGone(): void;
  /** The spec was read for the first time (`timing` is set now). */
  onTiming?(timing: PodTiming): void;
}

export function watchOwnPod(options: OwnPodOptions): OwnPodWatch {
  const { warnings, namespace } = options;
  let identity = options.identity;
  let pod: unknown;
  let timing: PodTiming | undefined;
  let deletion: DeletionTiming | undefined;
  /** The UID of the pod as first read: a pod of the same name with another UID is a successor. */
  let seenUid: string | undefined;
  let gone = false;

  /** This pod left the API (a DELETED event, or absent from a re-list after it was seen). */
  function leave(): void {
    if (gone) return;
    gone = true;
    if (deletion === undefined) options.onGone();
  }

  function onPod(object: unknown, observedAt: number): void {
    const p = object as {
      metadata?: Record<string, unknown>;
      spec?: PodSpecLike;
      status?: Record<string, unknown>;
    };
    pod = object;
    const uid = typeof p.metadata?.uid === 'string' ? p.metadata.uid : undefined;
    seenUid ??= uid;
    const ip = typeof p.status?.podIP === 'string' && p.status.podIP !== '' ? p.status.podIP : undefined;
    if ((identity.uid === undefined && uid) || (identity.ip === undefined && ip)) {
      identity = {
        ...identity,
        uid: identity.uid ?? uid,
        ip: identity.ip ?? ip,
        sources: {
          ...identity.sources,
          ...(identity.uid === undefined && uid ? { uid: 'api' as const } : {}),
          ...(identity.ip === undefined && ip ? { ip: 'api' as const } : {}),
        },
      };
    }
    if (timing === undefined) {
      const chosen = selectContainer(p.spec, options.containerName);
      if (chosen.container === undefined) {
        warnings.warnOnce(
          'container',
          `containerName: ${chosen.why}; the preStop hook is not taken into account`,
        );
      }
      timing = {
        container: nameOf(chosen.container),
        graceSeconds: graceOf(p.spec).seconds,
        preStop: preStopOf(chosen.container),
      };
      options.onTiming?.(timing);
    }
    if (deletion === undefined) {
      const seen = deletionTiming(p.metadata, p.spec, observedAt, options.api.clock.skewMs);
      if (seen !== undefined) {
        deletion = seen;
        options.onDeletion(seen, false);
      }
    } else {
      // Deleted again with a shorter grace period: the kubelet's kill time moved earlier.
      const shortened = shortenedDeletion(deletion, p.metadata, observedAt);
      if (shortened !== undefined) {
        deletion = shortened;
        options.onDeletion(shortened, true);
      }
    }
  }

  const podName = identity.name;
  let listWatch: ListWatch | undefined;
  if (podName === undefined) {
    warnings.warnOnce(
      'identity',
      'the pod name is unknown (no POD_NAME, no hostname): set POD_NAME via the Downward API',
    );
  } else {
    let notFoundWarned = false;
    listWatch = createListWatch({
      api: options.api,
      resource: 'pods',
      namespace,
      fieldSelector: `metadata.name=${podName}`,
      requestTimeoutMs: options.requestTimeoutMs,
      backoff: options.retry,
      onReplace(items) {
        warnings.healthy();
        const found = items[0];
        const foundUid = (found as { metadata?: { uid?: unknown } } | undefined)?.metadata?.uid;
        // Seen before and absent now (or replaced by a pod of the same name, a StatefulSet's successor):
        // it was deleted while the watch was away and the history was compacted; the DELETED event
        // that would have said so is lost.
        if (seenUid !== undefined && (found === undefined || foundUid !== seenUid)) {
          leave();
          return;
        }
        if (found === undefined) {
          if (!notFoundWarned) {
            notFoundWarned = true;
            warnings.warnOnce(
              'pod-not-found',
              `pod ${namespace}/${podName} not found (name from ${identity.sources.name ?? 'nowhere'}): set POD_NAME ` +
                `and POD_NAMESPACE via the Downward API; without the own pod ${RBAC_RULES.pods.without}`,
            );
          }
          return;
        }
        onPod(found, Date.now());
      },
      onEvent(type, object) {
        if (type === 'DELETED') {
          leave();
          return;
        }
        onPod(object, Date.now());
      },
      onFailure: (failure) => warnings.onFailure(failure),
    });
    const watch = listWatch;
    watch.subscribe(() => {
      if (watch.connected) warnings.healthy();
    });
  }

  return {
    get pod() {
      return pod;
    },
    get identity() {
      return identity;
    },
    get timing() {
      return timing;
    },
    get deletion() {
      return deletion;
    },
    listWatch,
  };
}
