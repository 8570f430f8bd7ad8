/** The line protocol between a demo service and its parent: one JSON object per line on stdout. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Kubegrace } from '../../kubegrace.js';
import { errorText } from '../../lifecycle.js';
import type { Logger } from '../../log.js';

export type PodEvent =
  | {
      readonly event: 'listening';
      readonly port: number;
      readonly managementPort: number | null;
      /** Where readiness is probed: `/readyz` on the management port (else the app port) by default; null for none. */
      readonly readyPath?: string | null;
      readonly readyPort?: number;
    }
  | { readonly event: 'state'; readonly state: string; readonly previous: string }
  | {
      readonly event: 'phase';
      readonly phase: string;
      readonly status: 'start' | 'end';
      readonly durationMs: number;
    }
  | { readonly event: 'signal'; readonly signal: string }
  | { readonly event: 'closed' }
  | {
      readonly event: 'log';
      readonly level: string;
      readonly msg: string;
      readonly fields?: Record<string, unknown>;
    }
  | {
      readonly event: 'summary';
      readonly outcome: string;
      readonly exitCode: number;
      readonly durationMs: number;
      readonly phases: Readonly<Record<string, number>>;
      readonly forced: number;
      readonly failures: readonly string[];
    };

/** Every line carries the child's wall clock, so the parent can place it on one timeline. */
export type TimedPodEvent = PodEvent & { readonly at: number };

export function writeEvent(event: PodEvent): void {
  // Pipes are synchronous on Linux, so a line written just before process.exit is not lost.
  process.stdout.write(`${JSON.stringify({ ...event, at: Date.now() })}\n`);
}

const MAX_WORK_MS = 120_000;

/** `/work?ms=N` answers after N ms: the request duration the load asks for. */
export function handleWork(pod: string, req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://service.demo');
  if (url.pathname !== '/work') {
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
    return;
  }
  const asked = Number(url.searchParams.get('ms') ?? '0');
  const workMs = Number.isFinite(asked) ? Math.min(Math.max(0, asked), MAX_WORK_MS) : 0;
  const reply = (): void => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ pod, workMs }));
  };
  if (workMs === 0) reply();
  else setTimeout(reply, workMs);
}

/**
 * The parent holds our stdin open; EOF means it is gone (even if it was SIGKILLed), and a demo
 * service must never outlive its harness.
 */
export function exitWithParent(exit: () => void): void {
  process.stdin.on('end', exit);
  process.stdin.on('error', exit);
  process.stdin.resume();
}

/** kubegrace's log lines as `log` events, so the parent keeps them on the pod's timeline. */
export function eventLogger(): Logger {
  const log =
    (level: string) =>
    (msg: string, fields?: Readonly<Record<string, unknown>>): void =>
      writeEvent({ event: 'log', level, msg, ...(fields ? { fields: { ...fields } } : {}) });
  return { info: log('info'), warn: log('warn'), error: log('error') };
}

/** States, phases and the shutdown summary as events: the parent's timeline and figures come from them. */
export function reportLifecycle(kubegrace: Kubegrace): void {
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
}
