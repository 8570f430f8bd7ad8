/** docs/kubernetes.md, docs/rbac.yaml and docs/check.md agree with the code they describe. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { FINDING_CODES } from '../../src/cli/check-rules.js';
import { DOWNWARD_API_ENV } from '../../src/kubernetes/detect.js';
import { RBAC_RULES } from '../../src/kubernetes/rbac.js';

const read = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

describe('Kubernetes docs agree with the code', () => {
  it('docs/rbac.yaml grants exactly the rules the integration needs', () => {
    const docs = parseAllDocuments(read('docs/rbac.yaml')).map(
      (d) => d.toJS() as { kind: string; rules?: unknown },
    );
    const role = docs.find((d) => d.kind === 'Role');
    assert.ok(role, 'a Role');
    assert.deepEqual(
      role.rules,
      Object.values(RBAC_RULES).map((r) => ({
        apiGroups: [r.apiGroup],
        resources: [r.resource],
        verbs: [...r.verbs],
      })),
    );
    const binding = docs.find((d) => d.kind === 'RoleBinding') as
      { roleRef: { name: string }; subjects: { name: string }[] } | undefined;
    assert.equal(binding?.roleRef.name, 'kubegrace');
    assert.equal(binding?.subjects[0]?.name, 'kubegrace');
    assert.ok(docs.some((d) => d.kind === 'ServiceAccount'));
  });

  it('docs/kubernetes.md shows the Downward API env block and the RBAC table as the code has them', () => {
    const doc = read('docs/kubernetes.md');
    const block = doc.split('<!-- downward-api:start -->')[1]?.split('<!-- downward-api:end -->')[0];
    assert.equal(block?.trim(), `\`\`\`yaml\n${DOWNWARD_API_ENV}\n\`\`\``);
    for (const rule of Object.values(RBAC_RULES)) {
      const group = rule.apiGroup === '' ? '`""` (core)' : `\`${rule.apiGroup}\``;
      const verbs = rule.verbs.map((v) => `\`${v}\``).join(', ');
      assert.ok(
        doc.includes(`| ${group} | \`${rule.resource}\` | ${verbs} | ${rule.without} |`),
        `the RBAC table has the row for ${rule.resource}`,
      );
    }
  });

  it('docs/check.md has a row for every finding', () => {
    const doc = read('docs/check.md');
    const rows = doc
      .split('\n')
      .filter((l) => l.startsWith('| `'))
      .map((l) => /^\| `([^`]+)`/.exec(l)?.[1]);
    assert.deepEqual(rows.sort(), [...FINDING_CODES].sort());
  });
});
