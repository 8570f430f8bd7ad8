/** `kubegrace/kubernetes`: the own pod, its EndpointSlices and Events through the Kubernetes API. */
export { kubernetes } from './integration.js';
export type { KubernetesIntegration, KubernetesOptions, PodTiming } from './integration.js';
export type { KubeClientModule, KubeConfigLike } from './client.js';
export type { PodIdentity } from './detect.js';
export type { EndpointRef } from './endpoints.js';
export type { DeletionTiming, PreStop } from './pod-timing.js';
