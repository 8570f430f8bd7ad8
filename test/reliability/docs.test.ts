/** docs/reliability.md's fault matrix points at tests that exist, and covers every fault of the matrix. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

const root = new URL('../../', import.meta.url);
const doc = readFileSync(new URL('docs/reliability.md', root), 'utf8');
const table = doc.split('<!-- matrix:start -->')[1]?.split('<!-- matrix:end -->')[0] ?? '';
const rows = table
  .split('\n')
  .filter((line) => line.startsWith('| ') && !line.startsWith('| fault') && !line.startsWith('|---'))
  .map((line) =>
    line
      .slice(2, -2)
      .split(' | ')
      .map((cell) => cell.trim()),
  );

/** `test/x.test.ts`: name — `test/y.test.ts`: other name */
function references(cell: string): { file: string; name: string }[] {
  return [...cell.matchAll(/`(test\/[\w/.-]+\.test\.ts)`: (.+?)(?= — `test\/|$)/g)].map((m) => ({
    file: m[1] as string,
    name: (m[2] as string).trim(),
  }));
}

/**
 * The name as written in the file, or built from a table of cases: `${c.name}: rest` has its two
 * halves in the file.
 */
function named(source: string, name: string): boolean {
  if (source.includes(name)) return true;
  const parts = name.split(': ');
  return parts.some(
    (_, i) =>
      i > 0 && source.includes(parts.slice(0, i).join(': ')) && source.includes(parts.slice(i).join(': ')),
  );
}

describe('docs/reliability.md', () => {
  it('has the matrix, five columns per row', () => {
    assert.ok(rows.length >= 20, `${rows.length} rows`);
    for (const row of rows) assert.equal(row.length, 5, row.join(' | '));
  });

  it('gives every fault an exit code and at least one test that exists and has that name', () => {
    for (const [fault, , exitCode, , tests] of rows) {
      assert.match(exitCode ?? '', /^\d+$/, `${fault}: exit code`);
      const refs = references(tests ?? '');
      assert.ok(refs.length > 0, `${fault}: no test`);
      for (const { file, name } of refs) {
        const path = new URL(file, root);
        assert.ok(existsSync(path), `${fault}: ${file} does not exist`);
        assert.ok(named(readFileSync(path, 'utf8'), name), `${fault}: ${file} has no test named "${name}"`);
      }
    }
  });

  it('covers every fault the matrix must hold', () => {
    const faults = rows.map(([fault]) => fault ?? '').join('\n');
    for (const fault of [
      'hook hangs',
      'hook throws',
      'resolves after its timeout',
      'ignores its AbortSignal',
      'registry down',
      'registry slow',
      'credentials',
      'API down',
      'API slow',
      '403',
      'watch is dropped',
      '410 Gone',
      'second SIGTERM',
      'SIGINT, then SIGTERM',
      'uncaught exception',
      'unhandled rejection',
      'event loop blocked',
      'past the deadline',
      'slowloris',
      'EMFILE',
    ]) {
      assert.ok(faults.includes(fault), `no row for "${fault}"`);
    }
  });
});
