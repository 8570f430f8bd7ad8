import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { after, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { isLoopback } from '../../src/probes/prestop-route.js';
import { startService, type ServiceChild } from '../support/child.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const children = new Set<ServiceChild>();
after(() => {
  for (const c of children) c.kill();
});

async function service(env: Record<string, string> = {}): Promise<ServiceChild> {
  const child = await startService({ KUBEGRACE_PROPAGATION_MAX_MS: '300', ...env });
  children.add(child);
  return child;
}

function call(
  port: number,
  method: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/prestop?x=1', method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function cli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
    });
    return { code: 0, out: stdout, err: stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout, err: e.stderr };
  }
}

describe('preStop trigger', () => {
  it('recognises loopback callers only', () => {
    for (const a of ['127.0.0.1', '127.9.9.9', '::1', '::ffff:127.0.0.1'])
      assert.equal(isLoopback(a), true, a);
    for (const a of ['10.0.0.1', '::ffff:10.0.0.1', '192.168.1.1', 'fe80::1', undefined]) {
      assert.equal(isLoopback(a), false, String(a));
    }
  });

  it('GET /prestop from loopback starts the shutdown; the kubelet’s SIGTERM afterwards joins it (no forced exit)', async () => {
    const child = await service();
    assert.equal((await call(child.managementPort, 'PUT')).status, 405);
    const answer = await call(child.managementPort, 'GET');
    assert.equal(answer.status, 202);
    assert.deepEqual(JSON.parse(answer.body), { status: 'shutting_down' });
    await child.waitFor((e) => e.event === 'state' && e.state === 'draining');
    await delay(50);
    child.process.kill('SIGTERM');
    const exit = await child.exited;
    assert.equal(exit.code, 0, 'one signal after a preStop call is not a second signal');
    const summary = child.events.find((e) => e.event === 'summary');
    assert.equal(summary?.outcome, 'clean');
  });

  it('with a token, callers must present it', async () => {
    const child = await service({ KUBEGRACE_PRESTOP_TOKEN: 's3cret' });
    assert.equal((await call(child.managementPort, 'GET')).status, 403);
    assert.equal((await call(child.managementPort, 'GET', { 'x-kubegrace-token': 'wrong!' })).status, 403);
    assert.equal(
      child.events.some((e) => e.event === 'state' && e.state === 'draining'),
      false,
    );
    assert.equal((await call(child.managementPort, 'POST', { authorization: 'Bearer s3cret' })).status, 202);
    const exit = await child.exited;
    assert.equal(exit.code, 0);
  });

  it('kubegrace prestop triggers it through the same settings resolver', async () => {
    const child = await service({ KUBEGRACE_PRESTOP_TOKEN: 'tok' });
    const denied = await cli(['prestop', '--port', String(child.managementPort)]);
    assert.equal(denied.code, 1);
    assert.match(denied.err, /answered 403 \(set KUBEGRACE_PRESTOP_TOKEN/);
    const ok = await cli(['prestop'], {
      KUBEGRACE_PRESTOP_TOKEN: 'tok',
      KUBEGRACE_PROBES_PORT: String(child.managementPort),
    });
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /shutdown started/);
    assert.equal((await child.exited).code, 0);
  });

  it('kubegrace prestop reports an unreachable service and bad flags', async () => {
    const unreachable = await cli(['prestop', '--port', '1', '--timeout', '2s']);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.err, /cannot reach 127\.0\.0\.1:1\/prestop: ECONNREFUSED/);
    const badPort = await cli(['prestop', '--port', 'abc']);
    assert.equal(badPort.code, 2);
    assert.match(badPort.err, /--port must be an integer from 1 to 65535, received "abc"/);
    const badEnv = await cli(['prestop'], { KUBEGRACE_PROBES_PORT: 'x' });
    assert.equal(badEnv.code, 2);
    assert.match(
      badEnv.err,
      /kubegrace prestop: KUBEGRACE_PROBES_PORT must be an integer port from 0 to 65535, received "x"/,
    );
    const unknown = await cli(['prestop', '--wat']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.err, /--wat/);
    const help = await cli(['prestop', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.out, /Usage: kubegrace prestop/);
  });
});
