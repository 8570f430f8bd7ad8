/** `kubegrace/kubernetes`: the own pod, its EndpointSlices and Events through the Kubernetes API. */
export { watchKubernetes } from './integration.js';
export type { KubegraceHost, KubernetesIntegration, KubernetesOptions, PodTiming } from './integration.js';
export type { KubeClientModule, KubeConfigLike } from './client.js';
export { detectCluster, podIdentity, DOWNWARD_API_ENV, SERVICE_ACCOUNT_DIR } from './detect.js';
export type { ClusterDetection, PodIdentity } from './detect.js';
export type { EndpointRef } from './endpoints.js';
export type { EventReason } from './events.js';
export { deletionTiming, preStopOf, sleepSecondsOf, podBudget } from './pod-timing.js';
export type { DeletionTiming, PodBudget, PreStop } from './pod-timing.js';
export { RBAC_RULES } from './rbac.js';
export type { RbacRule } from './rbac.js';
