/**
 * The rules of `kubegrace check`: the timing budget of each container against the time its platform
 * grants (terminationGracePeriodSeconds, or a systemd unit's TimeoutStopSec), and the probe and
 * setting mistakes that undo a graceful shutdown. Every finding carries its fix.
 *
 * Over ~400 lines because it is a catalogue: one small function per rule, each read on its own;
 * `check.ts` and `check-sources.ts` hold the command and the manifest reading.
 */
import { KubegraceError } from '../errors.js';
import { defaults, resolveSettings, settingSpecs, type ResolvedSettings } from '../options.js';
import {
  DEFAULT_GRACE_SECONDS,
  envOf,
  formatSeconds,
  formatTerms,
  graceOf,
  nameOf,
  podBudget,
  preStopOf,
  preStopSeconds,
  type ContainerLike,
  type PreStop,
  type ProbeLike,
  type SourcedTerm,
} from '../kubernetes/pod-timing.js';
import {
  PM2_DEFAULT_KILL_TIMEOUT_MS,
  SYSTEMD_DEFAULT_TIMEOUT_STOP_MS,
  type Location,
  type PodTemplate,
  type Pm2App,
  type SystemdUnit,
} from './check-sources.js';

export type Severity = 'error' | 'warning' | 'info';

export interface Finding {
  readonly severity: Severity;
  /** Stable identifier, for CI filters and docs/check.md. */
  readonly code: FindingCode;
  readonly message: string;
  readonly fix: string;
}

/** Every finding `check` can report; docs/check.md has a row for each (a test keeps them in step). */
export const FINDING_CODES = [
  'budget-exceeds-grace',
  'propagation-exceeds-grace',
  'grace-period-mismatch',
  'grace-period-unset',
  'prestop-sleep-mismatch',
  'prestop-sleep-unset',
  'liveness-on-readyz',
  'readiness-on-livez',
  'grpc-liveness-on-readiness',
  'missing-readiness-probe',
  'probe-port-mismatch',
  'invalid-setting',
  'kill-signal',
  'prestop-unknown-duration',
  'unresolved-env',
  'pid1-signal-wrapper',
  'pm2-cluster-mode',
] as const;

export type FindingCode = (typeof FINDING_CODES)[number];

export interface TimingReport {
  readonly graceMs: number;
  /** Where the grace period comes from: `terminationGracePeriodSeconds`, its default, `TimeoutStopSec`. */
  readonly graceSource: string;
  readonly preStop: PreStop;
  readonly terms: readonly SourcedTerm[];
  readonly totalMs: number;
  /** Grace minus the budget; negative when over. */
  readonly spareMs: number;
}

export interface ContainerReport {
  readonly location: Location;
  readonly kind: string;
  readonly name: string;
  readonly namespace: string | undefined;
  readonly container: string;
  readonly timing: TimingReport;
  readonly findings: readonly Finding[];
}

export interface SkippedWorkload {
  readonly location: Location;
  readonly kind: string;
  readonly name: string;
  readonly reason: string;
}

const PROBE_PATHS = new Set(['/livez', '/readyz', '/startupz']);

function probePath(probe: ProbeLike | null | undefined): string | undefined {
  const path = probe?.httpGet?.path;
  return typeof path === 'string' ? (path.split('?')[0] ?? path) : undefined;
}

/** The service a `grpc:` probe asks (`""`, the overall status, when it names none); undefined for other probes. */
function grpcService(probe: ProbeLike | null | undefined): string | undefined {
  const grpc = probe?.grpc;
  if (typeof grpc !== 'object' || grpc === null) return undefined;
  const service = (grpc as { service?: unknown }).service;
  return typeof service === 'string' ? service : '';
}

/** Our own exec preStop (`kubegrace prestop`, `npx kubegrace prestop`, `/app/bin/kubegrace prestop`). */
const KUBEGRACE_PRESTOP = /(?:^|[\s/])kubegrace(?:\.[cm]?js)?\s+prestop(?:\s|$)/;

/** Does this container run kubegrace, as far as its spec shows? */
export function usesKubegrace(container: ContainerLike): boolean {
  if (Object.keys(envOf(container).values).some((k) => k.startsWith('KUBEGRACE_'))) return true;
  if (envOf(container).indirect.some((k) => k.startsWith('KUBEGRACE_'))) return true;
  for (const probe of [container.livenessProbe, container.readinessProbe, container.startupProbe]) {
    const path = probePath(probe);
    if (path !== undefined && PROBE_PATHS.has(path)) return true;
  }
  const preStop = preStopOf(container);
  return (
    (preStop.kind === 'exec' && /kubegrace/.test(preStop.command)) ||
    (preStop.kind === 'http' && preStop.path === '/prestop')
  );
}

/** Does this unit run kubegrace, as far as it shows: a KUBEGRACE_* in Environment=, or kubegrace in an Exec*= line? */
export function unitUsesKubegrace(unit: SystemdUnit): boolean {
  return (
    Object.keys(unit.env).some((k) => k.startsWith('KUBEGRACE_')) ||
    unit.commands.some((line) => /kubegrace/.test(line))
  );
}

/** Does the preStop hook start kubegrace's shutdown itself (exec `kubegrace prestop`, or GET /prestop)? */
function preStopReachesKubegrace(preStop: PreStop): boolean {
  return (
    (preStop.kind === 'exec' && KUBEGRACE_PRESTOP.test(preStop.command)) ||
    (preStop.kind === 'http' && preStop.path === '/prestop')
  );
}

const PACKAGE_MANAGERS = new Set(['npm', 'yarn', 'pnpm']);
const SHELLS = new Set(['sh', 'bash', 'dash', 'ash', 'zsh']);
/** Inits that pass signals on: what matters is the program they start. */
const SIGNAL_FORWARDING_INITS = new Set(['tini', 'dumb-init']);

/**
 * The container's PID 1 when it is a package manager (`npm start`, `yarn start`) or a shell running a
 * command line (`sh -c "node …"`) — either may keep SIGTERM from node. `args` counts when `command` is
 * unset (the image's entrypoint usually execs it). A shell script that starts with `exec` hands PID 1
 * over, and tini/dumb-init forward signals, so neither is reported.
 */
export function signalWrapper(container: ContainerLike): { field: string; shown: string } | undefined {
  const { command, args } = container as { command?: unknown; args?: unknown };
  const strings = (value: unknown): string[] | undefined =>
    Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'string') ? value : undefined;
  const field = strings(command) ? 'command' : strings(args) ? 'args' : undefined;
  const words = strings(command) ?? strings(args);
  if (field === undefined || words === undefined) return undefined;
  let start = 0;
  const program = (index: number): string => words[index]?.split('/').pop() ?? '';
  if (SIGNAL_FORWARDING_INITS.has(program(0))) {
    start = 1;
    while (words[start]?.startsWith('-')) {
      start += 1;
      if (words[start - 1] === '--') break;
    }
  }
  const shown = words.slice(start).join(' ');
  if (PACKAGE_MANAGERS.has(program(start))) return { field, shown };
  if (SHELLS.has(program(start))) {
    const flag = words.findIndex((w, i) => i > start && /^-[a-z]*c[a-z]*$/.test(w));
    const script = flag === -1 ? undefined : words[flag + 1];
    if (script !== undefined && !/^\s*exec\s/.test(script)) return { field, shown };
  }
  return undefined;
}

function signalWrapperFinding(container: ContainerLike, preStop: PreStop, port: number): Finding[] {
  const wrapper = signalWrapper(container);
  if (wrapper === undefined || preStopReachesKubegrace(preStop)) return [];
  return [
    {
      severity: 'warning',
      code: 'pid1-signal-wrapper',
      message:
        `${wrapper.field} runs "${wrapper.shown}" as PID 1: npm, yarn and shells may not pass SIGTERM on to node, ` +
        'so kubegrace never hears of the shutdown and the kubelet kills the pod at the end of the grace period',
      fix:
        'run node directly (command: ["node", "server.js"], or "exec node …" in the shell line), or add a preStop that starts the shutdown itself: ' +
        `exec: { command: ["kubegrace", "prestop"] } or httpGet: { path: /prestop, port: ${port} }`,
    },
  ];
}

/**
 * The signal the kubelet stops the container with: `lifecycle.stopSignal` (Kubernetes 1.33+), else the
 * image's STOPSIGNAL, which a manifest does not show — SIGTERM unless the Dockerfile says otherwise.
 * One kubegrace does not listen for ends the process at once, with no shutdown.
 */
function stopSignalFinding(container: ContainerLike, signals: readonly string[]): Finding[] {
  const declared = (container as { lifecycle?: { stopSignal?: unknown } }).lifecycle?.stopSignal;
  const signal = typeof declared === 'string' ? declared : 'SIGTERM';
  if (signals.includes(signal)) return [];
  return [
    {
      severity: typeof declared === 'string' ? 'error' : 'warning',
      code: 'kill-signal',
      message:
        typeof declared === 'string'
          ? `lifecycle.stopSignal is ${signal}, which kubegrace does not shut down on (${signals.join(', ')}): the kubelet's signal ends the process at once`
          : `KUBEGRACE_SIGNALS (${signals.join(', ')}) leaves out SIGTERM, which the kubelet sends unless the image's STOPSIGNAL names another signal: a SIGTERM ends the process at once`,
      fix: `add ${signal} to KUBEGRACE_SIGNALS`,
    },
  ];
}

/**
 * Settings as the library would resolve them from these env values. An invalid value becomes a
 * finding and is left out, so the rest still resolves and the budget uses the default for it.
 */
function settingsFrom(env: Readonly<Record<string, string>>): {
  settings: ResolvedSettings;
  findings: Finding[];
} {
  const findings: Finding[] = [];
  const usable: Record<string, string> = { ...env };
  for (let attempt = 0; attempt < settingSpecs.length + 1; attempt++) {
    try {
      return { settings: resolveSettings({}, usable), findings };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      // The error carries the variable at fault as data.
      const named = error instanceof KubegraceError ? error.option : undefined;
      const culprit = settingSpecs.find((s) => s.env === named)?.env;
      findings.push({
        severity: 'error',
        code: 'invalid-setting',
        message,
        fix: culprit
          ? `correct ${culprit} (kubegrace fails to start with it); the budget below uses its default, ${JSON.stringify(
              settingSpecs.find((s) => s.env === culprit)?.default,
            )}`
          : 'correct the KUBEGRACE_* values named in the message (kubegrace fails to start with them)',
      });
      if (culprit === undefined) break;
      delete usable[culprit];
    }
  }
  return { settings: defaults, findings };
}

interface TimingInput {
  readonly env: Readonly<Record<string, string>>;
  /** What could not be read here (`valueFrom` variables, EnvironmentFile=), if anything. */
  readonly unresolved: string | undefined;
  readonly graceMs: number;
  /** `terminationGracePeriodSeconds` or `TimeoutStopSec`. */
  readonly graceField: string;
  readonly graceExplicit: boolean;
  readonly preStop: PreStop;
}

function timingFindings(input: TimingInput): {
  timing: TimingReport;
  settings: ResolvedSettings;
  findings: Finding[];
} {
  const { env, graceMs, graceField, preStop } = input;
  const { settings, findings } = settingsFrom(env);
  const graceSeconds = graceMs / 1000;
  const shownGrace = formatSeconds(graceMs);
  const graceSource = input.graceExplicit ? graceField : `${graceField} (default ${shownGrace})`;

  if (input.unresolved !== undefined) {
    findings.push({
      severity: 'info',
      code: 'unresolved-env',
      message: `${input.unresolved} not checked`,
      fix: 'put the values inline to have them checked, or check the rendered values',
    });
  }

  // The grace period the library plans with must be the one the platform enforces.
  const configured = env.KUBEGRACE_GRACE_PERIOD_SECONDS;
  const configuredValid = /^\d+$/.test(configured?.trim() ?? '');
  const fixGrace = `set KUBEGRACE_GRACE_PERIOD_SECONDS to "${Math.floor(graceSeconds)}", the value of ${graceField}`;
  if (
    configured !== undefined &&
    configuredValid &&
    Number.isFinite(graceMs) &&
    Number(configured) * 1000 !== graceMs
  ) {
    const planned = Number(configured);
    findings.push({
      severity: 'error',
      code: 'grace-period-mismatch',
      message:
        planned * 1000 > graceMs
          ? `KUBEGRACE_GRACE_PERIOD_SECONDS is ${planned} but ${graceField} is ${shownGrace}: kubegrace plans a ${planned} s shutdown and is killed after ${shownGrace}`
          : `KUBEGRACE_GRACE_PERIOD_SECONDS is ${planned} but ${graceField} is ${shownGrace}: kubegrace leaves after ${planned} s of the ${shownGrace} it has`,
      fix: fixGrace,
    });
  } else if (
    configured === undefined &&
    Number.isFinite(graceMs) &&
    graceMs !== DEFAULT_GRACE_SECONDS * 1000
  ) {
    const shorter = graceMs < DEFAULT_GRACE_SECONDS * 1000;
    findings.push({
      severity: shorter ? 'error' : 'warning',
      code: 'grace-period-unset',
      message: shorter
        ? `KUBEGRACE_GRACE_PERIOD_SECONDS is not set: kubegrace assumes ${DEFAULT_GRACE_SECONDS} s, but ${graceField} is ${shownGrace}, so without API access it is killed mid-shutdown`
        : `KUBEGRACE_GRACE_PERIOD_SECONDS is not set: kubegrace assumes ${DEFAULT_GRACE_SECONDS} s and, without API access, leaves ${formatSeconds(graceMs - DEFAULT_GRACE_SECONDS * 1000)} of the ${shownGrace} ${graceField} unused`,
      fix: fixGrace,
    });
  }

  // The preStop sleep spends grace before SIGTERM; the library must know it to place its deadline.
  const sleep = preStopSeconds(preStop);
  const configuredSleep = env.KUBEGRACE_PRE_STOP_SLEEP_SECONDS;
  if (sleep > 0 && Number.isFinite(sleep)) {
    if (
      configuredSleep !== undefined &&
      /^\d+$/.test(configuredSleep.trim()) &&
      Number(configuredSleep) !== sleep
    ) {
      findings.push({
        severity: 'error',
        code: 'prestop-sleep-mismatch',
        message: `KUBEGRACE_PRE_STOP_SLEEP_SECONDS is ${configuredSleep.trim()} but the preStop hook sleeps ${formatSeconds(sleep * 1000)} (${preStop.kind === 'none' ? '' : preStop.source})`,
        fix: `set KUBEGRACE_PRE_STOP_SLEEP_SECONDS to "${sleep}"`,
      });
    } else if (configuredSleep === undefined) {
      findings.push({
        severity: 'warning',
        code: 'prestop-sleep-unset',
        message: `the preStop hook sleeps ${formatSeconds(sleep * 1000)} but KUBEGRACE_PRE_STOP_SLEEP_SECONDS is not set: without API access the deadline after SIGTERM ignores the grace the sleep used`,
        fix: `set KUBEGRACE_PRE_STOP_SLEEP_SECONDS to "${sleep}"`,
      });
    }
  }
  // `kubegrace prestop` starts the shutdown and returns once the service accepted: nothing to count.
  if (preStop.kind === 'exec' && !KUBEGRACE_PRESTOP.test(preStop.command)) {
    findings.push({
      severity: 'info',
      code: 'prestop-unknown-duration',
      message: `preStop exec "${preStop.command}" holds SIGTERM back for an unknown time; counted as 0 s`,
      fix: 'prefer lifecycle.preStop.sleep (or exec sleep N) so the budget can count it, or make sure the command returns at once',
    });
  }

  const budget = podBudget(settings, { graceSeconds, preStop });
  const timing: TimingReport = {
    graceMs,
    graceSource,
    preStop,
    terms: budget.terms,
    totalMs: budget.totalMs,
    spareMs: graceMs - budget.totalMs,
  };
  if (!budget.fits) {
    // The propagation wait alone (after the preStop sleep) may already exceed the grace period: say that,
    // it is the root of the problem and the general budget finding would only repeat it.
    const early = budget.terms.filter((t) =>
      [
        'preStopSleepSeconds',
        'unreadyTimeoutMs',
        'propagation.maxMs',
        'propagation.delayMs',
        'safetyMarginMs',
      ].includes(t.option),
    );
    const earlyMs = early.reduce((sum, t) => sum + t.ms, 0);
    const needed = Number.isFinite(budget.totalMs) ? Math.ceil(budget.totalMs / 1000) : undefined;
    const largest = [...budget.terms]
      .filter((t) => t.option !== 'safetyMarginMs')
      .sort((a, b) => b.ms - a.ms)[0];
    const raise =
      needed === undefined
        ? 'replace the endless preStop sleep with a bounded one'
        : `raise ${graceField} to at least ${needed} s (and KUBEGRACE_GRACE_PERIOD_SECONDS to match)`;
    if (earlyMs > graceMs) {
      const propagationTerm = early.find((t) => t.option.startsWith('propagation.'));
      findings.push({
        severity: 'error',
        code: 'propagation-exceeds-grace',
        message:
          `the propagation wait does not fit: ${formatTerms(early)} = ${formatSeconds(earlyMs)} > ${graceField} ${shownGrace}; ` +
          'the pod is killed while it still waits for traffic to move away, before draining anything',
        fix: `${raise}, or shorten ${sleep > 0 ? 'the preStop sleep or ' : ''}${propagationTerm?.source.split(' / ')[1] ?? 'the propagation wait'}`,
      });
    } else {
      findings.push({
        severity: 'error',
        code: 'budget-exceeds-grace',
        message: `shutdown budget ${formatSeconds(budget.totalMs)} exceeds ${graceField} ${shownGrace}: ${formatTerms(budget.terms)} = ${formatSeconds(budget.totalMs)}`,
        fix: `${raise}, or shorten the largest terms${largest ? ` (${largest.name} ${formatSeconds(largest.ms)}: ${largest.source.split(' / ').pop() ?? largest.source})` : ''}`,
      });
    }
  }
  return { timing, settings, findings };
}

function probeFindings(container: ContainerLike, settings: ResolvedSettings, serving: boolean): Finding[] {
  const findings: Finding[] = [];
  const liveness = probePath(container.livenessProbe);
  const readiness = probePath(container.readinessProbe);
  if (liveness === '/readyz') {
    findings.push({
      severity: 'error',
      code: 'liveness-on-readyz',
      message:
        'livenessProbe points at /readyz: readiness fails on purpose during a shutdown (and while starting), so the kubelet restarts the draining container',
      fix: 'point livenessProbe.httpGet.path at /livez',
    });
  }
  if (readiness === '/livez') {
    findings.push({
      severity: 'error',
      code: 'readiness-on-livez',
      message:
        'readinessProbe points at /livez: /livez stays 200 while draining, so the failing readiness never takes the pod out of its Services',
      fix: 'point readinessProbe.httpGet.path at /readyz',
    });
  }
  const livenessGrpc = grpcService(container.livenessProbe);
  const readinessGrpc = grpcService(container.readinessProbe);
  // kubegrace/grpc: "" (the overall status) and the readiness services turn NOT_SERVING at SIGTERM.
  if (livenessGrpc !== undefined && (livenessGrpc === '' || livenessGrpc === readinessGrpc)) {
    findings.push({
      severity: 'error',
      code: 'grpc-liveness-on-readiness',
      message: `livenessProbe asks gRPC health service ${JSON.stringify(livenessGrpc)}, ${livenessGrpc === '' ? 'the overall status, which follows readiness' : "the readiness probe's service"}: it turns NOT_SERVING on purpose during a shutdown (and while starting), so the kubelet restarts the draining container`,
      fix: 'set livenessProbe.grpc.service to "liveness" (kubegrace/grpc\'s livenessService, SERVING while draining)',
    });
  }
  if (serving && !container.readinessProbe) {
    findings.push({
      severity: 'error',
      code: 'missing-readiness-probe',
      message:
        'no readinessProbe: the pod counts as ready before it listens, and the 503 of /readyz during a shutdown reaches nobody',
      fix: `add readinessProbe: { httpGet: { path: /readyz, port: ${settings.probes.port} }, periodSeconds: 2, failureThreshold: 2 }`,
    });
  }
  if (settings.managementServer) {
    const ports = Array.isArray((container as { ports?: unknown }).ports)
      ? (container as { ports: { name?: unknown; containerPort?: unknown }[] }).ports
      : [];
    for (const [field, probe] of [
      ['livenessProbe', container.livenessProbe],
      ['readinessProbe', container.readinessProbe],
      ['startupProbe', container.startupProbe],
    ] as const) {
      const path = probePath(probe);
      if (path === undefined || !PROBE_PATHS.has(path)) continue;
      const rawPort = probe?.httpGet?.port;
      const port =
        typeof rawPort === 'number'
          ? rawPort
          : typeof rawPort === 'string'
            ? /^\d+$/.test(rawPort)
              ? Number(rawPort)
              : ports.find((p) => p.name === rawPort)?.containerPort
            : undefined;
      if (typeof port === 'number' && settings.probes.port !== 0 && port !== settings.probes.port) {
        findings.push({
          severity: 'warning',
          code: 'probe-port-mismatch',
          message: `${field} asks port ${port} for ${path}, but kubegrace serves its probes on port ${settings.probes.port} (KUBEGRACE_PROBES_PORT)`,
          fix: `set ${field}.httpGet.port to ${settings.probes.port}, or KUBEGRACE_PROBES_PORT to "${port}"`,
        });
      }
    }
  }
  return findings;
}

export function checkPod(
  pod: PodTemplate,
  options: { readonly all: boolean },
): { readonly reports: readonly ContainerReport[]; readonly skipped: SkippedWorkload | undefined } {
  const containers = Array.isArray(pod.spec.containers) ? (pod.spec.containers as ContainerLike[]) : [];
  const chosen = options.all
    ? containers.map((c, i) => [c, i] as const)
    : containers.map((c, i) => [c, i] as const).filter(([c]) => usesKubegrace(c));
  if (chosen.length === 0) {
    return {
      reports: [],
      skipped: {
        location: pod.location,
        kind: pod.kind,
        name: pod.name,
        reason:
          containers.length === 0
            ? 'no containers'
            : 'no container uses kubegrace (no KUBEGRACE_* env, no /livez, /readyz or /startupz probe, no kubegrace preStop hook); --all checks it anyway',
      },
    };
  }
  const grace = graceOf(pod.spec);
  const reports = chosen.map(([container, index]): ContainerReport => {
    const { values, indirect } = envOf(container);
    const preStop = preStopOf(container);
    const unresolved = indirect.filter((k) => k.startsWith('KUBEGRACE_'));
    const { timing, settings, findings } = timingFindings({
      env: values,
      unresolved:
        unresolved.length === 0
          ? undefined
          : `${unresolved.join(', ')} ${unresolved.length === 1 ? 'comes' : 'come'} from valueFrom (ConfigMap, Secret or field):`,
      graceMs: grace.seconds * 1000,
      graceField: 'terminationGracePeriodSeconds',
      graceExplicit: grace.explicit,
      preStop,
    });
    return {
      location: { ...pod.location, line: pod.containerLines[index] ?? pod.location.line },
      kind: pod.kind,
      name: pod.name,
      namespace: pod.namespace,
      container: nameOf(container) || `#${index}`,
      timing,
      findings: [
        ...findings,
        ...probeFindings(container, settings, pod.serving),
        ...signalWrapperFinding(container, preStop, settings.probes.port),
        ...stopSignalFinding(container, settings.signals),
      ],
    };
  });
  return { reports, skipped: undefined };
}

/** A unit with no sign of kubegrace is skipped, as a workload would be, unless `all`. */
export function checkUnit(
  unit: SystemdUnit,
  options: { readonly all: boolean } = { all: false },
): { readonly report: ContainerReport | undefined; readonly skipped: SkippedWorkload | undefined } {
  if (!options.all && !unitUsesKubegrace(unit)) {
    const files =
      unit.environmentFiles.length === 0
        ? ''
        : ` (EnvironmentFile=${unit.environmentFiles.join(', ')} may hold some; this check cannot read it)`;
    return {
      report: undefined,
      skipped: {
        location: unit.location,
        kind: 'systemd unit',
        name: unit.name,
        reason: `no sign of kubegrace (no KUBEGRACE_* in Environment=${files}, no kubegrace in an Exec*= line); --all checks it anyway`,
      },
    };
  }
  return { report: unitReport(unit), skipped: undefined };
}

function unitReport(unit: SystemdUnit): ContainerReport {
  const explicit = unit.timeoutStopMs !== undefined;
  const graceMs = unit.timeoutStopMs ?? SYSTEMD_DEFAULT_TIMEOUT_STOP_MS;
  const { timing, settings, findings } = timingFindings({
    env: unit.env,
    unresolved:
      unit.environmentFiles.length === 0
        ? undefined
        : `KUBEGRACE_* variables in EnvironmentFile=${unit.environmentFiles.join(', ')}:`,
    graceMs,
    graceField: 'TimeoutStopSec',
    graceExplicit: explicit,
    preStop: { kind: 'none' },
  });
  const signal = unit.killSignal?.replace(/^(?!SIG)/, 'SIG');
  if (signal !== undefined && !(settings.signals as readonly string[]).includes(signal)) {
    findings.push({
      severity: 'warning',
      code: 'kill-signal',
      message: `KillSignal=${unit.killSignal} is not one of the signals kubegrace shuts down on (${settings.signals.join(', ')})`,
      fix: `remove KillSignal= (systemd sends SIGTERM) or add ${signal} to KUBEGRACE_SIGNALS`,
    });
  }
  return {
    location: unit.location,
    kind: 'systemd unit',
    name: unit.name,
    namespace: undefined,
    container: 'service',
    timing,
    findings,
  };
}

/** A PM2 app as `pm2-runtime` runs it: PID 1 sends `kill_signal`, then SIGKILL after `kill_timeout`. */
export function checkPm2App(
  app: Pm2App,
  options: { readonly all: boolean } = { all: false },
): { readonly report: ContainerReport | undefined; readonly skipped: SkippedWorkload | undefined } {
  if (!options.all && !Object.keys(app.env).some((key) => key.startsWith('KUBEGRACE_'))) {
    return {
      report: undefined,
      skipped: {
        location: app.location,
        kind: 'pm2 app',
        name: app.name,
        reason: 'no sign of kubegrace (no KUBEGRACE_* in env or env_production); --all checks it anyway',
      },
    };
  }
  // PM2 kills the app kill_timeout after its signal: that, not the pod's grace period, is the limit.
  const { timing, settings, findings } = timingFindings({
    env: app.env,
    unresolved: undefined,
    graceMs: app.killTimeoutMs ?? PM2_DEFAULT_KILL_TIMEOUT_MS,
    graceField: 'kill_timeout',
    graceExplicit: app.killTimeoutMs !== undefined,
    preStop: { kind: 'none' },
  });
  // pm2 stops an app with SIGINT unless kill_signal says otherwise.
  const signal = (app.killSignal ?? 'SIGINT').toUpperCase().replace(/^(?!SIG)/, 'SIG');
  if (!(settings.signals as readonly string[]).includes(signal)) {
    findings.push({
      severity: 'error',
      code: 'kill-signal',
      message: `pm2 stops the app with ${signal}${app.killSignal === undefined ? ' (its default)' : ' (kill_signal)'}, which is not one of the signals kubegrace shuts down on (${settings.signals.join(', ')})`,
      fix: `set kill_signal to SIGTERM or add ${signal} to KUBEGRACE_SIGNALS`,
    });
  }
  if (app.clusterMode) {
    findings.push({
      severity: 'error',
      code: 'pm2-cluster-mode',
      message:
        'pm2 cluster mode (exec_mode cluster or instances > 1): the instances share the management port through pm2, so /readyz answers for whichever instance pm2 picks and /prestop reaches one',
      fix: 'run one fork-mode instance; for several cores make it a node:cluster primary with kubegrace/cluster (docs/pm2.md)',
    });
  }
  return {
    report: {
      location: app.location,
      kind: 'pm2 app',
      name: app.name,
      namespace: undefined,
      container: 'app',
      timing,
      findings,
    },
    skipped: undefined,
  };
}
