/** The contract between the registry participant and one registry adapter. */
import { KubegraceError, type KubegraceErrorCode } from '../errors.js';

/** One call to the registry: its own time limit, already combined with the phase budget. */
export interface RegistryCall {
  /** Fires at this call's time limit, the phase budget or the global deadline. */
  readonly signal: AbortSignal;
  /** Epoch ms when the call must be over, for clients that take a deadline rather than a signal (gRPC). */
  readonly deadline: number;
}

/** `lost`: the registry no longer knows this instance (expired, evicted, agent restarted); register again. */
export type HeartbeatResult = 'ok' | 'lost';

/**
 * A service registry as the participant sees it. Every method may be retried after a failure or a
 * timeout, so each must be safe to repeat; `deregister` must treat "not registered" as success.
 */
export interface Registry {
  /** Short label used in metrics, logs and errors: `etcd`, `consul`, `eureka`, `nacos`. */
  readonly name: string;
  /**
   * How long registry clients may keep handing out this instance after it was deregistered (their
   * local cache, e.g. Eureka's 30 s fetch interval). The propagation wait is extended to cover it.
   */
  readonly clientCacheMs?: number;
  /** How often `heartbeat` must run; leave out when the registry needs none. Read before each beat. */
  readonly heartbeatIntervalMs?: number;
  register(call: RegistryCall): Promise<void>;
  heartbeat?(call: RegistryCall): Promise<HeartbeatResult>;
  /**
   * Stop keep-alives the adapter runs by itself (etcd's lease keep-alive stream). Called once,
   * synchronously, before deregistering: a beat that lands after the deregistration can bring the
   * instance back (Nacos) or keep a lease alive that should expire if the deregistration fails (etcd).
   */
  stopHeartbeats?(): void;
  deregister(call: RegistryCall): Promise<void>;
  /** Release connections. Nothing is called after it. */
  close?(): Promise<void> | void;
}

/** Codes of registry failures (a subset of the core `KubegraceErrorCode`). */
export type RegistryErrorCode = Extract<
  KubegraceErrorCode,
  | 'ERR_KUBEGRACE_REGISTRY_UNAVAILABLE'
  | 'ERR_KUBEGRACE_REGISTRY_REJECTED'
  | 'ERR_KUBEGRACE_REGISTRY_TIMEOUT'
  | 'ERR_KUBEGRACE_DEREGISTRATION_FAILED'
  | 'ERR_KUBEGRACE_MISSING_PEER'
>;

export function registryError(code: RegistryErrorCode, message: string, cause?: unknown): KubegraceError {
  return new KubegraceError(code, message, cause === undefined ? undefined : { cause });
}

export function isRegistryTimeout(error: unknown): boolean {
  return error instanceof KubegraceError && (error.code as string) === 'ERR_KUBEGRACE_REGISTRY_TIMEOUT';
}
