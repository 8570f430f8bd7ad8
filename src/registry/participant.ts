/**
 * The registry participant: registers when the service becomes ready, keeps the registration alive,
 * and deregisters during the shutdown — by default in `unready`, at the same moment readiness fails,
 * so registry clients move away while kube-proxy does. Every registry call has its own time limit and
 * a few retries with backoff, all inside the phase budget; a deregistration that still fails throws,
 * so the lifecycle records the shutdown as `failed` instead of exiting 0 with a stale registration.
 */
import { errorText, type Participant, type PhaseContext } from '../lifecycle.js';
import { invalidOption } from '../errors.js';
import { processEnv } from '../process.js';
import { createRegistryCaller, pause, settleBy } from './calls.js';
import { isRegistryTimeout, registryError, type Registry } from './registry.js';
import { createSettingReader, type Env } from '../settings.js';

export type DeregistrationOutcome = 'success' | 'failed' | 'timeout';

export interface RegistryParticipantOptions {
  /**
   * Register when the lifecycle becomes ready. `false` when something else registers the instance (a
   * sidecar, consul-k8s, the app's own client): kubegrace then only deregisters, on time.
   * Env `KUBEGRACE_REGISTRY_REGISTER`. @default true
   */
  readonly register?: boolean;
  /**
   * When to deregister: `unready` (at the start of the shutdown, before the propagation wait) or
   * `afterDrain` (in `cleanup`, once in-flight work is done). Env `KUBEGRACE_REGISTRY_DEREGISTER`.
   * @default 'unready'
   */
  readonly deregister?: 'unready' | 'afterDrain';
  /**
   * Time limit of one deregistration call, inside the shutdown budget.
   * Env `KUBEGRACE_REGISTRY_CALL_TIMEOUT_MS`. @default 1000
   */
  readonly callTimeoutMs?: number;
  /**
   * Time limit of one registration or heartbeat call. Not on the shutdown clock, so it can allow
   * for a cold connection on a busy node. Env `KUBEGRACE_REGISTRY_REGISTER_TIMEOUT_MS`. @default 5000
   */
  readonly registerTimeoutMs?: number;
  /** Attempts after the first, for a registration or a deregistration. Env `KUBEGRACE_REGISTRY_RETRIES`. @default 3 */
  readonly retries?: number;
  /**
   * Pause before the first retry; each later one doubles, with jitter. Never past the budget.
   * Env `KUBEGRACE_REGISTRY_RETRY_BACKOFF_MS`. @default 100
   */
  readonly retryBackoffMs?: number;
  /**
   * Keep the propagation wait open this long after deregistering, for clients that cache the
   * registry (bounded by the propagation budget). Env `KUBEGRACE_REGISTRY_CLIENT_CACHE_MS` (read by
   * the adapter when it declares its own `clientCacheMs`, which then counts here).
   * @default the adapter's `clientCacheMs` (Eureka 30000, others 0)
   */
  readonly clientCacheMs?: number;
  /**
   * How often to try again when registering failed and the registry needs no heartbeat.
   * Env `KUBEGRACE_REGISTRY_RETRY_INTERVAL_MS`. @default 5000
   */
  readonly registerRetryIntervalMs?: number;
  /**
   * Called once per shutdown with how the deregistration went and how long it took; metrics plug in
   * here (`kubegrace_registry_deregistration_duration_seconds{registry,outcome}`).
   */
  readonly onDeregistration?: (registry: string, outcome: DeregistrationOutcome, seconds: number) => void;
  /** Problems outside a shutdown phase (a failed heartbeat, a lost registration) are reported here. */
  readonly onWarning?: (message: string) => void;
  /** Participant name in summaries and logs. @default `registry:<adapter name>` */
  readonly name?: string;
  /** Environment to read variables from. @default process.env */
  readonly env?: Env;
}

export interface RegistryParticipant extends Participant {
  /** The adapter's name (`etcd`, `consul`, …). */
  readonly registry: string;
  /** True while the instance is registered, as far as kubegrace knows. */
  readonly registered: boolean;
  /** Stop heartbeats and release the client without deregistering (abrupt teardown, tests). */
  close(): Promise<void>;
}

export function createRegistryParticipant(
  registry: Registry,
  options: RegistryParticipantOptions = {},
): RegistryParticipant {
  if (
    typeof registry !== 'object' ||
    registry === null ||
    typeof registry.name !== 'string' ||
    typeof registry.register !== 'function' ||
    typeof registry.deregister !== 'function'
  ) {
    throw invalidOption('registry', 'an object with name, register() and deregister()', registry);
  }
  const settings = resolveParticipantSettings(options, registry);
  const label = registry.name;
  const warn = (message: string): void => {
    try {
      settings.onWarning?.(`${settings.name}: ${message}`);
    } catch {
      // A logging callback must not break registration.
    }
  };

  let registered = false;
  let readyCalled = false;
  /** Set when the shutdown reaches the registry: no new registration or heartbeat starts after it. */
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let registering: Promise<void> | undefined;
  let deregistration: Promise<void> | undefined;
  let deregisteredAt: number | undefined;
  let closing: Promise<void> | undefined;
  // Cuts backoff pauses and in-flight heartbeats when the shutdown begins. An in-flight registration
  // is not cut but awaited: aborting our side cannot stop the registry from applying it after the
  // deregistration, which would bring the instance back.
  const stopController = new AbortController();
  // Cuts everything, registrations included, on close().
  const closeController = new AbortController();

  const { attempt, withRetries } = createRegistryCaller(label, {
    retries: settings.retries,
    backoffMs: settings.retryBackoffMs,
  });

  const deregisterLimit = { ms: settings.callTimeoutMs, option: 'callTimeoutMs' } as const;
  const registerLimit = { ms: settings.registerTimeoutMs, option: 'registerTimeoutMs' } as const;

  function registerNow(): Promise<void> {
    if (stopped || !settings.register) return Promise.resolve();
    registering ??= (async () => {
      try {
        const result = await withRetries(
          registry.register,
          closeController.signal,
          stopController.signal,
          registerLimit,
          Infinity,
          () => !stopped,
        );
        if (result.ok) {
          registered = true;
        } else if (!stopped) {
          throw registryError(
            'ERR_KUBEGRACE_REGISTRY_UNAVAILABLE',
            `${label}: registration failed after ${result.attempts} attempt(s); trying again later`,
            result.error,
          );
        }
      } finally {
        registering = undefined;
      }
    })();
    return registering;
  }

  function schedule(): void {
    if (stopped || closing) return;
    clearTimeout(timer);
    let interval: number | undefined;
    if (!registered) interval = settings.registerRetryIntervalMs;
    else if (registry.heartbeat) interval = registry.heartbeatIntervalMs;
    if (interval === undefined) return;
    // Unref'd: keeping a registration alive is never a reason to keep the process running.
    timer = setTimeout(() => void tick(), Math.max(1, interval)).unref();
  }

  async function tick(): Promise<void> {
    timer = undefined;
    try {
      if (!registered) {
        await registerNow();
      } else if (registry.heartbeat) {
        const heartbeat = registry.heartbeat;
        const result = await attempt((call) => heartbeat(call), stopController.signal, registerLimit);
        if (result === 'lost' && !stopped) {
          registered = false;
          warn('the registry no longer knows this instance; registering again');
          await registerNow();
        }
      }
    } catch (error) {
      if (!stopped) warn(`heartbeat or registration failed: ${errorText(error)}`);
    }
    schedule();
  }

  function report(outcome: DeregistrationOutcome, seconds: number): void {
    try {
      settings.onDeregistration?.(label, outcome, seconds);
    } catch (error) {
      warn(`onDeregistration threw: ${errorText(error)}`);
    }
  }

  function deregister(ctx: PhaseContext): Promise<void> {
    deregistration ??= runDeregistration(ctx);
    return deregistration;
  }

  async function runDeregistration(ctx: PhaseContext): Promise<void> {
    const started = performance.now();
    stopped = true;
    clearTimeout(timer);
    stopController.abort();
    try {
      registry.stopHeartbeats?.();
    } catch (error) {
      ctx.warn(`stopping heartbeats failed: ${errorText(error)}`);
    }
    let failure: { outcome: DeregistrationOutcome; error: unknown; attempts: number } | undefined;
    try {
      if (registering) {
        await settleBy(
          registering.catch(() => undefined),
          ctx.signal,
          () =>
            registryError(
              'ERR_KUBEGRACE_REGISTRY_TIMEOUT',
              `${label}: a registration still in flight outlasted the budget`,
            ),
        );
      }
      const result = await withRetries(
        registry.deregister,
        ctx.signal,
        ctx.signal,
        deregisterLimit,
        ctx.deadline,
      );
      if (result.ok) {
        registered = false;
        deregisteredAt = Date.now();
      } else {
        const timedOut = ctx.signal.aborted || isRegistryTimeout(result.error);
        failure = {
          outcome: timedOut ? 'timeout' : 'failed',
          error: result.error,
          attempts: result.attempts,
        };
      }
    } catch (error) {
      failure = { outcome: 'timeout', error, attempts: 0 };
    }
    const seconds = (performance.now() - started) / 1000;
    report(failure?.outcome ?? 'success', seconds);
    // The client is no longer needed either way: the instance is gone, or (heartbeats stopped) it
    // expires by the registry's TTL.
    void closeClient().catch((error: unknown) => ctx.warn(`closing the client failed: ${errorText(error)}`));
    if (failure) {
      const how = failure.outcome === 'timeout' ? 'timed out' : 'failed';
      throw registryError(
        'ERR_KUBEGRACE_DEREGISTRATION_FAILED',
        `${label} deregistration ${how} after ${failure.attempts} attempt(s) in ${Math.round(seconds * 1000)} ms`,
        failure.error,
      );
    }
  }

  /** Hold the propagation wait open until registry clients' caches have let go of this instance. */
  async function propagate(ctx: PhaseContext): Promise<void> {
    if (deregisteredAt === undefined || settings.clientCacheMs <= 0 || ctx.trigger === 'fatal') return;
    const left = deregisteredAt + settings.clientCacheMs - Date.now();
    if (left <= 0) return;
    const room = ctx.deadline - Date.now();
    const advice =
      `raise propagation.maxMs (adaptive) or propagation.delayMs (fixed) to at least ${settings.clientCacheMs} ms, ` +
      `or lower clientCacheMs if ${label} clients refresh faster`;
    if (room < left) {
      ctx.warn(
        `${label} clients may use a cached copy of this instance for ${left} ms more (clientCacheMs ${settings.clientCacheMs}) ` +
          `but the deadline is ${Math.max(0, room)} ms away; ${advice}`,
      );
      await pause(left, ctx.signal);
      return;
    }
    if (!(await pause(left, ctx.signal))) {
      const short = deregisteredAt + settings.clientCacheMs - Date.now();
      ctx.warn(
        `the propagation budget ended ${Math.max(0, short)} ms before ${label} clients' cache ran out ` +
          `(clientCacheMs ${settings.clientCacheMs}); ${advice}`,
      );
    }
  }

  function closeClient(): Promise<void> {
    closing ??= Promise.resolve().then(() => registry.close?.());
    return closing;
  }

  async function close(): Promise<void> {
    stopped = true;
    clearTimeout(timer);
    stopController.abort();
    closeController.abort();
    try {
      registry.stopHeartbeats?.();
    } finally {
      await closeClient();
    }
  }

  const phases: Pick<Participant, 'unready' | 'cleanup'> =
    settings.deregister === 'unready' ? { unready: deregister } : { cleanup: deregister };

  return {
    name: settings.name,
    registry: label,
    get registered() {
      return registered;
    },
    async ready() {
      if (readyCalled || stopped || !settings.register) return;
      readyCalled = true;
      try {
        await registerNow();
      } finally {
        schedule();
      }
    },
    ...phases,
    propagate,
    // Whatever happened before, nothing may keep beating or hold a connection past the exit.
    exit: () => close(),
    close,
  };
}

interface ParticipantSettings {
  readonly register: boolean;
  readonly deregister: 'unready' | 'afterDrain';
  readonly callTimeoutMs: number;
  readonly registerTimeoutMs: number;
  readonly retries: number;
  readonly retryBackoffMs: number;
  readonly clientCacheMs: number;
  readonly registerRetryIntervalMs: number;
  readonly onDeregistration: RegistryParticipantOptions['onDeregistration'];
  readonly onWarning: RegistryParticipantOptions['onWarning'];
  readonly name: string;
}

function resolveParticipantSettings(
  options: RegistryParticipantOptions,
  registry: Registry,
): ParticipantSettings {
  const read = createSettingReader(options.env ?? processEnv());
  if (options.name !== undefined && (typeof options.name !== 'string' || options.name === '')) {
    throw invalidOption('name', 'a non-empty string', options.name);
  }
  for (const key of ['onDeregistration', 'onWarning'] as const) {
    if (options[key] !== undefined && typeof options[key] !== 'function') {
      throw invalidOption(key, 'a function', options[key]);
    }
  }
  const adapterCache = registry.clientCacheMs ?? 0;
  if (!Number.isInteger(adapterCache) || adapterCache < 0) {
    throw invalidOption(`${registry.name} clientCacheMs`, 'a non-negative integer (ms)', adapterCache);
  }
  return {
    register: read.boolean('register', options.register, 'KUBEGRACE_REGISTRY_REGISTER') ?? true,
    deregister:
      read.oneOf('deregister', options.deregister, 'KUBEGRACE_REGISTRY_DEREGISTER', [
        'unready',
        'afterDrain',
      ] as const) ?? 'unready',
    callTimeoutMs:
      read.integer('callTimeoutMs', options.callTimeoutMs, 'KUBEGRACE_REGISTRY_CALL_TIMEOUT_MS', 1) ?? 1000,
    registerTimeoutMs:
      read.integer(
        'registerTimeoutMs',
        options.registerTimeoutMs,
        'KUBEGRACE_REGISTRY_REGISTER_TIMEOUT_MS',
        1,
      ) ?? 5000,
    retries: read.integer('retries', options.retries, 'KUBEGRACE_REGISTRY_RETRIES', 0, 20) ?? 3,
    retryBackoffMs:
      read.integer('retryBackoffMs', options.retryBackoffMs, 'KUBEGRACE_REGISTRY_RETRY_BACKOFF_MS', 0) ?? 100,
    // An adapter that declares clientCacheMs has already resolved its option and the variable (an
    // option wins over its variable); the variable is read here only for adapters that do not.
    clientCacheMs:
      options.clientCacheMs !== undefined || registry.clientCacheMs === undefined
        ? (read.integer('clientCacheMs', options.clientCacheMs, 'KUBEGRACE_REGISTRY_CLIENT_CACHE_MS', 0) ?? 0)
        : adapterCache,
    registerRetryIntervalMs:
      read.integer(
        'registerRetryIntervalMs',
        options.registerRetryIntervalMs,
        'KUBEGRACE_REGISTRY_RETRY_INTERVAL_MS',
        1,
      ) ?? 5000,
    onDeregistration: options.onDeregistration,
    onWarning: options.onWarning,
    name: options.name ?? `registry:${registry.name}`,
  };
}
