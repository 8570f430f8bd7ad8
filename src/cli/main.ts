#!/usr/bin/env node
/** The `kubegrace` command. Each subcommand returns its exit code; bad usage is exit code 2. */
import { readFileSync } from 'node:fs';
import { settingSpecs } from '../options.js';
import type { CommandIo } from './demo/command.js';
import { UsageError } from './flags.js';
import { killAllPods } from './demo/pod.js';

interface Command {
  readonly summary: string;
  run(args: readonly string[], io: CommandIo): Promise<number>;
}

// Each command's code loads only when it runs: `--version` should not parse YAML or spawn anything.
const commands: Readonly<Record<string, Command>> = {
  check: {
    summary: 'shutdown timing of manifests, Helm output and systemd units, before they ship',
    run: async (args, io) => (await import('./check.js')).checkCommand(args, io),
  },
  demo: {
    summary: 'rolling-restart demo: kubegrace vs a plain server.close() service',
    run: async (args, io) => (await import('./demo/command.js')).demoCommand(args, io),
  },
  prestop: {
    summary: 'start the shutdown from a preStop exec hook (calls /prestop on loopback)',
    run: async (args, io) => (await import('./prestop.js')).prestopCommand(args, io),
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length)) + 2;
  return [
    'Usage: kubegrace <command> [flags]',
    '',
    'Commands:',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)} ${c.summary}`),
    `  ${'help'.padEnd(width)} this text, or a command's: kubegrace help <command> (as kubegrace <command> --help)`,
    '',
    'Flags:',
    '  -h, --help     this text',
    '  -v, --version  print the version',
    '',
    'Library settings (environment variable, default; an option in createKubegrace() wins):',
    ...settingSpecs.map((s) => `  ${s.env.padEnd(envWidth)} ${shownDefault(s.default)}`),
  ].join('\n');
}

const envWidth = Math.max(...settingSpecs.map((s) => s.env.length)) + 2;

function shownDefault(value: unknown): string {
  if (Array.isArray(value)) return value.join(',');
  return value === '' ? "''" : String(value);
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

async function main(argv: readonly string[], io: CommandIo): Promise<number> {
  const [first, ...rest] = argv;
  // `kubegrace help check` is `kubegrace check --help`.
  if (first === 'help' && rest.length > 0) {
    const [name, ...extra] = rest;
    const command = name === undefined || !Object.hasOwn(commands, name) ? undefined : commands[name];
    if (!command || extra.length > 0) {
      const names = Object.keys(commands).join(', ');
      throw new UsageError(
        `kubegrace help: expected one command (${names}), received ${rest.map((a) => JSON.stringify(a)).join(' ')} (see kubegrace --help)`,
      );
    }
    return command.run(['--help'], io);
  }
  if (first === undefined || first === 'help' || first === '--help' || first === '-h') {
    (first === undefined ? io.err : io.out)(usage());
    return first === undefined ? 2 : 0;
  }
  if (first === '--version' || first === '-v') {
    io.out(version());
    return 0;
  }
  if (first.startsWith('-'))
    throw new UsageError(`kubegrace: unknown flag ${first} (kubegrace --help lists the commands)`);
  const command = Object.hasOwn(commands, first) ? commands[first] : undefined;
  if (!command)
    throw new UsageError(
      `kubegrace: unknown command ${JSON.stringify(first)} (kubegrace --help lists the commands)`,
    );
  return command.run(rest, io);
}

const io: CommandIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

// Ctrl-C or a kill of the command takes its child services with it.
for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  process.once(signal, () => {
    killAllPods();
    process.exit(code);
  });
}

try {
  process.exitCode = await main(process.argv.slice(2), io);
} catch (error) {
  if (error instanceof UsageError) {
    io.err(error.message);
    process.exitCode = 2;
  } else {
    io.err(`kubegrace: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  }
} finally {
  killAllPods();
}
