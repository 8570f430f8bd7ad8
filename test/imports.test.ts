/**
 * What importing the package loads, seen from a real child process that records every module it
 * resolves (test/support/record-modules.mjs). `yaml`, the one runtime dependency, is for the
 * `kubegrace check` command only: no entry point may load it. An optional peer loads only from the
 * entry point that needs it (docs/api.md, "loads"). Reads the build (dist/), as users get it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { ENTRY_POINTS, PACKAGE, ROOT } from './support/entry-points.js';

const recorder = pathToFileURL(join(ROOT, 'test/support/record-modules.mjs')).href;
const cli = join(ROOT, 'dist/cli/main.js');
const work = mkdtempSync(join(tmpdir(), 'kubegrace-imports-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** The peers an entry point may load when imported; every other peer and `yaml` must stay unloaded. */
const MAY_LOAD: Readonly<Record<string, readonly string[]>> = {
  'kubegrace/express': ['express'],
  'kubegrace/metrics': ['prom-client'],
};
const WATCHED = ['yaml', ...Object.keys(PACKAGE.peerDependencies)];
const entryPoints = ENTRY_POINTS.map((e) => ({ specifier: e.specifier, file: pathToFileURL(e.code).href }));

let runs = 0;

/** Runs `node --import <recorder> ...args` in the repository; the module URLs it loaded, and how it exited. */
async function record(
  args: readonly string[],
): Promise<{ urls: string[]; packages: Set<string>; code: number | null; output: string }> {
  const log = join(work, `run-${++runs}.log`);
  const child = spawn(process.execPath, ['--import', recorder, ...args], {
    cwd: ROOT,
    env: { ...process.env, KUBEGRACE_RECORD_MODULES: log, NODE_OPTIONS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const [code] = (await once(child, 'close')) as [number | null];
  const urls = readFileSync(log, 'utf8').split('\n').filter(Boolean);
  const packages = new Set<string>();
  for (const url of urls) {
    // The package a module belongs to: the path after the last node_modules/.
    const name = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\/(?!.*\/node_modules\/)/.exec(url)?.[1];
    if (name) packages.add(name);
  }
  return { urls, packages, code, output };
}

const importing = (specifier: string): readonly string[] => [
  '--input-type=module',
  '-e',
  `await import(${JSON.stringify(specifier)});`,
];

describe('what an import loads', () => {
  it('the recorder sees yaml when something loads it', async () => {
    const { packages, code, output } = await record(importing('yaml'));
    assert.equal(code, 0, output);
    assert.ok(packages.has('yaml'), `recorded: ${[...packages].join(', ')}`);
  });

  for (const { specifier, file } of entryPoints) {
    it(`${specifier} loads neither yaml nor a peer it does not need`, async () => {
      const { urls, packages, code, output } = await record(importing(specifier));
      assert.equal(code, 0, output);
      assert.ok(urls.includes(file), `${specifier} resolved to ${file}`);
      const allowed = new Set(MAY_LOAD[specifier] ?? []);
      const loaded = WATCHED.filter((name) => packages.has(name) && !allowed.has(name));
      assert.deepEqual(loaded, [], `importing ${specifier} loaded ${loaded.join(', ')}`);
      for (const name of allowed) assert.ok(packages.has(name), `${specifier} is recorded loading ${name}`);
    });
  }

  it('the kubegrace command loads yaml for check only: not for --help, not for the preStop call', async () => {
    for (const args of [['--help'], ['prestop', '--help']]) {
      const { packages, code, output } = await record([cli, ...args]);
      assert.equal(code, 0, `kubegrace ${args.join(' ')}: ${output}`);
      assert.ok(!packages.has('yaml'), `kubegrace ${args.join(' ')} loaded yaml`);
    }
    const manifest = join(ROOT, 'test/fixtures/manifests/good/deployment.yaml');
    const { packages, output } = await record([cli, 'check', manifest]);
    assert.match(output, /deployment\.yaml/, 'check read the manifest');
    assert.ok(packages.has('yaml'), 'kubegrace check loads yaml');
  });
});
