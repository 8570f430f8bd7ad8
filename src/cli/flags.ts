/**
 * Flag values for the `kubegrace` command: strict parsing with messages that name the flag, what
 * was expected and what came. Generic; `check` and `prestop` can use it too.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Bad command line: printed as is, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

const shown = (raw: string): string => JSON.stringify(raw.length > 40 ? `${raw.slice(0, 40)}…` : raw);

/** `1500`, `1500ms`, `1.5s` → 1500 (milliseconds; a bare number is milliseconds). */
export function durationFlag(flag: string, raw: string, maxMs: number, minMs = 0): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(raw.trim());
  const ms = match ? Math.round(Number(match[1]) * (match[2] === 's' ? 1000 : 1)) : Number.NaN;
  if (!Number.isFinite(ms) || ms < minMs || ms > maxMs) {
    throw new UsageError(
      `--${flag} must be a duration from ${minMs} ms to ${maxMs / 1000} s (e.g. 500, 500ms, 2s), received ${shown(raw)}`,
    );
  }
  return ms;
}

/** An integer; `suffix` (e.g. `s` for seconds) may follow it. */
export function integerFlag(flag: string, raw: string, min: number, max: number, suffix = ''): number {
  const text = raw.trim();
  const digits = suffix !== '' && text.endsWith(suffix) ? text.slice(0, -suffix.length) : text;
  const value = /^\d+$/.test(digits) ? Number(digits) : Number.NaN;
  if (!Number.isInteger(value) || value < min || value > max) {
    const unit = suffix === 's' ? ' (seconds)' : '';
    throw new UsageError(`--${flag} must be an integer from ${min} to ${max}${unit}, received ${shown(raw)}`);
  }
  return value;
}

export function shareFlag(flag: string, raw: string): number {
  const text = raw.trim();
  const percent = text.endsWith('%');
  const value = /^\d+(\.\d+)?%?$/.test(text)
    ? Number(percent ? text.slice(0, -1) : text) / (percent ? 100 : 1)
    : NaN;
  if (!Number.isFinite(value) || value < 0 || value > 1) {
    throw new UsageError(`--${flag} must be a share from 0 to 1 (e.g. 0.1 or 10%), received ${shown(raw)}`);
  }
  return value;
}

export function choiceFlag<T extends string>(flag: string, raw: string, choices: readonly T[]): T {
  if ((choices as readonly string[]).includes(raw)) return raw as T;
  throw new UsageError(`--${flag} must be one of ${choices.join(', ')}, received ${shown(raw)}`);
}

type ParsedFlags<T extends NonNullable<ParseArgsConfig['options']>> = ReturnType<
  typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: false }>
>['values'];

/** A path to write to: not empty, not a flag. */
export function fileFlag(flag: string, raw: string): string {
  if (raw.trim() === '' || raw.startsWith('-')) {
    throw new UsageError(`--${flag} must be a file path, received ${shown(raw)}`);
  }
  return raw;
}

/** `node:util` parseArgs in strict mode, its errors turned into messages that name the flag. */
export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(
  command: string,
  args: readonly string[],
  options: T,
): ParsedFlags<T> {
  try {
    return parseArgs({ args: [...args], options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    const e = error as { code?: string; message?: string };
    const quoted = /'([^']+)'/.exec(e.message ?? '')?.[1] ?? '';
    // Node quotes `--name <value>`, or `-h, --help` for a flag with a short form: name the long one.
    const flag = /--[\w-]+/.exec(quoted)?.[0] ?? quoted.split(' ')[0] ?? quoted;
    const help = `(kubegrace ${command} --help lists the flags)`;
    switch (e.code) {
      case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
        throw new UsageError(`kubegrace ${command}: unknown flag ${flag} ${help}`);
      case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
        const message = e.message ?? '';
        if (/does not take an argument/.test(message)) {
          throw new UsageError(`kubegrace ${command}: ${flag} takes no value ${help}`);
        }
        const dash = /ambiguous/.test(message)
          ? `; for a value starting with '-', write ${flag}=<value>`
          : '';
        throw new UsageError(`kubegrace ${command}: ${flag} needs a value${dash} ${help}`);
      }
      case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
        throw new UsageError(`kubegrace ${command}: unexpected argument ${shown(flag)} ${help}`);
      default:
        throw error;
    }
  }
}
