/**
 * The minimal RBAC rules the integration needs, and the one-line warnings that name the missing rule
 * and what kubegrace does without it. docs/rbac.yaml holds the same rules as a manifest.
 */
import type { ApiFailure, KubeResource } from './client.js';

export interface RbacRule {
  readonly apiGroup: string;
  readonly resource: KubeResource;
  readonly verbs: readonly string[];
  /** What is lost without it. */
  readonly without: string;
}

export const RBAC_RULES: Readonly<Record<KubeResource, RbacRule>> = {
  pods: {
    apiGroup: '',
    resource: 'pods',
    verbs: ['list', 'watch'],
    without:
      'the deadline comes from the configured grace period and a deletion is noticed only when SIGTERM arrives',
  },
  endpointslices: {
    apiGroup: 'discovery.k8s.io',
    resource: 'endpointslices',
    verbs: ['list', 'watch'],
    without: 'the propagation wait judges the silence alone, without the EndpointSlice confirmation',
  },
  events: {
    apiGroup: '',
    resource: 'events',
    verbs: ['create'],
    without: 'no Kubernetes Events are recorded for shutdowns',
  },
};

/** `endpointslices.discovery.k8s.io`, `pods` */
export function qualifiedResource(resource: KubeResource): string {
  const group = RBAC_RULES[resource].apiGroup;
  return group === '' ? resource : `${resource}.${group}`;
}

/**
 * `cannot watch endpointslices.discovery.k8s.io in namespace shop: add verbs [list, watch] on
 * endpointslices (discovery.k8s.io) to the Role bound to this pod's service account (docs/rbac.yaml);
 * until then the propagation wait judges the silence alone, without the EndpointSlice confirmation`
 */
export function forbiddenMessage(failure: ApiFailure): string {
  const rule = RBAC_RULES[failure.resource];
  const group = rule.apiGroup === '' ? 'core API group ""' : rule.apiGroup;
  return (
    `cannot ${failure.verb} ${qualifiedResource(failure.resource)} in namespace ${failure.namespace}: ` +
    `add verbs [${rule.verbs.join(', ')}] on ${rule.resource} (${group}) to the Role bound to this pod's ` +
    `service account (docs/rbac.yaml); until then ${rule.without}`
  );
}
