/**
 * Generated files stay generated: the chart's copies of dashboards/ and alerts/, the vendored library
 * chart, and manifests/base (helm template of the chart's defaults) must equal what
 * `npm run manifests` would write now. The base itself must pass the schemas and `kubegrace check`,
 * and the example overlay must point at what the base has.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parse, parseAllDocuments } from 'yaml';
import { drift, expectedCopies, expectedFiles, renderBase } from '../../scripts/render-manifests.js';
import { check, root, type Manifest } from './helm.js';
import { validateAll } from './kube-schema.js';

const run = promisify(execFile);
const FIX = 'run `npm run manifests` and commit the result';

describe('generated files are up to date', () => {
  it('the chart carries dashboards/*.json, alerts/kubegrace.rules.yaml and charts/kubegrace-lib as they are', () => {
    const { changed, missing } = drift(expectedCopies());
    assert.deepEqual({ changed, missing }, { changed: [], missing: [] }, FIX);
  });

  it('manifests/base is helm template of the chart defaults', async () => {
    const { changed, missing } = drift(await renderBase());
    assert.deepEqual({ changed, missing }, { changed: [], missing: [] }, FIX);
  });

  it('nothing stale is left in the generated directories', async () => {
    assert.deepEqual(drift(await expectedFiles()).stale, [], FIX);
  });

  it('npm run manifests -- --check agrees', async () => {
    const result = await run(
      process.execPath,
      ['--import', 'tsx', 'scripts/render-manifests.ts', '--check'],
      {
        cwd: root,
        timeout: 60_000,
      },
    );
    assert.match(result.stderr, /manifests: up to date/);
  });

  it('one run of npm run manifests brings a library change into the vendored copy and the base', async (t) => {
    // A copy of what the script reads and writes, so the tree stays as it is.
    const dir = mkdtempSync(join(tmpdir(), 'kubegrace-manifests-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    for (const path of ['scripts', 'charts', 'manifests', 'dashboards', 'alerts']) {
      cpSync(join(root, path), join(dir, path), { recursive: true });
    }
    for (const file of ['package.json', '.prettierrc.json', '.prettierignore']) {
      cpSync(join(root, file), join(dir, file));
    }
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
    const template = join(dir, 'charts/kubegrace-lib/templates/_container.tpl');
    const before = readFileSync(template, 'utf8');
    const after = before.replace('- name: KUBEGRACE_GRACE_PERIOD_SECONDS\n', '- name: KUBEGRACE_RENAMED\n');
    assert.notEqual(after, before, 'the template names KUBEGRACE_GRACE_PERIOD_SECONDS');
    writeFileSync(template, after);
    const script = (...args: string[]) =>
      run(process.execPath, ['--import', 'tsx', 'scripts/render-manifests.ts', ...args], {
        cwd: dir,
        timeout: 60_000,
      });
    const written = await script();
    assert.match(
      written.stderr,
      /wrote {3}charts\/kubegrace\/charts\/kubegrace-lib\/templates\/_container\.tpl/,
    );
    assert.match(written.stderr, /wrote {3}manifests\/base\/deployment\.yaml/);
    assert.match(
      readFileSync(join(dir, 'manifests/base/deployment.yaml'), 'utf8'),
      /name: KUBEGRACE_RENAMED/,
    );
    assert.match((await script('--check')).stderr, /manifests: up to date/);
  });
});

function baseDocs(): { file: string; doc: Manifest }[] {
  const kustomization = parse(readFileSync(join(root, 'manifests/base/kustomization.yaml'), 'utf8')) as {
    resources: string[];
  };
  return kustomization.resources.flatMap((file) =>
    parseAllDocuments(readFileSync(join(root, 'manifests/base', file), 'utf8')).map((d) => ({
      file,
      doc: d.toJS() as Manifest,
    })),
  );
}

describe('versions', () => {
  it("both charts' appVersion is the package's version, and the chart pins the library's", () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    const app = parse(readFileSync(join(root, 'charts/kubegrace/Chart.yaml'), 'utf8')) as {
      appVersion: string;
      dependencies: { name: string; version: string; repository: string }[];
    };
    const lib = parse(readFileSync(join(root, 'charts/kubegrace-lib/Chart.yaml'), 'utf8')) as {
      appVersion: string;
      version: string;
      type: string;
    };
    assert.equal(app.appVersion, pkg.version);
    assert.equal(lib.appVersion, pkg.version);
    assert.equal(lib.type, 'library');
    assert.deepEqual(app.dependencies, [
      { name: 'kubegrace-lib', version: lib.version, repository: 'file://../kubegrace-lib' },
    ]);
  });
});

describe('manifests/base', () => {
  it('lists every file it has, one resource per file, without Helm bookkeeping', () => {
    const docs = baseDocs();
    assert.deepEqual(
      docs.map((d) => d.file),
      docs.map((d) => `${d.doc.kind.toLowerCase()}.yaml`),
    );
    for (const { doc } of docs) {
      const labels = (doc.metadata.labels ?? {}) as Record<string, string>;
      assert.equal(labels['helm.sh/chart'], undefined);
      assert.equal(labels['app.kubernetes.io/managed-by'], undefined);
    }
  });

  it('passes the Kubernetes schemas and kubegrace check', async () => {
    const docs = baseDocs();
    assert.deepEqual(validateAll(docs.map((d) => d.doc)), []);
    const text = readFileSync(join(root, 'manifests/base/deployment.yaml'), 'utf8');
    const result = await check(text);
    assert.equal(result.containers.length, 1);
    assert.equal(result.errors + result.warnings, 0);
  });
});

describe('manifests/overlays/example', () => {
  const dir = join(root, 'manifests/overlays/example');
  const overlay = parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')) as {
    resources: string[];
    images: { name: string }[];
    replicas: { name: string }[];
    patches: { path: string; target?: { kind: string; name: string } }[];
  };
  const base = baseDocs().map((d) => d.doc);
  const named = (kind: string, name: string): Manifest | undefined =>
    base.find((d) => d.kind === kind && d.metadata.name === name);

  it('builds on the base and changes only what exists there', () => {
    assert.deepEqual(overlay.resources, ['../../base']);
    const deployment = named('Deployment', overlay.replicas[0]?.name ?? '');
    assert.ok(deployment, 'replicas names the base Deployment');
    const image = (
      deployment.spec as { template: { spec: { containers: { image: string; name: string }[] } } }
    ).template.spec.containers[0]?.image;
    assert.ok(image?.startsWith(`${overlay.images[0]?.name}:`), `images names ${image}`);
    for (const patch of overlay.patches) {
      assert.ok(existsSync(join(dir, patch.path)), patch.path);
      if (patch.target) {
        assert.ok(named(patch.target.kind, patch.target.name), `${patch.path} targets a base resource`);
      } else {
        const target = parse(readFileSync(join(dir, patch.path), 'utf8')) as Manifest;
        assert.ok(named(target.kind, target.metadata.name), `${patch.path} patches a base resource`);
      }
    }
  });

  it('does not patch the timing, which must change as a whole', () => {
    for (const patch of overlay.patches) {
      const text = readFileSync(join(dir, patch.path), 'utf8');
      assert.doesNotMatch(text, /terminationGracePeriodSeconds|KUBEGRACE_|preStop/, patch.path);
    }
  });
});
