/**
 * The probe routes as plain `(req, res)` handlers, so the same code answers on the management
 * server and inside an express app. Bodies are tiny JSON:
 *   200 {"status":"live"}    503 {"status":"not_live","reason":…}
 *   200 {"status":"ready"}   503 {"status":"not_ready","reason":…}
 *   200 {"status":"started"} 503 {"status":"not_started","reason":…}
 * `reason` is one of `starting`, `draining`, `stopped`, `fatal`, `check_failed`; `checks` is added
 * only when details are on and checks ran.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { invalidOption } from '../errors.js';
import type { Lifecycle } from '../lifecycle.js';
import type { CheckResult, CheckRun, CheckSet } from './checks.js';

export interface ProbeHandlerOptions {
  readonly lifecycle: Pick<Lifecycle, 'state' | 'phase' | 'live' | 'started'>;
  readonly readiness: CheckSet;
  readonly liveness: CheckSet;
  /** Time limit of each check, in ms. */
  readonly checkTimeoutMs: number;
  /** Include each check's result in bodies. */
  readonly details: boolean;
  /** `/readyz` turns 503 when the shutdown starts, or only when its drain phase starts. */
  readonly readinessUntil: 'shutdown' | 'drain';
}

export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export type ProbeReason = 'starting' | 'draining' | 'stopped' | 'fatal' | 'check_failed';

const ALLOW = 'GET, HEAD';

interface Verdict {
  readonly ok: boolean;
  readonly reason?: ProbeReason;
  readonly checks?: readonly CheckResult[];
}

/** Writes a small JSON answer; HEAD gets the same status and headers without the body. */
export function sendJson(
  req: IncomingMessage,
  res: ServerResponse,
  statusCode: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  // The client may have gone, or another layer may have answered, while checks ran.
  if (res.headersSent || res.writableEnded || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(statusCode, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(req.method === 'HEAD' ? undefined : text);
}

export function createProbeRoutes(options: ProbeHandlerOptions): ReadonlyMap<string, RouteHandler> {
  const { lifecycle, readiness, liveness, checkTimeoutMs, details, readinessUntil } = options;
  if (!Number.isInteger(checkTimeoutMs) || checkTimeoutMs <= 0) {
    throw invalidOption('probes.checkTimeoutMs', 'a positive integer (ms)', checkTimeoutMs);
  }
  if (readinessUntil !== 'shutdown' && readinessUntil !== 'drain') {
    throw invalidOption('probes.readinessUntil', "one of 'shutdown', 'drain'", readinessUntil);
  }

  const runReadiness = coalesce(readiness, checkTimeoutMs);
  const runLiveness = coalesce(liveness, checkTimeoutMs);

  /** Why readiness fails regardless of checks, or undefined when the checks decide. */
  function readinessGate(): ProbeReason | undefined {
    if (!lifecycle.live) return 'fatal';
    switch (lifecycle.state) {
      case 'ready':
        return undefined;
      case 'starting':
        return 'starting';
      case 'stopped':
        return 'stopped';
      case 'draining': {
        // Keeping 200 through the propagation wait keeps kube-proxy's fallback to terminating
        // endpoints (KEP-1669) available when every endpoint is terminating.
        const phase = lifecycle.phase;
        const stillServing = readinessUntil === 'drain' && (phase === 'unready' || phase === 'propagate');
        return stillServing ? undefined : 'draining';
      }
    }
  }

  async function readyz(): Promise<Verdict> {
    // No checks while the answer is already known: a draining pod must say so at once.
    const before = readinessGate();
    if (before) return { ok: false, reason: before };
    const run = await runReadiness();
    // The shutdown may have begun while the checks ran; the newer state wins.
    const after = readinessGate();
    if (after) return { ok: false, reason: after };
    return fromRun(run);
  }

  async function livez(): Promise<Verdict> {
    if (!lifecycle.live) return { ok: false, reason: 'fatal' };
    const run = await runLiveness();
    if (!lifecycle.live) return { ok: false, reason: 'fatal' };
    return fromRun(run);
  }

  function startupz(): Verdict {
    if (lifecycle.started) return { ok: true };
    const state = lifecycle.state;
    return { ok: false, reason: !lifecycle.live ? 'fatal' : state === 'ready' ? 'starting' : state };
  }

  function fromRun(run: CheckRun): Verdict {
    return run.ok
      ? { ok: true, checks: run.results }
      : { ok: false, reason: 'check_failed', checks: run.results };
  }

  function route(passing: string, failing: string, evaluate: () => Verdict | Promise<Verdict>): RouteHandler {
    return async (req, res) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        sendJson(req, res, 405, { status: 'method_not_allowed' }, { allow: ALLOW });
        return;
      }
      let verdict: Verdict;
      try {
        verdict = await evaluate();
      } catch {
        // A broken CheckSet must read as unhealthy, never as a crashed probe server.
        verdict = { ok: false, reason: 'check_failed' };
      }
      const body: Record<string, unknown> = { status: verdict.ok ? passing : failing };
      if (verdict.reason) body['reason'] = verdict.reason;
      if (details && verdict.checks && verdict.checks.length > 0) body['checks'] = verdict.checks;
      sendJson(req, res, verdict.ok ? 200 : 503, body);
    };
  }

  return new Map<string, RouteHandler>([
    ['/livez', route('live', 'not_live', livez)],
    ['/readyz', route('ready', 'not_ready', readyz)],
    ['/startupz', route('started', 'not_started', startupz)],
  ]);
}

/**
 * Concurrent probes share one run: a check that hangs until its time limit is then run once per
 * limit, not once per request piling up behind it.
 */
function coalesce(set: CheckSet, timeoutMs: number): () => Promise<CheckRun> {
  let pending: Promise<CheckRun> | undefined;
  return () => {
    if (set.size === 0) return Promise.resolve({ ok: true, results: [] });
    if (!pending) {
      const current = set.run(timeoutMs).finally(() => {
        if (pending === current) pending = undefined;
      });
      pending = current;
    }
    return pending;
  };
}
