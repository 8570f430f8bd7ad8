/**
 * A real service for the fault-injection tests (test/reliability), run as a child process by
 * `fault-child.ts`. Like `service.ts` it reports JSON lines on stdout (`listening`, `state`, `phase`,
 * `warning`, `summary`), and it is instrumented: `/metrics` on the management port serves a registry
 * of its own, and the last line before the process leaves is `{"event":"exit","code":…,"metrics":…}`
 * with the text of the shutdown metrics, so even a forced exit (no exit phase) leaves its figures.
 *
 * `KUBEGRACE_*` settings pass straight through; faults come from `FAULT_*` variables:
 *   FAULT_HOOK=hang|throw|late|ignore-signal    one hook that misbehaves this way
 *   FAULT_HOOK_PHASE=unready|drain|cleanup      its phase (default cleanup)
 *   FAULT_HOOK_TIMEOUT_MS                       its own timeout (default 400)
 *   FAULT_HOOK_LATE_MS                          `late`/`ignore-signal`: when it resolves (default 2 × timeout)
 *   FAULT_PARTICIPANT_IGNORES_SIGNAL=<phase>    a participant without a timeout of its own that resolves
 *                                               only after 60 s, whatever its signal says
 *   FAULT_BLOCK_LOOP_MS, FAULT_BLOCK_AFTER_MS   block the event loop that long, that long after SIGTERM
 *   FAULT_BLOCK_NATIVE=1                        … in a synchronous system call (`sleep` run by execFileSync)
 *                                               rather than in JavaScript
 *   FAULT_REGISTRY=consul                       register in Consul (KUBEGRACE_REGISTRY_* configure it)
 *   FAULT_APP_ERROR_LISTENER=1                  the app handles its server's 'error' events (reports them)
 *   FAULT_FINAL_SCRAPE_MS                       hold the exit phase this long for a scrape that sees the
 *                                               outcome (instrument's `finalScrape`; default off)
 *   FAULT_LOGGER=json                           kubegrace's default logger (JSON lines on stderr) instead of none
 *   FAULT_HOOK=exit                             the hook calls process.exit(FAULT_HOOK_EXIT_CODE, default 0)
 *   FAULT_SIGNAL_AT_EXIT=SIGTERM                the process sends itself this signal as it exits (a
 *                                               kubelet's SIGTERM in the last moment of a shutdown)
 *   FAULT_EXIT_PHASE_ERROR=throw|reject|fatal   an exit-phase participant that throws uncaught, leaves a
 *                                               rejection unhandled, or calls kg.fatal()
 *   FAULT_SHUTDOWN_LISTENER_BLOCK_MS            a `kg.on('shutdown')` listener blocks the loop this long
 *   FAULT_EXIT_DELAY_MS                         the `exit` option waits this long (asynchronously) before
 *                                               it ends the process
 *
 * App routes: `/work?ms=N` answers `ok` after N ms; `/upload` answers once the request body ended;
 * `/block?ms=N` stalls the event loop N ms, then answers; `/fds` answers the open descriptor count.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { Registry } from 'prom-client';
import { createKubegrace, type Participant, type PhaseName } from '../../src/index.js';
import { metrics as metricsIntegration } from '../../src/metrics/index.js';

const env = process.env;
const emit = (payload: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify({ t: Date.now(), ...payload })}\n`);
};
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const registry = new Registry();
const METRICS_SHOWN = [
  'kubegrace_shutdowns_total',
  'kubegrace_hook_duration_seconds',
  'kubegrace_registry_deregistration_duration_seconds',
  'kubegrace_connections_closed_total',
];

const kg = createKubegrace({
  // Without the JSON logger, warnings that come through the logger (an integration's, outside a
  // phase) are emitted like the lifecycle's own.
  ...(env.FAULT_LOGGER === 'json'
    ? {}
    : {
        logger: {
          info: () => {},
          warn: (message: string, fields?: Readonly<Record<string, unknown>>) => {
            if (fields?.component !== undefined) emit({ event: 'warning', message });
          },
          error: () => {},
        },
      }),
  probes: { port: 0, host: env.FAULT_PROBES_HOST ?? '127.0.0.1' },
  // The metrics as they stand when the process leaves, whatever the way out (a forced exit skips
  // the exit phase, so no scrape can see its outcome). Not with FAULT_SIGNAL_AT_EXIT: that fault is
  // about kubegrace's own way out.
  ...(env.FAULT_SIGNAL_AT_EXIT === undefined
    ? {
        exit: (code: number) => {
          void Promise.all(METRICS_SHOWN.map((name) => registry.getSingleMetricAsString(name)))
            .then((texts) => emit({ event: 'exit', code, metrics: texts.join('\n') }))
            .then(() => sleep(Number(env.FAULT_EXIT_DELAY_MS ?? 0)))
            .finally(() => process.exit(code));
        },
      }
    : {}),
});
kg.use(
  metricsIntegration({
    registry,
    ...(env.FAULT_FINAL_SCRAPE_MS ? { finalScrape: { timeoutMs: Number(env.FAULT_FINAL_SCRAPE_MS) } } : {}),
  }),
);

kg.on('state', ({ state }) => emit({ event: 'state', state }));
kg.on('phase', ({ phase, status, durationMs }) => emit({ event: 'phase', phase, status, durationMs }));
kg.on('warning', ({ message }) => emit({ event: 'warning', message }));
kg.on('shutdown', (summary) =>
  emit({
    event: 'summary',
    trigger: summary.trigger,
    outcome: summary.outcome,
    exitCode: summary.exitCode,
    durationMs: summary.durationMs,
    deadlineAt: summary.deadlineAt,
    startedAt: summary.startedAt,
    phases: summary.phases,
    forced: summary.forced,
    failures: summary.failures.map((f) => `${f.phase}:${f.name}:${f.status}`),
  }),
);

const openFds = (): number => readdirSync('/proc/self/fd').length;

/** A synchronous stall: a CPU-bound request, a huge JSON.parse, a sync fs call on a dead mount. */
function block(ms: number): void {
  emit({ event: 'block', status: 'start', ms });
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // spin
  }
  emit({ event: 'block', status: 'end' });
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname === '/fds') {
    res.end(String(openFds()));
    return;
  }
  if (url.pathname === '/block') {
    // A CPU-bound request: the loop stalls inside an I/O callback, so timers run before the
    // connections that queued up meanwhile are accepted.
    block(Number(url.searchParams.get('ms') ?? 0));
    res.end('blocked');
    return;
  }
  if (url.pathname === '/upload') {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => (bytes += chunk.length));
    req.on('end', () => res.end(`received ${bytes}`));
    return;
  }
  const ms = Number(url.searchParams.get('ms') ?? 0);
  setTimeout(() => res.end('ok'), ms);
});
kg.attach(server);
if (env.FAULT_APP_ERROR_LISTENER === '1') {
  server.on('error', (error: NodeJS.ErrnoException) =>
    emit({ event: 'server-error', code: error.code, syscall: error.syscall }),
  );
}

if (env.FAULT_SIGNAL_AT_EXIT !== undefined) {
  const signal = env.FAULT_SIGNAL_AT_EXIT as NodeJS.Signals;
  process.on('exit', () => process.kill(process.pid, signal));
}

// ---- misbehaving hooks and participants
const hookKind = env.FAULT_HOOK;
if (hookKind !== undefined) {
  const phase = (env.FAULT_HOOK_PHASE ?? 'cleanup') as 'unready' | 'drain' | 'cleanup';
  const timeoutMs = Number(env.FAULT_HOOK_TIMEOUT_MS ?? 400);
  const lateMs = Number(env.FAULT_HOOK_LATE_MS ?? timeoutMs * 2);
  const hooks: Record<string, () => Promise<void>> = {
    hang: () => new Promise<never>(() => {}),
    throw: async () => {
      await sleep(20);
      throw new Error('hook failed on purpose');
    },
    // Resolves after its timeout (a flush that takes longer than it was given).
    late: () => sleep(lateMs),
    // Would stop on its signal if it looked at it; it does not.
    'ignore-signal': () => sleep(lateMs),
    exit: async () => {
      await sleep(20);
      process.exit(Number(env.FAULT_HOOK_EXIT_CODE ?? 0));
    },
  };
  const fn = hooks[hookKind];
  if (!fn) throw new Error(`FAULT_HOOK=${hookKind}: unknown`);
  const options = { name: `fault-${hookKind}`, timeoutMs };
  if (phase === 'unready') kg.beforeShutdown(fn, options);
  else if (phase === 'drain') kg.onDrain(fn, options);
  else kg.onCleanup(fn, options);
}

const exitPhaseError = env.FAULT_EXIT_PHASE_ERROR;
if (exitPhaseError !== undefined) {
  kg.addParticipant({
    name: 'fault-exit-phase',
    exit: async () => {
      await sleep(5);
      if (exitPhaseError === 'throw') {
        setTimeout(() => {
          throw new Error('uncaught in the exit phase');
        }, 0);
      } else if (exitPhaseError === 'reject') {
        void Promise.reject(new Error('unhandled in the exit phase'));
      } else void kg.fatal(new Error('fatal() in the exit phase'));
      await sleep(50);
    },
  });
}

if (env.FAULT_SHUTDOWN_LISTENER_BLOCK_MS !== undefined) {
  const ms = Number(env.FAULT_SHUTDOWN_LISTENER_BLOCK_MS);
  kg.on('shutdown', () => block(ms));
}

const ignoring = env.FAULT_PARTICIPANT_IGNORES_SIGNAL as Exclude<PhaseName, 'exit'> | undefined;
if (ignoring !== undefined) {
  // No timeoutMs: only the phase budget and the deadline bound it.
  const participant: Participant = { name: 'deaf-participant', [ignoring]: () => sleep(60_000) };
  kg.addParticipant(participant);
}

if (env.FAULT_BLOCK_LOOP_MS !== undefined) {
  const blockMs = Number(env.FAULT_BLOCK_LOOP_MS);
  const afterMs = Number(env.FAULT_BLOCK_AFTER_MS ?? 100);
  kg.on('state', ({ state }) => {
    if (state !== 'draining') return;
    setTimeout(() => {
      if (env.FAULT_BLOCK_NATIVE === '1') {
        emit({ event: 'block', status: 'start', ms: blockMs, native: true });
        execFileSync('sleep', [String(blockMs / 1000)]);
        emit({ event: 'block', status: 'end' });
      } else block(blockMs);
    }, afterMs);
  });
}

if (env.FAULT_REGISTRY === 'consul') {
  const { registry: registryIntegration } = await import('../../src/registry/index.js');
  const { createConsulRegistry } = await import('../../src/registry/consul/index.js');
  // Its warnings outside a phase go to kubegrace's logger; metrics get its deregistration.
  kg.use(registryIntegration(createConsulRegistry()));
}

server.listen(0, '127.0.0.1', () => {
  void kg.start().then(() => {
    kg.ready();
    const address = server.address();
    emit({
      event: 'listening',
      port: typeof address === 'object' && address ? address.port : 0,
      managementPort: kg.managementAddress?.port,
      fds: openFds(),
    });
  });
});
