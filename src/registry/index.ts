/**
 * `kubegrace/registry`: `kg.use(registry(adapter))`, and the contract adapters implement. The
 * adapters live in their own subpaths (`kubegrace/registry/etcd`, `…/consul`, `…/eureka`, `…/nacos`)
 * so an app loads only the client it uses.
 */
export { registry } from './integration.js';
export type { RegistryHandle, RegistryOptions } from './integration.js';
export type { DeregistrationOutcome } from './participant.js';
export type { HeartbeatResult, Registry, RegistryCall, RegistryErrorCode } from './registry.js';
export type { InstanceIdentity, InstanceOptions } from './identity.js';
