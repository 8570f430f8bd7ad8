/**
 * What `kubegrace check` reads: multi-document YAML (manifests, `helm template` output) turned into
 * pod specs with their location, and systemd units and PM2 ecosystem files turned into the same
 * shape of timing facts.
 *
 * Over ~400 lines because it holds one parser per source kind (YAML manifests, systemd units, PM2
 * files), each small and read on its own, which share the `Location` and timing shapes defined here;
 * the rules that judge them are in check-rules.ts.
 */
import { isMap, isSeq, LineCounter, parseAllDocuments, type Document } from 'yaml';
import type { PodSpecLike } from '../kubernetes/pod-timing.js';

/** Where something came from: the file, the line, and the Helm template that rendered it. */
export interface Location {
  readonly file: string;
  readonly line: number | undefined;
  /** `# Source: chart/templates/deployment.yaml` from `helm template`. */
  readonly source: string | undefined;
}

export interface PodTemplate {
  readonly location: Location;
  readonly kind: string;
  readonly name: string;
  readonly namespace: string | undefined;
  /** Serves traffic through a Service (a readiness probe matters); false for Jobs and CronJobs. */
  readonly serving: boolean;
  readonly spec: PodSpecLike;
  /** Line of each container (by index), for pointing at the one with the problem. */
  readonly containerLines: readonly (number | undefined)[];
}

export interface SourceProblem {
  readonly file: string;
  readonly line: number | undefined;
  readonly column: number | undefined;
  readonly message: string;
}

export interface ParsedManifests {
  readonly pods: readonly PodTemplate[];
  /** Documents of a kind that has no pod template (Services, ConfigMaps…), by kind. */
  readonly ignored: readonly { readonly kind: string; readonly name: string; readonly location: Location }[];
  readonly problems: readonly SourceProblem[];
}

/** Where each workload kind keeps its pod spec. */
const POD_SPEC_PATHS: Readonly<
  Record<string, { readonly path: readonly string[]; readonly serving: boolean }>
> = {
  Pod: { path: ['spec'], serving: true },
  Deployment: { path: ['spec', 'template', 'spec'], serving: true },
  StatefulSet: { path: ['spec', 'template', 'spec'], serving: true },
  DaemonSet: { path: ['spec', 'template', 'spec'], serving: true },
  ReplicaSet: { path: ['spec', 'template', 'spec'], serving: true },
  ReplicationController: { path: ['spec', 'template', 'spec'], serving: true },
  Job: { path: ['spec', 'template', 'spec'], serving: false },
  CronJob: { path: ['spec', 'jobTemplate', 'spec', 'template', 'spec'], serving: false },
};

export function parseManifests(file: string, text: string): ParsedManifests {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: true, uniqueKeys: false });
  const pods: PodTemplate[] = [];
  const ignored: { kind: string; name: string; location: Location }[] = [];
  const problems: SourceProblem[] = [];
  const lineOf = (offset: number | undefined): number | undefined =>
    offset === undefined ? undefined : lineCounter.linePos(offset).line;

  // parseAllDocuments returns an EmptyStream for an empty input; iterate what it has either way.
  for (const doc of docs as Iterable<Document.Parsed>) {
    if (doc.errors.length > 0) {
      const error = doc.errors[0];
      const pos = error?.linePos?.[0];
      problems.push({
        file,
        line: pos?.line,
        column: pos?.col,
        message: `YAML error: ${(error?.message ?? 'unreadable').split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '')}`,
      });
      continue;
    }
    const contents = doc.contents as {
      range?: [number, number, number];
      commentBefore?: string | null;
    } | null;
    const comment = `${doc.commentBefore ?? ''}\n${contents?.commentBefore ?? ''}`;
    const source = /Source:\s*(\S+)/.exec(comment)?.[1];
    const baseLine = lineOf(contents?.range?.[0]);
    const value = doc.toJS({ maxAliasCount: 1000 }) as unknown;
    if (value === null || value === undefined) continue;
    const location: Location = { file, line: baseLine, source };
    if (typeof value !== 'object' || Array.isArray(value)) {
      problems.push({
        file,
        line: baseLine,
        column: undefined,
        message: 'not a Kubernetes object (expected a mapping with kind)',
      });
      continue;
    }
    collect(value as Record<string, unknown>, location, (path) => lineOf(rangeAt(doc, path)));
  }

  function collect(
    object: Record<string, unknown>,
    location: Location,
    lineAt: (path: readonly (string | number)[]) => number | undefined,
    prefix: readonly (string | number)[] = [],
  ): void {
    const kind = typeof object.kind === 'string' ? object.kind : undefined;
    const metadata = (object.metadata ?? {}) as Record<string, unknown>;
    const name = typeof metadata.name === 'string' ? metadata.name : '(unnamed)';
    if (kind === undefined) {
      problems.push({
        file: location.file,
        line: location.line,
        column: undefined,
        message: 'document has no kind',
      });
      return;
    }
    if (kind === 'List' || kind.endsWith('List')) {
      const items = Array.isArray(object.items) ? (object.items as unknown[]) : [];
      items.forEach((item, i) => {
        if (typeof item === 'object' && item !== null) {
          const path = [...prefix, 'items', i];
          collect(
            item as Record<string, unknown>,
            { ...location, line: lineAt(path) ?? location.line },
            lineAt,
            path,
          );
        }
      });
      return;
    }
    const where = POD_SPEC_PATHS[kind];
    if (!where) {
      ignored.push({ kind, name, location });
      return;
    }
    let spec: unknown = object;
    for (const key of where.path) spec = (spec as Record<string, unknown> | undefined)?.[key];
    if (typeof spec !== 'object' || spec === null) {
      problems.push({
        file: location.file,
        line: location.line,
        column: undefined,
        message: `${kind} ${name} has no pod template at ${where.path.join('.')}`,
      });
      return;
    }
    const containers = (spec as { containers?: unknown }).containers;
    const specPath = [...prefix, ...where.path];
    pods.push({
      location,
      kind,
      name,
      namespace: typeof metadata.namespace === 'string' ? metadata.namespace : undefined,
      serving: where.serving,
      spec: spec,
      containerLines: Array.isArray(containers)
        ? containers.map((_, i) => lineAt([...specPath, 'containers', i]))
        : [],
    });
  }

  return { pods, ignored, problems };
}

function rangeAt(doc: Document.Parsed, path: readonly (string | number)[]): number | undefined {
  const node = doc.getIn(path, true) as { range?: [number, number, number] } | undefined;
  if (node && (isMap(node) || isSeq(node) || 'range' in node)) return node.range?.[0];
  return undefined;
}

// ---------------------------------------------------------------- systemd

export interface SystemdUnit {
  readonly location: Location;
  readonly name: string;
  /** `TimeoutStopSec` (or `TimeoutSec`) in ms; Infinity for `infinity`; undefined when unset (default 90 s). */
  readonly timeoutStopMs: number | undefined;
  readonly timeoutLine: number | undefined;
  readonly env: Readonly<Record<string, string>>;
  readonly environmentFiles: readonly string[];
  readonly killSignal: string | undefined;
  /** ExecStart=, ExecStop=, ExecStartPre=… values, in order. */
  readonly commands: readonly string[];
}

/** systemd's own default for `TimeoutStopSec` (DefaultTimeoutStopSec). */
export const SYSTEMD_DEFAULT_TIMEOUT_STOP_MS = 90_000;

export function parseSystemdUnit(
  file: string,
  text: string,
): { unit?: SystemdUnit; problems: SourceProblem[] } {
  const problems: SourceProblem[] = [];
  const env: Record<string, string> = {};
  const environmentFiles: string[] = [];
  const commands: string[] = [];
  let section = '';
  let timeoutStopMs: number | undefined;
  let timeoutLine: number | undefined;
  let killSignal: string | undefined;
  let sawService = false;
  let timeoutStopKeySeen = false;
  // Continuation lines end in a backslash.
  const lines = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = raw.trim();
    const number = index + 1;
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1] ?? '';
      if (section === 'Service') sawService = true;
      return;
    }
    const eq = line.indexOf('=');
    if (eq === -1) {
      problems.push({
        file,
        line: number,
        column: 1,
        message: `unit file syntax: expected Key=Value, found ${JSON.stringify(line.slice(0, 40))}`,
      });
      return;
    }
    if (section !== 'Service') return;
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    switch (key) {
      case 'TimeoutStopSec':
      case 'TimeoutSec': {
        // TimeoutStopSec wins over TimeoutSec whatever the order.
        if (key === 'TimeoutSec' && timeoutLine !== undefined && timeoutStopKeySeen) return;
        const ms = parseTimespan(value);
        if (ms === undefined) {
          problems.push({
            file,
            line: number,
            column: eq + 2,
            message: `${key}=${value} is not a systemd time span (e.g. 90, 90s, 1min 30s, infinity)`,
          });
          return;
        }
        timeoutStopMs = ms;
        timeoutLine = number;
        if (key === 'TimeoutStopSec') timeoutStopKeySeen = true;
        return;
      }
      case 'Environment':
        for (const assignment of splitQuoted(value)) {
          const at = assignment.indexOf('=');
          if (at > 0) env[assignment.slice(0, at)] = assignment.slice(at + 1);
        }
        return;
      case 'EnvironmentFile':
        environmentFiles.push(value.replace(/^-/, ''));
        return;
      case 'KillSignal':
        killSignal = value;
        return;
      default:
        if (key.startsWith('Exec')) commands.push(value);
        return;
    }
  });
  if (!sawService) {
    problems.push({
      file,
      line: undefined,
      column: undefined,
      message: 'no [Service] section: not a service unit',
    });
    return { problems };
  }
  const name = file.split('/').pop() ?? file;
  return {
    unit: {
      location: { file, line: timeoutLine, source: undefined },
      name,
      timeoutStopMs,
      timeoutLine,
      env,
      environmentFiles,
      killSignal,
      commands,
    },
    problems,
  };
}

/**
 * Is this text a systemd unit rather than YAML? Its first line that is not blank or a comment (`#`, `;`)
 * is a section header such as `[Unit]` or `[Service]`.
 */
export function looksLikeSystemdUnit(text: string): boolean {
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    return /^\[(Unit|Service|Install|Socket|Timer|X-[\w-]+)\]$/.test(line);
  }
  return false;
}

const UNITS: Readonly<Record<string, number>> = {
  us: 0.001,
  usec: 0.001,
  ms: 1,
  msec: 1,
  s: 1000,
  sec: 1000,
  second: 1000,
  seconds: 1000,
  m: 60_000,
  min: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hr: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000,
  w: 604_800_000,
  week: 604_800_000,
  weeks: 604_800_000,
};

/** systemd.time(7): `90`, `90s`, `1min 30s`, `2min30s`, `500ms`, `infinity` → ms. */
export function parseTimespan(text: string): number | undefined {
  const value = text.trim();
  if (value === 'infinity') return Number.POSITIVE_INFINITY;
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  let total = 0;
  let rest = value;
  while (rest.length > 0) {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*/i.exec(rest);
    if (!m) return undefined;
    const unit = UNITS[(m[2] ?? '').toLowerCase()];
    if (unit === undefined) return undefined;
    total += Number(m[1]) * unit;
    rest = rest.slice(m[0].length);
  }
  return value === '' ? undefined : total;
}

/** `"A=1 2" B=3` → [`A=1 2`, `B=3`], as systemd splits Environment=. */
function splitQuoted(value: string): string[] {
  const out: string[] = [];
  for (const m of value.matchAll(/"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g)) {
    out.push((m[1] ?? m[2] ?? m[3] ?? '').replace(/\\(.)/g, '$1'));
  }
  return out;
}

// ---------------------------------------------------------------- PM2 ecosystem files

function pm2Number(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  return typeof value === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(value) ? Number(value) : undefined;
}

export interface Pm2App {
  readonly location: Location;
  readonly name: string;
  /** `kill_timeout` in ms; undefined when unset (PM2's default, 1600 ms). */
  readonly killTimeoutMs: number | undefined;
  readonly killSignal: string | undefined;
  readonly env: Readonly<Record<string, string>>;
  /** `instances` > 1 or `exec_mode: cluster`: the instances share their ports through PM2. */
  readonly clusterMode: boolean;
}

/** PM2's own default for `kill_timeout` (`PM2_KILL_TIMEOUT`). */
export const PM2_DEFAULT_KILL_TIMEOUT_MS = 1600;

/**
 * The apps of a PM2 ecosystem file in JSON or YAML (`{ "apps": [...] }`, or the bare list PM2 takes
 * as well); undefined when the text is not one. An `ecosystem.config.js` is code: it is not run here.
 */
export function parsePm2Ecosystem(file: string, text: string): readonly Pm2App[] | undefined {
  let parsed: unknown;
  try {
    parsed = parseAllDocuments(text)[0]?.toJS() as unknown;
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const apps = Array.isArray(parsed) ? parsed : (parsed as { apps?: unknown }).apps;
  if (!Array.isArray(apps) || 'apiVersion' in parsed) return undefined;
  // A bare list is an ecosystem only if it holds apps (a script to run), not Kubernetes objects.
  if (
    Array.isArray(parsed) &&
    !apps.some((app) => typeof (app as { script?: unknown })?.script === 'string')
  ) {
    return undefined;
  }
  return apps
    .filter((app): app is Record<string, unknown> => typeof app === 'object' && app !== null)
    .map((app, index) => {
      const env: Record<string, string> = {};
      for (const source of [app.env, app.env_production]) {
        if (typeof source !== 'object' || source === null) continue;
        for (const [key, value] of Object.entries(source)) {
          if (['string', 'number', 'boolean'].includes(typeof value)) env[key] = String(value);
        }
      }
      // PM2 reads numbers given as strings ("30000") as the numbers (its Config.js converts them).
      const instances = pm2Number(app.instances) ?? app.instances;
      // 0 and -1 mean one per CPU; so does 'max'.
      const many = typeof instances === 'number' ? instances > 1 || instances <= 0 : instances !== undefined;
      return {
        location: { file, line: undefined, source: undefined },
        name: typeof app.name === 'string' ? app.name : `apps[${index}]`,
        killTimeoutMs: pm2Number(app.kill_timeout),
        killSignal: typeof app.kill_signal === 'string' ? app.kill_signal : undefined,
        env,
        clusterMode: app.exec_mode === 'cluster' || app.exec_mode === 'cluster_mode' || many,
      };
    });
}
