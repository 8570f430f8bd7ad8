/**
 * Every values file in charts/kubegrace/ci/, rendered for every Kubernetes version in KUBE_VERSIONS:
 * each manifest valid against the Kubernetes schemas (strict: no unknown fields), `kubegrace check`
 * clean (no error, no warning), the grace period and KUBEGRACE_* values in step, the preStop hook
 * the version supports, and the pod hardened. Then the parts that reuse files from elsewhere in the
 * repo: Downward API env and RBAC (docs/), alert rules (alerts/), dashboards (dashboards/), NOTES.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { RBAC_RULES } from '../../src/kubernetes/rbac.js';
import { settingSpecs } from '../../src/options.js';
import {
  chartDir,
  check,
  ciValues,
  envOf,
  find,
  KUBE_VERSIONS,
  podOf,
  render,
  root,
  type Manifest,
  type Rendered,
} from './helm.js';
import { validateAll } from './kube-schema.js';

const semverAtLeast = (version: string, minor: number): boolean => Number(version.split('.')[1]) >= minor;
const KNOWN_ENV = new Set(settingSpecs.map((s) => s.env));

function valuesOf(file: string): {
  kubegrace?: {
    preStop?: { enabled?: boolean; action?: string; sleepSeconds?: number };
    downwardApi?: boolean;
    probes?: { grpc?: { enabled?: boolean; readinessService?: string; livenessService?: string } };
  };
  containerPort?: number;
  rbac?: { create?: boolean };
  strategy?: { rollingUpdate?: { maxUnavailable?: unknown } };
} {
  return (parse(readFileSync(file, 'utf8')) as ReturnType<typeof valuesOf> | null) ?? {};
}

/** The Downward API block of docs/kubernetes.md, between its markers. */
function docsDownwardApi(): unknown {
  const doc = readFileSync(join(root, 'docs', 'kubernetes.md'), 'utf8');
  const block = /<!-- downward-api:start -->\s*```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
  assert.ok(block, 'docs/kubernetes.md has the downward-api block');
  return (parse(block) as { env: unknown }).env;
}

describe('charts/kubegrace: every ci values file on every Kubernetes version', () => {
  assert.ok(ciValues.length >= 5, `ci values files: ${ciValues.join(', ')}`);
  for (const file of ciValues) {
    for (const kubeVersion of KUBE_VERSIONS) {
      it(`${basename(file)} on ${kubeVersion}`, async () => {
        const rendered = await render({ valuesFiles: [file], kubeVersion });
        const values = valuesOf(file);

        assert.deepEqual(validateAll(rendered.docs), []);

        const result = await check(rendered.text);
        const findings = result.containers.flatMap((c) =>
          c.findings.filter((f) => f.severity !== 'info').map((f) => `${f.code}: ${f.message}`),
        );
        assert.deepEqual(findings, []);
        assert.equal(result.errors, 0);
        assert.equal(result.containers.length, 1, 'the one container is recognised as using kubegrace');

        const { spec, container } = podOf(rendered);
        const env = envOf(container);
        for (const name of Object.keys(env).filter((n) => n.startsWith('KUBEGRACE_'))) {
          assert.ok(KNOWN_ENV.has(name), `${name} is not a kubegrace setting (src/options.ts)`);
        }
        assert.equal(env.KUBEGRACE_GRACE_PERIOD_SECONDS, String(spec.terminationGracePeriodSeconds));

        // preStop: the sleep action only where the cluster has it; the exec fallback elsewhere.
        const preStop = container.lifecycle?.preStop;
        const wanted = values.kubegrace?.preStop;
        if (!wanted?.enabled) {
          assert.equal(preStop, undefined, 'no preStop hook by default');
          assert.equal(env.KUBEGRACE_PRE_STOP_SLEEP_SECONDS, '0');
        } else if (wanted.action === 'exec' || !semverAtLeast(kubeVersion, 30)) {
          assert.deepEqual(Object.keys(preStop ?? {}), ['exec']);
          assert.match((preStop?.exec as { command: string[] }).command.join(' '), /prestop$/);
          assert.equal(env.KUBEGRACE_PRE_STOP_SLEEP_SECONDS, '0', 'exec returns at once: no sleep to count');
        } else {
          assert.deepEqual(preStop, { sleep: { seconds: wanted.sleepSeconds } });
          assert.equal(env.KUBEGRACE_PRE_STOP_SLEEP_SECONDS, String(wanted.sleepSeconds));
        }
        assert.ok(!/\bsleep:/.test(rendered.text) || semverAtLeast(kubeVersion, 30));

        const port = Number(env.KUBEGRACE_PROBES_PORT);
        const grpc = values.kubegrace?.probes?.grpc;
        if (grpc?.enabled) {
          // gRPC probes on the app's port: readiness and startup on the readiness service,
          // liveness on its own service, which follows liveness (SERVING while draining).
          const readiness = { port: values.containerPort, service: grpc.readinessService ?? '' };
          assert.deepEqual(container.readinessProbe?.grpc, readiness);
          assert.deepEqual(container.startupProbe?.grpc, readiness);
          assert.deepEqual(container.livenessProbe?.grpc, {
            port: values.containerPort,
            service: grpc.livenessService ?? 'liveness',
          });
          for (const probe of [container.readinessProbe, container.livenessProbe, container.startupProbe]) {
            assert.equal(probe?.httpGet, undefined);
          }
        } else {
          // Probes on the management port, each on its own path.
          assert.equal(container.livenessProbe?.httpGet?.path, '/livez');
          assert.equal(container.readinessProbe?.httpGet?.path, '/readyz');
          assert.equal(container.livenessProbe?.httpGet?.port, port);
          assert.equal(container.readinessProbe?.httpGet?.port, port);
        }
        assert.ok(container.ports?.some((p) => p.name === 'management' && p.containerPort === port));

        // Hardened pod.
        const podSecurity = spec.securityContext as Record<string, unknown>;
        assert.equal(podSecurity.runAsNonRoot, true);
        assert.deepEqual(podSecurity.seccompProfile, { type: 'RuntimeDefault' });
        const security = container.securityContext ?? {};
        assert.equal(security.readOnlyRootFilesystem, true);
        assert.equal(security.allowPrivilegeEscalation, false);
        assert.deepEqual((security.capabilities as { drop: string[] }).drop, ['ALL']);

        // Downward API env, as docs/kubernetes.md gives it.
        const downward = (container.env ?? []).filter((e) => e.name.startsWith('POD_'));
        if (values.kubegrace?.downwardApi === false) assert.deepEqual(downward, []);
        else assert.deepEqual(downward, docsDownwardApi());

        // Surge-only rollout by default.
        const deployment = find(rendered, 'Deployment')[0] as unknown as {
          spec: { strategy: { rollingUpdate: { maxUnavailable: unknown } } };
        };
        assert.equal(
          deployment.spec.strategy.rollingUpdate.maxUnavailable,
          values.strategy?.rollingUpdate?.maxUnavailable ?? 0,
        );

        // The PDB field that needs 1.27 only where it exists.
        for (const pdb of find(rendered, 'PodDisruptionBudget')) {
          const policy = (pdb.spec as Record<string, unknown>).unhealthyPodEvictionPolicy;
          assert.equal(policy, semverAtLeast(kubeVersion, 27) ? 'AlwaysAllow' : undefined);
        }

        // RBAC: the rules of docs/rbac.yaml and src/kubernetes/rbac.ts, bound to the pod's account.
        const roles = find(rendered, 'Role');
        if (values.rbac?.create === false) {
          assert.equal(roles.length, 0);
        } else {
          assert.equal(roles.length, 1);
          assert.deepEqual(roles[0]?.rules, docsRbacRules());
          const binding = find(rendered, 'RoleBinding')[0] as unknown as {
            subjects: { name: string }[];
            roleRef: { name: string };
          };
          assert.equal(binding.roleRef.name, roles[0]?.metadata.name);
          assert.equal(binding.subjects[0]?.name, spec.serviceAccountName);
        }
      });
    }
  }
});

function docsRbacRules(): unknown {
  const docs = parseAllDocuments(readFileSync(join(root, 'docs', 'rbac.yaml'), 'utf8')).map(
    (d) => d.toJS() as Manifest,
  );
  return docs.find((d) => d.kind === 'Role')?.rules;
}

describe('charts/kubegrace: what it shares with the rest of the repo', () => {
  it('RBAC rules are those of src/kubernetes/rbac.ts', async () => {
    const rules = find(await render(), 'Role')[0]?.rules as {
      apiGroups: string[];
      resources: string[];
      verbs: string[];
    }[];
    assert.deepEqual(
      rules.map((r) => ({ apiGroup: r.apiGroups[0], resource: r.resources[0], verbs: r.verbs })),
      Object.values(RBAC_RULES).map((r) => ({
        apiGroup: r.apiGroup,
        resource: r.resource,
        verbs: [...r.verbs],
      })),
    );
  });

  it('the PrometheusRule carries alerts/ as they are, Prometheus templates untouched', async () => {
    const rendered = await render({ set: { 'metrics.prometheusRule.enabled': true } });
    const [rule] = find(rendered, 'PrometheusRule');
    assert.ok(rule);
    const operatorFile = parseAllDocuments(readFileSync(join(root, 'alerts', 'prometheusrule.yaml'), 'utf8'))
      .map((d) => d.toJS() as Manifest)
      .find((d) => d.kind === 'PrometheusRule');
    assert.deepEqual(rule.spec, operatorFile?.spec);
    assert.match(rendered.text, /\{\{ \$value \| printf "%\.0f" \}\}/);
    assert.match(rendered.text, /\{\{ \$labels\.namespace \}\}/);
  });

  it('the dashboards ConfigMap holds dashboards/*.json for the Grafana sidecar', async () => {
    const rendered = await render({ set: { 'dashboards.enabled': true } });
    const [configMap] = find(rendered, 'ConfigMap');
    assert.ok(configMap);
    assert.equal((configMap.metadata.labels as Record<string, string>).grafana_dashboard, '1');
    const data = configMap.data as Record<string, string>;
    const files = readdirSync(join(root, 'dashboards')).filter((f) => f.endsWith('.json'));
    assert.deepEqual(Object.keys(data).sort(), files.sort());
    for (const file of files) {
      assert.deepEqual(
        JSON.parse(data[file] ?? ''),
        JSON.parse(readFileSync(join(root, 'dashboards', file), 'utf8')),
        `${file} embedded as it is`,
      );
    }
  });

  it('a ServiceMonitor comes with the management port on the Service', async () => {
    const rendered = await render({ set: { 'metrics.serviceMonitor.enabled': true } });
    const [service] = find(rendered, 'Service');
    const ports = (service?.spec as { ports: { name: string; port: number }[] }).ports;
    assert.deepEqual(
      ports.map((p) => p.name),
      ['http', 'management'],
    );
    const [monitor] = find(rendered, 'ServiceMonitor');
    assert.equal((monitor?.spec as { endpoints: { port: string }[] }).endpoints[0]?.port, 'management');
    // Without it, the Service exposes the app port only.
    const plain = find(await render(), 'Service')[0]?.spec as { ports: { name: string }[] };
    assert.deepEqual(
      plain.ports.map((p) => p.name),
      ['http'],
    );
  });

  it('an Ingress only when enabled, routed to the Service port named http, with its class, hosts and TLS', async () => {
    assert.deepEqual(find(await render(), 'Ingress'), [], 'none by default');
    const rendered = await render({
      set: {
        ingress: {
          enabled: true,
          className: 'nginx',
          annotations: { 'cert-manager.io/cluster-issuer': 'letsencrypt' },
          hosts: [
            { host: 'web.example.com', paths: [{ path: '/', pathType: 'Prefix' }, { path: '/api/v1' }] },
            { paths: [{ path: '/healthz', pathType: 'Exact' }] },
          ],
          tls: [{ secretName: 'web-tls', hosts: ['web.example.com'] }],
        },
      },
    });
    assert.deepEqual(validateAll(rendered.docs), []);
    const [ingress] = find(rendered, 'Ingress');
    assert.ok(ingress);
    assert.equal(
      (ingress.metadata.annotations as Record<string, string>)['cert-manager.io/cluster-issuer'],
      'letsencrypt',
    );
    const [service] = find(rendered, 'Service');
    const backend = { service: { name: service?.metadata.name, port: { name: 'http' } } };
    assert.ok(
      (service?.spec as { ports: { name: string }[] }).ports.some((p) => p.name === 'http'),
      'the Service has the port the Ingress names',
    );
    assert.deepEqual(ingress.spec, {
      ingressClassName: 'nginx',
      tls: [{ secretName: 'web-tls', hosts: ['web.example.com'] }],
      rules: [
        {
          host: 'web.example.com',
          http: {
            paths: [
              { path: '/', pathType: 'Prefix', backend },
              { path: '/api/v1', pathType: 'Prefix', backend },
            ],
          },
        },
        { http: { paths: [{ path: '/healthz', pathType: 'Exact', backend }] } },
      ],
    });
  });

  it('the NetworkPolicy opens the management port only to the peers given', async () => {
    const closed = find(await render(), 'NetworkPolicy')[0]?.spec as {
      ingress: { ports: { port: string }[] }[];
    };
    assert.deepEqual(
      closed.ingress.map((rule) => rule.ports.map((p) => p.port)),
      [['http']],
    );
    const peers = [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }];
    const open = find(await render({ set: { 'networkPolicy.management.from': peers } }), 'NetworkPolicy')[0]
      ?.spec as { ingress: { ports: { port: string }[]; from?: unknown }[] };
    assert.deepEqual(open.ingress[1], { ports: [{ port: 'management', protocol: 'TCP' }], from: peers });
  });
});

describe('charts/kubegrace: NOTES.txt', () => {
  // `helm template` does not render NOTES.txt and `helm install --dry-run` needs a cluster: render a
  // copy of it under another name in a copy of the chart.
  const work = mkdtempSync(join(tmpdir(), 'kubegrace-notes-'));
  after(() => rmSync(work, { recursive: true, force: true }));
  const chart = join(work, 'kubegrace');
  cpSync(chartDir, chart, { recursive: true });
  // Helm parses every rendered template as YAML: wrap the notes in a named template and emit them
  // as one JSON string.
  const notesText = readFileSync(join(chart, 'templates', 'NOTES.txt'), 'utf8');
  writeFileSync(
    join(chart, 'templates', '_notes-preview.tpl'),
    `{{- define "notes-preview" -}}\n${notesText}{{- end -}}\n`,
  );
  writeFileSync(
    join(chart, 'templates', 'notes-preview.yaml'),
    'notes: {{ include "notes-preview" . | toJson }}\n',
  );

  async function notes(set: Record<string, unknown> = {}): Promise<string> {
    const rendered: Rendered = await render({
      chart,
      set,
      kubeVersion: '1.31.0',
      showOnly: 'templates/notes-preview.yaml',
    });
    const doc = rendered.docs[0] as unknown as { notes: string };
    return doc.notes;
  }

  it('prints the budget, term by term, and that it fits', async () => {
    const text = await notes();
    assert.match(
      text,
      /unready 2 s \+ propagation max 10 s \+ drain 10 s \+ cleanup 5 s \+ safety margin 1 s = 28 s of terminationGracePeriodSeconds 28 \(computed\): fits, 0 s to spare/,
    );
    assert.match(text, /preStop: none/);
    assert.doesNotMatch(text, /WARNING/);
  });

  it('warns when an override is shorter than the budget, naming the computed value', async () => {
    const text = await notes({
      'kubegrace.terminationGracePeriodSeconds': 20,
      'kubegrace.preStop.enabled': true,
    });
    assert.match(
      text,
      /preStop sleep 5 s \+ .* = 33 s of terminationGracePeriodSeconds 20 \(kubegrace\.terminationGracePeriodSeconds\): DOES NOT FIT, over by 13 s/,
    );
    assert.match(text, /WARNING: terminationGracePeriodSeconds 20/);
    assert.match(text, /\(33 s\)/);
  });

  it('warns when metrics are scraped through a NetworkPolicy that keeps Prometheus out', async () => {
    assert.match(await notes({ 'metrics.podMonitor.enabled': true }), /keeps Prometheus out/);
  });

  it('warns when the pacing window is more than half the drain budget, which caps it', async () => {
    const text = await notes({ 'kubegrace.drain.pacingWindowMs': 8000 });
    assert.match(
      text,
      /WARNING: kubegrace\.drain\.pacingWindowMs \(8000 ms\) is more than half of\nkubegrace\.drain\.timeoutMs \(10000 ms\)/,
    );
    assert.match(text, /within 5000 ms instead/);
    assert.match(text, /at least twice the window/);
    // At exactly half, and with the budget raised to twice the window, no warning.
    assert.doesNotMatch(await notes({ 'kubegrace.drain.pacingWindowMs': 5000 }), /pacingWindowMs/);
    assert.doesNotMatch(
      await notes({ 'kubegrace.drain.pacingWindowMs': 8000, 'kubegrace.drain.timeoutMs': 16_000 }),
      /WARNING/,
    );
  });
});
