/**
 * Runs a snippet of docs/frameworks.md (test/frameworks/snippets/) as a real child process, as a user
 * would: `node --import tsx <file>` on a free loopback port. The snippet must be in the doc word for
 * word (its kubegrace import spelled `'kubegrace'`), answer `GET /` with `hello`, keep answering under
 * keep-alive load across SIGTERM, and exit 0 with a clean summary.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { FAST_SHUTDOWN, repoRoot, startLoad, within } from '../examples/harness.js';
import { get } from '../support/http.js';

/** The snippet as docs/frameworks.md shows it: the package's name instead of the source path. */
export function asDocumented(file: string): string {
  return readFileSync(join(repoRoot, 'test/frameworks/snippets', file), 'utf8').replaceAll(
    "'../../../src/index.js'",
    "'kubegrace'",
  );
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

export async function runSnippet(file: string): Promise<{ stdout: string[]; outcome: unknown }> {
  const doc = readFileSync(join(repoRoot, 'docs/frameworks.md'), 'utf8');
  assert.ok(doc.includes(asDocumented(file)), `docs/frameworks.md shows ${file} as it is tested`);

  const port = await freePort();
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('KUBEGRACE_') && key !== 'PORT'),
  );
  const child = spawn(process.execPath, ['--import', 'tsx', join('test/frameworks/snippets', file)], {
    cwd: repoRoot,
    env: { ...inherited, ...FAST_SHUTDOWN, PORT: String(port), KUBEGRACE_PROBES_PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => stdout.push(line));
  createInterface({ input: child.stderr }).on('line', (line) => stderr.push(line));
  const exited = once(child, 'exit');
  const output = (): string => [...stdout, ...stderr].join('\n').slice(-6000);
  try {
    const until = Date.now() + 20_000;
    let hello = await get(port, '/').catch(() => undefined);
    while (hello?.status !== 200) {
      assert.ok(Date.now() < until && child.exitCode === null, `${file} never answered GET /\n${output()}`);
      await delay(50);
      hello = await get(port, '/').catch(() => undefined);
    }
    assert.equal(hello.body, 'hello');

    const load = startLoad(port, { path: '/', concurrency: 4 });
    await delay(300);
    child.kill('SIGTERM');
    load.markSignal();
    await delay(300);
    const result = await within(load.stop(), 15_000, `${file}: the requests in flight`);
    const [code] = (await within(exited, 20_000, `${file}: exit after SIGTERM`)) as [number | null];
    assert.deepEqual(result.failures, [], output());
    assert.ok(result.okAfterSignal > 0, `nothing sent after SIGTERM was answered\n${output()}`);
    assert.equal(code, 0, output());
    const summary = stderr
      .map((line) => {
        try {
          return JSON.parse(line) as { msg?: string; outcome?: unknown };
        } catch {
          return undefined;
        }
      })
      .find((record) => record?.msg === 'shutdown complete');
    return { stdout, outcome: summary?.outcome };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}
