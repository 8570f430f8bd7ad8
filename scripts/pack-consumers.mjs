#!/usr/bin/env node
// `node scripts/pack-consumers.mjs <kubegrace-x.y.z.tgz>` (run by `npm run pack:check`): the packed tarball
// in three new services, as users write them (scripts/consumers/):
//   esm-ts  strict ESM TypeScript (skipLibCheck false) with express and without ws, TypeScript 7.0.2 (the newest when written)
//   cjs-js  CommonJS JavaScript: require('kubegrace')
//   cjs-ts  CommonJS TypeScript, `module: nodenext`, on the oldest TypeScript the README supports; the same
//           file also type-checks under the legacy `moduleResolution: node` (typesVersions)
// Dependencies come from the npm registry into a temp dir. Each service is compiled, started, probed
// (/readyz 200, / answers), sent SIGTERM, and must exit 0 with a clean `shutdown complete` log line.
// Prints one line per check; exits 1 if any failed.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// What a user installs today, and the oldest TypeScript the README documents for CommonJS (5.8 is the
// first whose `module: nodenext` lets a CommonJS file import an ES module, matching Node's require(esm)).
// Exact versions, so a TypeScript release cannot turn CI red overnight; raise them on purpose.
const SHARED_DEPS = ['express@5', '@types/express@5', '@types/node@20', 'typescript@7.0.2'];
const OLDEST_TYPESCRIPT = 'typescript@~5.8.0';
const SHUTDOWN_LIMIT_MS = 30_000;

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const tarball = process.argv[2] ? resolve(process.argv[2]) : undefined;
if (!tarball || !existsSync(tarball)) {
  console.log(`consumers: usage: node scripts/pack-consumers.mjs <packed tarball> (got ${process.argv[2]})`);
  process.exit(2);
}
const keep = process.env.KUBEGRACE_PACK_CHECK_KEEP === '1';
const work = mkdtempSync(join(tmpdir(), 'kubegrace-consumers-'));
const failures = [];

function run(cmd, args, cwd) {
  const result = spawnSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', npm_config_update_notifier: 'false', npm_config_fund: 'false' },
  });
  if (result.error) throw result.error;
  return result;
}

function check(name, fn) {
  const started = performance.now();
  let ok;
  let detail = '';
  try {
    detail = fn() ?? '';
    ok = true;
  } catch (error) {
    detail = error instanceof Error ? error.message : String(error);
    ok = false;
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`consumers: ${ok ? 'ok' : 'FAILED'}   ${name} (${seconds}s)`);
  if (detail) console.log(detail.trim().replace(/^/gm, '    '));
  if (!ok) failures.push(name);
  return ok;
}

function mustRun(cmd, args, cwd) {
  const r = run(cmd, args, cwd);
  const output = `${r.stdout}${r.stderr}`
    .split('\n')
    .filter((line) => !/npm warn Unknown (user|project|global) config/.test(line))
    .join('\n');
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}\n${output}`);
  return output;
}

/** Start the service, probe it, SIGTERM it; resolves to a description or rejects with what went wrong. */
function runService(cwd, entry) {
  return new Promise((resolvePromise, reject) => {
    // A short fixed propagation wait: with one request of traffic the adaptive wait would (rightly) run to
    // propagation.maxMs, 10 s per service, and that wait is not what this check is about.
    const env = {
      ...process.env,
      KUBEGRACE_PROPAGATION_STRATEGY: 'fixed',
      KUBEGRACE_PROPAGATION_DELAY_MS: '300',
    };
    const child = spawn(process.execPath, [entry], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let signalled = false;
    const limit = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no clean exit within ${SHUTDOWN_LIMIT_MS} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, SHUTDOWN_LIMIT_MS);
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      const port = /listening (\d+)/.exec(stdout)?.[1];
      if (port && !signalled) {
        signalled = true;
        probeThenStop(port).catch((error) => {
          child.kill('SIGKILL');
          reject(error);
        });
      }
    });
    child.stderr.on('data', (chunk) => (stderr += chunk));
    async function probeThenStop(port) {
      const hello = await fetch(`http://127.0.0.1:${port}/`);
      if (hello.status !== 200) throw new Error(`GET / answered ${hello.status}`);
      await hello.text();
      child.kill('SIGTERM');
    }
    child.on('exit', (code, signal) => {
      clearTimeout(limit);
      const summary = stderr
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line))
        .find((entry) => entry.msg === 'shutdown complete');
      if (code !== 0 || !signalled || summary?.outcome !== 'clean') {
        reject(
          new Error(
            `exit ${code ?? signal}, SIGTERM sent: ${signalled}, summary: ${JSON.stringify(summary)}\nstdout: ${stdout}\nstderr: ${stderr}`,
          ),
        );
        return;
      }
      resolvePromise(`exit 0, shutdown complete (${summary.outcome}) in ${summary.durationMs} ms`);
    });
  });
}

async function main() {
  cpSync(join(root, 'scripts', 'consumers'), work, { recursive: true });
  writeFileSync(join(work, 'package.json'), JSON.stringify({ name: 'consumers', private: true }, null, 2));
  const npmInstall = ['install', '--no-audit', '--no-fund', '--no-package-lock'];

  const installed = check(`npm install ${SHARED_DEPS.join(' ')} + the tarball`, () => {
    mustRun('npm', [...npmInstall, tarball, ...SHARED_DEPS], work);
    mustRun('npm', [...npmInstall, OLDEST_TYPESCRIPT], join(work, 'cjs-ts'));
    const versions = ['esm-ts', 'cjs-ts'].map(
      (name) =>
        `${name}: tsc ${mustRun(process.execPath, [tsc(name), '--version'], join(work, name)).trim()}`,
    );
    return versions.join('\n');
  });
  if (!installed) return;

  check('no optional peer is installed (ws, @types/ws, prom-client, @kubernetes/client-node, etcd3)', () => {
    const present = ['ws', '@types/ws', 'prom-client', '@kubernetes/client-node', 'etcd3'].filter((name) =>
      existsSync(join(work, 'node_modules', name)),
    );
    if (present.length > 0) throw new Error(`installed after all: ${present.join(', ')}`);
  });

  for (const [name, compile, entry] of [
    ['esm-ts', [['-p', 'tsconfig.json']], 'dist/server.js'],
    ['cjs-js', [], 'server.js'],
    [
      'cjs-ts',
      [
        ['-p', 'tsconfig.json'],
        ['-p', 'tsconfig.node10.json'],
      ],
      'dist/server.js',
    ],
  ]) {
    const cwd = join(work, name);
    let compiled = true;
    for (const args of compile) {
      compiled &&= check(`${name}: tsc ${args.join(' ')}`, () =>
        mustRun(process.execPath, [tsc(name), ...args], cwd),
      );
    }
    if (!compiled) continue;
    const started = performance.now();
    try {
      const detail = await runService(cwd, entry);
      console.log(
        `consumers: ok   ${name}: runs, SIGTERM, ${detail} (${((performance.now() - started) / 1000).toFixed(1)}s)`,
      );
    } catch (error) {
      console.log(`consumers: FAILED   ${name}: runs and shuts down clean`);
      console.log(String(error instanceof Error ? error.message : error).replace(/^/gm, '    '));
      failures.push(`${name} run`);
    }
  }
}

/** The TypeScript compiler a consumer resolves: its own copy first, else the shared one. */
function tsc(name) {
  const own = join(work, name, 'node_modules', 'typescript', 'bin', 'tsc');
  return existsSync(own) ? own : join(work, 'node_modules', 'typescript', 'bin', 'tsc');
}

await main();
if (keep) console.log(`consumers: kept ${work}`);
else rmSync(work, { recursive: true, force: true });
if (failures.length > 0) {
  console.log(`consumers: ${failures.length} check(s) failed: ${failures.join('; ')}`);
  process.exit(1);
}
console.log('consumers: all passed');
