import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'kubegrace-check-pm2-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function check(name: string, ecosystem: unknown): Promise<{ code: number; json: CheckJson }> {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(ecosystem));
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, 'check', '--format', 'json', file], (error, stdout) => {
      resolve({
        code: typeof error?.code === 'number' ? error.code : 0,
        json: JSON.parse(stdout) as CheckJson,
      });
    });
  });
}

interface CheckJson {
  readonly containers: readonly { name: string; kind: string; findings: { code: string }[] }[];
  readonly skipped: readonly { name: string }[];
}

const codes = (json: CheckJson, name: string): string[] =>
  json.containers.find((c) => c.name === name)?.findings.map((f) => f.code) ?? [];

describe('kubegrace check: PM2 ecosystem files', () => {
  it('checks the budget against kill_timeout (PM2 SIGKILLs after it), the signal and cluster mode', async () => {
    const env = { KUBEGRACE_GRACE_PERIOD_SECONDS: '30' };
    const { code, json } = await check('ecosystem.json', {
      apps: [
        { name: 'default-timeout', script: 'a.js', env },
        { name: 'safe', script: 'a.js', kill_timeout: 30_000, env },
        { name: 'clustered', script: 'a.js', kill_timeout: 30_000, instances: 2, env },
        { name: 'usr2', script: 'a.js', kill_timeout: 30_000, kill_signal: 'SIGUSR2', env },
        { name: 'plain', script: 'b.js' },
      ],
    });
    assert.equal(code, 1);
    assert.ok(json.containers.every((c) => c.kind === 'pm2 app'));
    assert.ok(codes(json, 'default-timeout').includes('propagation-exceeds-grace'));
    assert.deepEqual(codes(json, 'safe'), []);
    assert.deepEqual(codes(json, 'clustered'), ['pm2-cluster-mode']);
    assert.deepEqual(codes(json, 'usr2'), ['kill-signal']);
    assert.deepEqual(
      json.skipped.map((s) => s.name),
      ['plain'],
    );
  });

  it('reads numbers given as strings as PM2 does, signals in any case, and a bare list of apps', async () => {
    const env = { KUBEGRACE_GRACE_PERIOD_SECONDS: '30' };
    const { code, json } = await check('strings.json', [
      { name: 'string-timeout', script: 'a.js', kill_timeout: '30000', env },
      { name: 'one-instance', script: 'a.js', kill_timeout: 30_000, instances: '1', env },
      { name: 'max', script: 'a.js', kill_timeout: 30_000, instances: 'max', env },
      { name: 'lower-case', script: 'a.js', kill_timeout: 30_000, kill_signal: 'sigterm', env },
    ]);
    assert.equal(code, 1, 'max instances is cluster mode');
    assert.deepEqual(
      codes(json, 'string-timeout'),
      [],
      'kill_timeout "30000" is 30 s, not the 1.6 s default',
    );
    assert.deepEqual(codes(json, 'one-instance'), []);
    assert.deepEqual(codes(json, 'max'), ['pm2-cluster-mode']);
    assert.deepEqual(codes(json, 'lower-case'), []);
  });

  it('passes a safe ecosystem file', async () => {
    const { code, json } = await check('safe.json', {
      apps: [
        { name: 'api', script: 'a.js', kill_timeout: 30_000, env: { KUBEGRACE_GRACE_PERIOD_SECONDS: '30' } },
      ],
    });
    assert.equal(code, 0);
    assert.deepEqual(codes(json, 'api'), []);
  });
});
