/**
 * Reads registry settings: the explicit option first, else its `KUBEGRACE_REGISTRY_*` variable, else
 * the caller's default. Errors name where the bad value came from (the option or the variable), what
 * was expected and what came, like the core resolver in `options.ts`.
 */
import { invalidOption } from '../errors.js';

export type Env = Readonly<Record<string, string | undefined>>;

export interface SettingReader {
  readonly env: Env;
  string(option: string, value: unknown, variable: string): string | undefined;
  /** An `http:` or `https:` URL; with `allowCredentials` false, one without `user:password@`. */
  url(option: string, value: unknown, variable: string, allowCredentials?: boolean): URL | undefined;
  integer(option: string, value: unknown, variable: string, min: number, max?: number): number | undefined;
  boolean(option: string, value: unknown, variable: string): boolean | undefined;
  /** A list; from the environment, comma-separated. */
  list(option: string, value: unknown, variable: string): readonly string[] | undefined;
  oneOf<T extends string>(
    option: string,
    value: unknown,
    variable: string,
    values: readonly T[],
  ): T | undefined;
  /** Fails naming both ways of setting it when nothing set a required value. */
  required<T>(value: T | undefined, option: string, variable: string, expected: string): T;
}

const MAX_INT = 2_147_483_647;
/** Seconds that still fit a Node timer once multiplied by 1000 (heartbeats, TTLs). */
const MAX_SECONDS = 2_147_483;

export function createSettingReader(env: Env): SettingReader {
  /** The value to validate and the name to blame: the option when given, else the variable. */
  function pick(
    option: string,
    value: unknown,
    variable: string,
  ): { value: unknown; name: string } | undefined {
    if (value !== undefined) return { value, name: option };
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
    integer(option, value, variable, min, max = option.endsWith('Seconds') ? MAX_SECONDS : MAX_INT) {
      const got = pick(option, value, variable);
      if (!got) return undefined;
      const parsed =
        typeof got.value === 'string' && /^-?\d+$/.test(got.value) ? Number(got.value) : got.value;
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
      if (v === 'true' || v === '1') return true;
      if (v === 'false' || v === '0') return false;
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
      if (typeof got.value !== 'string' || !(values as readonly string[]).includes(got.value)) {
        throw invalidOption(got.name, `one of ${values.map((v) => `'${v}'`).join(', ')}`, got.value);
      }
      return got.value as (typeof values)[number];
    },
    required(value, option, variable, expected) {
      if (value === undefined) throw invalidOption(`${option} (or ${variable})`, expected, undefined);
      return value;
    },
  };
}
