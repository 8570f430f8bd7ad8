/**
 * Flag values for the `kubegrace` command: strict parsing with messages that name the flag, what
 * was expected and what came, in one form for every subcommand (`demo`, `check`, `prestop`).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/**
 * Bad command line: printed as is, exit code 2. With a `command`, the message takes the one form every
 * subcommand uses: `kubegrace <command>: <problem> (see kubegrace <command> --help)`; a benchmark,
 * an npm script, says `bench:<name>: <problem> (see npm run bench:<name> -- --help)`.
 */
export class UsageError extends Error {
  /** The subcommand the message names; unset for a bare problem (`--port must be …`) not yet placed. */
  readonly command: string | undefined;
  constructor(problem: string, command?: string) {
    super(command === undefined ? problem : usageText(command, problem));
    this.name = 'UsageError';
    this.command = command;
  }
}

/**
 * Runs a subcommand's argument checks: a bare UsageError from them (the value checks below do not
 * know their command) comes out in the command's form.
 */
export function inCommand<T>(command: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof UsageError && error.command === undefined)
      throw new UsageError(error.message, command);
    throw error;
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
  return parseCommandLine(command, args, options, false).values;
}

/** As parseFlags, for a command that also takes arguments (`kubegrace check FILE...`). */
export function parseFlagsAndArguments<T extends NonNullable<ParseArgsConfig['options']>>(
  command: string,
  args: readonly string[],
  options: T,
): { values: ParsedFlags<T>; positionals: string[] } {
  return parseCommandLine(command, args, options, true);
}

function parseCommandLine<T extends NonNullable<ParseArgsConfig['options']>>(
  command: string,
  args: readonly string[],
  options: T,
  allowPositionals: boolean,
): { values: ParsedFlags<T>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: [...args], options, strict: true, allowPositionals });
    return { values, positionals };
  } catch (error) {
    const e = error as { code?: string; message?: string };
    const quoted = /'([^']+)'/.exec(e.message ?? '')?.[1] ?? '';
    // Node quotes `--name <value>`, or `-h, --help` for a flag with a short form: name the long one.
    const flag = /--[\w-]+/.exec(quoted)?.[0] ?? quoted.split(' ')[0] ?? quoted;
    switch (e.code) {
      case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
        // Node's own text suggests `--` for an argument that starts with '-': keep that where arguments exist.
        const dash = allowPositionals
          ? `; an argument starting with '-' goes after --, as in -- ${flag}`
          : '';
        throw new UsageError(`unknown flag ${flag}${dash}`, command);
      }
      case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
        const message = e.message ?? '';
        if (/does not take an argument/.test(message)) {
          const given = args.find((a) => a.startsWith(`${flag}=`));
          const received = given === undefined ? '' : `, received ${shown(given.slice(flag.length + 1))}`;
          throw new UsageError(`${flag} takes no value${received}`, command);
        }
        const dash = /ambiguous/.test(message)
          ? `; for a value starting with '-', write ${flag}=<value>`
          : ', received none';
        throw new UsageError(`${flag} needs a value${dash}`, command);
      }
      case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
        throw new UsageError(`unexpected argument ${shown(flag)}: this command takes flags only`, command);
      default:
        throw error;
    }
  }
}

function usageText(command: string, problem: string): string {
  return command.startsWith('bench:')
    ? `${command}: ${problem} (see npm run ${command} -- --help)`
    : `kubegrace ${command}: ${problem} (see kubegrace ${command} --help)`;
}
