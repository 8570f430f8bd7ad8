import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { METRIC_NAMES, METRICS } from '../../src/metrics/collectors.js';
import { ALERTS_DIR, metricNamesIn, prometheusRule, rulesFile } from '../support/metrics-dashboards.js';
import { PROMTOOL, run, skipUnlessInstalled } from '../support/prometheus.js';

const RUNBOOKS = new URL('../../docs/runbooks.md', import.meta.url);
const skip = skipUnlessInstalled(PROMTOOL);

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes. */
function anchors(markdown: string): Set<string> {
  return new Set(
    markdown
      .split('\n')
      .filter((line) => /^#{1,6} /.test(line))
      .map((line) =>
        line
          .replace(/^#+ /, '')
          .trim()
          .toLowerCase()
          .replace(/[^\w\- ]/g, '')
          .replace(/ /g, '-'),
      ),
  );
}

describe('alert rules', () => {
  it('promtool check rules accepts the rules file and the PrometheusRule groups', { skip }, async () => {
    const result = await run(PROMTOOL, ['check', 'rules', 'kubegrace.rules.yaml'], { cwd: ALERTS_DIR });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /SUCCESS: 5 rules found/);
    // promtool reads plain rules files only: check the PrometheusRule's groups as one.
    const dir = await mkdtemp(join(tmpdir(), 'kubegrace-rules-'));
    try {
      await writeFile(join(dir, 'from-prometheusrule.yaml'), JSON.stringify(prometheusRule().spec));
      const fromResource = await run(PROMTOOL, ['check', 'rules', 'from-prometheusrule.yaml'], { cwd: dir });
      assert.equal(fromResource.code, 0, fromResource.stdout + fromResource.stderr);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it(
    'promtool test rules: each alert fires on the series of a bad shutdown and stays quiet otherwise',
    { skip },
    async () => {
      const result = await run(PROMTOOL, ['test', 'rules', 'kubegrace.rules.test.yaml'], { cwd: ALERTS_DIR });
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(result.stdout, /SUCCESS/);
      const tests = readFileSync(`${ALERTS_DIR}kubegrace.rules.test.yaml`, 'utf8');
      for (const rule of rulesFile().groups.flatMap((g) => g.rules)) {
        assert.ok(tests.includes(`alertname: ${rule.alert}`), `${rule.alert} has a unit test`);
      }
    },
  );

  it('promtool catches a broken rule (the check can fail)', { skip }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kubegrace-rules-'));
    try {
      const text = readFileSync(`${ALERTS_DIR}kubegrace.rules.yaml`, 'utf8').replace(
        'increase(kubegrace_shutdown_duration_seconds_count{outcome="deadline"}[15m])',
        'increase(kubegrace_shutdown_duration_seconds_count{outcome="deadline"})',
      );
      await writeFile(join(dir, 'broken.yaml'), text);
      const result = await run(PROMTOOL, ['check', 'rules', 'broken.yaml'], { cwd: dir });
      assert.notEqual(result.code, 0);
      assert.match(result.stdout + result.stderr, /range vector/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the PrometheusRule carries exactly the rules of the plain file', () => {
    const resource = prometheusRule();
    assert.equal(resource.apiVersion, 'monitoring.coreos.com/v1');
    assert.equal(resource.kind, 'PrometheusRule');
    assert.equal(resource.metadata.name, 'kubegrace');
    assert.deepEqual(resource.spec.groups, rulesFile().groups);
  });

  it('every alert has a severity, a summary, a description and a runbook anchor that exists', () => {
    const found = anchors(readFileSync(RUNBOOKS, 'utf8'));
    const names = new Set<string>();
    for (const rule of rulesFile().groups.flatMap((g) => g.rules)) {
      assert.ok(rule.alert, 'alerts only');
      assert.ok(!names.has(rule.alert), `${rule.alert} is unique`);
      names.add(rule.alert);
      assert.match(rule.labels?.severity ?? '', /^(critical|warning|info)$/, rule.alert);
      assert.ok(rule.annotations?.summary, `${rule.alert} summary`);
      assert.ok(rule.annotations?.description, `${rule.alert} description`);
      const url = rule.annotations?.runbook_url ?? '';
      assert.match(url, /^https:\/\/.+\/docs\/runbooks\.md#[a-z0-9-]+$/, `${rule.alert} runbook_url`);
      const anchor = url.split('#')[1] ?? '';
      assert.equal(anchor, rule.alert.toLowerCase(), `${rule.alert} links to its own section`);
      assert.ok(found.has(anchor), `docs/runbooks.md has a section #${anchor}`);
    }
    assert.deepEqual([...names].sort(), [
      'KubegraceDeregistrationFailed',
      'KubegraceForcedConnectionCloses',
      'KubegraceShutdownDeadlineReached',
      'KubegraceShutdownFailed',
      'KubegraceShutdownNearGracePeriod',
    ]);
  });

  it('use only metrics kubegrace exports', () => {
    const histograms = new Set<string>(
      Object.values(METRICS)
        .filter((m) => m.type === 'histogram')
        .map((m) => m.name),
    );
    for (const rule of rulesFile().groups.flatMap((g) => g.rules)) {
      const used = metricNamesIn(rule.expr);
      assert.ok(used.length > 0, `${rule.alert} uses a kubegrace metric`);
      for (const name of used) {
        const base = name.replace(/_(bucket|sum|count)$/, '');
        const known = METRIC_NAMES.includes(name) || (histograms.has(base) && base !== name);
        assert.ok(known, `${rule.alert} uses ${name}, which kubegrace does not export`);
      }
    }
  });
});
