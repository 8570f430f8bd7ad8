/**
 * Who this instance is in a registry. In a pod the Downward API provides the answers
 * (`POD_NAME` from `metadata.name`, `POD_IP` from `status.podIP`); outside one the hostname and the
 * first non-internal IPv4 address stand in, so `npm start` on a laptop registers something usable.
 */
import { hostname, networkInterfaces } from 'node:os';
import { invalidOption } from '../errors.js';
import { processEnv } from '../process.js';
import { createSettingReader, type Env, type SettingReader } from '../settings.js';

/** Identity options every adapter takes. */
export interface InstanceOptions {
  /** The service's name in the registry. Env `KUBEGRACE_REGISTRY_SERVICE_NAME`. Required. */
  readonly serviceName?: string;
  /**
   * This instance's unique id. Env `KUBEGRACE_REGISTRY_INSTANCE_ID`.
   * @default `POD_NAME`, else the hostname (which is the pod name in Kubernetes)
   */
  readonly instanceId?: string;
  /**
   * Address clients should connect to. Env `KUBEGRACE_REGISTRY_ADDRESS`.
   * @default `POD_IP`, else the first non-internal IPv4 address
   */
  readonly address?: string;
  /** Port clients should connect to. Env `KUBEGRACE_REGISTRY_PORT`. @default `PORT`; required otherwise */
  readonly port?: number;
  /** Extra key/value pairs stored with the instance (Consul `Meta`, Eureka/Nacos `metadata`). */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Environment to read variables from. @default process.env */
  readonly env?: Env;
}

/**
 * Every `InstanceOptions` key, for the adapters' allow-lists of option names (`read.object(…, keys)`):
 * the compiler fails here when the interface gains or loses one.
 */
export const INSTANCE_OPTION_KEYS = {
  serviceName: true,
  instanceId: true,
  address: true,
  port: true,
  metadata: true,
  env: true,
} as const satisfies Record<keyof InstanceOptions, true>;

export interface InstanceIdentity {
  readonly serviceName: string;
  readonly instanceId: string;
  readonly address: string;
  readonly port: number;
  readonly metadata: Readonly<Record<string, string>>;
}

/**
 * Resolve the identity for `registry` (used to name options in errors: `consul.serviceName`).
 * Throws `ERR_KUBEGRACE_INVALID_OPTION` naming the option or variable.
 */
export function resolveInstanceIdentity(
  options: InstanceOptions,
  registry: string,
  reader: SettingReader = createSettingReader(options.env ?? processEnv()),
): InstanceIdentity {
  const env = reader.env;
  const name = (key: string): string => `${registry}.${key}`;
  const serviceName = reader.required(
    reader.string(name('serviceName'), options.serviceName, 'KUBEGRACE_REGISTRY_SERVICE_NAME'),
    name('serviceName'),
    'KUBEGRACE_REGISTRY_SERVICE_NAME',
    'a non-empty string',
  );
  const instanceId =
    reader.string(name('instanceId'), options.instanceId, 'KUBEGRACE_REGISTRY_INSTANCE_ID') ??
    reader.string(name('instanceId'), undefined, 'POD_NAME') ??
    hostname();
  const address =
    reader.string(name('address'), options.address, 'KUBEGRACE_REGISTRY_ADDRESS') ??
    reader.string(name('address'), undefined, 'POD_IP') ??
    firstExternalIPv4();
  if (address === undefined) {
    throw invalidOption(
      `${name('address')} (or KUBEGRACE_REGISTRY_ADDRESS, or POD_IP from the Downward API)`,
      'set: no non-internal IPv4 interface was found to default to',
      undefined,
    );
  }
  if (/\s/.test(address)) {
    // Name where the value came from: the option, or the variable the operator has to fix.
    const source =
      options.address !== undefined
        ? name('address')
        : (env.KUBEGRACE_REGISTRY_ADDRESS ?? '') !== ''
          ? 'KUBEGRACE_REGISTRY_ADDRESS'
          : 'POD_IP';
    throw invalidOption(source, 'an IP address or host name', address);
  }
  const port = reader.required(
    reader.integer(name('port'), options.port, 'KUBEGRACE_REGISTRY_PORT', 1, 65535) ??
      (env.PORT === undefined ? undefined : reader.integer(name('port'), undefined, 'PORT', 1, 65535)),
    name('port'),
    'KUBEGRACE_REGISTRY_PORT',
    'an integer port from 1 to 65535',
  );
  const metadata = options.metadata ?? {};
  if (
    typeof metadata !== 'object' ||
    metadata === null ||
    Array.isArray(metadata) ||
    !Object.values(metadata).every((v) => typeof v === 'string')
  ) {
    throw invalidOption(name('metadata'), 'an object of string values', metadata);
  }
  return Object.freeze({ serviceName, instanceId, address, port, metadata: Object.freeze({ ...metadata }) });
}

function firstExternalIPv4(): string | undefined {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) {
      if (a.family === 'IPv4' && !a.internal) return a.address;
    }
  }
  return undefined;
}
