/**
 * `clusterPrimary()`: the pod's lifecycle in the `node:cluster` primary. The primary holds the
 * signals, the deadline, the management port and the Kubernetes integration; it forks the workers,
 * reports the pod ready when every live worker is, and in a shutdown runs their drains as one
 * participant: it tells them the shutdown began (with its timing), tells them when traffic has moved
 * away (its propagation wait sees the new connections of every worker), waits for them to leave, and
 * kills those still running when its cleanup phase ends (at the deadline at the latest).
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { KubegraceError } from '../errors.js';
import { defineIntegration, type Host, type Integration } from '../host.js';
import type { LifecycleState, PhaseContext } from '../lifecycle.js';
import { createSettingReader } from '../settings.js';
import { signalExitCode } from '../process.js';
import type { Timing, Trigger } from '../timing.js';
import { createNotifier, settle, timeLimitedSignal } from '../wait.js';
import { mergeExposition } from './exposition.js';
import {
  isWorkerMessage,
  type Answer,
  type PrimaryMessage,
  type Question,
  type TimingMessage,
} from './messages.js';

export interface ClusterPrimaryOptions {
  /** How many workers to fork. Env `KUBEGRACE_CLUSTER_WORKERS`. @default os.availableParallelism() */
  readonly workers?: number;
  /** The workers' script. @default the primary's own (`process.argv[1]`) */
  readonly exec?: string;
  /** The workers' arguments. @default the primary's own */
  readonly args?: readonly string[];
  /** Extra environment for the workers, on top of the primary's. */
  readonly env?: Readonly<Record<string, string>>;
  /** Fork a replacement when a worker dies before the shutdown. @default true */
  readonly respawn?: boolean;
}

/** One worker as the primary saw it. */
export interface ClusterWorkerStatus {
  /** `cluster.worker.id`. */
  readonly id: number;
  readonly pid: number | undefined;
  /** The worker's lifecycle state, as it last reported it. */
  readonly state: LifecycleState;
  /** Set once it exited: its code (128 + n when a signal ended it). */
  readonly exitCode?: number;
  /** The signal that ended it, if one did (a crash, or the primary's SIGKILL). */
  readonly exitSignal?: NodeJS.Signals;
  /** The primary killed it (SIGKILL) when its cleanup phase ended. */
  readonly killed?: boolean;
}

export interface ClusterPrimary {
  /** Every worker forked so far (replacements included), as last seen. */
  readonly workers: () => readonly ClusterWorkerStatus[];
  /** Resolves once the first set of workers all reported ready (the pod turned ready). */
  readonly ready: Promise<void>;
}

interface Tracked {
  readonly worker: Worker;
  state: LifecycleState;
  exitCode?: number;
  exitSignal?: NodeJS.Signals | undefined;
  /** It exited after the primary told the workers to shut down. */
  exitedInShutdown?: boolean;
  killed?: boolean;
  /** It spoke once: kubegrace runs in it and hears the primary (a message before that is lost). */
  heard?: boolean;
  /** The metrics it sent as it left its shutdown, served on /metrics until the primary exits. */
  finalMetrics?: string | undefined;
  /** Questions sent to it, by id, waiting for its answer (undefined: it left first). */
  readonly pending: Map<number, (answer: Answer | undefined) => void>;
}

/** How long `/metrics` waits for a worker's text; a worker that does not answer is left out. */
export const WORKER_METRICS_TIMEOUT_MS = 2000;

function timingMessage(timing: Timing): TimingMessage | undefined {
  const { startedAt, killAt, killAtSource } = timing;
  if (startedAt === undefined || killAt === undefined || killAtSource === undefined) return undefined;
  return {
    startedAt,
    killAt,
    killAtSource,
    gracePeriodMs: timing.gracePeriodMs,
    gracePeriodSource: timing.gracePeriodSource,
  };
}

/** The worker's trigger: the same kind, so its kill time is reckoned the same way. */
function workerTrigger(ctx: PhaseContext): Trigger {
  switch (ctx.triggerKind) {
    case 'signal':
      return { kind: 'signal', signal: ctx.trigger as NodeJS.Signals };
    case 'prestop':
      return { kind: 'prestop' };
    case 'deletion':
      return { kind: 'deletion' };
    default:
      return { kind: 'manual', reason: ctx.trigger };
  }
}

/** Kubegrace in the `node:cluster` primary: `kg.use(clusterPrimary({ workers: 2 }))`. */
export function clusterPrimary(options: ClusterPrimaryOptions = {}): Integration<ClusterPrimary> {
  const read = createSettingReader(process.env);
  read.object('cluster options', options, 'an object', ['workers', 'exec', 'args', 'env', 'respawn']);
  const count =
    read.integer('workers', options.workers, 'KUBEGRACE_CLUSTER_WORKERS', 1, 1024) ?? availableParallelism();
  const exec = read.string('exec', options.exec, undefined);
  const args = read.list('args', options.args, undefined);
  const extraEnv = read.object<Record<string, string>>('env', options.env, 'an object of strings') ?? {};
  for (const [name, value] of Object.entries(extraEnv)) {
    if (typeof value !== 'string') read.string(`env.${name}`, value, undefined);
  }
  const respawn = read.boolean('respawn', options.respawn, undefined) ?? true;
  return defineIntegration('cluster', (host) => install(host, { count, exec, args, extraEnv, respawn }));
}

function install(
  host: Host,
  config: {
    readonly count: number;
    readonly exec: string | undefined;
    readonly args: readonly string[] | undefined;
    readonly extraEnv: Readonly<Record<string, string>>;
    readonly respawn: boolean;
  },
): ClusterPrimary {
  if (!cluster.isPrimary) {
    throw new KubegraceError(
      'ERR_KUBEGRACE_INVALID_STATE',
      'clusterPrimary() runs in the node:cluster primary; this process is a worker (use clusterWorker())',
    );
  }
  if (host.installed.has('cluster')) {
    throw new KubegraceError(
      'ERR_KUBEGRACE_INVALID_STATE',
      'clusterPrimary() is already in use on this instance',
    );
  }
  host.installed.add('cluster');
  const { lifecycle, logger } = host;
  if (config.exec !== undefined || config.args !== undefined) {
    cluster.setupPrimary({
      ...(config.exec === undefined ? {} : { exec: config.exec }),
      ...(config.args === undefined ? {} : { args: [...config.args] }),
    });
  }

  const tracked = new Map<number, Tracked>();
  const changed = createNotifier();
  let shutdownSent = false;
  /** What the workers were told of the shutdown so far, for one that starts listening later. */
  let shutdownMessage: Extract<PrimaryMessage, { type: 'shutdown' }> | undefined;
  let propagatedMessage: PrimaryMessage | undefined;
  let resolveReady!: () => void;
  const ready = new Promise<void>((resolve) => (resolveReady = resolve));
  const shuttingDown = (): boolean => lifecycle.state === 'draining' || lifecycle.state === 'stopped';
  const live = (): Tracked[] => [...tracked.values()].filter((t) => t.exitCode === undefined);

  function send(t: Tracked, message: PrimaryMessage): void {
    if (t.exitCode !== undefined || !t.worker.isConnected()) return;
    // A worker that left between the check and the send is counted by its 'exit'.
    t.worker.send(message, () => {});
  }
  /** To every live worker that listens; the others are told when they first speak. */
  const broadcast = (message: PrimaryMessage): void => {
    for (const t of live()) if (t.heard) send(t, message);
  };

  function fork(): void {
    // The primary serves the probes and /prestop: the workers' management servers stay off, and
    // their settings (budgets, grace period) are the primary's through the shared environment.
    const worker = cluster.fork({ ...config.extraEnv, KUBEGRACE_MANAGEMENT_SERVER: 'false' });
    const t: Tracked = { worker, state: 'starting', pending: new Map() };
    tracked.set(worker.id, t);
    worker.on('message', (message: unknown) => {
      if (!isWorkerMessage(message)) return;
      if (!t.heard) {
        // A worker still loading when the shutdown began (a replacement, a pod deleted as it
        // started) had no listener for the news; it would serve on, ignore the drain, and be killed.
        t.heard = true;
        if (shutdownMessage) send(t, shutdownMessage);
        if (propagatedMessage) send(t, propagatedMessage);
      }
      if (message.type === 'state') {
        t.state = message.state;
        if (lifecycle.state === 'starting' && live().every((w) => w.state === 'ready')) {
          lifecycle.ready();
          resolveReady();
        }
      } else if (message.type === 'answer') {
        t.pending.get(message.id)?.(message.answer);
        t.pending.delete(message.id);
        return;
      } else if (message.type === 'connections') {
        for (let i = 0; i < message.count; i++) host.noteConnection();
      } else if (message.type === 'final-metrics') {
        t.finalMetrics = message.text;
        return;
      } else {
        // The worker was signalled itself (the whole process group was): the pod is leaving.
        void lifecycle.shutdown(message.trigger);
      }
      changed.notify();
    });
    worker.on('exit', (code: number | null, signal: NodeJS.Signals | null) => {
      for (const reply of t.pending.values()) reply(undefined);
      t.pending.clear();
      if (t.killed) return;
      t.exitCode = code ?? (signal === null ? 1 : signalExitCode(signal));
      t.exitSignal = signal ?? undefined;
      t.exitedInShutdown = shutdownSent;
      if (!shuttingDown()) {
        // Its last figures are its own business: only a worker that left in the pod's shutdown is the
        // pod's (a crash-looping one would grow every scrape).
        t.finalMetrics = undefined;
        logger.warn(`cluster worker ${worker.id} exited with code ${t.exitCode} before any shutdown`, {
          worker: worker.id,
          exitCode: t.exitCode,
        });
        if (config.respawn) fork();
        else if (live().length === 0) {
          // Nothing left to serve and nothing will be forked: a pod that stayed up would only be
          // unready for good; leaving lets the kubelet restart it.
          void lifecycle.fatal(
            new KubegraceError(
              'ERR_KUBEGRACE_WORKER_FAILED',
              `every cluster worker exited before any shutdown and respawn is off (worker ${worker.id} last, code ${t.exitCode})`,
            ),
          );
        }
      }
      changed.notify();
    });
  }

  let nextQuestion = 0;
  /** Ask a worker; undefined when it left or the signal fired first. */
  function ask(t: Tracked, about: Question, signal: AbortSignal): Promise<Answer | undefined> {
    const id = ++nextQuestion;
    return new Promise((resolve) => {
      const done = (answer: Answer | undefined): void => {
        t.pending.delete(id);
        signal.removeEventListener('abort', onAbort);
        resolve(answer);
      };
      const onAbort = (): void => done(undefined);
      if (signal.aborted || t.exitCode !== undefined || !t.worker.isConnected()) return done(undefined);
      signal.addEventListener('abort', onAbort, { once: true });
      t.pending.set(id, done);
      t.worker.send({ kubegrace: 'cluster', type: 'ask', id, about } satisfies PrimaryMessage, (error) => {
        if (error) done(undefined);
      });
    });
  }

  // The pod is ready when every live worker is: its state and its own readiness checks, asked at
  // each probe (a worker that is not listening yet is 'starting').
  host.addReadinessCheck('cluster-workers', async (signal) => {
    const running = live();
    if (running.length === 0) throw new Error('no live worker');
    const answers = await Promise.all(running.map((t) => ask(t, 'readiness', signal)));
    const unready = running
      .map((t, i) => ({ t, answer: answers[i] }))
      .filter(({ answer }) => answer?.ready !== true)
      .map(({ t, answer }) => `worker ${t.worker.id}: ${answer?.reason ?? 'no answer'}`);
    if (unready.length > 0) throw new Error(`not ready: ${unready.join(', ')}`);
    return true;
  });

  // /metrics (with kubegrace/metrics in the primary): its own text and every live worker's, and
  // the last figures of those that left during the shutdown: they exit before the primary's final
  // scrape, and their shutdown's figures (requests served, connections forced) are the pod's.
  host.exposition.extend = async (own) => {
    const limit = timeLimitedSignal(new AbortController().signal, WORKER_METRICS_TIMEOUT_MS);
    try {
      const running = live();
      const answers = await Promise.all(running.map((t) => ask(t, 'metrics', limit.signal)));
      const left = [...tracked.values()].filter((t) => t.exitCode !== undefined && t.finalMetrics);
      return mergeExposition([
        { text: own },
        ...running.map((t, i) => ({ text: answers[i]?.text ?? '', label: `worker="${t.worker.id}"` })),
        ...left.map((t) => ({ text: t.finalMetrics ?? '', label: `worker="${t.worker.id}"` })),
      ]);
    } finally {
      limit.dispose();
    }
  };

  lifecycle.on('deadline', () => {
    const timing = timingMessage(lifecycle.timing);
    if (!shutdownSent || !timing) return;
    if (shutdownMessage) shutdownMessage = { ...shutdownMessage, timing };
    broadcast({ kubegrace: 'cluster', type: 'timing', timing });
  });

  const allGone = (): boolean => live().length === 0;
  host.addParticipant({
    name: 'cluster-workers',
    unready(ctx) {
      shutdownSent = true;
      const timing = timingMessage(lifecycle.timing);
      if (timing) {
        shutdownMessage = { kubegrace: 'cluster', type: 'shutdown', trigger: workerTrigger(ctx), timing };
        broadcast(shutdownMessage);
      }
    },
    async drain(ctx) {
      propagatedMessage = { kubegrace: 'cluster', type: 'propagated', report: host.propagation };
      broadcast(propagatedMessage);
      await settle({ isDone: allGone, subscribe: changed.subscribe, signal: ctx.signal });
    },
    async cleanup(ctx) {
      await settle({
        isDone: allGone,
        subscribe: changed.subscribe,
        signal: ctx.signal,
        force: () => {
          for (const t of live()) {
            // Recorded now: its 'exit' comes after the summary is written.
            t.killed = t.worker.process.kill('SIGKILL');
            if (t.killed) {
              t.exitSignal = 'SIGKILL';
              t.exitCode = signalExitCode('SIGKILL');
              t.exitedInShutdown = true;
            }
          }
        },
      });
      const killed = [...tracked.values()].filter((t) => t.killed);
      ctx.reportForced(killed.length);
      // A worker that died during the shutdown was counted, not waited for; it still fails it.
      const failed = [...tracked.values()].filter((t) => t.exitedInShutdown && t.exitCode !== 0);
      if (failed.length > 0) {
        throw new KubegraceError(
          'ERR_KUBEGRACE_WORKER_FAILED',
          `${failed.length} of ${tracked.size} cluster workers did not finish cleanly: ` +
            failed
              .map((t) =>
                t.killed
                  ? `worker ${t.worker.id} killed when the cleanup phase ended`
                  : `worker ${t.worker.id} exited with code ${t.exitCode}`,
              )
              .join(', '),
        );
      }
    },
  });

  const status = (): ClusterWorkerStatus[] =>
    [...tracked.values()].map((t) => ({
      id: t.worker.id,
      pid: t.worker.process.pid,
      state: t.state,
      ...(t.exitCode === undefined ? {} : { exitCode: t.exitCode }),
      ...(t.exitSignal === undefined ? {} : { exitSignal: t.exitSignal }),
      ...(t.killed ? { killed: true } : {}),
    }));
  host.addSummaryFields(() => ({ workers: status() }));

  for (let i = 0; i < config.count; i++) fork();
  return { workers: status, ready };
}
