/**
 * `clusterWorker()`: kubegrace in a `node:cluster` worker, as a participant of the primary's
 * shutdown. The worker keeps its own drain (requests, connections, leases, hooks) but not the pod's
 * lifecycle: it has no management server (the primary serves the probes), reports its state and its
 * new connections to the primary, starts its shutdown when the primary's begins (on the primary's
 * deadline), and stops accepting only when the primary says traffic has moved away.
 */
import cluster from 'node:cluster';
import { KubegraceError } from '../errors.js';
import { defineIntegration, type Host, type Integration } from '../host.js';
import type { PropagationReport } from '../propagation/adaptive.js';
import { createSettingReader } from '../settings.js';
import type { Trigger } from '../timing.js';
import { createNotifier, settle } from '../wait.js';
import {
  isPrimaryMessage,
  type Answer,
  type Question,
  type TimingMessage,
  type WorkerMessage,
} from './messages.js';

/** No options yet: everything comes from the primary (and the environment it shares). */
export type ClusterWorkerOptions = Readonly<Record<string, never>>;

export interface ClusterWorker {
  /** `cluster.worker.id`. */
  readonly id: number;
}

/** Kubegrace in a `node:cluster` worker: `kg.use(clusterWorker())`. */
export function clusterWorker(options: ClusterWorkerOptions = {}): Integration<ClusterWorker> {
  createSettingReader({}).object('cluster worker options', options, 'an object');
  return defineIntegration('cluster-worker', (host) => install(host));
}

function install(host: Host): ClusterWorker {
  const worker = cluster.worker;
  if (!cluster.isWorker || worker === undefined) {
    throw new KubegraceError(
      'ERR_KUBEGRACE_INVALID_STATE',
      'clusterWorker() runs in a node:cluster worker; this process is the primary (use clusterPrimary())',
    );
  }
  if (host.settings.managementServer) {
    throw new KubegraceError(
      'ERR_KUBEGRACE_INVALID_OPTION',
      'managementServer must be false in a cluster worker (the primary serves the probes and /prestop; ' +
        'clusterPrimary() sets KUBEGRACE_MANAGEMENT_SERVER=false for the workers it forks), received true',
      { option: 'managementServer' },
    );
  }
  const { lifecycle } = host;
  const send = (message: WorkerMessage): void => {
    if (worker.isConnected()) worker.send(message, () => {});
  };

  let fromPrimary = false;
  let propagated: { report: PropagationReport | undefined } | undefined;
  let primaryGone = false;
  const changed = createNotifier();

  function applyTiming(timing: TimingMessage): void {
    if (lifecycle.timing.gracePeriodMs !== timing.gracePeriodMs) {
      lifecycle.adoptGracePeriod(timing.gracePeriodMs, timing.gracePeriodSource);
    }
    if (timing.killAtSource !== 'grace-period') lifecycle.tightenKillTime(timing.killAt, timing.killAtSource);
  }

  const onMessage = (message: unknown): void => {
    if (!isPrimaryMessage(message)) return;
    if (message.type === 'shutdown') {
      fromPrimary = true;
      void lifecycle.shutdown(message.trigger, { terminationStartedAt: message.timing.startedAt });
      applyTiming(message.timing);
    } else if (message.type === 'timing') {
      applyTiming(message.timing);
    } else if (message.type === 'ask') {
      void answer(message.about).then(
        (reply) => send({ kubegrace: 'cluster', type: 'answer', id: message.id, answer: reply }),
        (error: unknown) =>
          send({
            kubegrace: 'cluster',
            type: 'answer',
            id: message.id,
            answer: {
              ready: false,
              reason: error instanceof Error ? error.message : String(error),
              text: '',
            },
          }),
      );
      return;
    } else {
      propagated = { report: message.report };
    }
    changed.notify();
  };
  worker.on('message', onMessage);

  /** The primary's `/readyz` (this worker's state and own checks) and `/metrics` (its registry). */
  async function answer(about: Question): Promise<Answer> {
    if (about === 'metrics') return { text: host.exposition.collect ? await host.exposition.collect() : '' };
    if (lifecycle.state !== 'ready') return { ready: false, reason: lifecycle.state };
    const run = await host.readinessChecks.run(host.settings.probes.checkTimeoutMs);
    // The shutdown may have begun while the checks ran.
    if (lifecycle.state !== 'ready') return { ready: false, reason: lifecycle.state };
    if (run.ok) return { ready: true };
    const failed = run.results.filter((r) => !r.ok).map((r) => `${r.name}: ${r.error ?? 'failed'}`);
    return { ready: false, reason: `check failed (${failed.join('; ')})` };
  }
  // The primary is gone (crashed, killed): nobody will tell this worker when to drain.
  const onDisconnect = (): void => {
    primaryGone = true;
    void lifecycle.shutdown('primary gone');
    changed.notify();
  };
  worker.on('disconnect', onDisconnect);

  lifecycle.on('state', ({ state }) => send({ kubegrace: 'cluster', type: 'state', state }));
  send({ kubegrace: 'cluster', type: 'state', state: lifecycle.state });

  // New connections go to the primary's propagation decision, batched per turn of the event loop.
  let pending = 0;
  const flush = (): void => {
    const count = pending;
    pending = 0;
    if (count > 0) send({ kubegrace: 'cluster', type: 'connections', count });
  };
  host.addObserver({
    connectionOpened() {
      if (pending++ === 0) setImmediate(flush).unref();
    },
  });

  /** Its own fatal error: this worker leaves (the primary replaces it), not the pod. */
  let alone = false;
  host.addParticipant({
    name: 'cluster-primary',
    unready(ctx) {
      if (!fromPrimary && ctx.triggerKind === 'fatal') {
        alone = true;
        return;
      }
      // Signalled itself (a signal to the whole group, Ctrl-C): the pod is leaving; the primary leads.
      if (!fromPrimary) {
        const trigger: Trigger =
          ctx.triggerKind === 'signal'
            ? { kind: 'signal', signal: ctx.trigger as NodeJS.Signals }
            : { kind: 'manual', reason: ctx.trigger };
        send({ kubegrace: 'cluster', type: 'shutdown', trigger });
      }
    },
    // The shutdown's figures, once recorded (kubegrace/metrics records as the exit phase begins,
    // its participants all started in one turn): the primary serves them after this worker is gone.
    async exit(ctx) {
      const collect = host.exposition.collect;
      if (collect === undefined || !worker.isConnected()) return;
      await new Promise((resolve) => setImmediate(resolve));
      const text = await collect();
      await new Promise<void>((resolve) => {
        const done = (): void => {
          ctx.signal.removeEventListener('abort', done);
          resolve();
        };
        ctx.signal.addEventListener('abort', done, { once: true });
        if (!worker.isConnected()) return done();
        worker.send({ kubegrace: 'cluster', type: 'final-metrics', text } satisfies WorkerMessage, () =>
          done(),
        );
      });
    },
  });
  host.followPropagation(async (signal) => {
    await settle({
      // Alone: the primary keeps the pod's listener and hands this worker nothing once it stops
      // listening; there is nothing to wait for.
      isDone: () => alone || propagated !== undefined || primaryGone,
      subscribe: changed.subscribe,
      signal,
    });
    return propagated?.report;
  });

  return { id: worker.id };
}
