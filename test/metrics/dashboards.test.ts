import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { METRIC_NAMES, METRICS } from '../../src/metrics/collectors.js';
import { allPanels, dashboards, metricNamesIn, type Dashboard } from '../support/metrics-dashboards.js';

const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };
const histograms = new Set<string>(
  Object.values(METRICS)
    .filter((m) => m.type === 'histogram')
    .map((m) => m.name),
);

function exported(name: string): boolean {
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return METRIC_NAMES.includes(name) || (base !== name && histograms.has(base));
}

function walk(value: unknown, visit: (key: string, value: unknown) => void): void {
  if (Array.isArray(value)) value.forEach((v) => walk(v, visit));
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      visit(k, v);
      walk(v, visit);
    }
  }
}

describe('dashboards (lint)', () => {
  const all = dashboards();

  it('are classic-model dashboards with fixed, unique uids and titles', () => {
    assert.deepEqual(
      all.map((d) => d.file),
      ['kubegrace-fleet.json', 'kubegrace-pod.json'],
    );
    assert.equal(new Set(all.map((d) => d.uid)).size, all.length, 'uids are unique');
    assert.equal(new Set(all.map((d) => d.title)).size, all.length, 'titles are unique');
    for (const d of all) {
      assert.match(d.uid, /^kubegrace-[a-z-]+$/, `${d.file}: fixed uid`);
      assert.ok(d.uid.length <= 40, `${d.file}: Grafana limits uids to 40 characters`);
      assert.equal(d.id, null, `${d.file}: id is null until saved`);
      assert.equal(typeof d.schemaVersion, 'number');
      assert.ok(Array.isArray(d.panels) && d.panels.length > 0);
    }
  });

  it('have no __inputs and no ${DS_…} placeholders (they break file provisioning)', () => {
    for (const d of all) {
      walk(d, (key, value) => {
        assert.notEqual(key, '__inputs', `${d.file} has __inputs`);
        if (typeof value === 'string') assert.doesNotMatch(value, /\$\{DS_/, `${d.file}: ${value}`);
      });
    }
  });

  it('have a datasource variable of type datasource/prometheus that every panel and target uses', () => {
    for (const d of all) {
      const variable = d.templating.list.find((v) => v.name === 'datasource');
      assert.ok(variable, `${d.file}: datasource variable`);
      assert.equal(variable.type, 'datasource');
      assert.equal(variable.query, 'prometheus');
      for (const p of allPanels(d)) {
        assert.notEqual(p.type, 'row', `${d.file}: rows carry no datasource; keep the layout flat`);
        assert.deepEqual(p.datasource, DATASOURCE, `${d.file}: panel "${p.title}" datasource`);
        assert.ok((p.targets ?? []).length > 0, `${d.file}: panel "${p.title}" has a query`);
        for (const t of p.targets ?? [])
          assert.deepEqual(t.datasource, DATASOURCE, `${d.file}: "${p.title}" ${t.refId}`);
      }
      for (const v of d.templating.list.filter((v) => v.type === 'query')) {
        assert.deepEqual(
          (v as unknown as { datasource: unknown }).datasource,
          DATASOURCE,
          `${d.file}: variable ${v.name}`,
        );
      }
    }
  });

  it('use $__rate_interval or $__range for every range, and only variables they define', () => {
    for (const d of all) {
      const defined = new Set(d.templating.list.map((v) => v.name));
      let rateIntervals = 0;
      for (const p of allPanels(d)) {
        for (const t of p.targets ?? []) {
          for (const [range] of t.expr.matchAll(/\[[^\]]*\]/g)) {
            assert.match(
              range,
              /^\[\$__(rate_interval|range)\]$/,
              `${d.file}: "${p.title}" hard-codes ${range}`,
            );
            if (range === '[$__rate_interval]') rateIntervals++;
          }
          for (const [, name] of t.expr.matchAll(/\$\{?(\w+)\}?/g)) {
            if (name?.startsWith('__')) continue;
            assert.ok(defined.has(name ?? ''), `${d.file}: "${p.title}" uses undefined $${name}`);
          }
          assert.doesNotMatch(
            t.expr,
            /\brate\([^[]*\[\$__range\]/,
            `${d.file}: "${p.title}": rate() over $__range`,
          );
        }
      }
      assert.ok(rateIntervals > 0, `${d.file} uses $__rate_interval`);
    }
  });

  it('have unique panel ids and non-overlapping panels inside the 24-column grid', () => {
    for (const d of all) {
      const panels = allPanels(d);
      assert.equal(new Set(panels.map((p) => p.id)).size, panels.length, `${d.file}: panel ids`);
      const cells = new Set<string>();
      for (const p of panels) {
        const g = (p as unknown as { gridPos: { x: number; y: number; w: number; h: number } }).gridPos;
        assert.ok(g.x >= 0 && g.w > 0 && g.x + g.w <= 24, `${d.file}: "${p.title}" fits the grid`);
        for (let x = g.x; x < g.x + g.w; x++) {
          for (let y = g.y; y < g.y + g.h; y++) {
            assert.ok(!cells.has(`${x},${y}`), `${d.file}: "${p.title}" overlaps another panel at ${x},${y}`);
            cells.add(`${x},${y}`);
          }
        }
      }
    }
  });

  it('query only metrics kubegrace exports, and show every one of them somewhere', () => {
    const used = new Set<string>();
    for (const d of all) {
      walk(d, (key, value) => {
        if ((key === 'expr' || key === 'query' || key === 'definition') && typeof value === 'string') {
          for (const name of metricNamesIn(value)) {
            assert.ok(exported(name), `${d.file} uses ${name}, which kubegrace does not export`);
            used.add(name.replace(/_(bucket|sum|count)$/, ''));
          }
        }
      });
    }
    assert.deepEqual(
      METRIC_NAMES.filter((n) => !used.has(n)),
      [],
      'metrics no dashboard shows',
    );
  });

  it('the fleet overview covers what operators ask first', () => {
    const fleet = all.find((d) => d.uid === 'kubegrace-fleet') as Dashboard;
    const exprs = allPanels(fleet).flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    const has = (pattern: RegExp): boolean => exprs.some((e) => pattern.test(e));
    assert.ok(
      has(
        /histogram_quantile\(0\.5, sum by \([^)]*outcome[^)]*\) .*kubegrace_shutdown_duration_seconds_bucket/,
      ),
      'p50 by outcome',
    );
    assert.ok(
      has(
        /histogram_quantile\(0\.95, sum by \([^)]*phase[^)]*\) .*kubegrace_shutdown_phase_duration_seconds_bucket/,
      ),
      'p95 by phase',
    );
    assert.ok(
      has(/max by \(namespace, job, outcome\) .*kubegrace_shutdown_duration_seconds_sum/),
      'max by outcome',
    );
    assert.ok(has(/outcome="deadline"/), 'deadline hits');
    assert.ok(has(/reason="forced"/), 'forced closes');
    assert.ok(has(/kubegrace_requests_during_shutdown_total/), 'requests during shutdown');
    assert.ok(
      has(/by \([^)]*strategy[^)]*\) .*kubegrace_propagation_wait_seconds_bucket/),
      'propagation wait by strategy',
    );
    assert.ok(
      has(/by \([^)]*registry[^)]*\) .*kubegrace_registry_deregistration_duration_seconds_bucket/),
      'deregistration latency',
    );
    assert.ok(has(/by \(namespace, job/), 'per workload');
  });
});
