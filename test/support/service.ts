/**
 * A real service for end-to-end tests, run as a child process. Behaviour comes from environment
 * variables (`KUBEGRACE_*` settings pass straight through); it reports on stdout as JSON lines:
 * `{"event":"listening","port":…,"managementPort":…}`, then lifecycle events and the summary.
 *
 *   FIXTURE_HANG_HOOK=unready|drain|cleanup   a hook of that phase that never settles
 *   FIXTURE_HOOK_TIMEOUT_MS                    that hook's own timeout
 *   FIXTURE_HOLD_LEASE=1                       hold a work lease forever
 *   FIXTURE_THROW_DURING_DRAIN=uncaught|rejection
 *   FIXTURE_FATAL_AFTER_MS                     call fatal() that long after ready
 */
import { createServer } from 'node:http';
import { createKubegrace } from '../../src/index.js';

const env = process.env;
const emit = (payload: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify({ t: Date.now(), ...payload })}\n`);
};

const kg = createKubegrace({ logger: false, probes: { port: 0, host: '127.0.0.1' } });
kg.on('state', ({ state }) => emit({ event: 'state', state }));
kg.on('phase', ({ phase, status, durationMs }) => emit({ event: 'phase', phase, status, durationMs }));
kg.on('warning', ({ message }) => emit({ event: 'warning', message }));
kg.on('shutdown', (summary) =>
  emit({
    event: 'summary',
    outcome: summary.outcome,
    exitCode: summary.exitCode,
    durationMs: summary.durationMs,
    phases: summary.phases,
    forced: summary.forced,
    failures: summary.failures.map((f) => `${f.phase}:${f.name}:${f.status}`),
  }),
);

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const ms = Number(url.searchParams.get('ms') ?? 0);
  setTimeout(() => res.end('ok'), ms);
});
kg.attach(server);

const hang = env.FIXTURE_HANG_HOOK;
if (hang !== undefined) {
  const never = (): Promise<never> => new Promise(() => {});
  const hookOptions = { name: `hang-${hang}`, timeoutMs: Number(env.FIXTURE_HOOK_TIMEOUT_MS ?? 500) };
  if (hang === 'unready') kg.beforeShutdown(never, hookOptions);
  if (hang === 'drain') kg.onDrain(never, hookOptions);
  if (hang === 'cleanup') kg.onCleanup(never, hookOptions);
}
if (env.FIXTURE_HOLD_LEASE === '1') kg.lease('forever');
if (env.FIXTURE_THROW_DURING_DRAIN) {
  // The hook stays busy a little so the throw lands during the drain, not after the exit.
  kg.onDrain(async () => {
    setTimeout(() => {
      if (env.FIXTURE_THROW_DURING_DRAIN === 'rejection') void Promise.reject(new Error('rejected in drain'));
      else throw new Error('thrown in drain');
    }, 10);
    await new Promise((resolve) => setTimeout(resolve, 300));
  });
}

server.listen(0, '127.0.0.1', () => {
  void kg.start().then(() => {
    kg.ready();
    const address = server.address();
    emit({
      event: 'listening',
      port: typeof address === 'object' && address ? address.port : 0,
      managementPort: kg.managementAddress?.port,
    });
    if (env.FIXTURE_FATAL_AFTER_MS) {
      setTimeout(() => void kg.fatal(new Error('fixture fatal')), Number(env.FIXTURE_FATAL_AFTER_MS));
    }
  });
});
