import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { barVerdict, type BarRun } from '../../bench/bar.js';
import type { PodResult } from '../../src/cli/demo/run.js';

/** An old pod as the bar reads it: exit and ideal in ms after SIGTERM, conn/s before it, its propagate phase. */
function pod(
  name: string,
  shutdownMs: number,
  idealMs: number,
  arrivalsPerSecond: number,
  propagate = 0,
): PodResult {
  return {
    pod: name,
    shutdownMs,
    idealMs,
    removedMs: idealMs,
    arrivalsPerSecond,
    arrivalWindowMs: 5000,
    exitCode: 0,
    signal: null,
    killed: false,
    phases: { propagate: propagate || shutdownMs },
    outcome: 'clean',
    requests: 100,
    failed: 0,
    sigtermAt: 0,
    timeline: [],
  };
}

const run = (tool: string, pods: PodResult[], failed = 0, killed = false): BarRun => ({
  tool,
  result: { failed, killed, pods },
});

describe('the bench:rolling bar', () => {
  it('any request kubegrace lost misses it', () => {
    assert.equal(
      barVerdict([run('kubegrace', [pod('old-1', 1000, 500, 20)], 2)]),
      'MISSED: kubegrace lost 2',
    );
  });

  it('a busy pod (≥ 10 new connections/s) must leave within ideal + 1.2 s', () => {
    assert.equal(barVerdict([run('kubegrace', [pod('old-1', 1700, 500, 12)])]), 'met');
    assert.equal(
      barVerdict([run('kubegrace', [pod('old-1', 1800, 500, 12)])]),
      'MISSED: old-1 (12.0 conn/s) exit 1.80 > ideal 0.50 + 1.20 s',
    );
  });

  it('a quiet pod: no later than the fastest tool that lost nothing, or within maxMs; the strict reading is named', () => {
    const clean = run('http-terminator', [pod('old-1', 5000, 500, 2), pod('old-2', 5100, 500, 2)]);
    const lossy = run('terminus', [pod('old-1', 3000, 500, 2)], 4);
    assert.equal(barVerdict([run('kubegrace', [pod('old-1', 4000, 500, 2)]), clean, lossy]), 'met');
    assert.equal(
      barVerdict([run('kubegrace', [pod('old-1', 6030, 3000, 2, 6000)]), clean, lossy]),
      'met within maxMs; strictly missed: old-1 exit 6.03 > fastest clean tool 5.05 s',
    );
    // Past the fastest clean tool and a propagate phase past maxMs (10 s + slack): missed outright.
    assert.match(
      barVerdict([run('kubegrace', [pod('old-1', 11_000, 3000, 2, 10_400)]), clean]),
      /^MISSED: old-1 \(2\.0 conn\/s\) exit 11\.00 s > fastest clean tool 5\.05 s and propagate 10\.40 > maxMs 10\.00 s$/,
    );
    // Without a clean tool, maxMs is the only limit.
    assert.equal(barVerdict([run('kubegrace', [pod('old-1', 10_100, 2000, 2, 10_050)]), lossy]), 'met');
  });
});
