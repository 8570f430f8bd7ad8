/**
 * `kubegrace check` over the fixtures: every good manifest passes, every bad one (each seeded with
 * one mistake) is flagged with exactly that mistake and its fix, and exits 1 for CI.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkCommand, checkHelp, runCheck } from '../../src/cli/check.js';
import { parseTimespan } from '../../src/cli/check-sources.js';

const fixture = (path: string): string =>
  fileURLToPath(new URL(`../fixtures/manifests/${path}`, import.meta.url));

async function run(args: string[], stdin?: string): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await checkCommand(args, {
    out: (line) => out.push(line),
    err: (line) => err.push(line),
    stdin: Readable.from(stdin === undefined ? [] : [stdin]),
  });
  return { code, out, err };
}

/** One Deployment with a kubegrace container; `extra` lines go under the container (10 spaces in). */
const deployment = (name: string, extra: readonly string[] = []): string =>
  [
    'apiVersion: apps/v1',
    'kind: Deployment',
    `metadata: {name: ${name}}`,
    'spec:',
    '  template:',
    '    spec:',
    '      containers:',
    '        - name: app',
    '          image: web',
    '          env: [{name: KUBEGRACE_GRACE_PERIOD_SECONDS, value: "30"}]',
    '          readinessProbe: {httpGet: {path: /readyz, port: 9000}}',
    ...extra.map((line) => `          ${line}`),
    '',
  ].join('\n');

const good = [
  'deployment.yaml',
  'helm-template.yaml',
  'list-and-cronjob.yaml',
  'pod-exec-sleep.yaml',
  'web.service',
];

interface BadCase {
  readonly file: string;
  readonly code: string;
  readonly message: RegExp;
  readonly fix: RegExp;
  /** file:line where it is reported. */
  readonly line: number;
}

const bad: BadCase[] = [
  {
    file: 'liveness-on-readyz.yaml',
    code: 'liveness-on-readyz',
    message: /^livenessProbe points at \/readyz: readiness fails on purpose during a shutdown/,
    fix: /^point livenessProbe\.httpGet\.path at \/livez$/,
    line: 16,
  },
  {
    file: 'readiness-on-livez.yaml',
    code: 'readiness-on-livez',
    message: /^readinessProbe points at \/livez: \/livez stays 200 while draining/,
    fix: /^point readinessProbe\.httpGet\.path at \/readyz$/,
    line: 16,
  },
  {
    file: 'grpc-liveness-on-readiness.yaml',
    code: 'grpc-liveness-on-readiness',
    message:
      /^livenessProbe asks gRPC health service "shop\.Orders", the readiness probe's service: it turns NOT_SERVING on purpose during a shutdown/,
    fix: /^set livenessProbe\.grpc\.service to "liveness"/,
    line: 16,
  },
  {
    file: 'missing-readiness-probe.yaml',
    code: 'missing-readiness-probe',
    message: /^no readinessProbe: the pod counts as ready before it listens/,
    fix: /^add readinessProbe: \{ httpGet: \{ path: \/readyz, port: 9000 \}/,
    line: 16,
  },
  {
    file: 'budget-exceeds-grace.yaml',
    code: 'budget-exceeds-grace',
    message:
      /^shutdown budget 48 s exceeds terminationGracePeriodSeconds 30 s: unready 2 s \(unreadyTimeoutMs \/ KUBEGRACE_UNREADY_TIMEOUT_MS\) \+ propagation max 10 s .* \+ drain 30 s \(drain\.timeoutMs \/ KUBEGRACE_DRAIN_TIMEOUT_MS\) \+ cleanup 5 s .* \+ safety margin 1 s .* = 48 s$/,
    fix: /^raise terminationGracePeriodSeconds to at least 48 s \(and KUBEGRACE_GRACE_PERIOD_SECONDS to match\), or shorten the largest terms \(drain 30 s: KUBEGRACE_DRAIN_TIMEOUT_MS\)$/,
    line: 16,
  },
  {
    file: 'propagation-exceeds-grace.yaml',
    code: 'propagation-exceeds-grace',
    message:
      /^the propagation wait does not fit: preStop sleep 25 s \(lifecycle\.preStop\.sleep\.seconds\) \+ unready 2 s .* \+ propagation max 10 s .* \+ safety margin 1 s .* = 38 s > terminationGracePeriodSeconds 30 s; the pod is killed while it still waits/,
    fix: /^raise terminationGracePeriodSeconds to at least 53 s .*, or shorten the preStop sleep or KUBEGRACE_PROPAGATION_MAX_MS$/,
    line: 16,
  },
  {
    file: 'grace-period-mismatch.yaml',
    code: 'grace-period-mismatch',
    message:
      /^KUBEGRACE_GRACE_PERIOD_SECONDS is 60 but terminationGracePeriodSeconds is 30 s: kubegrace plans a 60 s shutdown and is killed after 30 s$/,
    fix: /^set KUBEGRACE_GRACE_PERIOD_SECONDS to "30", the value of terminationGracePeriodSeconds$/,
    line: 16,
  },
  {
    file: 'grace-period-unset.yaml',
    code: 'grace-period-unset',
    message:
      /^KUBEGRACE_GRACE_PERIOD_SECONDS is not set: kubegrace assumes 30 s, but terminationGracePeriodSeconds is 20 s, so without API access it is killed mid-shutdown$/,
    fix: /^set KUBEGRACE_GRACE_PERIOD_SECONDS to "20"/,
    line: 16,
  },
  {
    file: 'prestop-sleep-mismatch.yaml',
    code: 'prestop-sleep-mismatch',
    message:
      /^KUBEGRACE_PRE_STOP_SLEEP_SECONDS is 3 but the preStop hook sleeps 5 s \(lifecycle\.preStop\.exec\.command\)$/,
    fix: /^set KUBEGRACE_PRE_STOP_SLEEP_SECONDS to "5"$/,
    line: 16,
  },
  {
    file: 'invalid-setting.yaml',
    code: 'invalid-setting',
    message: /^KUBEGRACE_DRAIN_TIMEOUT_MS must be a non-negative integer \(ms\), received "10s"$/,
    fix: /^correct KUBEGRACE_DRAIN_TIMEOUT_MS \(kubegrace fails to start with it\); the budget below uses its default, 10000$/,
    line: 16,
  },
  {
    file: 'helm-budget-exceeds-grace.yaml',
    code: 'budget-exceeds-grace',
    message: /^shutdown budget 63 s exceeds terminationGracePeriodSeconds 30 s: .*drain 45 s/,
    fix: /^raise terminationGracePeriodSeconds to at least 63 s/,
    line: 29,
  },
  {
    file: 'timeout-stop.service',
    code: 'budget-exceeds-grace',
    message: /^shutdown budget 28 s exceeds TimeoutStopSec 20 s: unready 2 s .* = 28 s$/,
    fix: /^raise TimeoutStopSec to at least 28 s/,
    line: 8,
  },
  {
    file: 'grace-period-mismatch.service',
    code: 'grace-period-mismatch',
    message:
      /^KUBEGRACE_GRACE_PERIOD_SECONDS is 30 but TimeoutStopSec is 90 s: kubegrace leaves after 30 s of the 90 s it has$/,
    fix: /^set KUBEGRACE_GRACE_PERIOD_SECONDS to "90", the value of TimeoutStopSec$/,
    line: 5,
  },
];

describe('kubegrace check: good manifests pass', () => {
  for (const file of good) {
    it(file, async () => {
      const result = await runCheck([fixture(`good/${file}`)]);
      const findings = result.containers.flatMap((c) =>
        c.findings.map((f) => `${c.name}/${c.container}: ${f.code}: ${f.message}`),
      );
      assert.deepEqual(findings, [], 'no findings at all');
      assert.deepEqual(result.problems, []);
      assert.ok(result.containers.length > 0, 'something was checked');
      const { code } = await run([fixture(`good/${file}`)]);
      assert.equal(code, 0);
    });
  }

  it('checks only the containers that use kubegrace, and says which workloads it skipped', async () => {
    const result = await runCheck([fixture('good/helm-template.yaml')]);
    assert.deepEqual(
      result.containers.map((c) => `${c.kind} ${c.name}/${c.container} ${c.location.source ?? ''}`),
      [
        'StatefulSet shop-api/api shop/templates/statefulset.yaml',
        'Job shop-api-migrate/migrate shop/templates/migrate-job.yaml',
      ],
    );
    const api = result.containers[0];
    assert.equal(
      api?.timing.totalMs,
      58_000,
      'the container’s KUBEGRACE_DRAIN_TIMEOUT_MS and its exec sleep 10 count',
    );
    assert.equal(api?.timing.graceMs, 60_000);
    const plain = await runCheck(['-'], {
      stdin: Readable.from([
        'kind: Deployment\nmetadata: {name: redis}\nspec:\n  template:\n    spec:\n      containers: [{name: redis, image: redis}]\n',
      ]),
    });
    assert.equal(plain.containers.length, 0);
    assert.match(plain.skipped[0]?.reason ?? '', /^no container uses kubegrace .*; --all checks it anyway$/);
  });
  it('an exec preStop of unknown length is noted; `kubegrace prestop` (returns at once) is not', async () => {
    const manifest = (command: string[]): string =>
      deployment('web', [`lifecycle: {preStop: {exec: {command: ${JSON.stringify(command)}}}}`]);
    const codes = async (command: string[]): Promise<string[]> => {
      const result = await runCheck(['-'], { stdin: Readable.from([manifest(command)]) });
      assert.equal(result.containers.length, 1);
      return (result.containers[0]?.findings ?? []).map((f) => f.code);
    };
    assert.deepEqual(await codes(['/app/drain.sh']), ['prestop-unknown-duration']);
    assert.deepEqual(await codes(['sh', '-c', 'curl -s localhost:9000/prestop']), [
      'prestop-unknown-duration',
    ]);
    assert.deepEqual(await codes(['kubegrace', 'prestop']), []);
    assert.deepEqual(await codes(['npx', 'kubegrace', 'prestop', '--port', '9000']), []);
    assert.deepEqual(await codes(['/app/node_modules/.bin/kubegrace', 'prestop']), []);
    assert.deepEqual(await codes(['kubegrace-prestop-wrapper']), ['prestop-unknown-duration']);
  });
});

describe('kubegrace check: each seeded mistake is flagged with its fix', () => {
  for (const c of bad) {
    it(`${c.file} → ${c.code}`, async () => {
      const path = fixture(`bad/${c.file}`);
      const result = await runCheck([path]);
      const errors = result.containers.flatMap((r) =>
        r.findings.filter((f) => f.severity === 'error').map((f) => ({ ...f, report: r })),
      );
      assert.equal(
        errors.length,
        1,
        `exactly the seeded mistake, got: ${errors.map((e) => e.code).join(', ')}`,
      );
      const [finding] = errors;
      assert.equal(finding?.code, c.code);
      assert.match(finding?.message ?? '', c.message);
      assert.match(finding?.fix ?? '', c.fix);
      assert.equal(
        finding?.report.location.line,
        c.line,
        'points at the container (or the TimeoutStopSec line)',
      );

      const { code, out } = await run([path]);
      assert.equal(code, 1, 'exit code 1 for CI');
      const text = out.join('\n');
      assert.ok(text.includes(`${path}:${c.line}`), 'human output names file:line');
      assert.ok(text.includes(`error   ${c.code}: `), 'human output names the finding');
      assert.ok(text.includes('          fix: '), 'human output carries the fix');
    });
  }

  it('gRPC probes: liveness on the overall status is the same mistake; on its own service it is clean', async () => {
    const codes = async (lines: string[]): Promise<string[]> => {
      const result = await runCheck(['-'], { stdin: Readable.from([deployment('grpc', lines)]) });
      return (result.containers[0]?.findings ?? []).map((f) => f.code);
    };
    // A later readinessProbe replaces the helper's (YAML keeps the last duplicate key here).
    const readiness = 'readinessProbe: {grpc: {port: 50051}}';
    assert.deepEqual(await codes([readiness, 'livenessProbe: {grpc: {port: 50051}}']), [
      'grpc-liveness-on-readiness',
    ]);
    assert.deepEqual(await codes([readiness, 'livenessProbe: {grpc: {port: 50051, service: ""}}']), [
      'grpc-liveness-on-readiness',
    ]);
    assert.deepEqual(await codes([readiness, 'livenessProbe: {grpc: {port: 50051, service: liveness}}']), []);
    assert.deepEqual(await codes(['livenessProbe: {httpGet: {path: /livez, port: 9000}}']), []);
  });

  it('malformed YAML: reported with its file, line and column, exit 1', async () => {
    const path = fixture('bad/malformed.yaml.txt');
    const { code, out } = await run([path]);
    assert.equal(code, 1);
    assert.equal(out[0], `${path}:18:1: error: YAML error: Sequence item without - indicator`);
  });

  it('a missing file is an error, not a crash', async () => {
    const { code, out } = await run(['does-not-exist.yaml']);
    assert.equal(code, 1);
    assert.equal(out[0], 'does-not-exist.yaml: error: no such file');
  });
});

describe('kubegrace check: input, output and usage', () => {
  it('reads helm template output from - (stdin)', async () => {
    const text = readFileSync(fixture('bad/helm-budget-exceeds-grace.yaml'), 'utf8');
    const { code, out } = await run(['-'], text);
    assert.equal(code, 1);
    assert.ok(
      out.some((l) =>
        l.startsWith(
          '<stdin>:29 (shop/templates/deployment.yaml): Deployment release-name-shop, container shop',
        ),
      ),
    );
  });

  it('recognises a systemd unit on stdin', async () => {
    const text = readFileSync(fixture('good/web.service'), 'utf8');
    const result = await runCheck(['-'], { stdin: Readable.from([text]) });
    assert.equal(result.containers[0]?.kind, 'systemd unit');
    assert.equal(result.containers[0]?.timing.graceMs, 45_000);
  });

  it('--format json: the same findings, machine-readable', async () => {
    const { code, out } = await run([
      '--format',
      'json',
      fixture('bad/budget-exceeds-grace.yaml'),
      fixture('good/deployment.yaml'),
    ]);
    assert.equal(code, 1);
    const report = JSON.parse(out.join('\n')) as {
      errors: number;
      warnings: number;
      containers: {
        name: string;
        line: number;
        timing: {
          totalMs: number;
          graceSeconds: number;
          terms: { name: string; ms: number; source: string }[];
        };
        findings: { severity: string; code: string; fix: string }[];
      }[];
    };
    assert.equal(report.errors, 1);
    assert.equal(report.warnings, 0);
    assert.deepEqual(
      report.containers.map((c) => [
        c.name,
        c.line,
        c.timing.totalMs,
        c.timing.graceSeconds,
        c.findings.map((f) => f.code),
      ]),
      [
        ['long-drain', 16, 48_000, 30, ['budget-exceeds-grace']],
        ['web', 28, 33_000, 40, []],
      ],
    );
    assert.deepEqual(report.containers[1]?.timing.terms[0], {
      name: 'preStop sleep',
      ms: 5000,
      source: 'lifecycle.preStop.sleep.seconds',
    });
  });

  it('usage errors exit 2', async () => {
    assert.deepEqual(await run([]), {
      code: 2,
      out: [],
      err: [
        'kubegrace check: no files given; expected FILE, DIR or - (standard input), as in helm template . | kubegrace check - (see kubegrace check --help)',
      ],
    });
    assert.equal((await run(['--format', 'xml', 'x.yaml'])).code, 2);
    assert.equal((await run(['--bogus', 'x.yaml'])).code, 2);
    assert.equal((await run(['-', '-'])).code, 2);
  });

  it('--help prints the help text and exits 0', async () => {
    const { code, out } = await run(['--help']);
    assert.equal(code, 0);
    assert.equal(out.join('\n'), checkHelp.trimEnd());
  });

  it('parses systemd time spans', () => {
    assert.equal(parseTimespan('90'), 90_000);
    assert.equal(parseTimespan('45s'), 45_000);
    assert.equal(parseTimespan('1min 30s'), 90_000);
    assert.equal(parseTimespan('2min30s'), 150_000);
    assert.equal(parseTimespan('500ms'), 500);
    assert.equal(parseTimespan('infinity'), Number.POSITIVE_INFINITY);
    assert.equal(parseTimespan('soon'), undefined);
  });
});

const findingCodes = async (text: string): Promise<string[]> => {
  const result = await runCheck(['-'], { stdin: Readable.from([text]) });
  assert.equal(result.containers.length, 1, 'the container is checked');
  return (result.containers[0]?.findings ?? []).map((f) => `${f.severity} ${f.code}`);
};

describe('kubegrace check: npm, yarn or a shell as PID 1', () => {
  const cases: { readonly name: string; readonly lines: readonly string[]; readonly expected: string[] }[] = [
    { name: 'npm start', lines: ['command: ["npm", "start"]'], expected: ['warning pid1-signal-wrapper'] },
    { name: 'yarn start', lines: ['command: ["yarn", "start"]'], expected: ['warning pid1-signal-wrapper'] },
    {
      name: 'pnpm by path, in args with the image entrypoint',
      lines: ['args: ["/usr/local/bin/pnpm", "run", "serve"]'],
      expected: ['warning pid1-signal-wrapper'],
    },
    {
      name: 'sh -c "node …"',
      lines: ['command: ["sh", "-c", "node server.js"]'],
      expected: ['warning pid1-signal-wrapper'],
    },
    {
      name: '/bin/bash -ec "cd /app && node …"',
      lines: ['command: ["/bin/bash", "-ec", "cd /app && node server.js"]'],
      expected: ['warning pid1-signal-wrapper'],
    },
    {
      name: 'tini -- npm start (tini forwards, npm may not)',
      lines: ['command: ["tini", "--", "npm", "start"]'],
      expected: ['warning pid1-signal-wrapper'],
    },
    { name: 'node directly', lines: ['command: ["node", "server.js"]'], expected: [] },
    { name: 'sh -c "exec node …"', lines: ['command: ["sh", "-c", "exec node server.js"]'], expected: [] },
    { name: 'tini -- node', lines: ['command: ["tini", "--", "node", "server.js"]'], expected: [] },
    { name: 'no command (the image decides)', lines: [], expected: [] },
    {
      name: 'npm start with preStop exec kubegrace prestop',
      lines: [
        'command: ["npm", "start"]',
        'lifecycle: {preStop: {exec: {command: ["kubegrace", "prestop"]}}}',
      ],
      expected: [],
    },
    {
      name: 'sh -c with preStop httpGet /prestop',
      lines: [
        'command: ["sh", "-c", "node server.js"]',
        'lifecycle: {preStop: {httpGet: {path: /prestop, port: 9000}}}',
      ],
      expected: [],
    },
    {
      name: 'npm start with a preStop sleep (SIGTERM still lost after it)',
      lines: [
        'command: ["npm", "start"]',
        'env: [{name: KUBEGRACE_GRACE_PERIOD_SECONDS, value: "30"}, {name: KUBEGRACE_PRE_STOP_SLEEP_SECONDS, value: "2"}]',
        'lifecycle: {preStop: {sleep: {seconds: 2}}}',
      ],
      expected: ['warning pid1-signal-wrapper'],
    },
  ];
  for (const c of cases) {
    it(`${c.name} → ${c.expected.join(', ') || 'nothing'}`, async () => {
      // A later `env:` line replaces the default one (YAML keeps the last duplicate key here).
      assert.deepEqual(await findingCodes(deployment('web', c.lines)), c.expected);
    });
  }

  it('the finding names the command and both fixes', async () => {
    const result = await runCheck(['-'], {
      stdin: Readable.from([deployment('web', ['command: ["npm", "start"]'])]),
    });
    const [finding] = result.containers[0]?.findings ?? [];
    assert.match(
      finding?.message ?? '',
      /^command runs "npm start" as PID 1: npm, yarn and shells may not pass SIGTERM/,
    );
    assert.match(
      finding?.fix ?? '',
      /command: \["node", "server\.js"\].*\["kubegrace", "prestop"\].*path: \/prestop, port: 9000/,
    );
  });
});

describe("kubegrace check: the kubelet's stop signal", () => {
  const cases: { readonly name: string; readonly lines: readonly string[]; readonly expected: string[] }[] = [
    {
      name: 'KUBEGRACE_SIGNALS without SIGTERM (the image may say otherwise: a warning)',
      lines: [
        'env: [{name: KUBEGRACE_GRACE_PERIOD_SECONDS, value: "30"}, {name: KUBEGRACE_SIGNALS, value: SIGINT}]',
      ],
      expected: ['warning kill-signal'],
    },
    {
      name: 'lifecycle.stopSignal that kubegrace does not listen for (an error)',
      lines: ['lifecycle: {stopSignal: SIGUSR2}'],
      expected: ['error kill-signal'],
    },
    {
      name: 'lifecycle.stopSignal that it listens for',
      lines: [
        'env: [{name: KUBEGRACE_GRACE_PERIOD_SECONDS, value: "30"}, {name: KUBEGRACE_SIGNALS, value: SIGINT}]',
        'lifecycle: {stopSignal: SIGINT}',
      ],
      expected: [],
    },
    { name: 'the defaults (SIGTERM and SIGINT)', lines: [], expected: [] },
  ];
  for (const c of cases) {
    it(`${c.name} → ${c.expected.join(', ') || 'nothing'}`, async () => {
      assert.deepEqual(await findingCodes(deployment('web', c.lines)), c.expected);
    });
  }
});

describe('kubegrace check: directories and systemd units', () => {
  const unit = (env: string): string =>
    [
      '# a unit without the .service suffix',
      '[Unit]',
      'Description=web',
      '',
      '[Service]',
      'ExecStart=/usr/bin/node /srv/web.js',
      env,
      'TimeoutStopSec=45',
      '',
    ].join('\n');

  function tree(files: Readonly<Record<string, string>>): string {
    const dir = mkdtempSync(join(tmpdir(), 'kubegrace-check-'));
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
    return dir;
  }

  const cases: {
    readonly name: string;
    readonly files: Readonly<Record<string, string>>;
    readonly all?: boolean;
    /** `kind name` of each checked container/unit, in order. */
    readonly checked: string[];
    /** `kind name` of each skipped one. */
    readonly skipped: string[];
    readonly problems?: string[];
  }[] = [
    {
      name: 'every manifest under a directory, recursively, in name order',
      files: {
        'b.yaml': deployment('b'),
        'a.yml': deployment('a'),
        'nested/deeper/c.yaml': deployment('c'),
        'list.json': JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [] }),
        'web.service': unit('Environment=KUBEGRACE_GRACE_PERIOD_SECONDS=45'),
        'README.md': '# not a manifest',
      },
      checked: ['Deployment a', 'Deployment b', 'Deployment c', 'systemd unit web.service'],
      skipped: [],
    },
    {
      name: 'JSON without apiVersion (package.json, tsconfig with comments), hidden dirs and node_modules are left out',
      files: {
        'app.yaml': deployment('app'),
        'package.json': '{ "name": "x" }',
        'tsconfig.json': '{ // comments are not YAML\n "compilerOptions": {} }',
        '.git/x.yaml': 'not: [valid',
        'node_modules/m/deploy.yaml': deployment('vendored'),
      },
      checked: ['Deployment app'],
      skipped: [],
    },
    {
      name: 'a Helm chart in a directory is skipped with the way to check it',
      files: {
        'app.yaml': deployment('app'),
        'chart/Chart.yaml': 'name: x',
        'chart/templates/d.yaml': '{{ .Values }}',
      },
      checked: ['Deployment app'],
      skipped: ['Helm chart chart'],
    },
    {
      name: 'a unit in a .yaml file is recognised by its [Unit]/[Service] sections, not parsed as YAML',
      files: { 'api.conf.yaml': unit('Environment=KUBEGRACE_GRACE_PERIOD_SECONDS=45') },
      checked: ['systemd unit api.conf.yaml'],
      skipped: [],
    },
    {
      name: 'a unit with no sign of kubegrace is skipped like a workload',
      files: {
        'redis.service': unit('Environment=REDIS_PORT=6379'),
        'web.service': unit('Environment=KUBEGRACE_GRACE_PERIOD_SECONDS=45'),
      },
      checked: ['systemd unit web.service'],
      skipped: ['systemd unit redis.service'],
    },
    {
      name: 'kubegrace in an Exec*= line is a sign',
      files: { 'web.service': unit('ExecStop=/usr/bin/kubegrace prestop') },
      checked: ['systemd unit web.service'],
      skipped: [],
    },
    {
      name: '--all checks the unit without signs too',
      files: { 'redis.service': unit('Environment=REDIS_PORT=6379') },
      all: true,
      checked: ['systemd unit redis.service'],
      skipped: [],
    },
    {
      name: 'a directory with nothing to check is an error',
      files: { 'notes.txt': 'hello' },
      checked: [],
      skipped: [],
      problems: ['a directory without manifests or units (*.yaml, *.yml, *.json, *.service)'],
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const dir = tree(c.files);
      try {
        const result = await runCheck([dir], { all: c.all ?? false });
        assert.deepEqual(
          result.containers.map((r) => `${r.kind} ${r.name}`),
          c.checked,
        );
        assert.deepEqual(
          result.skipped.map((s) => `${s.kind} ${s.name}`),
          c.skipped,
        );
        assert.deepEqual(
          result.problems.map((p) => p.message),
          c.problems ?? [],
        );
        const { code, out } = await run([dir]);
        assert.equal(code, (c.problems ?? []).length > 0 ? 1 : 0);
        assert.ok(!out.some((l) => l.includes('is a directory')), 'no "is a directory" error');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('a unit file with any name, given by path, is read as a unit', async () => {
    const dir = tree({
      'web.unit': unit('Environment=KUBEGRACE_GRACE_PERIOD_SECONDS=45'),
      api: unit('Environment=KUBEGRACE_GRACE_PERIOD_SECONDS=45'),
    });
    try {
      const result = await runCheck([join(dir, 'web.unit'), join(dir, 'api')]);
      assert.deepEqual(result.problems, []);
      assert.deepEqual(
        result.containers.map((r) => [r.kind, r.name, r.timing.graceMs]),
        [
          ['systemd unit', 'web.unit', 45_000],
          ['systemd unit', 'api', 45_000],
        ],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the skipped unit says why and how to check it anyway', async () => {
    const result = await runCheck(['-'], { stdin: Readable.from([unit('EnvironmentFile=/etc/web.env')]) });
    assert.equal(result.containers.length, 0);
    assert.match(
      result.skipped[0]?.reason ?? '',
      /^no sign of kubegrace \(no KUBEGRACE_\* in Environment= \(EnvironmentFile=\/etc\/web\.env may hold some; this check cannot read it\), no kubegrace in an Exec\*= line\); --all checks it anyway$/,
    );
  });
});
