import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The built bin, as a user runs it. */
function kubegrace(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

describe('kubegrace command', () => {
  it('--help, -h and help print the commands on stdout and exit 0', async () => {
    for (const flag of ['--help', '-h', 'help']) {
      const run = await kubegrace(flag);
      assert.equal(run.code, 0, flag);
      assert.match(run.stdout, /^Usage: kubegrace <command>/, flag);
      assert.match(run.stdout, /\n {2}demo +\S/, flag);
      assert.match(run.stdout, /\n {2}check +\S/, flag);
      assert.equal(run.stderr, '', flag);
    }
  });

  it('--help lists every library setting with its environment variable and default', async () => {
    const { settingSpecs } = await import('../../src/options.js');
    const run = await kubegrace('--help');
    for (const spec of settingSpecs) {
      const shown = Array.isArray(spec.default)
        ? spec.default.join(',')
        : spec.default === ''
          ? "''"
          : String(spec.default);
      assert.match(
        run.stdout,
        new RegExp(`\\n  ${spec.env} +${shown.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n`),
        spec.env,
      );
    }
  });

  it('no command prints the usage on stderr and exits 2', async () => {
    const run = await kubegrace();
    assert.equal(run.code, 2);
    assert.match(run.stderr, /Usage: kubegrace/);
    assert.equal(run.stdout, '');
  });

  it('--version prints the package version', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    for (const flag of ['--version', '-v']) {
      const run = await kubegrace(flag);
      assert.equal(run.code, 0);
      assert.equal(run.stdout, `${version}\n`);
    }
  });

  it('help <command> prints that command’s own help, as <command> --help does', async () => {
    for (const command of ['check', 'demo', 'prestop']) {
      const own = await kubegrace(command, '--help');
      const viaHelp = await kubegrace('help', command);
      assert.equal(viaHelp.code, 0, command);
      assert.match(viaHelp.stdout, new RegExp(`^Usage: kubegrace ${command} `), command);
      assert.equal(viaHelp.stdout, own.stdout, command);
      assert.equal(viaHelp.stderr, '', command);
    }
    const unknown = await kubegrace('help', 'deploy');
    assert.equal(unknown.code, 2);
    assert.match(
      unknown.stderr,
      /^kubegrace help: expected one command \(check, demo, prestop\), received "deploy"/,
    );
    assert.equal(unknown.stdout, '');
  });

  // One form for every subcommand: `kubegrace <command>: <the flag, what was expected, what came>
  // (see kubegrace <command> --help)`, exit code 2, nothing on stdout.
  const usageErrors: readonly [args: readonly string[], problem: RegExp][] = [
    [
      ['check', '--bogus', 'x.yaml'],
      /unknown flag --bogus; an argument starting with '-' goes after --, as in -- --bogus/,
    ],
    [['check', '--format', 'xml', 'x.yaml'], /--format must be one of human, json, received "xml"/],
    [['check', '--format'], /--format needs a value, received none/],
    [['check', '--all=yes', 'x.yaml'], /--all takes no value, received "yes"/],
    [
      ['check'],
      /no files given; expected FILE, DIR or - \(standard input\), as in helm template \. \| kubegrace check -/,
    ],
    [['check', '-', '-'], /- \(standard input\) can be given only once, received it 2 times/],
    [['prestop', '--bogus'], /unknown flag --bogus/],
    [['prestop', '--port', 'abc'], /--port must be an integer from 1 to 65535, received "abc"/],
    [
      ['prestop', '--host', 'not a host'],
      /--host must be an IP address or a host name, received "not a host"/,
    ],
    [['prestop', '--timeout', 'soon'], /--timeout must be a duration from 1 ms to 600 s .*, received "soon"/],
    [['prestop', '--help=yes'], /--help takes no value, received "yes"/],
    [['prestop', 'now'], /unexpected argument "now": this command takes flags only/],
    [['demo', '--bogus'], /unknown flag --bogus/],
    [['demo', '--lag', 'abc'], /--lag must be a duration from 0 ms to 120 s .*, received "abc"/],
    [['demo', '--traffic', 'foo'], /--traffic must be one of steady, .*, received "foo"/],
    [['demo', '--replicas', '0'], /--replicas must be an integer from 1 to 5, received "0"/],
    [['demo', '--compare', 'fancy'], /--compare must be one of naive, received "fancy"/],
  ];
  for (const [args, problem] of usageErrors) {
    it(`kubegrace ${args.join(' ')}: a usage error in the one form, exit 2`, async () => {
      const [command] = args;
      const run = await kubegrace(...args);
      assert.equal(run.code, 2);
      assert.equal(run.stdout, '');
      const lines = run.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, run.stderr);
      const [line = ''] = lines;
      const form = new RegExp(`^kubegrace ${command}: (.+) \\(see kubegrace ${command} --help\\)$`);
      const inner = form.exec(line)?.[1];
      assert.ok(inner !== undefined, `not in the form: ${line}`);
      assert.match(inner, new RegExp(`^(?:${problem.source})$`));
    });
  }

  it('an unknown command or flag exits 2 and names it', async () => {
    const command = await kubegrace('deploy');
    assert.equal(command.code, 2);
    assert.match(command.stderr, /unknown command "deploy"/);
    // Names Object.prototype holds are commands no more than any other.
    for (const args of [['constructor'], ['help', 'toString']]) {
      const inherited = await kubegrace(...args);
      assert.equal(inherited.code, 2, args.join(' '));
      assert.match(inherited.stderr, /unknown command "constructor"|received "toString"/);
    }
    const flag = await kubegrace('--force');
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /unknown flag --force/);
    const demoFlag = await kubegrace('demo', '--lagg', '2s');
    assert.equal(demoFlag.code, 2);
    assert.match(demoFlag.stderr, /kubegrace demo: unknown flag --lagg/);
    assert.equal(demoFlag.stdout, '');
  });

  it('demo rejects a missing value, a value on a boolean flag, and positional arguments', async () => {
    const missing = await kubegrace('demo', '--lag');
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--lag needs a value/);
    const dashed = await kubegrace('demo', '--lag', '-5');
    assert.equal(dashed.code, 2);
    assert.match(dashed.stderr, /--lag needs a value; for a value starting with '-', write --lag=<value>/);
    const extra = await kubegrace('demo', '--json=yes');
    assert.equal(extra.code, 2);
    assert.match(extra.stderr, /--json takes no value/);
    const positional = await kubegrace('demo', 'now');
    assert.equal(positional.code, 2);
    assert.match(positional.stderr, /unexpected argument "now"/);
  });

  it('demo --help lists every flag and exits 0', async () => {
    const run = await kubegrace('demo', '--help');
    assert.equal(run.code, 0);
    for (const flag of [
      '--lag',
      '--request',
      '--long',
      '--long-share',
      '--concurrency',
      '--new-conns',
      '--strategy',
      '--quiet-period',
      '--delay',
      '--grace',
      '--replicas',
      '--warmup',
      '--tail',
      '--compare',
      '--report',
      '--json',
    ]) {
      assert.match(run.stdout, new RegExp(`\\n {2}${flag} `), flag);
    }
    assert.match(run.stdout, /--quiet-period <duration> .*default 1000ms/);
  });

  const badValues: readonly [flag: string, value: string, expected: RegExp][] = [
    ['lag', 'soon', /duration/],
    ['lag', '-5', /duration/],
    ['lag', '3m', /duration/],
    ['request', '1h', /duration/],
    ['long', 'x', /duration/],
    ['long-share', '1.5', /share from 0 to 1/],
    ['long-share', '150%', /share from 0 to 1/],
    ['concurrency', '0', /integer from 1 to 512/],
    ['concurrency', '2.5', /integer from 1 to 512/],
    ['new-conns', 'many', /integer from 0 to 1000/],
    ['strategy', 'eager', /one of adaptive, fixed/],
    ['quiet-period', '61s', /duration/],
    ['delay', 'five', /duration/],
    ['grace', '0', /integer from 1 to 600 \(seconds\)/],
    ['grace', '2.5s', /integer from 1 to 600 \(seconds\)/],
    ['replicas', '9', /integer from 1 to 5/],
    ['warmup', '1d', /duration/],
    ['tail', 'later', /duration/],
    ['compare', 'terminus', /one of naive/],
    ['report', '', /a file path/],
  ];
  for (const [flag, value, expected] of badValues) {
    it(`demo --${flag} ${value} is rejected naming the flag, what was expected and what came`, async () => {
      // `--flag=value` so that values starting with '-' reach the flag's own check.
      const run = await kubegrace('demo', `--${flag}=${value}`, '--json');
      assert.equal(run.code, 2);
      assert.match(run.stderr, new RegExp(`--${flag} must be`));
      assert.match(run.stderr, expected);
      assert.ok(run.stderr.includes(`received ${JSON.stringify(value)}`), run.stderr);
      assert.equal(run.stdout, '', 'nothing ran');
    });
  }
});
