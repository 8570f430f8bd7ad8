/**
 * `kubegrace check FILE... | -`: the shutdown timing of manifests, `helm template` output and systemd
 * units, checked before they ship, with the fix for each finding. Exit code 0 when nothing is an
 * error, 1 when something is (for CI), 2 for bad usage.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { formatSeconds } from '../kubernetes/pod-timing.js';
import {
  checkPod,
  checkPm2App,
  checkUnit,
  type ContainerReport,
  type Finding,
  type Severity,
  type SkippedWorkload,
} from './check-rules.js';
import {
  looksLikeSystemdUnit,
  parseManifests,
  parsePm2Ecosystem,
  parseSystemdUnit,
  type Location,
  type SourceProblem,
} from './check-sources.js';
import { choiceFlag, inCommand, parseFlagsAndArguments, UsageError } from './flags.js';

export const checkHelp = `Usage: kubegrace check [flags] FILE|DIR... | -

Checks the shutdown timing of Kubernetes manifests (Deployments, StatefulSets, DaemonSets,
ReplicaSets, ReplicationControllers, Jobs, CronJobs, Pods, Lists; multi-document YAML such as
\`helm template\` output) and systemd units (recognised by their [Unit]/[Service] sections, whatever
the file name) before they ship. For every container or unit that uses kubegrace it adds up preStop
sleep + unready + propagation + drain + cleanup + safety margin, with its KUBEGRACE_* values, against
terminationGracePeriodSeconds (TimeoutStopSec for a unit), and flags probes on the wrong endpoint, a
missing readiness probe, a propagation wait the grace period cannot hold,
KUBEGRACE_GRACE_PERIOD_SECONDS differing from the grace period, and npm, yarn or a shell as PID 1
without a preStop that reaches kubegrace. A PM2 ecosystem file in JSON or YAML ({"apps": [...]}) is
checked as pm2-runtime runs it: the budget against kill_timeout (default 1600 ms), the signal pm2
sends (kill_signal, default SIGINT), and cluster mode. Each finding comes with its fix. \`-\` reads standard input.
A directory is searched recursively for *.yaml, *.yml, *.json (those with an apiVersion) and
*.service files; hidden directories, node_modules and Helm charts (a Chart.yaml: check their
\`helm template\` output instead) are left out.

Flags:
  --format <human|json>  output format (default human)
  --all                  check every container and unit, not only those that use kubegrace
                         (KUBEGRACE_* env, /livez, /readyz or /startupz probes, or a
                         kubegrace preStop hook; for a unit, KUBEGRACE_* in Environment=
                         or kubegrace in an Exec*= line)
  -h, --help             this text

Exit code: 0 no errors (warnings allowed), 1 at least one error or an unreadable file,
2 bad usage.

Example:
  helm template web ./chart | kubegrace check -
`;

export interface CheckIo {
  /** Writes one line to standard output (as main.ts's CommandIo). */
  readonly out?: (line: string) => void;
  readonly err?: (line: string) => void;
  /** Or streams, as `{ stdout: process.stdout, stderr: process.stderr }`. */
  readonly stdout?: { write(chunk: string): unknown };
  readonly stderr?: { write(chunk: string): unknown };
  /** Read for `-`. @default process.stdin */
  readonly stdin?: AsyncIterable<string | Uint8Array>;
}

export interface CheckResult {
  readonly files: readonly string[];
  readonly containers: readonly ContainerReport[];
  readonly skipped: readonly SkippedWorkload[];
  /** Files or documents that could not be read: malformed YAML, missing files. */
  readonly problems: readonly (SourceProblem & { readonly code: 'yaml-error' | 'unreadable' })[];
  readonly errors: number;
  readonly warnings: number;
}

/** Runs `kubegrace check` with these arguments; resolves with the exit code. */
export async function checkCommand(args: readonly string[], io: CheckIo = {}): Promise<number> {
  const out = io.out ?? ((line: string) => (io.stdout ?? process.stdout).write(`${line}\n`));
  const err = io.err ?? ((line: string) => (io.stderr ?? process.stderr).write(`${line}\n`));
  let parsed;
  try {
    parsed = inCommand('check', () => {
      const { values, positionals } = parseFlagsAndArguments('check', args, {
        format: { type: 'string', default: 'human' },
        all: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      });
      if (values.help) return { help: true } as const;
      const format = choiceFlag('format', values.format, ['human', 'json'] as const);
      if (positionals.length === 0) {
        throw new UsageError(
          'no files given; expected FILE, DIR or - (standard input), as in helm template . | kubegrace check -',
        );
      }
      const stdinCount = positionals.filter((p) => p === '-').length;
      if (stdinCount > 1) {
        throw new UsageError(`- (standard input) can be given only once, received it ${stdinCount} times`);
      }
      return { help: false, format, all: values.all, files: positionals } as const;
    });
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    err(error.message);
    return 2;
  }
  if (parsed.help) {
    out(checkHelp.trimEnd());
    return 0;
  }
  const result = await runCheck(parsed.files, { all: parsed.all, stdin: io.stdin ?? process.stdin });
  if (parsed.format === 'json') out(JSON.stringify(toJson(result), null, 2));
  else for (const line of formatHuman(result)) out(line);
  return result.errors > 0 ? 1 : 0;
}

/** The check itself, without output: the files (or `-`) → every container's report. */
export async function runCheck(
  files: readonly string[],
  options: { readonly all?: boolean; readonly stdin?: AsyncIterable<string | Uint8Array> } = {},
): Promise<CheckResult> {
  const containers: ContainerReport[] = [];
  const skipped: SkippedWorkload[] = [];
  const problems: CheckResult['problems'][number][] = [];
  const all = options.all ?? false;
  const inputs: { file: string; fromDirectory: boolean }[] = [];
  for (const file of files) {
    const info = file === '-' ? undefined : await stat(file).catch(() => undefined);
    if (!info?.isDirectory()) {
      inputs.push({ file, fromDirectory: false });
      continue;
    }
    const found = await manifestsIn(file, skipped);
    if (found.length === 0) {
      problems.push({
        file,
        line: undefined,
        column: undefined,
        code: 'unreadable',
        message: 'a directory without manifests or units (*.yaml, *.yml, *.json, *.service)',
      });
    }
    inputs.push(...found.map((f) => ({ file: f, fromDirectory: true })));
  }
  for (const { file, fromDirectory } of inputs) {
    const name = file === '-' ? '<stdin>' : file;
    let text: string;
    try {
      text = file === '-' ? await readAll(options.stdin ?? process.stdin) : await readFile(file, 'utf8');
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      problems.push({
        file: name,
        line: undefined,
        column: undefined,
        code: 'unreadable',
        message:
          code === 'ENOENT'
            ? 'no such file'
            : code === 'EISDIR'
              ? 'is a directory'
              : `cannot read: ${String(error)}`,
      });
      continue;
    }
    if (file.endsWith('.service') || looksLikeSystemdUnit(text)) {
      const parsedUnit = parseSystemdUnit(name, text);
      problems.push(...parsedUnit.problems.map((p) => ({ ...p, code: 'yaml-error' as const })));
      if (parsedUnit.unit) {
        const checked = checkUnit(parsedUnit.unit, { all });
        if (checked.report) containers.push(checked.report);
        if (checked.skipped) skipped.push(checked.skipped);
      }
      continue;
    }
    const pm2Apps = /\.(json|ya?ml)$/.test(file) || file === '-' ? parsePm2Ecosystem(name, text) : undefined;
    if (pm2Apps !== undefined) {
      for (const app of pm2Apps) {
        const checked = checkPm2App(app, { all });
        if (checked.report) containers.push(checked.report);
        if (checked.skipped) skipped.push(checked.skipped);
      }
      continue;
    }
    // A JSON file found in a directory is a manifest only if it says so (package.json, tsconfig.json…).
    if (fromDirectory && file.endsWith('.json') && !text.includes('"apiVersion"')) continue;
    const manifests = parseManifests(name, text);
    problems.push(...manifests.problems.map((p) => ({ ...p, code: 'yaml-error' as const })));
    for (const pod of manifests.pods) {
      const checked = checkPod(pod, { all });
      containers.push(...checked.reports);
      if (checked.skipped) skipped.push(checked.skipped);
    }
  }
  const count = (severity: Severity): number =>
    containers.reduce((sum, c) => sum + c.findings.filter((f) => f.severity === severity).length, 0);
  return {
    files: files.map((f) => (f === '-' ? '<stdin>' : f)),
    containers,
    skipped,
    problems,
    errors: count('error') + problems.length,
    warnings: count('warning'),
  };
}

const MANIFEST_FILE = /\.(ya?ml|json|service)$/;

/**
 * The manifest and unit files under a directory, recursively, sorted. Hidden directories and
 * node_modules are left out; a Helm chart (a directory with Chart.yaml) is recorded as skipped: its
 * templates are not YAML until `helm template` renders them.
 */
async function manifestsIn(dir: string, skipped: SkippedWorkload[]): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  if (entries.some((e) => e.isFile() && e.name === 'Chart.yaml')) {
    skipped.push({
      location: { file: dir, line: undefined, source: undefined },
      kind: 'Helm chart',
      name: dir.split(/[\\/]/).filter(Boolean).pop() ?? dir,
      reason: 'its templates are not manifests until rendered: helm template … | kubegrace check -',
    });
    return [];
  }
  const found: string[] = [];
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!entry.name.startsWith('.') && entry.name !== 'node_modules')
        found.push(...(await manifestsIn(path, skipped)));
    } else if (entry.isFile() && MANIFEST_FILE.test(entry.name)) {
      found.push(path);
    }
  }
  return found;
}

async function readAll(stream: AsyncIterable<string | Uint8Array>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream)
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}

function where(location: Location): string {
  const at = location.line === undefined ? location.file : `${location.file}:${location.line}`;
  return location.source === undefined ? at : `${at} (${location.source})`;
}

const LABEL: Readonly<Record<Severity, string>> = { error: 'error  ', warning: 'warning', info: 'info   ' };

export function formatHuman(result: CheckResult): string[] {
  const lines: string[] = [];
  for (const problem of result.problems) {
    const at =
      problem.line === undefined
        ? problem.file
        : `${problem.file}:${problem.line}${problem.column === undefined ? '' : `:${problem.column}`}`;
    lines.push(`${at}: error: ${problem.message}`);
  }
  for (const c of result.containers) {
    const subject =
      c.kind === 'systemd unit' || c.kind === 'pm2 app'
        ? `${c.kind} ${c.name}`
        : `${c.kind} ${c.namespace === undefined ? '' : `${c.namespace}/`}${c.name}, container ${c.container}`;
    if (lines.length > 0) lines.push('');
    lines.push(`${where(c.location)}: ${subject}`);
    const t = c.timing;
    const sum = t.terms
      .filter((term) => term.ms > 0)
      .map((term) => `${term.name} ${formatSeconds(term.ms)}`)
      .join(' + ');
    const verdict =
      t.spareMs >= 0 ? `fits, ${formatSeconds(t.spareMs)} to spare` : `over by ${formatSeconds(-t.spareMs)}`;
    lines.push(
      `  budget ${sum} = ${formatSeconds(t.totalMs)} of ${formatSeconds(t.graceMs)} (${t.graceSource}): ${verdict}`,
    );
    for (const f of c.findings) lines.push(...formatFinding(f));
  }
  for (const s of result.skipped) {
    lines.push('', `${where(s.location)}: ${s.kind} ${s.name}: skipped, ${s.reason}`);
  }
  const workloads = new Set(result.containers.map((c) => `${c.location.file}|${c.kind}|${c.name}`)).size;
  lines.push(
    '',
    `${result.containers.length} container(s) in ${workloads} workload(s) checked, ${result.skipped.length} skipped: ` +
      `${result.errors} error(s), ${result.warnings} warning(s)`,
  );
  return lines;
}

function formatFinding(f: Finding): string[] {
  return [`  ${LABEL[f.severity]} ${f.code}: ${f.message}`, `          fix: ${f.fix}`];
}

function toJson(result: CheckResult): unknown {
  return {
    files: result.files,
    errors: result.errors,
    warnings: result.warnings,
    problems: result.problems,
    containers: result.containers.map((c) => ({
      file: c.location.file,
      line: c.location.line ?? null,
      source: c.location.source ?? null,
      kind: c.kind,
      name: c.name,
      namespace: c.namespace ?? null,
      container: c.container,
      timing: {
        graceSeconds: Number.isFinite(c.timing.graceMs) ? c.timing.graceMs / 1000 : null,
        graceSource: c.timing.graceSource,
        preStop: c.timing.preStop,
        terms: c.timing.terms.map((t) => ({
          name: t.name,
          ms: Number.isFinite(t.ms) ? t.ms : null,
          source: t.source,
        })),
        totalMs: Number.isFinite(c.timing.totalMs) ? c.timing.totalMs : null,
        spareMs: Number.isFinite(c.timing.spareMs) ? c.timing.spareMs : null,
      },
      findings: c.findings,
    })),
    skipped: result.skipped.map((s) => ({
      file: s.location.file,
      line: s.location.line ?? null,
      kind: s.kind,
      name: s.name,
      reason: s.reason,
    })),
  };
}
