/**
 * `kubegrace/cluster`: pods that run several Node processes through `node:cluster`. The primary owns
 * the pod's lifecycle (`clusterPrimary()`); each worker drains as its participant (`clusterWorker()`).
 */
export { clusterPrimary } from './primary.js';
export type { ClusterPrimary, ClusterPrimaryOptions, ClusterWorkerStatus } from './primary.js';
export { clusterWorker } from './worker.js';
export type { ClusterWorker, ClusterWorkerOptions } from './worker.js';
