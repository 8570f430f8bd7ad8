/**
 * The example kubegrace service the demo and the rolling benchmark run as child processes: a plain
 * `node:http` server whose `/work?ms=N` takes N ms, with kubegrace attached. Settings come from
 * `KUBEGRACE_*` variables set by the harness; lifecycle events go to stdout as JSON lines.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createKubegrace } from '../../kubegrace.js';
import type { Logger } from '../../log.js';
import { errorText } from '../../lifecycle.js';
import { exitWithParent, handleWork, writeEvent } from './pod-events.js';

const pod = process.env.DEMO_POD_NAME ?? 'pod';

const log =
  (level: string) =>
  (msg: string, fields?: Readonly<Record<string, unknown>>): void =>
    writeEvent({ event: 'log', level, msg, ...(fields ? { fields: { ...fields } } : {}) });
const logger: Logger = { info: log('info'), warn: log('warn'), error: log('error') };

const server = createServer((req, res) => handleWork(pod, req, res));
const kubegrace = createKubegrace({ logger });

kubegrace.on('state', ({ state, previous }) => writeEvent({ event: 'state', state, previous }));
kubegrace.on('phase', ({ phase, status, durationMs }) =>
  writeEvent({ event: 'phase', phase, status, durationMs }),
);
kubegrace.on('shutdown', (summary) =>
  writeEvent({
    event: 'summary',
    outcome: summary.outcome,
    exitCode: summary.exitCode,
    durationMs: summary.durationMs,
    phases: { ...summary.phases },
    forced: summary.forced,
    failures: summary.failures.map(
      (f) => `${f.name} ${f.phase} ${f.status}${f.error === undefined ? '' : `: ${errorText(f.error)}`}`,
    ),
  }),
);

kubegrace.attach(server);
exitWithParent(() => process.exit(1));
await kubegrace.start();
server.listen(0, '127.0.0.1', () => {
  writeEvent({
    event: 'listening',
    port: (server.address() as AddressInfo).port,
    managementPort: kubegrace.managementAddress?.port ?? null,
  });
  kubegrace.ready();
});
