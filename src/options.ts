/**
 * The core's settings: one table (`settingSpecs`) of every option with its kind, default and
 * variable, and the one resolver (option, then variable, then default) with the cross-setting checks
 * and the budget. Over ~400 lines because the table is the single source of truth that the README
 * tables, `--help`, `kubegrace check` and the docs tests read; split, they would need two.
 */
import { isIP } from 'node:net';
import { invalidOption, KubegraceError } from './errors.js';

/** Durations are milliseconds, except where a Kubernetes field in seconds is mirrored. */
export interface PropagationOptions {
  /**
   * `adaptive`: wait until a silence since the last new connection is evidence, at the arrival rate
   * the pod was getting, that no router still sends it traffic (never shorter than `quietPeriodMs`);
   * in a cluster, until the EndpointSlices show this pod removed plus `proxyAllowanceMs`; bounded by
   * `minMs` and `maxMs`. `fixed`: wait `delayMs`. @default 'adaptive'
   */
  readonly strategy?: 'adaptive' | 'fixed';
  /** Fixed strategy: how long to keep serving after readiness fails. @default 5000 */
  readonly delayMs?: number;
  /**
   * Adaptive strategy: the shortest silence (no new connection) that can end the wait; sparse
   * traffic asks for a longer one, sized from its arrival rate. @default 1000
   */
  readonly quietPeriodMs?: number;
  /** Adaptive strategy: never end the propagation wait earlier than this. @default 0 */
  readonly minMs?: number;
  /** Adaptive strategy: never wait longer than this; also the phase budget. @default 10000 */
  readonly maxMs?: number;
  /**
   * Adaptive strategy, in a cluster: once the EndpointSlices show this pod removed, keep serving this
   * long for node proxies (kube-proxy applies changes at most every 1 s by default), and until new
   * connections stopped for as long. Raise it behind ingress controllers and cloud load balancers
   * that lag the API (docs/lifecycle.md). @default 3000
   */
  readonly proxyAllowanceMs?: number;
  /** Adaptive strategy: how far back before the shutdown the arrival rate is measured. @default 60000 */
  readonly rateWindowMs?: number;
}

export interface DrainOptions {
  /** Budget of the drain phase; what is still open then is closed by force. @default 10000 */
  readonly timeoutMs?: number;
  /**
   * Answer requests that arrive during the drain phase (on connections still open) with
   * 503 and `Retry-After` instead of serving them. @default false
   */
  readonly rejectDuringDrain?: boolean;
  /** `Retry-After` seconds sent with those 503s. @default 1 */
  readonly retryAfterSeconds?: number;
  /**
   * Spread the closes of long-lived connections (WebSockets, HTTP/2 sessions, event streams,
   * Socket.IO) over at most this long, oldest first with jitter, so their clients do not all reconnect
   * to the surviving pods at once. Never more than half the drain budget left, and a pod with few
   * connections (under 100 a second of window) still closes them at once; 0 closes all at once
   * (docs/drain.md). @default 5000
   */
  readonly pacingWindowMs?: number;
}

export interface ProbeOptions {
  /** Management port (probes, `/prestop`, `/metrics`); 0 picks a free one. @default 9000 */
  readonly port?: number;
  /** Address to listen on; `''` is every interface, IPv4 and IPv6. @default '' */
  readonly host?: string;
  /** Time limit of each readiness or liveness check. @default 1000 */
  readonly checkTimeoutMs?: number;
  /** Include each check's result in probe bodies. @default false */
  readonly details?: boolean;
  /**
   * When `/readyz` turns 503: `shutdown` (at once, the default) or `drain` (keep 200 through the
   * propagation wait, so kube-proxy's fallback to terminating endpoints still applies).
   * @default 'shutdown'
   */
  readonly readinessUntil?: 'shutdown' | 'drain';
  /** Fail liveness when the event loop lags more than this; 0 turns the check off. @default 0 */
  readonly eventLoopLagMs?: number;
}

export interface ExitCodeOptions {
  /** Shutdown finished with nothing forced and every hook done. @default 0 */
  readonly clean?: number;
  /** Deadline reached, connections forced closed, or a hook failed. @default 1 */
  readonly incomplete?: number;
  /** `fatal(error)` was called. @default 70 */
  readonly fatal?: number;
}

/** All plain-value options. Every field is optional; `defaults` holds the values used otherwise. */
export interface KubegraceSettings {
  /**
   * Mirrors `terminationGracePeriodSeconds`, as a positive integer (Kubernetes' 0, kill at once, leaves
   * no time to shut down). Env `KUBEGRACE_GRACE_PERIOD_SECONDS`. @default 30
   */
  readonly gracePeriodSeconds?: number;
  /**
   * Seconds a preStop `sleep` holds SIGTERM back: the kubelet's clock started that long before the
   * signal arrived. @default 0
   */
  readonly preStopSleepSeconds?: number;
  /** Leave this much before the kubelet's kill time. @default 1000 */
  readonly safetyMarginMs?: number;
  /** What to do when the phase budgets add up to more than the grace period. @default 'error' */
  readonly budgetCheck?: 'error' | 'warn' | 'off';
  /** Budget of the unready phase (readiness flip, deregistration, `beforeShutdown` hooks). @default 2000 */
  readonly unreadyTimeoutMs?: number;
  readonly propagation?: PropagationOptions;
  readonly drain?: DrainOptions;
  /** Budget of the cleanup phase (`onCleanup` hooks, in reverse order). @default 5000 */
  readonly cleanupTimeoutMs?: number;
  /** Default time limit of one hook. @default 5000 */
  readonly hookTimeoutMs?: number;
  /** Budget of `fatal(error)`: a short shutdown without the propagation wait. @default 5000 */
  readonly fatalTimeoutMs?: number;
  /**
   * Run the management server on `probes.port`: the probes (`/livez`, `/readyz`, `/startupz`),
   * `/prestop` and `/metrics`. `false` runs none of them (host the probes yourself with
   * `kubegrace/express`). @default true
   */
  readonly managementServer?: boolean;
  readonly probes?: ProbeOptions;
  /** Signals that start a shutdown. @default ['SIGTERM', 'SIGINT'] */
  readonly signals?: readonly NodeJS.Signals[];
  /** A second signal while shutting down: `force` exits at once (128 + signal number), `ignore`. @default 'force' */
  readonly secondSignal?: 'force' | 'ignore';
  /** Treat `uncaughtException` and `unhandledRejection` as `fatal(error)`. @default true */
  readonly catchErrors?: boolean;
  readonly exitCodes?: ExitCodeOptions;
  readonly prestop?: PrestopOptions;
}

export interface PrestopOptions {
  /**
   * `GET`/`POST /prestop` on the management port starts the shutdown (a preStop `httpGet` hook, or
   * `kubegrace prestop` as an exec hook). Without a token only loopback callers may; with one, any
   * caller that sends it as `Authorization: Bearer <token>` or `X-Kubegrace-Token`. @default ''
   */
  readonly token?: string;
}

type Kind =
  | { readonly type: 'ms'; readonly positive?: true; readonly min?: number }
  | { readonly type: 'seconds'; readonly positive?: true }
  | { readonly type: 'port' }
  | { readonly type: 'exit-code' }
  | { readonly type: 'boolean' }
  | { readonly type: 'string'; readonly secret?: true }
  | { readonly type: 'enum'; readonly values: readonly string[] }
  | { readonly type: 'signals' };

/** One plain-value setting: its path, kind, default, environment variable and description. */
export interface SettingSpec {
  readonly path: string;
  readonly kind: Kind;
  readonly default: unknown;
  readonly env: string;
  readonly description: string;
}

const ms = { type: 'ms' } as const;

/**
 * The smallest `safetyMarginMs`: the watchdog's hard exit comes margin/2 + min(100, margin/4) after
 * the deadline, which leaves 275 ms before the kill time at 750 ms: on a loaded 2-core machine it acted
 * up to ~270 ms late (one overrun in 12 runs at 500 ms, none at 750 ms).
 */
export const MIN_SAFETY_MARGIN_MS = 750;

function spec(path: string, kind: Kind, value: unknown, description: string, env?: string): SettingSpec {
  const derived = `KUBEGRACE_${path
    .replace(/\./g, '_')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toUpperCase()}`;
  return { path, kind, default: value, env: env ?? derived, description };
}

/** The single source of truth for defaults, environment variables and validation. */
export const settingSpecs: readonly SettingSpec[] = [
  // Kubernetes takes 0 (kill at once); a budget against no time at all is no shutdown.
  spec(
    'gracePeriodSeconds',
    { type: 'seconds', positive: true },
    30,
    "mirrors terminationGracePeriodSeconds (1 or more; Kubernetes' 0 is refused)",
  ),
  spec('preStopSleepSeconds', { type: 'seconds' }, 0, 'preStop sleep that holds SIGTERM back'),
  // Below MIN_SAFETY_MARGIN_MS a blocked process outlived the kill time (tester: 9 of 9 at 0 ms, 6 of 8
  // at 100, 1 of 5 at 200; here, under load, 1 of 6 at 300, 2 of 6 at 400, 1 of 12 at 500).
  spec(
    'safetyMarginMs',
    { type: 'ms', min: MIN_SAFETY_MARGIN_MS },
    1000,
    `leave this long before the kill time (${MIN_SAFETY_MARGIN_MS} or more)`,
  ),
  spec(
    'budgetCheck',
    { type: 'enum', values: ['error', 'warn', 'off'] },
    'error',
    'phase budgets vs grace period',
  ),
  spec('unreadyTimeoutMs', ms, 2000, 'budget of the unready phase'),
  spec(
    'propagation.strategy',
    { type: 'enum', values: ['adaptive', 'fixed'] },
    'adaptive',
    'propagation strategy',
  ),
  spec('propagation.delayMs', ms, 5000, 'fixed strategy: wait'),
  spec('propagation.quietPeriodMs', ms, 1000, 'adaptive: shortest silence that ends the wait'),
  spec('propagation.minMs', ms, 0, 'adaptive: shortest wait'),
  spec('propagation.maxMs', ms, 10000, 'adaptive: longest wait'),
  spec('propagation.proxyAllowanceMs', ms, 3000, 'adaptive: time for node proxies after the slice change'),
  spec('propagation.rateWindowMs', ms, 60000, 'adaptive: arrival-rate history before the shutdown'),
  spec('drain.timeoutMs', ms, 10000, 'budget of the drain phase'),
  spec('drain.rejectDuringDrain', { type: 'boolean' }, false, '503 + Retry-After during drain'),
  spec('drain.retryAfterSeconds', { type: 'seconds' }, 1, 'Retry-After of those 503s'),
  spec('drain.pacingWindowMs', ms, 5000, 'spread long-lived closes over at most this (0: at once)'),
  spec('cleanupTimeoutMs', ms, 5000, 'budget of the cleanup phase'),
  spec('hookTimeoutMs', ms, 5000, 'default time limit of one hook'),
  spec('fatalTimeoutMs', ms, 5000, 'budget of fatal(error)'),
  spec(
    'managementServer',
    { type: 'boolean' },
    true,
    'run the management server (probes, /prestop, /metrics)',
  ),
  spec('probes.port', { type: 'port' }, 9000, 'management port (0: any free port)'),
  spec('probes.host', { type: 'string' }, '', "listen address ('' = all, IPv4 and IPv6)"),
  spec('probes.checkTimeoutMs', { type: 'ms', positive: true }, 1000, 'time limit of each check'),
  spec('probes.details', { type: 'boolean' }, false, 'check results in probe bodies'),
  spec(
    'probes.readinessUntil',
    { type: 'enum', values: ['shutdown', 'drain'] },
    'shutdown',
    '/readyz turns 503 at',
  ),
  spec('probes.eventLoopLagMs', ms, 0, 'liveness fails above this lag (0: off)'),
  spec('signals', { type: 'signals' }, ['SIGTERM', 'SIGINT'], 'signals that start a shutdown'),
  spec(
    'secondSignal',
    { type: 'enum', values: ['force', 'ignore'] },
    'force',
    'second signal while shutting down',
  ),
  spec('catchErrors', { type: 'boolean' }, true, 'uncaught errors run fatal(error)'),
  spec(
    'prestop.token',
    { type: 'string', secret: true },
    '',
    "token for /prestop from off the pod ('' = loopback only)",
  ),
  spec('exitCodes.clean', { type: 'exit-code' }, 0, 'exit code of a clean shutdown'),
  spec('exitCodes.incomplete', { type: 'exit-code' }, 1, 'deadline, forced closes or failed hook'),
  spec('exitCodes.fatal', { type: 'exit-code' }, 70, 'exit code after fatal(error)'),
];

/** Every option resolved: nothing optional. */
export interface ResolvedSettings {
  readonly gracePeriodSeconds: number;
  readonly preStopSleepSeconds: number;
  readonly safetyMarginMs: number;
  readonly budgetCheck: 'error' | 'warn' | 'off';
  readonly unreadyTimeoutMs: number;
  readonly propagation: Required<PropagationOptions>;
  readonly drain: Required<DrainOptions>;
  readonly cleanupTimeoutMs: number;
  readonly hookTimeoutMs: number;
  readonly fatalTimeoutMs: number;
  readonly managementServer: boolean;
  readonly probes: Required<ProbeOptions>;
  readonly signals: readonly NodeJS.Signals[];
  readonly secondSignal: 'force' | 'ignore';
  readonly catchErrors: boolean;
  readonly exitCodes: Required<ExitCodeOptions>;
  readonly prestop: Required<PrestopOptions>;
}

/** The defaults, as one object. README tables and `--help` are checked against it by a test. */
export const defaults: ResolvedSettings = deepFreeze(
  settingSpecs.reduce<Record<string, unknown>>((out, s) => setPath(out, s.path, s.default), {}),
) as unknown as ResolvedSettings;

const KNOWN_SIGNALS = new Set(['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2']);

/**
 * Resolve settings: explicit option, then `KUBEGRACE_*` environment variable, then default.
 * Throws `ERR_KUBEGRACE_INVALID_OPTION` naming the option (or variable), what was expected and what came.
 */
export function resolveSettings(
  options: KubegraceSettings = {},
  env: Readonly<Record<string, string | undefined>> = {},
  extraKeys: readonly string[] = [],
): ResolvedSettings {
  rejectUnknown(options as Record<string, unknown>, '', new Set(extraKeys));
  const out: Record<string, unknown> = {};
  // Where each value came from, so a check across settings blames what the user actually wrote.
  const sources = new Map<string, { readonly name: string; readonly raw?: string }>();
  for (const s of settingSpecs) {
    const explicit = getPath(options as Record<string, unknown>, s.path);
    let value: unknown;
    if (explicit !== undefined) {
      value = validate(s, explicit, s.path);
      sources.set(s.path, { name: s.path });
    } else if (env[s.env] !== undefined && env[s.env] !== '') {
      const raw: unknown = env[s.env];
      if (typeof raw !== 'string') {
        throw invalidOption(s.env, 'a string, as environment variables are', raw, { secret: isSecret(s) });
      }
      value = validate(s, parseEnv(s, raw), s.env, raw);
      sources.set(s.path, { name: s.env, raw: env[s.env] as string });
    } else {
      value = s.default;
      sources.set(s.path, { name: s.path });
    }
    setPath(out, s.path, value);
  }
  const nameOf = (path: string): string => sources.get(path)?.name ?? path;
  const fail = (path: string, expected: string): never => {
    const source = sources.get(path);
    const secret = isSecret(settingSpecs.find((s) => s.path === path));
    throw invalidOption(nameOf(path), expected, source?.raw ?? getPath(out, path), { secret });
  };
  const resolved = out as unknown as ResolvedSettings;
  const p = resolved.propagation;
  if (p.minMs > p.maxMs) fail('propagation.minMs', `at most ${nameOf('propagation.maxMs')} (${p.maxMs})`);
  if (!isListenHost(resolved.probes.host)) {
    fail('probes.host', "'' (every interface), an IP address or a host name");
  }
  // A token that cannot travel in an HTTP header would lock out every caller, loopback included.
  if (!/^[\x21-\x7e]*$/.test(resolved.prestop.token)) {
    fail('prestop.token', "printable ASCII without spaces ('' = loopback callers only)");
  }
  return deepFreeze(out) as unknown as ResolvedSettings;
}

/**
 * How to name a setting in an error about its value: the option when it was given, else its
 * variable when that was set, else both (the default was in force).
 */
export function settingName(
  path: string,
  options: KubegraceSettings,
  env: Readonly<Record<string, string | undefined>>,
): string {
  const s = settingSpecs.find((spec) => spec.path === path);
  if (s === undefined) return path;
  const source = settingSource(path, options, env);
  if (source === 'option') return path;
  if (source === 'env') return s.env;
  return `${path} (or ${s.env})`;
}

/** Where `resolveSettings` took a setting from: the option, its variable, or the default. */
export function settingSource(
  path: string,
  options: KubegraceSettings,
  env: Readonly<Record<string, string | undefined>>,
): 'option' | 'env' | 'default' {
  if (getPath(options as Record<string, unknown>, path) !== undefined) return 'option';
  const s = settingSpecs.find((spec) => spec.path === path);
  if (s !== undefined && env[s.env] !== undefined && env[s.env] !== '') return 'env';
  return 'default';
}

const HOST_NAME =
  /^(?=.{1,253}\.?$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

/**
 * An IP address (IPv6 without brackets) or a DNS host name. A name whose last label is a number
 * (`1.5`, `10.1`, `0x7f000001`) is not one: the resolver reads it as a legacy IPv4 form (`1.5` binds
 * 1.0.0.5), which is also how the WHATWG URL parser treats a host that ends in a number.
 */
export function isHostAddress(host: string): boolean {
  if (isIP(host) !== 0) return true;
  const last = host.replace(/\.$/, '').split('.').at(-1) ?? '';
  return HOST_NAME.test(host) && !/^(?:\d+|0x[0-9a-f]*)$/i.test(last);
}

function isListenHost(host: string): boolean {
  return host === '' || isHostAddress(host);
}

const EXPECTED: Record<Kind['type'], string> = {
  ms: 'a non-negative integer (ms)',
  seconds: 'a non-negative integer (seconds)',
  port: 'an integer port from 0 to 65535',
  'exit-code': 'an integer exit code from 0 to 255',
  boolean: 'true or false',
  string: 'a string',
  enum: '',
  signals: 'a non-empty list of signal names',
};

/** A secret's value never appears in an error (`received 9 characters (not shown)`). */
function isSecret(s: SettingSpec | undefined): boolean {
  return s?.kind.type === 'string' && s.kind.secret === true;
}

/** The longest delay `setTimeout` can arm; a longer one fires after 1 ms, with a warning. */
export const MAX_TIMER_MS = 2_147_483_647;

function validate(s: SettingSpec, value: unknown, name: string, raw?: string): unknown {
  const shown = raw ?? value;
  const fail = (expected: string): never => {
    throw invalidOption(name, expected, shown, { secret: isSecret(s) });
  };
  // A duration that must be at least 1 (`positive`); every other integer setting starts at 0.
  const positive = (s.kind.type === 'ms' || s.kind.type === 'seconds') && s.kind.positive === true;
  const floor = s.kind.type === 'ms' ? s.kind.min : undefined;
  const durationMin = positive ? 1 : (floor ?? 0);
  const integerIn = (min: number, max: number, tooLarge?: string): number => {
    // Below the minimum, a fraction or not a number at all: one expectation, whichever it was.
    const expected = positive
      ? `a positive integer (${s.kind.type})`
      : floor !== undefined
        ? `an integer of at least ${floor} (${s.kind.type})`
        : EXPECTED[s.kind.type];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min) return fail(expected);
    if (value > max) return fail(tooLarge ?? expected);
    return value;
  };
  switch (s.kind.type) {
    // Every duration ends up in a timer (seconds ones after × 1000): bounded so none overflows.
    case 'ms':
      return integerIn(
        durationMin,
        MAX_TIMER_MS,
        `at most ${MAX_TIMER_MS} (ms; about 24.8 days, the longest timer Node arms)`,
      );
    case 'seconds': {
      const max = Math.floor(MAX_TIMER_MS / 1000);
      return integerIn(
        durationMin,
        max,
        `at most ${max} (seconds; about 24.8 days, the longest timer Node arms)`,
      );
    }
    case 'port':
      return integerIn(0, 65535);
    case 'exit-code':
      return integerIn(0, 255);
    case 'boolean':
      return typeof value === 'boolean' ? value : fail(EXPECTED.boolean);
    case 'string':
      return typeof value === 'string' ? value : fail(EXPECTED.string);
    case 'enum': {
      const values = s.kind.values;
      return typeof value === 'string' && values.includes(value)
        ? value
        : fail(`one of ${values.map((v) => `'${v}'`).join(', ')}`);
    }
    case 'signals': {
      const known = [...KNOWN_SIGNALS].join(', ');
      if (!Array.isArray(value) || value.length === 0) return fail(`a non-empty list of ${known}`);
      // An option names the entry at fault; a variable's text already shows it.
      const bad = (value as unknown[]).findIndex((v) => typeof v !== 'string' || !KNOWN_SIGNALS.has(v));
      if (bad !== -1) {
        if (raw !== undefined) return fail(`a non-empty list of ${known}`);
        throw invalidOption(`${name}[${bad}]`, `one of ${known}`, value[bad]);
      }
      // Listed twice, a signal's listener runs twice: one SIGTERM would count as the second signal
      // and force the exit at once.
      const repeat = (value as string[]).findIndex((v, i) => value.indexOf(v) !== i);
      if (repeat === -1) return Object.freeze([...(value as string[])]);
      const again = `a signal not listed before (listed twice, one ${String(value[repeat])} would count as a second signal and force the exit)`;
      if (raw !== undefined) return fail(`a list without repeats: ${again}`);
      throw invalidOption(`${name}[${repeat}]`, again, value[repeat]);
    }
  }
}

function parseEnv(s: SettingSpec, raw: string): unknown {
  const text = raw.trim();
  switch (s.kind.type) {
    case 'ms':
    case 'seconds':
    case 'port':
    case 'exit-code':
      return /^-?\d+$/.test(text) ? Number(text) : text;
    case 'boolean':
      return text === 'true' || text === '1' ? true : text === 'false' || text === '0' ? false : text;
    case 'signals':
      return text.split(',').map((v) => v.trim());
    // Untrimmed, so the variable refuses the blank or padded token the option refuses.
    case 'string':
      return s.kind.secret === true ? raw : text;
    default:
      return text;
  }
}

/**
 * Options that changed name, with their new one: an old name gets a clear error, not a guess. A Map,
 * as the keys come from the user: an object literal would find `constructor` on Object.prototype.
 */
const RENAMED: ReadonlyMap<string, string> = new Map([['probes.enabled', 'managementServer']]);

function rejectUnknown(value: Record<string, unknown>, prefix: string, extra: ReadonlySet<string>): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    // `prestop: 'the token'` instead of `prestop: { token }`: what came may be the secret itself.
    const secret = prefix !== '' && settingSpecs.some((s) => s.path.startsWith(prefix) && isSecret(s));
    throw invalidOption(prefix === '' ? 'options' : prefix.slice(0, -1), 'an object', value, { secret });
  }
  for (const key of Object.keys(value)) {
    const path = prefix + key;
    if (extra.has(path)) continue;
    const leaf = settingSpecs.some((s) => s.path === path);
    const branch = settingSpecs.some((s) => s.path.startsWith(`${path}.`));
    if (branch && value[key] !== undefined) {
      rejectUnknown(value[key] as Record<string, unknown>, `${path}.`, extra);
    } else if (!leaf && !branch) {
      const renamed = RENAMED.get(path);
      if (renamed !== undefined) {
        throw new KubegraceError(
          'ERR_KUBEGRACE_INVALID_OPTION',
          `${path} was renamed to ${renamed} (CHANGELOG, Unreleased)`,
          { option: path },
        );
      }
      const hint = didYouMean(path, [...optionPaths(), ...extra]);
      throw new KubegraceError(
        'ERR_KUBEGRACE_INVALID_OPTION',
        `${path} is not a kubegrace option${hint === undefined ? '' : `; did you mean ${hint}?`}`,
        { option: path },
      );
    }
  }
}

/** Every option path, nested ones and the objects that hold them (`drain`, `drain.timeoutMs`). */
function optionPaths(): string[] {
  const paths = new Set<string>();
  for (const s of settingSpecs) {
    const keys = s.path.split('.');
    for (let i = 1; i <= keys.length; i++) paths.add(keys.slice(0, i).join('.'));
  }
  return [...paths];
}

/**
 * The known name a misspelt one most likely meant: the same letters in another case
 * (`drain.timeoutMS`), else the nearest within a few edits (`gracePeriodSecond`); undefined when
 * nothing is close enough to be a fair guess.
 */
export function didYouMean(name: string, known: Iterable<string>): string | undefined {
  const candidates = [...known];
  const folded = name.toLowerCase();
  const sameLetters = candidates.find((c) => c.toLowerCase() === folded);
  if (sameLetters !== undefined) return sameLetters;
  const limit = Math.max(1, Math.min(3, Math.floor(name.length / 4)));
  let best: { name: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(folded, candidate.toLowerCase());
    if (distance <= limit && (best === undefined || distance < best.distance))
      best = { name: candidate, distance };
  }
  return best?.name;
}

/** Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps. */
function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3) return Infinity;
  let before: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(
        (previous[j] as number) + 1,
        (current[j - 1] as number) + 1,
        (previous[j - 1] as number) + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, (before[j - 2] as number) + 1);
      }
      current.push(d);
    }
    before = previous;
    previous = current;
  }
  return previous[b.length] as number;
}

function getPath(obj: Record<string, unknown>, path: string): unknown {
  let cur: unknown = obj;
  for (const key of path.split('.')) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): Record<string, unknown> {
  const keys = path.split('.');
  let cur = obj;
  for (const key of keys.slice(0, -1)) {
    cur = (cur[key] ??= {}) as Record<string, unknown>;
  }
  cur[keys[keys.length - 1] as string] = value;
  return obj;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** One term of the shutdown budget, for the start-up check and `kubegrace check`. */
export interface BudgetTerm {
  readonly name: string;
  readonly ms: number;
  readonly option: string;
}

/** The phases' worst case, term by term, against the grace period. */
export function shutdownBudget(settings: ResolvedSettings): {
  readonly terms: readonly BudgetTerm[];
  readonly totalMs: number;
  readonly graceMs: number;
} {
  const p = settings.propagation;
  const terms: BudgetTerm[] = [
    { name: 'preStop sleep', ms: settings.preStopSleepSeconds * 1000, option: 'preStopSleepSeconds' },
    { name: 'unready', ms: settings.unreadyTimeoutMs, option: 'unreadyTimeoutMs' },
    p.strategy === 'fixed'
      ? { name: 'propagation (fixed)', ms: p.delayMs, option: 'propagation.delayMs' }
      : { name: 'propagation max', ms: p.maxMs, option: 'propagation.maxMs' },
    { name: 'drain', ms: settings.drain.timeoutMs, option: 'drain.timeoutMs' },
    { name: 'cleanup', ms: settings.cleanupTimeoutMs, option: 'cleanupTimeoutMs' },
    { name: 'safety margin', ms: settings.safetyMarginMs, option: 'safetyMarginMs' },
  ];
  return {
    terms,
    totalMs: terms.reduce((sum, t) => sum + t.ms, 0),
    graceMs: settings.gracePeriodSeconds * 1000,
  };
}

/** Throws (or returns the message, for `warn`) when the budget does not fit the grace period. */
export function checkBudget(settings: ResolvedSettings): string | undefined {
  if (settings.budgetCheck === 'off') return undefined;
  const { terms, totalMs, graceMs } = shutdownBudget(settings);
  if (totalMs <= graceMs) return undefined;
  const breakdown = terms
    .filter((t) => t.ms > 0)
    .map((t) => `${t.name} ${t.ms} ms (${t.option})`)
    .join(' + ');
  const message =
    `shutdown budget ${totalMs} ms exceeds the grace period ${graceMs} ms ` +
    `(gracePeriodSeconds / KUBEGRACE_GRACE_PERIOD_SECONDS): ${breakdown} = ${totalMs} ms. ` +
    `Raise terminationGracePeriodSeconds to at least ${Math.ceil(totalMs / 1000)} s and set ` +
    `KUBEGRACE_GRACE_PERIOD_SECONDS to match, or shorten the largest terms.`;
  if (settings.budgetCheck === 'warn') return message;
  throw new KubegraceError('ERR_KUBEGRACE_BUDGET_EXCEEDS_GRACE', message);
}
