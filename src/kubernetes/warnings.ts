/**
 * What the integration says when the API cannot help: one warning per cause, so a broken API is one
 * line in the log, not one per retry; and whether the API is known to be down right now (Events are
 * not sent then: each would only cost the shutdown a time-out).
 */
import { redactUrls, redactUrlsInText } from '../errors.js';
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
  /**
   * The API is known to be down (unauthorized, unreachable, timing out): set by the lists and watches,
   * which run all the time. One Event that failed does not set it: an Event is one request, and a slow
   * one says little about the next.
   */
  readonly unavailable: boolean;
}

/** What becomes of an Event the API did not take: said where a list or watch would say "retrying". */
const EVENT_DROPPED = 'that Event is dropped (Events are not retried); the next ones are still sent';

export function createApiWarnings(logger: Logger, apiServer: string, requestTimeoutMs: number): ApiWarnings {
  // Quoted in every message and field: never with its user info or query values (docs/security.md).
  const server = redactUrls(apiServer);
  const warned = new Set<string>();
  const warnOnce = (key: string, message: string, fields: Record<string, unknown> = {}): void => {
    if (warned.has(key)) return;
    warned.add(key);
    logger.warn(redactUrlsInText(message), { component: 'kubernetes', ...fields });
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
    const isEvent = failure.resource === 'events';
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
      case 'timeout': {
        if (!isEvent) unavailable = failure;
        const next = isEvent ? EVENT_DROPPED : 'retrying in the background';
        warnOnce(
          'unavailable',
          failure.kind === 'timeout'
            ? `the Kubernetes API at ${server} did not answer ${what} within ${requestTimeoutMs} ms ` +
                `(requestTimeoutMs); ${next}; ${FALLBACK}`
            : `the Kubernetes API at ${server} is unreachable (${failure.detail}) for ${what}; ` +
                `${next}; ${FALLBACK}`,
          code,
        );
        break;
      }
      case 'server':
      case 'rejected':
        warnOnce(
          isEvent ? 'event-errors' : 'api-errors',
          isEvent
            ? `the Kubernetes API at ${server} refused to ${what} in namespace ${failure.namespace} ` +
                `(${failure.status ?? ''} ${failure.detail}); ${EVENT_DROPPED}`
            : `the Kubernetes API at ${server} failed to ${what} in namespace ${failure.namespace} ` +
                `(${failure.status ?? ''} ${failure.detail}); retrying with backoff; ` +
                `while it fails ${RBAC_RULES[failure.resource].without}`,
          code,
        );
        break;
      case 'misconfigured':
        unavailable = failure;
        warnOnce(
          'misconfigured',
          `the kubeconfig points at the Kubernetes API over plain HTTP (${server}) without skipTLSVerify: ` +
            `@kubernetes/client-node refuses to send credentials that way (${failure.detail}), so no request ` +
            `is made; use the https:// address of the API server; ${FALLBACK.replace('until then', 'meanwhile')}`,
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
