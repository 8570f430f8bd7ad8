// The packed tarball is what users install: it must pass publint and attw, load through both import()
// and require() (Node ≥ 20.19), expose createKubegrace and run its bin. scripts/pack-check.mjs does the
// work; `npm test` builds dist/ before the suite runs, which this check packs.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const script = fileURLToPath(new URL('../scripts/pack-check.mjs', import.meta.url));

test('the packed tarball passes publint, attw and loads via import() and require()', async () => {
  const child = spawn(process.execPath, [script, '--no-consumers'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  assert.equal(code, 0, `scripts/pack-check.mjs exited ${code}:\n${output}`);
});
