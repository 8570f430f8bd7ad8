/**
 * `kubegrace prestop` against a real service that requires a token: the refusal says whether the
 * token was missing or wrong, and never shows the token.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startService, type ServiceChild } from '../support/child.js';

const bin = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const children = new Set<ServiceChild>();
after(() => {
  for (const child of children) child.kill();
});

/** The built bin, as a preStop hook runs it; KUBEGRACE_* from the test's own environment left out. */
function prestop(
  env: Record<string, string>,
  args: readonly string[] = [],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('KUBEGRACE_')),
  );
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, 'prestop', ...args],
      { env: { ...inherited, ...env }, timeout: 20_000 },
      (error, stdout, stderr) => {
        resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr });
      },
    );
  });
}

describe('kubegrace prestop and the service’s token', () => {
  it('a wrong token is reported as refused, not as missing, and is not printed', async () => {
    const child = await startService({
      KUBEGRACE_PROPAGATION_MAX_MS: '300',
      KUBEGRACE_PRESTOP_TOKEN: 'right-token',
    });
    children.add(child);
    const port = String(child.managementPort);

    const wrong = await prestop({ KUBEGRACE_PROBES_PORT: port, KUBEGRACE_PRESTOP_TOKEN: 'wrong-token' });
    assert.equal(wrong.code, 1);
    assert.match(
      wrong.stderr,
      /answered 403: the token it sent \(KUBEGRACE_PRESTOP_TOKEN, not shown\) was refused/,
    );
    assert.doesNotMatch(wrong.stderr, /set KUBEGRACE_PRESTOP_TOKEN/);
    assert.ok(!wrong.stderr.includes('wrong-token') && !wrong.stdout.includes('wrong-token'), wrong.stderr);

    const missing = await prestop({ KUBEGRACE_PROBES_PORT: port });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /answered 403 \(set KUBEGRACE_PRESTOP_TOKEN to the service’s token\)/);

    const right = await prestop({ KUBEGRACE_PROBES_PORT: port, KUBEGRACE_PRESTOP_TOKEN: 'right-token' });
    assert.equal(right.code, 0, right.stderr);
    assert.doesNotMatch(right.stdout, /right-token/);
    assert.equal((await child.exited).code, 0);
  });

  it('reads only its own variables: another one the resolver would refuse does not stop the hook', async () => {
    const child = await startService({ KUBEGRACE_PROPAGATION_MAX_MS: '300' });
    children.add(child);
    // The service may run with it (an option set in code wins); the hook must not fail on it.
    const result = await prestop({
      KUBEGRACE_PROBES_PORT: String(child.managementPort),
      KUBEGRACE_DRAIN_TIMEOUT_MS: 'soon',
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal((await child.exited).code, 0);
  });

  it('a service that took the request but did not answer in time is not "unreachable"; IPv6 hosts in brackets', async () => {
    const held = new Set<Socket>();
    const silent = createServer((socket) => held.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '::1', resolve));
    const { port } = silent.address() as { port: number };
    try {
      const result = await prestop({}, ['--host', '::1', '--port', String(port), '--timeout', '300ms']);
      assert.equal(result.code, 1);
      assert.equal(
        result.stderr.trim(),
        `kubegrace prestop: [::1]:${port}/prestop did not answer within 300 ms (the request reached it: the shutdown may have started)`,
      );
    } finally {
      for (const socket of held) socket.destroy();
      silent.close();
    }
  });
});
