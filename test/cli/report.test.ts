/**
 * The demo's terminal output: the live timeline prints its lines in the order of their times even when
 * a pod's event arrives late, and the summary explains what "ideal" means.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLiveTimeline, formatSummary, IDEAL_EXPLAINED } from '../../src/cli/demo/report.js';
import type { RunEvent, ScenarioResult } from '../../src/cli/demo/run.js';

describe('demo live timeline', () => {
  it('prints lines in time order, not in the order they arrived', () => {
    const lines: string[] = [];
    const timeline = createLiveTimeline((line) => lines.push(line), 'kubegrace: test');
    const zero = 1_000_000;
    const phase = (at: number, name: string): RunEvent => ({
      type: 'pod',
      pod: 'web-1',
      event: { event: 'phase', phase: name, status: 'start', durationMs: 0, at },
    });
    const events: RunEvent[] = [
      { type: 'sigterm', at: zero, pod: 'web-1' },
      // Pod output reaches the harness through a pipe: the later event comes first.
      phase(zero + 2010, 'drain'),
      { type: 'endpoint', at: zero + 2000, pod: 'web-1', change: 'removed' },
      phase(zero + 5, 'propagate'),
      { type: 'load', at: zero + 2500, change: 'stopped' },
    ];
    for (const event of events) timeline.onEvent(event);
    timeline.close();
    const timed = lines.filter((l) => /^ {2}[+-]\d/.test(l));
    const times = timed.map((l) => Number(/^ {2}([+-][\d.]+)s/.exec(l)?.[1]));
    assert.deepEqual(
      times,
      [...times].sort((a, b) => a - b),
      `in time order:\n${timed.join('\n')}`,
    );
    assert.deepEqual(
      timed.map((l) => l.replace(/\s+/g, ' ').trim()),
      [
        '+0.00s web-1 SIGTERM (endpoint removal starts)',
        '+0.01s web-1 phase propagate',
        '+1.00s load 0 req 0 failed',
        '+2.00s web-1 removed from the endpoint table',
        '+2.00s load 0 req 0 failed',
        '+2.01s web-1 phase drain',
        '+2.50s load clients stop',
      ],
    );
  });

  it('the summary says what "ideal" is, in one line', () => {
    const result = {
      service: 'kubegrace',
      requests: 10,
      failed: 0,
      failures: {},
      pods: [],
    } as unknown as ScenarioResult;
    const lines = formatSummary(result);
    assert.equal(lines.at(-1), IDEAL_EXPLAINED);
    assert.match(
      IDEAL_EXPLAINED,
      /^ideal: the earliest safe exit, once the endpoint is gone from every node/,
    );
  });
});
