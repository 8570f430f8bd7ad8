/**
 * This pod's EndpointSlices through the API, as a confirmation for the adaptive propagation wait:
 * it holds the wait until no slice lists the pod as ready, and says once why it cannot when it cannot.
 */
import type { PropagationConfirmation } from '../propagation/adaptive.js';
import type { KubeApi } from './client.js';
import type { PodIdentity } from './detect.js';
import { createEndpointTracker, endpointConfirmation, type EndpointTracker } from './endpoints.js';
import { createListWatch, type ListWatch } from './list-watch.js';
import { RBAC_RULES } from './rbac.js';
import { FALLBACK, type ApiWarnings } from './warnings.js';

export interface SliceWatch {
  readonly tracker: EndpointTracker;
  readonly listWatch: ListWatch;
  readonly confirmation: PropagationConfirmation;
}

export interface SliceWatchOptions {
  readonly api: KubeApi;
  readonly namespace: string;
  /** The identity as known now (the own pod's watch completes it). */
  readonly identity: () => PodIdentity;
  readonly requestTimeoutMs: number;
  readonly retry: { readonly initialMs: number; readonly maxMs: number };
  readonly warnings: ApiWarnings;
}

export function watchSlices(options: SliceWatchOptions): SliceWatch {
  const { warnings, requestTimeoutMs } = options;
  const tracker = createEndpointTracker(() => {
    const identity = options.identity();
    return { uid: identity.uid, ip: identity.ip, name: identity.name, namespace: identity.namespace };
  });
  const listWatch = createListWatch({
    api: options.api,
    resource: 'endpointslices',
    namespace: options.namespace,
    // Only slices that belong to a Service carry traffic that kube-proxy and friends route.
    labelSelector: 'kubernetes.io/service-name',
    requestTimeoutMs,
    backoff: options.retry,
    onReplace: (items) => {
      warnings.healthy();
      tracker.replace(items);
    },
    onEvent: (type, object) => tracker.apply(type, object),
    onFailure: (failure) => warnings.onFailure(failure),
  });
  const confirmation = endpointConfirmation({
    tracker,
    listWatch,
    unknownForMs: requestTimeoutMs,
    identified: () => {
      const identity = options.identity();
      return identity.uid !== undefined || identity.ip !== undefined || identity.name !== undefined;
    },
    onDegraded: (why) => {
      if (why === 'unidentified') {
        warnings.warnOnce(
          'unidentified',
          'this pod cannot be recognised in EndpointSlices (no POD_UID, POD_IP or pod name): set them via ' +
            `the Downward API; ${RBAC_RULES.endpointslices.without}`,
        );
      } else if (why === 'no-answer') {
        warnings.warnOnce(
          'unavailable',
          `the Kubernetes API at ${options.api.server} did not answer watch endpointslices.discovery.k8s.io within ` +
            `${requestTimeoutMs} ms (requestTimeoutMs); retrying in the background; ${FALLBACK}`,
        );
      }
    },
  });
  return { tracker, listWatch, confirmation };
}
