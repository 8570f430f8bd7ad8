import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveSettings } from '../../src/options.js';
import {
  budgetMessage,
  deletionTiming,
  podBudget,
  preStopOf,
  selectContainer,
  shortenedDeletion,
  sleepSecondsOf,
} from '../../src/kubernetes/pod-timing.js';
import { createApiClock } from '../../src/kubernetes/api-clock.js';

describe('sleepSecondsOf: what an exec preStop sleeps', () => {
  const table: [readonly string[], number | undefined][] = [
    [['sleep', '5'], 5],
    [['/bin/sleep', '5s'], 5],
    [['/usr/bin/sleep', '1m', '30s'], 90],
    [['sleep', '0.5'], 0.5],
    [['sleep', 'infinity'], Number.POSITIVE_INFINITY],
    [['sh', '-c', 'sleep 10'], 10],
    [['/bin/sh', '-c', 'sleep 10 && nginx -s quit; sleep 5'], 15],
    [['bash', '-c', 'echo bye; /bin/sleep 3'], 3],
    [['sh', '-c', 'nginx -s quit'], undefined],
    [['sleep'], undefined],
    [['sleep', 'ten'], undefined],
    [['kubegrace', 'prestop'], undefined],
    [[], undefined],
  ];
  for (const [command, expected] of table) {
    it(`${JSON.stringify(command)} → ${String(expected)}`, () =>
      assert.equal(sleepSecondsOf(command), expected));
  }
});

describe('preStopOf', () => {
  it('reads the sleep action, exec sleep, other exec and httpGet', () => {
    assert.deepEqual(preStopOf({ lifecycle: { preStop: { sleep: { seconds: 7 } } } }), {
      kind: 'sleep',
      seconds: 7,
      source: 'lifecycle.preStop.sleep.seconds',
    });
    assert.deepEqual(preStopOf({ lifecycle: { preStop: { exec: { command: ['sleep', '4'] } } } }), {
      kind: 'exec-sleep',
      seconds: 4,
      source: 'lifecycle.preStop.exec.command',
      command: 'sleep 4',
    });
    assert.equal(
      preStopOf({ lifecycle: { preStop: { exec: { command: ['nginx', '-s', 'quit'] } } } }).kind,
      'exec',
    );
    assert.deepEqual(preStopOf({ lifecycle: { preStop: { httpGet: { path: '/prestop', port: 9000 } } } }), {
      kind: 'http',
      source: 'lifecycle.preStop.httpGet',
      path: '/prestop',
    });
    assert.deepEqual(preStopOf({}), { kind: 'none' });
  });
});

describe('selectContainer', () => {
  const spec = {
    containers: [
      { name: 'istio-proxy' },
      { name: 'app', env: [{ name: 'KUBEGRACE_GRACE_PERIOD_SECONDS', value: '30' }] },
    ],
  };
  it('takes the named one, else the one with KUBEGRACE_* env, else the first', () => {
    assert.equal(selectContainer(spec, 'istio-proxy').container?.name, 'istio-proxy');
    assert.equal(selectContainer(spec).container?.name, 'app');
    assert.equal(selectContainer({ containers: [{ name: 'a' }, { name: 'b' }] }).container?.name, 'a');
    assert.equal(selectContainer({ containers: [{ name: 'only' }] }).container?.name, 'only');
  });
  it('says so when the named container does not exist', () => {
    const chosen = selectContainer(spec, 'web');
    assert.equal(chosen.container, undefined);
    assert.equal(chosen.why, 'no container named "web" in the pod');
  });
});

describe('deletionTiming', () => {
  // The API server stamps now + grace and serializes whole seconds: 12:00:07.640 → "12:00:07Z".
  const deletedAt = Date.parse('2026-03-01T12:00:02.640Z');
  const metadata = { deletionTimestamp: '2026-03-01T12:00:07Z', deletionGracePeriodSeconds: 5 };
  const killAt = deletedAt + 5000;

  it('estimates the kill time from when the deletion was seen, inside the timestamp’s second', () => {
    const seen = deletionTiming(metadata, undefined, deletedAt + 15);
    assert.ok(seen);
    assert.equal(seen.killAt, killAt + 15);
    assert.equal(seen.startedAt, deletedAt + 15);
    assert.equal(seen.graceSeconds, 5);
  });
  it('a deletion seen late is clamped to what the timestamp allows', () => {
    const late = deletionTiming(metadata, undefined, deletedAt + 60_000);
    assert.equal(late?.killAt, Date.parse('2026-03-01T12:00:07.999Z'));
  });
  it('never moves the estimate later: a timestamp after it means the API clock is ahead', () => {
    // Seen 3 s "before" the API's delete time: the API clock runs 3 s ahead of the node's.
    const ahead = deletionTiming(metadata, undefined, deletedAt - 3000);
    assert.equal(ahead?.killAt, deletedAt - 3000 + 5000);
  });
  it('reads the timestamp on the node clock, `apiSkewMs` apart', () => {
    // API clock 4 s behind: the timestamp reads 4 s early; a late sighting is clamped 4 s later.
    const behind = deletionTiming(metadata, undefined, deletedAt + 60_000, -4000);
    assert.equal(behind?.killAt, Date.parse('2026-03-01T12:00:11.999Z'));
    const punctual = deletionTiming(metadata, undefined, deletedAt + 4000 + 15, -4000);
    assert.equal(punctual?.killAt, killAt + 4000 + 15);
  });
  it('accepts the Date a typed list returns and falls back to the spec grace', () => {
    const seen = deletionTiming(
      { deletionTimestamp: new Date('2026-03-01T12:00:07Z') },
      { terminationGracePeriodSeconds: 5 },
      deletedAt,
    );
    assert.equal(seen?.killAt, killAt);
    assert.equal(deletionTiming({}, undefined, deletedAt), undefined);
  });
});

describe('shortenedDeletion', () => {
  const first = { killAt: 100_000, startedAt: 70_000, graceSeconds: 30, deletionTimestamp: 100_000 };
  it('a shorter grace period: the kubelet starts again with it from when the change is seen', () => {
    const shorter = shortenedDeletion(
      first,
      { deletionTimestamp: new Date(73_000).toISOString(), deletionGracePeriodSeconds: 3 },
      71_500,
    );
    assert.deepEqual(shorter, {
      killAt: 74_500,
      startedAt: 71_500,
      graceSeconds: 3,
      deletionTimestamp: 73_000,
    });
  });
  it('never later than the kill time already known; nothing when the grace period did not shrink', () => {
    const lateShortening = shortenedDeletion(
      first,
      { deletionTimestamp: new Date(75_000).toISOString(), deletionGracePeriodSeconds: 5 },
      98_000,
    );
    assert.equal(lateShortening?.killAt, 100_000);
    const same = shortenedDeletion(
      first,
      { deletionTimestamp: new Date(100_000).toISOString(), deletionGracePeriodSeconds: 30 },
      80_000,
    );
    assert.equal(same, undefined);
  });
});

describe('createApiClock', () => {
  it('bounds the API clock by the Date headers and claims no skew they do not prove', () => {
    const clock = createApiClock();
    assert.equal(clock.skewMs, 0, 'nothing known yet');
    // Sent at 10.2 s, answered at 10.3 s, Date 10 s: the API clock was within (−300 ms, +800 ms).
    clock.sample(new Date(10_000).toUTCString(), 10_200, 10_300);
    assert.deepEqual(clock.bounds, { lo: -300, hi: 800 });
    assert.equal(clock.skewMs, 0);
    const ahead = createApiClock();
    ahead.sample(new Date(15_000).toUTCString(), 10_200, 10_300);
    assert.equal(ahead.skewMs, 4700, 'at least 4.7 s ahead');
    const behind = createApiClock();
    behind.sample(new Date(5_000).toUTCString(), 10_200, 10_300);
    assert.equal(behind.skewMs, -4200, 'at least 4.2 s behind');
  });
  it('when newer answers contradict older ones (a clock stepped), the newer win', () => {
    const clock = createApiClock();
    clock.sample(new Date(10_000).toUTCString(), 10_200, 10_300);
    clock.sample(new Date(20_000).toUTCString(), 15_200, 15_300);
    assert.equal(clock.skewMs, 4700);
  });
});

describe('podBudget', () => {
  it('names every term with its source and the fix', () => {
    const settings = resolveSettings({ drain: { timeoutMs: 20_000 } });
    const budget = podBudget(settings, {
      graceSeconds: 30,
      preStop: { kind: 'sleep', seconds: 5, source: 'lifecycle.preStop.sleep.seconds' },
    });
    assert.equal(budget.fits, false);
    assert.equal(budget.totalMs, 5000 + 2000 + 10_000 + 20_000 + 5000 + 1000);
    assert.equal(
      budgetMessage(budget, 'pod shop/web-1 (container app)'),
      'shutdown budget 43 s exceeds terminationGracePeriodSeconds 30 s of pod shop/web-1 (container app): ' +
        'preStop sleep 5 s (lifecycle.preStop.sleep.seconds) + unready 2 s (unreadyTimeoutMs / KUBEGRACE_UNREADY_TIMEOUT_MS) + ' +
        'propagation max 10 s (propagation.maxMs / KUBEGRACE_PROPAGATION_MAX_MS) + drain 20 s (drain.timeoutMs / KUBEGRACE_DRAIN_TIMEOUT_MS) + ' +
        'cleanup 5 s (cleanupTimeoutMs / KUBEGRACE_CLEANUP_TIMEOUT_MS) + safety margin 1 s (safetyMarginMs / KUBEGRACE_SAFETY_MARGIN_MS) = 43 s. ' +
        'Raise terminationGracePeriodSeconds to at least 43 and set KUBEGRACE_GRACE_PERIOD_SECONDS=43, or shorten the largest terms.',
    );
  });
});
