/**
 * `kg.use(registry(adapter))`: register the instance in a service registry when it becomes ready,
 * keep the registration alive, deregister during the shutdown (the participant in `participant.ts`).
 * Warnings go to the kubegrace instance's logger; each deregistration is reported to the instance,
 * where `kubegrace/metrics` records it.
 */
import { KubegraceError } from '../errors.js';
import { defineIntegration, type Integration } from '../host.js';
import { createSettingReader } from '../settings.js';
import { createRegistryParticipant, type RegistryParticipantOptions } from './participant.js';
import type { Registry } from './registry.js';

/** The registry integration's options: the participant's, less what the instance provides. */
export type RegistryOptions = Omit<RegistryParticipantOptions, 'onWarning' | 'onDeregistration'>;

/** Option names, so a misspelt one is refused rather than ignored; the compiler keeps them whole. */
const OPTION_KEYS = Object.keys({
  register: true,
  deregister: true,
  callTimeoutMs: true,
  registerTimeoutMs: true,
  retries: true,
  retryBackoffMs: true,
  clientCacheMs: true,
  registerRetryIntervalMs: true,
  name: true,
  env: true,
} as const satisfies Record<keyof RegistryOptions, true>);

export interface RegistryHandle {
  /** The adapter's name (`etcd`, `consul`, …). */
  readonly registry: string;
  /** True while the instance is registered, as far as kubegrace knows. */
  readonly registered: boolean;
  /** Take it out of the shutdown and stop heartbeats, without deregistering (abrupt teardown, tests). */
  close(): Promise<void>;
}

/**
 * A service registry for `kg.use()`: the adapter from `kubegrace/registry/etcd`, `…/consul`,
 * `…/eureka` or `…/nacos` (or your own `Registry`). Options are checked here, at once.
 */
export function registry(adapter: Registry, options: RegistryOptions = {}): Integration<RegistryHandle> {
  let report:
    ((name: string, outcome: 'success' | 'failed' | 'timeout', seconds: number) => void) | undefined;
  let warn: ((message: string) => void) | undefined;
  for (const key of ['onWarning', 'onDeregistration'] as const) {
    if (typeof options === 'object' && options !== null && key in options) {
      // Before the unknown-option check: say where they went, not only that they are unknown.
      throw new KubegraceError(
        'ERR_KUBEGRACE_INVALID_OPTION',
        `registry ${key} is not an option any more: warnings go to the kubegrace instance's logger, ` +
          'deregistrations to kubegrace/metrics',
        { option: `registry ${key}` },
      );
    }
  }
  createSettingReader({}).object('registry options', options, 'an object', OPTION_KEYS);
  const participant = createRegistryParticipant(adapter, {
    ...options,
    onWarning: (message) => warn?.(message),
    onDeregistration: (name, outcome, seconds) => report?.(name, outcome, seconds),
  });
  return defineIntegration(participant.name, (host) => {
    warn = (message) => host.logger.warn(message, { component: 'registry', registry: participant.registry });
    report = (name, outcome, seconds) => host.reportDeregistration({ registry: name, outcome, seconds });
    const remove = host.addParticipant(participant);
    return {
      registry: participant.registry,
      get registered() {
        return participant.registered;
      },
      async close() {
        remove();
        await participant.close();
      },
    };
  });
}
