/**
 * What the integration says when the API cannot help: one warning per cause, so a broken API is one
 * line in the log, not one per retry; and whether the API is known to be down right now (Events are
 * not sent then: each would only cost the shutdown a time-out).
 */
import type { Logger } from '../log.js';
import type { ApiFailure } from './client.js';
import { forbiddenMessage, qualifiedResource, RBAC_RULES } from './rbac.js';

/** What the local strategy does while the API cannot help; ends several warnings. */
export const FALLBACK =
  'until then kubegrace relies on the local strategy (the adaptive wait on the silence alone, the configured grace period)';

export interface ApiWarnings {
  /** Log `message` once per `key`. */
  warnOnce(key: string, message: string, fields?: Record<string, unknown>): void;
  /** A failed API call, classified: warns once per cause. */
  onFailure(failure: ApiFailure): void;
  /** A call succeeded: the API is reachable again (said once). */
  healthy(): void;
  /** The API is known to be down (unauthorized, unreachable, timing out). */
  readonly unavailable: boolean;
}

export function createApiWarnings(logger: Logger, server: string, requestTimeoutMs: number): ApiWarnings {
  const warned = new Set<string>();
  const warnOnce = (key: string, message: string, fields: Record<string, unknown> = {}): void => {
    if (warned.has(key)) return;
    warned.add(key);
    logger.warn(message, { component: 'kubernetes', ...fields });
  };
  let unavailable: ApiFailure | undefined;

  function onFailure(failure: ApiFailure): void {
    const code = {
      status: failure.status,
      verb: failure.verb,
      resource: failure.resource,
      namespace: failure.namespace,
    };
    const what = `${failure.verb} ${qualifiedResource(failure.resource)}`;
    switch (failure.kind) {
      case 'forbidden':
        warnOnce(`forbidden:${failure.resource}`, forbiddenMessage(failure), code);
        break;
      case 'unauthorized':
        unavailable = failure;
        warnOnce(
          'unauthorized',
          `the Kubernetes API at ${server} rejected the service-account token (401 Unauthorized) to ` +
            `${what}: ${failure.detail}; check that the pod mounts a valid token ` +
            `(automountServiceAccountToken) and that the service account exists; ${FALLBACK}`,
          code,
        );
        break;
      case 'unreachable':
      case 'timeout':
        unavailable = failure;
        warnOnce(
          'unavailable',
          failure.kind === 'timeout'
            ? `the Kubernetes API at ${server} did not answer ${what} within ${requestTimeoutMs} ms ` +
                `(requestTimeoutMs); retrying in the background; ${FALLBACK}`
            : `the Kubernetes API at ${server} is unreachable (${failure.detail}) for ${what}; ` +
                `retrying in the background; ${FALLBACK}`,
          code,
        );
        break;
      case 'server':
      case 'rejected':
        warnOnce(
          'api-errors',
          `the Kubernetes API at ${server} failed to ${what} in namespace ${failure.namespace} ` +
            `(${failure.status ?? ''} ${failure.detail}); retrying with backoff; ` +
            `while it fails ${RBAC_RULES[failure.resource].without}`,
          code,
        );
        break;
      case 'gone':
      case 'aborted':
        break;
    }
  }

  return {
    warnOnce,
    onFailure,
    healthy() {
      if (unavailable !== undefined) {
        logger.info('kubernetes API reachable again', { component: 'kubernetes', server });
        unavailable = undefined;
      }
    },
    get unavailable() {
      return unavailable !== undefined;
    },
  };
}
