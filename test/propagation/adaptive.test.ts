import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { PhaseContext } from '../../src/lifecycle.js';
import { createTrafficActivity } from '../../src/propagation/activity.js';
import {
  createAdaptivePropagation,
  type PropagationConfirmation,
  type PropagationReport,
} from '../../src/propagation/adaptive.js';
import { describePropagation, SILENCE_BASIS } from '../../src/propagation/describe.js';
import { monotonicNow } from '../../src/wait.js';

function context(signal: AbortSignal = new AbortController().signal, deadline = Date.now() + 60_000) {
  const warnings: string[] = [];
  const ctx: PhaseContext = {
    phase: 'propagate',
    signal,
    trigger: 'SIGTERM',
    triggerKind: 'signal',
    deadline,
    reportForced: () => undefined,
    warn: (message) => warnings.push(message),
    summary: undefined,
  };
  return { ctx, warnings };
}

async function wait(
  options: {
    openConnections?: number;
    confirmations?: PropagationConfirmation[];
    signal?: AbortSignal;
    deadline?: number;
    maxMs?: number;
    during?: (note: () => void) => Promise<void>;
    before?: (note: () => void) => void;
    /** New connections this many ms before the shutdown, oldest first; the pod was ready at the first. */
    history?: readonly number[];
    quietPeriodMs?: number;
    proxyAllowanceMs?: number;
  } = {},
) {
  // The clock the wait reads, set back while the history is noted.
  let offset = options.history?.[0] ?? 0;
  const now = (): number => monotonicNow() + offset;
  const activity = createTrafficActivity(now);
  let report: PropagationReport | undefined;
  const participant = createAdaptivePropagation({
    quietPeriodMs: options.quietPeriodMs ?? 50,
    minMs: 0,
    maxMs: options.maxMs ?? 600,
    proxyAllowanceMs: options.proxyAllowanceMs ?? 150,
    rateWindowMs: 60_000,
    activity,
    openConnections: () => options.openConnections ?? 0,
    confirmations: () => options.confirmations ?? [],
    onEnd: (r) => (report = r),
    now,
  });
  participant.ready?.();
  for (const at of options.history ?? []) {
    offset = at;
    activity.noteConnection();
  }
  offset = 0;
  options.before?.(() => activity.noteConnection());
  await participant.unready?.(context().ctx);
  const { ctx, warnings } = context(options.signal, options.deadline);
  const started = Date.now();
  // The wait's own timers do not hold the process (a service's servers do): hold it here.
  const hold = setInterval(() => undefined, 1000);
  try {
    await Promise.all([participant.propagate?.(ctx), options.during?.(() => activity.noteConnection())]);
  } finally {
    clearInterval(hold);
  }
  assert.ok(report, 'the wait reported how it ended');
  return { report, warnings, tookMs: Date.now() - started };
}

/** A confirmation that agrees after `ms`. */
const confirmAfter =
  (ms: number): PropagationConfirmation =>
  async () => {
    await delay(ms);
    return true;
  };

describe('adaptive propagation participant', () => {
  it('an idle pod (nothing open, no new connection) waits only the quiet period', async () => {
    const { report, warnings } = await wait();
    assert.equal(report.endedBy, 'quiet');
    assert.equal(report.strategy, 'adaptive');
    assert.equal(report.silenceBasis, 'idle');
    assert.match(describePropagation(report), /\(needed 0\.\d s, the quiet period, as the pod was idle\)$/);
    assert.deepEqual(warnings, []);
  });

  it('pooled-only clients: nothing to learn from silence, maxMs, and a warning that says so', async () => {
    const { report, warnings } = await wait({ openConnections: 3 });
    assert.equal(report.endedBy, 'max');
    assert.equal(report.requiredSilenceMs, undefined, 'no finite silence could be evidence');
    assert.equal(report.silenceBasis, undefined);
    assert.equal(warnings.length, 1);
    assert.match(
      warnings[0] ?? '',
      /propagation\.maxMs \(600 ms\): too few new connections .* pooled connections/,
    );
  });

  it('a rate too low for the wait: maxMs, and the warning gives the silence needed and what set it, as the report does', async () => {
    // Three new connections 150 ms apart: a rate, but one that asks for far more silence than 600 ms.
    const { report, warnings } = await wait({
      openConnections: 2,
      during: async (note) => {
        for (let i = 0; i < 3; i++) {
          note();
          await delay(150);
        }
      },
    });
    assert.equal(report.endedBy, 'max');
    assert.ok(
      report.requiredSilenceMs !== undefined && report.requiredSilenceMs > 600,
      `${report.requiredSilenceMs}`,
    );
    assert.ok(report.silenceBasis === 'rate' || report.silenceBasis === 'gap', report.silenceBasis);
    assert.equal(warnings.length, 1);
    const words = SILENCE_BASIS[report.silenceBasis];
    assert.ok(
      warnings[0]?.includes(
        `a silence of ${(report.requiredSilenceMs / 1000).toFixed(1)} s was needed (${words})`,
      ),
      warnings[0],
    );
  });

  it('traffic that fell away before a last straggler: no silence is evidence, the report names none, the warning says why', async () => {
    // One new connection every 100 ms for 57 s, nothing for 3 s, then one just before SIGTERM: the
    // trailing windows see the fall, so no finite silence is evidence and the wait runs to maxMs.
    const history = [...Array.from({ length: 570 }, (_, i) => -60_000 + i * 100), -50];
    const { report, warnings } = await wait({ openConnections: 1, history });
    assert.equal(report.endedBy, 'max');
    // Absent, not Infinity (which the summary line's JSON would print as null) with a basis.
    assert.equal(report.requiredSilenceMs, undefined);
    assert.equal(report.silenceBasis, undefined);
    assert.ok(!JSON.stringify(report).includes('null'), JSON.stringify(report));
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /new connections had fallen away before the last one .* too few of late/);
    assert.doesNotMatch(warnings[0] ?? '', /∞/);
  });

  it('new connections during the wait keep it open until they stop, then the silence ends it', async () => {
    let stoppedAt = 0;
    // Rates are measured by how many 100 ms bins saw a new connection: a second of them, one every
    // 50 ms, is a rate high enough (about 17/s at the 90 % bound, halved for the surge) for a silence
    // of about 1 s, inside this wait's 3 s maximum.
    const { report, warnings } = await wait({
      openConnections: 2,
      maxMs: 3000,
      before: (note) => {
        for (let i = 0; i < 5; i++) note();
      },
      during: async (note) => {
        for (let i = 0; i < 20; i++) {
          note();
          await delay(50);
        }
        stoppedAt = Date.now();
      },
    });
    assert.equal(report.endedBy, 'quiet');
    assert.ok(report.newConnections !== undefined && report.newConnections >= 20);
    assert.ok((report.ratePerSecond ?? 0) > 0);
    assert.ok(report.requiredSilenceMs !== undefined && report.requiredSilenceMs >= 50);
    // One every 50 ms for a second, then nothing: the rate, not the 50 ms floor or the gaps, sized it.
    assert.equal(report.silenceBasis, 'rate');
    assert.match(describePropagation(report), /\(needed \d\.\d s, by the rate\)$/);
    assert.ok(Date.now() >= stoppedAt);
    assert.deepEqual(warnings, []);
  });

  it('the Event says what set the silence needed', () => {
    const quiet = (silenceBasis: PropagationReport['silenceBasis']): string =>
      describePropagation({
        strategy: 'adaptive',
        endedBy: 'quiet',
        waitedMs: 3200,
        ratePerSecond: 4.2,
        requiredSilenceMs: 2400,
        silenceMs: 2410,
        ...(silenceBasis === undefined ? {} : { silenceBasis }),
      });
    const head = 'propagation wait ended after 3.2 s: no new connection for 2.4 s at 4.2 new connections/s';
    assert.equal(quiet('gap'), `${head} (needed 2.4 s, twice the longest gap between new connections)`);
    assert.equal(quiet('rate'), `${head} (needed 2.4 s, by the rate)`);
    assert.equal(quiet('quiet-period'), `${head} (needed 2.4 s, the quiet period)`);
    assert.equal(
      quiet('proxy-allowance'),
      `${head} (needed 2.4 s, capped at the proxy allowance once confirmed)`,
    );
    assert.equal(quiet(undefined), `${head} (needed 2.4 s)`);
  });

  it('confirmed: ends after the proxy allowance, and says when the confirmation came', async () => {
    const { report, tookMs } = await wait({ openConnections: 3, confirmations: [confirmAfter(60)] });
    assert.equal(report.endedBy, 'confirmed');
    assert.ok((report.confirmedAfterMs ?? 0) >= 55, `confirmed after ${report.confirmedAfterMs} ms`);
    assert.ok(tookMs >= 60 + 150 - 5, `ended ${tookMs} ms after the start: the allowance is 150 ms`);
    // Pooled clients give no rate: the silence counted after the confirmation is the allowance's, and
    // the report says so (not an endless need it did not wait for).
    assert.equal(report.requiredSilenceMs, 150);
    assert.equal(report.silenceBasis, 'proxy-allowance');
    assert.match(
      describePropagation(report),
      /the EndpointSlices showed the pod removed 0\.\d s after the start, then the proxy allowance/,
    );
  });

  it('confirmed too late for the allowance to pass within maxMs: the warning says so, not a silence', async () => {
    const { report, warnings } = await wait({ openConnections: 3, confirmations: [confirmAfter(500)] });
    assert.equal(report.endedBy, 'max');
    assert.equal(warnings.length, 1);
    assert.match(
      warnings[0] ?? '',
      /: the removal was confirmed 0\.[56] s after the start, too late for propagation\.proxyAllowanceMs \(150 ms\) to pass within it; /,
    );
  });

  it('confirmed too late for the quiet period, when it is longer than the allowance: the warning names the quiet period', async () => {
    // No allowance, a 300 ms quiet period: confirmed at 0.4 s, the wait needed until 0.7 s, past 0.6 s.
    const { report, warnings } = await wait({
      openConnections: 3,
      quietPeriodMs: 300,
      proxyAllowanceMs: 0,
      confirmations: [confirmAfter(400)],
    });
    assert.equal(report.endedBy, 'max');
    assert.equal(warnings.length, 1);
    assert.match(
      warnings[0] ?? '',
      /: the removal was confirmed 0\.[45] s after the start, too late for propagation\.quietPeriodMs \(300 ms, longer than the allowance\) to pass within it; /,
    );
  });

  it('a confirmation that cannot tell (false) leaves the decision to the silence, and says so', async () => {
    const { report } = await wait({ confirmations: [() => Promise.resolve(false)] });
    assert.equal(report.endedBy, 'quiet');
    assert.equal(report.confirmationUnavailable, true);
    assert.match(describePropagation(report), /the Kubernetes API could not confirm the removal/);
  });

  it('a confirmation that never comes: maxMs, and the warning names the EndpointSlices', async () => {
    const never: PropagationConfirmation = (signal) =>
      new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    const { report, warnings } = await wait({ confirmations: [never] });
    assert.equal(report.endedBy, 'max');
    assert.match(warnings[0] ?? '', /EndpointSlices still list this pod as ready/);
    assert.match(describePropagation(report), /reached propagation\.maxMs without evidence/);
  });

  it('the deadline cuts it short: ended by the deadline, no maxMs warning', async () => {
    const deadline = new AbortController();
    setTimeout(() => deadline.abort(), 80).unref();
    const { report, warnings } = await wait({
      openConnections: 3,
      signal: deadline.signal,
      deadline: Date.now() + 80,
    });
    assert.equal(report.endedBy, 'deadline');
    assert.deepEqual(warnings, []);
  });

  it('cut short before its maximum and the deadline (a fatal shutdown): aborted, not deadline', async () => {
    const cut = new AbortController();
    setTimeout(() => cut.abort(), 80).unref();
    const { report, warnings } = await wait({ openConnections: 3, signal: cut.signal });
    assert.equal(report.endedBy, 'aborted');
    assert.match(describePropagation(report), /cut short before its end/);
    assert.deepEqual(warnings, []);
  });

  it('a confirmation that throws at once is a failed confirmation, not the end of the wait', async () => {
    const throwing: PropagationConfirmation = () => {
      throw new Error('boom');
    };
    const { report, warnings } = await wait({ openConnections: 3, confirmations: [throwing] });
    assert.equal(report.endedBy, 'max', 'pooled clients: the silence alone cannot end it');
    assert.equal(report.confirmationUnavailable, true);
    assert.match(
      warnings[0] ?? '',
      /a propagation confirmation failed, relying on the silence alone: Error: boom/,
    );
  });

  it('a settled confirmation does not spin the wait: a handful of looks, not thousands', async () => {
    let looks = 0;
    const counting = createTrafficActivity();
    const arrivalsSince = counting.arrivalsSince.bind(counting);
    const activity = { ...counting, arrivalsSince: (from: number) => (looks++, arrivalsSince(from)) };
    Object.defineProperty(activity, 'total', { get: () => counting.total });
    Object.defineProperty(activity, 'lastConnectionAt', { get: () => counting.lastConnectionAt });
    const participant = createAdaptivePropagation({
      quietPeriodMs: 50,
      minMs: 0,
      maxMs: 600,
      proxyAllowanceMs: 300,
      rateWindowMs: 60_000,
      activity,
      openConnections: () => 3,
      confirmations: () => [() => Promise.resolve(true)],
    });
    const hold = setInterval(() => undefined, 1000);
    try {
      await participant.propagate?.(context().ctx);
    } finally {
      clearInterval(hold);
    }
    assert.ok(looks < 50, `${looks} looks in a 300 ms wait`);
  });
});

describe('createKubegrace: what ended the propagation wait', () => {
  it('is in the summary line, the propagate phase line and kg.propagation', async () => {
    const { createKubegrace } = await import('../../src/kubegrace.js');
    const lines: { message: string; fields: Readonly<Record<string, unknown>> }[] = [];
    const record = (message: string, fields: Readonly<Record<string, unknown>> = {}): void => {
      lines.push({ message, fields });
    };
    const kg = createKubegrace({
      handleSignals: false,
      logger: { info: record, warn: record, error: record },
      exit: () => undefined,
      managementServer: false,
      propagation: { quietPeriodMs: 30, maxMs: 500 },
    });
    kg.ready();
    await kg.shutdown('SIGTERM');
    assert.equal(kg.propagation?.endedBy, 'quiet', 'an idle service ends on the quiet period');
    const summary = lines.find((l) => l.message === 'shutdown complete');
    assert.deepEqual(summary?.fields.propagation, kg.propagation);
    const phase = lines.find((l) => l.message === 'phase propagate done');
    assert.equal(phase?.fields.endedBy, 'quiet');
  });
});

describe('fixed propagation participant', () => {
  async function fixed(delayMs: number, abortAfterMs: number, deadline: number): Promise<PropagationReport> {
    const { createFixedPropagation } = await import('../../src/propagation/fixed.js');
    let report: PropagationReport | undefined;
    const participant = createFixedPropagation(delayMs, (r) => (report = r));
    const cut = new AbortController();
    setTimeout(() => cut.abort(), abortAfterMs).unref();
    const hold = setInterval(() => undefined, 1000);
    try {
      await participant.propagate?.(context(cut.signal, deadline).ctx);
    } finally {
      clearInterval(hold);
    }
    assert.ok(report);
    return report;
  }

  it('the phase budget firing with the delay is still the fixed delay', async () => {
    assert.equal((await fixed(100, 99, Date.now() + 60_000)).endedBy, 'fixed');
  });

  it('cut at the deadline: deadline; cut otherwise (fatal): aborted', async () => {
    assert.equal((await fixed(1000, 50, Date.now() + 50)).endedBy, 'deadline');
    assert.equal((await fixed(1000, 50, Date.now() + 60_000)).endedBy, 'aborted');
  });
});

describe('a propagation wait that began after its phase did (a loaded machine)', () => {
  // The phase budget counts from the phase's start; a participant ahead of the wait that holds the
  // event loop makes the wait begin late, so the budget fires before the wait's own clock says it is
  // over. That is still the wait's own end (fixed delay, maxMs), never "aborted".
  async function lateWait(
    strategy: 'fixed' | 'adaptive',
    budgetMs: number,
    how: 'SIGTERM' | 'fatal' = 'SIGTERM',
    gracePeriodMs = 30_000,
  ): Promise<{ report: PropagationReport; warnings: string[]; outcome: string }> {
    const { createLifecycle } = await import('../../src/lifecycle.js');
    const { createTiming } = await import('../../src/timing.js');
    const { createFixedPropagation } = await import('../../src/propagation/fixed.js');
    const lifecycle = createLifecycle({
      budgets: { unready: 100, propagate: budgetMs, drain: 100, cleanup: 100 },
      timing: createTiming({ gracePeriodMs, gracePeriodSource: 'option', safetyMarginMs: 100 }),
      fatalTimeoutMs: 1000,
      exitCodes: { clean: 0, incomplete: 1, fatal: 70 },
      exit: () => undefined,
    });
    const warnings: string[] = [];
    lifecycle.on('warning', ({ message }) => warnings.push(message));
    lifecycle.register({
      name: 'holds-the-loop',
      propagate() {
        const until = Date.now() + 150;
        while (Date.now() < until); // synchronous: the wait below begins 150 ms into the phase
      },
    });
    let report: PropagationReport | undefined;
    const onEnd = (r: PropagationReport): void => {
      report = r;
    };
    lifecycle.register(
      strategy === 'fixed'
        ? createFixedPropagation(budgetMs, onEnd)
        : createAdaptivePropagation({
            activity: createTrafficActivity(),
            openConnections: () => 3,
            quietPeriodMs: 50,
            minMs: 0,
            maxMs: budgetMs,
            proxyAllowanceMs: 0,
            rateWindowMs: 60_000,
            onEnd,
          }),
    );
    lifecycle.ready();
    const summary = await (how === 'fatal'
      ? lifecycle.fatal(new Error('boom'))
      : lifecycle.shutdown('SIGTERM'));
    assert.ok(report);
    return { report, warnings, outcome: summary.outcome };
  }

  it('fixed: the budget firing 150 ms before the wait would have is still the fixed delay', async () => {
    const { report } = await lateWait('fixed', 300);
    assert.ok(report.waitedMs < 295, `the budget fired first (waited ${String(report.waitedMs)} ms)`);
    assert.equal(report.endedBy, 'fixed');
  });

  it('adaptive: with no evidence, the budget (maxMs) ends it as max, with the maxMs warning', async () => {
    const { report, warnings } = await lateWait('adaptive', 300);
    assert.ok(report.waitedMs < 295, `the budget fired first (waited ${String(report.waitedMs)} ms)`);
    assert.equal(report.endedBy, 'max');
    assert.ok(
      warnings.some((w) => /maxMs/.test(w)),
      warnings.join('\n'),
    );
  });

  it('a fatal shutdown skips the wait: aborted, for either strategy, with no maxMs warning', async () => {
    assert.equal((await lateWait('fixed', 200, 'fatal')).report.endedBy, 'aborted');
    const adaptive = await lateWait('adaptive', 200, 'fatal');
    assert.equal(adaptive.report.endedBy, 'aborted');
    assert.ok(!adaptive.warnings.some((w) => /maxMs/.test(w)), adaptive.warnings.join('\n'));
  });

  it('a budget that ends with the deadline, or a moment before it, is the deadline', async () => {
    // Margin 100 ms: the deadline is grace − 100 ms after the shutdown began, and the unready phase
    // has nobody in it, so the propagate budget of 300 ms ends with it (grace 400) or 3 ms before it
    // (grace 403, where the budget's timer fires first).
    for (const gracePeriodMs of [400, 403]) {
      for (const strategy of ['fixed', 'adaptive'] as const) {
        const { report, warnings, outcome } = await lateWait(strategy, 300, 'SIGTERM', gracePeriodMs);
        const label = `${strategy}, grace ${String(gracePeriodMs)} ms`;
        // With grace 403 the shutdown may finish in the 3 ms left (nobody drains): clean or deadline.
        if (gracePeriodMs === 400) assert.equal(outcome, 'deadline', label);
        assert.equal(report.endedBy, 'deadline', label);
        assert.ok(!warnings.some((w) => /maxMs/.test(w)), `${label}: ${warnings.join('\n')}`);
      }
    }
  });
});

describe('the signal of a phase whose budget ran out', () => {
  it("aborts with an AbortError, so a participant's own name check still treats it as a cut", async () => {
    const { createLifecycle } = await import('../../src/lifecycle.js');
    const { createTiming } = await import('../../src/timing.js');
    const lifecycle = createLifecycle({
      budgets: { unready: 100, propagate: 0, drain: 100, cleanup: 100 },
      timing: createTiming({ gracePeriodMs: 30_000, gracePeriodSource: 'option', safetyMarginMs: 100 }),
      fatalTimeoutMs: 1000,
      exitCodes: { clean: 0, incomplete: 1, fatal: 70 },
      exit: () => undefined,
    });
    let reason: unknown;
    lifecycle.register({
      name: 'waits-for-a-reply',
      async drain({ signal }) {
        try {
          await new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
        } catch (error) {
          reason = error;
          if ((error as Error).name === 'AbortError') return; // the pattern fetch() users write
          throw error;
        }
      },
    });
    lifecycle.ready();
    const summary = await lifecycle.shutdown('SIGTERM');
    assert.ok(reason instanceof DOMException, String(reason));
    assert.equal(reason.name, 'AbortError');
    assert.match(reason.message, /drain phase reached its budget of 100 ms/);
    assert.equal(summary.outcome, 'clean', JSON.stringify(summary.failures));
  });
});

describe('a wait that decides as its phase is cut', () => {
  it('reports within the one turn the lifecycle gives an aborted participant', async () => {
    // The budget's timer and the wait's own fire in one turn, the budget's first: the wait's look
    // then says done. Looking once more after pending I/O would let the lifecycle's turn pass first,
    // and the phase would end (and its Event be written) before the wait had reported.
    let offset = 0;
    const now = (): number => monotonicNow() + offset;
    let turnPassed = false;
    let reportedAfterTurn: boolean | undefined;
    let report: PropagationReport | undefined;
    const participant = createAdaptivePropagation({
      quietPeriodMs: 50,
      minMs: 0,
      maxMs: 60_000,
      proxyAllowanceMs: 150,
      rateWindowMs: 60_000,
      activity: createTrafficActivity(now),
      openConnections: () => 0,
      onEnd: (r) => {
        report = r;
        reportedAfterTurn = turnPassed;
      },
      now,
    });
    participant.ready?.();
    await participant.unready?.(context().ctx);
    const phase = new AbortController();
    // Registered first, as the lifecycle's is: its turn is queued before anything the wait does.
    phase.signal.addEventListener('abort', () => setImmediate(() => (turnPassed = true)), { once: true });
    const { ctx } = context(phase.signal);
    const cut = setTimeout(() => {
      offset = 10_000; // the loop stalled past the quiet period: the next look says done
      phase.abort();
    }, 10);
    try {
      await participant.propagate?.(ctx);
    } finally {
      clearTimeout(cut);
    }
    assert.equal(report?.endedBy, 'quiet');
    assert.equal(reportedAfterTurn, false, 'the wait reported before the lifecycle moved on');
  });
});
