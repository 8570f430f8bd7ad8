/**
 * `kubegrace/registry`: the registry participant and the contract adapters implement. The adapters
 * live in their own subpaths (`kubegrace/registry/etcd`, `…/consul`, `…/eureka`, `…/nacos`) so an
 * app loads only the client it uses.
 */
export { createRegistryParticipant } from './participant.js';
export type {
  DeregistrationOutcome,
  RegistryParticipant,
  RegistryParticipantOptions,
} from './participant.js';
export type { HeartbeatResult, Registry, RegistryCall, RegistryErrorCode } from './registry.js';
export type { InstanceIdentity, InstanceOptions } from './identity.js';
