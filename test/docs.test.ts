import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { settingSpecs } from '../src/options.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

function shown(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (Array.isArray(value)) return `[${value.map((v) => `'${String(v)}'`).join(', ')}]`;
  return String(value);
}

describe('docs agree with the code', () => {
  it('README options table lists every setting with its default and variable, and nothing else', () => {
    const table = readme.split('<!-- options-table:start -->')[1]?.split('<!-- options-table:end -->')[0];
    assert.ok(table, 'README has the options table markers');
    const rows = table
      .split('\n')
      .filter((line) => line.startsWith('| `'))
      .map((line) => line.split('|').map((cell) => cell.trim()));
    assert.equal(rows.length, settingSpecs.length, 'one row per setting');
    for (const spec of settingSpecs) {
      const row = rows.find((r) => r[1] === `\`${spec.path}\``);
      assert.ok(row, `README lacks a row for ${spec.path}`);
      assert.equal(row[2], `\`${shown(spec.default)}\``, `default of ${spec.path}`);
      assert.equal(row[3], `\`${spec.env}\``, `variable of ${spec.path}`);
    }
  });

  it('README phase table quotes the default budgets', () => {
    const byPath = new Map(settingSpecs.map((s) => [s.path, s.default]));
    for (const [option, seconds] of [
      ['unreadyTimeoutMs', 'unreadyTimeoutMs'],
      ['propagation.maxMs', 'propagation.maxMs'],
      ['drain.timeoutMs', 'drain.timeoutMs'],
      ['cleanupTimeoutMs', 'cleanupTimeoutMs'],
    ] as const) {
      const ms = byPath.get(option) as number;
      assert.ok(
        readme.includes(`\`${seconds}\` ${ms / 1000} s`),
        `README phase table shows ${option} = ${ms / 1000} s`,
      );
    }
  });
});
