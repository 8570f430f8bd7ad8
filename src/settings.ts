/**
 * The one way an integration reads its settings (`kubegrace/kubernetes`, `kubegrace/metrics`, the
 * registries): the explicit option first, else its environment variable (when it has one), else the
 * caller's default. Errors are `ERR_KUBEGRACE_INVALID_OPTION` with the option or variable at fault
 * as data (`error.option`) and in the message, with what was expected and what came; a secret's value
 * is never shown. The core's options are a table of the same kinds (`options.ts`), validated by the
 * same rules.
 */
import { invalidOption, KubegraceError } from './errors.js';
import { didYouMean, MAX_TIMER_MS } from './options.js';

export type Env = Readonly<Record<string, string | undefined>>;

/** A setting's environment variable; `undefined` for options that have none. */
type Variable = string | undefined;

export interface SettingReader {
  readonly env: Env;
  string(option: string, value: unknown, variable: Variable): string | undefined;
  /** An `http:` or `https:` URL; with `allowCredentials` false, one without `user:password@`. */
  url(option: string, value: unknown, variable: Variable, allowCredentials?: boolean): URL | undefined;
  integer(option: string, value: unknown, variable: Variable, min: number, max?: number): number | undefined;
  /** A duration in ms that a timer can hold: an integer from `min` to MAX_TIMER_MS. */
  ms(option: string, value: unknown, variable: Variable, min?: number): number | undefined;
  boolean(option: string, value: unknown, variable: Variable): boolean | undefined;
  /** A list; from the environment, comma-separated. */
  list(option: string, value: unknown, variable: Variable): readonly string[] | undefined;
  oneOf<T extends string | boolean>(
    option: string,
    value: unknown,
    variable: Variable,
    values: readonly T[],
  ): T | undefined;
  /** An object with these methods (a logger, a client); never read from the environment. */
  withMethods<T>(option: string, value: unknown, methods: readonly string[], expected: string): T | undefined;
  /**
   * A plain object (options, an environment); never read from the environment. With `keys`, a key
   * not among them is refused, with a "did you mean" when one is close: a misspelt option would
   * otherwise be ignored without a word.
   */
  object<T>(option: string, value: unknown, expected: string, keys?: readonly string[]): T | undefined;
  /** Fails naming both ways of setting it when nothing set a required value. */
  required<T>(value: T | undefined, option: string, variable: Variable, expected: string): T;
}

const MAX_INT = 2_147_483_647;

/** A number written as text is read as one only from a variable; an option takes the number itself. */
function fromText(
  got: { readonly value: unknown; readonly name: string },
  variable: string | undefined,
): unknown {
  return got.name === variable && typeof got.value === 'string' && /^-?\d+$/.test(got.value)
    ? Number(got.value)
    : got.value;
}
/** Seconds that still fit a Node timer once multiplied by 1000 (heartbeats, TTLs). */
const MAX_SECONDS = 2_147_483;

export function createSettingReader(env: Env): SettingReader {
  /** The value to validate and the name to blame: the option when given, else the variable. */
  function pick(
    option: string,
    value: unknown,
    variable: Variable,
  ): { value: unknown; name: string } | undefined {
    if (value !== undefined) return { value, name: option };
    if (variable === undefined) return undefined;
    const raw = env[variable];
    if (raw === undefined || raw.trim() === '') return undefined;
    return { value: raw.trim(), name: variable };
  }

  return {
    env,
    string(option, value, variable) {
      const got = pick(option, value, variable);
      if (!got) return undefined;
      if (typeof got.value !== 'string' || got.value.trim() === '') {
        throw invalidOption(got.name, 'a non-empty string', got.value);
      }
      return got.value;
    },
    url(option, value, variable, allowCredentials = true) {
      const got = pick(option, value, variable);
      if (!got) return undefined;
      const expected = 'an http:// or https:// URL';
      if (typeof got.value !== 'string' && !(got.value instanceof URL))
        throw invalidOption(got.name, expected, got.value);
      let url: URL;
      try {
        url = new URL(String(got.value));
      } catch {
        throw invalidOption(got.name, expected, got.value);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:')
        throw invalidOption(got.name, expected, got.value);
      // fetch() refuses URLs with credentials, and its error would carry the password.
      if (!allowCredentials && (url.username !== '' || url.password !== '')) {
        throw invalidOption(
          got.name,
          `${expected} without user:password@ (give the credentials as the token)`,
          got.value,
        );
      }
      return url;
    },
    ms(option, value, variable, min = 0) {
      const got = pick(option, value, variable);
      if (!got) return undefined;
      const parsed = fromText(got, variable);
      if (typeof parsed !== 'number' || !Number.isInteger(parsed) || parsed < min || parsed > MAX_TIMER_MS) {
        throw invalidOption(got.name, `an integer from ${min} to ${MAX_TIMER_MS} (ms)`, got.value);
      }
      return parsed;
    },
    integer(option, value, variable, min, max = option.endsWith('Seconds') ? MAX_SECONDS : MAX_INT) {
      const got = pick(option, value, variable);
      if (!got) return undefined;
      const parsed = fromText(got, variable);
      if (typeof parsed !== 'number' || !Number.isInteger(parsed) || parsed < min || parsed > max) {
        const range = max === MAX_INT ? `at least ${min}` : `from ${min} to ${max}`;
        throw invalidOption(got.name, `an integer ${range}`, got.value);
      }
      return parsed;
    },
    boolean(option, value, variable) {
      const got = pick(option, value, variable);
      if (!got) return undefined;
      const v = got.value;
      if (typeof v === 'boolean') return v;
      // Text is how a variable says it; an option takes the boolean itself.
      if (got.name === variable) {
        if (v === 'true' || v === '1') return true;
        if (v === 'false' || v === '0') return false;
      }
      throw invalidOption(got.name, 'true or false', v);
    },
    list(option, value, variable) {
      const got = pick(option, value, variable);
      if (!got) return undefined;
      const items =
        typeof got.value === 'string' && got.name === variable
          ? got.value
              .split(',')
              .map((s) => s.trim())
              .filter((s) => s !== '')
          : got.value;
      if (
        !Array.isArray(items) ||
        items.length === 0 ||
        !items.every((s) => typeof s === 'string' && s !== '')
      ) {
        throw invalidOption(got.name, 'a non-empty list of strings', got.value);
      }
      return Object.freeze([...(items as string[])]);
    },
    oneOf(option, value, variable, values) {
      const got = pick(option, value, variable);
      if (!got) return undefined;
      // From the environment, 'true' and 'false' are the booleans when those are allowed.
      const v =
        got.name === variable &&
        values.includes(true as never) &&
        (got.value === 'true' || got.value === 'false')
          ? got.value === 'true'
          : got.value;
      if (!(values as readonly unknown[]).includes(v)) {
        const shown = values.map((x) => (typeof x === 'string' ? `'${x}'` : String(x)));
        throw invalidOption(got.name, `one of ${shown.join(', ')}`, got.value);
      }
      return v as (typeof values)[number];
    },
    withMethods<T>(option: string, value: unknown, methods: readonly string[], expected: string) {
      if (value === undefined) return undefined;
      const ok =
        typeof value === 'object' &&
        value !== null &&
        methods.every((m) => typeof (value as Record<string, unknown>)[m] === 'function');
      if (!ok) throw invalidOption(option, expected, value);
      return value as T;
    },
    object<T>(option: string, value: unknown, expected: string, keys?: readonly string[]) {
      if (value === undefined) return undefined;
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw invalidOption(option, expected, value);
      }
      if (keys !== undefined) {
        for (const key of Object.keys(value)) {
          if (keys.includes(key)) continue;
          const hint = didYouMean(key, keys);
          throw new KubegraceError(
            'ERR_KUBEGRACE_INVALID_OPTION',
            `${option}: unknown option ${JSON.stringify(key)}` +
              (hint === undefined ? '' : ` (did you mean ${hint}?)`) +
              `; the options are ${keys.join(', ')}`,
            { option: `${option}.${key}` },
          );
        }
      }
      return value as T;
    },
    required(value, option, variable, expected) {
      if (value === undefined) {
        throw invalidOption(
          variable === undefined ? option : `${option} (or ${variable})`,
          expected,
          undefined,
        );
      }
      return value;
    },
  };
}
