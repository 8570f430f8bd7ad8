/**
 * `pm2-runtime` as a container's PID 1 (pm2 is a devDependency): the signal it passes on and what its
 * `kill_timeout` does to a drain, on a real run (its own daemon-less mode, a private PM2_HOME).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { spawnEventChild, type EventChild } from '../support/child.js';

const PM2_RUNTIME = fileURLToPath(new URL('../../node_modules/pm2/bin/pm2-runtime', import.meta.url));
const SERVICE = fileURLToPath(new URL('../support/service.ts', import.meta.url));

const dirs: string[] = [];
const children = new Set<EventChild>();
after(() => {
  for (const child of children) child.kill();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** pm2-runtime running test/support/service.ts from an ecosystem file with these app fields. */
async function pm2Runtime(app: Record<string, unknown>): Promise<EventChild> {
  const dir = mkdtempSync(join(tmpdir(), 'kubegrace-pm2-'));
  dirs.push(dir);
  const ecosystem = join(dir, 'ecosystem.json');
  writeFileSync(
    ecosystem,
    JSON.stringify({
      apps: [
        {
          name: 'svc',
          script: SERVICE,
          // A .ts script: pm2 needs the interpreter named (it would refuse TypeScript on Node 20).
          interpreter: process.execPath,
          node_args: ['--import', 'tsx'],
          env: { KUBEGRACE_PROPAGATION_STRATEGY: 'fixed', KUBEGRACE_PROPAGATION_DELAY_MS: '300' },
          ...app,
        },
      ],
    }),
  );
  const child = await spawnEventChild(
    process.execPath,
    [PM2_RUNTIME, ecosystem],
    { PM2_HOME: join(dir, 'home'), PM2_DISCRETE_MODE: 'true' },
    30_000,
  );
  children.add(child);
  return child;
}

function slowRequest(port: number, ms: number): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: `/?ms=${ms}` }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (error) => resolve(error.message));
    req.end();
  });
}

async function runThroughSigterm(child: EventChild): Promise<{ answer: number | string; exit: number }> {
  const port = child.listening.port as number;
  const answer = slowRequest(port, 3000);
  // The request is in flight on the app before the kubelet's signal reaches PID 1.
  await new Promise((resolve) => setTimeout(resolve, 300));
  child.process.kill('SIGTERM');
  return { answer: await answer, exit: (await child.exited).code };
}

describe('pm2-runtime in a container', () => {
  it('with the default kill_timeout (1600 ms) SIGKILLs the drain, yet exits 0', async () => {
    const child = await pm2Runtime({});
    const { answer, exit } = await runThroughSigterm(child);
    assert.equal(typeof answer, 'string', `the in-flight request failed: ${String(answer)}`);
    assert.ok(
      child.events.some((e) => e.event === 'state' && e.state === 'draining'),
      'kubegrace began its drain',
    );
    assert.ok(!child.events.some((e) => e.event === 'summary'), 'kubegrace never finished: it was killed');
    assert.match(child.stderr.join(''), /sending SIGKILL/);
    assert.equal(exit, 0, 'pm2-runtime hides the kill: the container exits 0');
  });

  it('passes SIGTERM on as SIGINT; with kill_timeout at the grace period the drain completes and the request succeeds', async () => {
    const child = await pm2Runtime({ kill_timeout: 30_000 });
    const { answer, exit } = await runThroughSigterm(child);
    assert.equal(answer, 200);
    const summary = child.events.find((e) => e.event === 'summary');
    assert.ok(summary, child.stderr.join(''));
    assert.equal(summary.outcome, 'clean');
    assert.doesNotMatch(child.stderr.join(''), /sending SIGKILL/);
    assert.match(child.stderr.join(''), /exited with code \[0\] via signal \[SIGINT\]/);
    assert.equal(exit, 0);
  });
});
