/**
 * The options of `createKubegrace` that are not settings (functions and objects), checked before
 * anything uses them, and the warning about `KUBEGRACE_*` variables no setting reads.
 */
import { invalidOption } from './errors.js';
import type { KubegraceOptions } from './kubegrace.js';
import type { Logger } from './log.js';
import { didYouMean, settingSpecs } from './options.js';

/** The options that are not settings: functions and objects, checked before anything uses them. */
export function validateOwnOptions(options: KubegraceOptions): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalidOption('options', 'an object', options);
  }
  const { env, exit, handleSignals, logger, observer } = options as Record<string, unknown>;
  if (env !== undefined && (typeof env !== 'object' || env === null || Array.isArray(env))) {
    throw invalidOption('env', 'an object of environment variables (like process.env)', env);
  }
  if (exit !== undefined && typeof exit !== 'function') {
    throw invalidOption('exit', 'a function (code: number) => void', exit);
  }
  if (handleSignals !== undefined && typeof handleSignals !== 'boolean') {
    throw invalidOption('handleSignals', 'true or false', handleSignals);
  }
  if (logger !== undefined && logger !== false && !hasMethods(logger, ['info', 'warn', 'error'])) {
    throw invalidOption('logger', 'false or an object with info, warn and error functions', logger);
  }
  if (observer !== undefined) validateObserver(observer, 'observer');
}

const OBSERVER_METHODS = [
  'requestStarted',
  'requestFinished',
  'connectionOpened',
  'connectionClosed',
  'pacedClose',
] as const;

/** An observer runs on every request: one that cannot be called would crash the first request. */
export function validateObserver(observer: unknown, name: string): void {
  if (typeof observer !== 'object' || observer === null || Array.isArray(observer)) {
    throw invalidOption(name, `an object with any of ${OBSERVER_METHODS.join(', ')}`, observer);
  }
  for (const method of OBSERVER_METHODS) {
    const fn = (observer as Record<string, unknown>)[method];
    if (fn !== undefined && typeof fn !== 'function') {
      throw invalidOption(`${name}.${method}`, 'a function', fn);
    }
  }
}

/** `{ name? }` options of attach(): an object, and a name (it labels logs and metrics) that is text. */
export function optionalName(options: unknown, method: string): void {
  if (typeof options !== 'object' || options === null) {
    throw invalidOption(`${method} options`, 'an object', options);
  }
  const { name } = options as { name?: unknown };
  if (name !== undefined && (typeof name !== 'string' || name === '')) {
    throw invalidOption(`${method} name`, 'a non-empty string', name);
  }
}

function hasMethods(value: unknown, methods: readonly string[]): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    methods.every((m) => typeof (value as Record<string, unknown>)[m] === 'function')
  );
}

// Variables other kubegrace modules read; anything else with the prefix is probably a typo.
const OTHER_PREFIXES = ['KUBEGRACE_REGISTRY_', 'KUBEGRACE_TEST_'];
const RENAMED_VARIABLES: Readonly<Record<string, string>> = {
  KUBEGRACE_PROBES_ENABLED: 'KUBEGRACE_MANAGEMENT_SERVER',
};

export function warnUnknownVariables(
  env: Readonly<Record<string, string | undefined>>,
  logger: Logger,
): void {
  const known = new Set(settingSpecs.map((s) => s.env));
  const unknown = Object.keys(env).filter(
    (name) =>
      name.startsWith('KUBEGRACE_') && !known.has(name) && !OTHER_PREFIXES.some((p) => name.startsWith(p)),
  );
  if (unknown.length > 0) {
    const named = unknown.map((name) => {
      const renamed = RENAMED_VARIABLES[name];
      if (renamed !== undefined) return `${name} (renamed to ${renamed})`;
      const hint = didYouMean(name, known);
      return hint === undefined ? name : `${name} (did you mean ${hint}?)`;
    });
    logger.warn(`ignoring unknown environment variable(s) ${named.join(', ')}: kubegrace --help lists them`);
  }
}
