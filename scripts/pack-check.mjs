#!/usr/bin/env node
// `npm run pack:check`: checks the package as users get it — the packed tarball, not the work tree.
//   1. npm pack into a temp dir (needs `npm run build` first: dist/ is what ships)
//   2. publint on the tarball
//   3. attw (@arethetypeswrong/cli) on the tarball, every resolution mode, minus cjs-resolves-to-esm (why: below)
//   4. install the tarball into an empty temp project and load it as a user would:
//      import() and require() of every subpath in `exports` (kubegrace, kubegrace/express, ...); the
//      main entry must expose createKubegrace; then the `kubegrace --help` bin
//   5. every link in the packed README.md resolves: a relative link to a file in the tarball, a link into
//      the repository (package.json `repository`) to a file that exists in this checkout, an anchor to a
//      heading of the README
//   6. scripts/pack-consumers.mjs: the tarball in three new services (strict ESM TypeScript without ws,
//      CommonJS JavaScript, CommonJS TypeScript), compiled, run and shut down with SIGTERM; their
//      dependencies (typescript, express, @types/*) come from the npm registry. `--no-consumers` skips
//      this step (the test suite does: it stays offline; CI's pack:check step runs it)
// Prints each step and its duration; exits 1 on the first failed step, 0 when all pass.
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const bins = join(root, 'node_modules', '.bin');
const keep = process.env.KUBEGRACE_PACK_CHECK_KEEP === '1';
const consumers = !process.argv.includes('--no-consumers');
const work = mkdtempSync(join(tmpdir(), 'kubegrace-pack-'));

const failures = [];

function run(cmd, args, options = {}) {
  const result = spawnSync(cmd, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', npm_config_update_notifier: 'false', npm_config_fund: 'false' },
    ...options,
  });
  if (result.error) throw result.error;
  return result;
}

function show(result) {
  const text = `${result.stdout ?? ''}${result.stderr ?? ''}`
    .split('\n')
    // The machine's npmrc carries a key npm 11 does not know; its warning is noise here.
    .filter((line) => !/npm warn Unknown (user|project|global) config/.test(line))
    // Node's own frames say nothing about the package.
    .filter((line) => !/^\s+at .*node:internal\//.test(line))
    .join('\n')
    .trim();
  if (text) console.log(text.replace(/^/gm, '    '));
}

function step(name, fn) {
  const started = performance.now();
  console.log(`pack-check: ${name}`);
  let ok;
  try {
    ok = fn();
  } catch (error) {
    console.log(`    ${error instanceof Error ? error.message : String(error)}`);
    ok = false;
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`pack-check: ${ok ? 'ok' : 'FAILED'}   ${name} (${seconds}s)`);
  if (!ok) failures.push(name);
  return ok;
}

function finish() {
  if (keep) console.log(`pack-check: kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
  if (failures.length > 0) {
    console.log(`pack-check: ${failures.length} step(s) failed: ${failures.join('; ')}`);
    process.exit(1);
  }
  console.log('pack-check: all steps passed');
  process.exit(0);
}

if (!existsSync(join(root, 'dist', 'index.js'))) {
  console.log('pack-check: dist/index.js is missing — run `npm run build` first');
  failures.push('build output present');
  finish();
}

let tarball;
step('npm pack', () => {
  const r = run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: root });
  if (r.status !== 0) {
    show(r);
    return false;
  }
  const [info] = JSON.parse(r.stdout);
  tarball = join(work, info.filename);
  console.log(
    `    ${info.filename}: ${info.entryCount} files, ${info.size} bytes packed, ${info.unpackedSize} unpacked`,
  );
  return existsSync(tarball);
});
if (!tarball) finish();

step('publint (tarball)', () => {
  // --strict: warnings fail too; suggestions are printed but do not fail.
  const r = run(join(bins, 'publint'), ['run', tarball, '--strict']);
  show(r);
  return r.status === 0;
});

step('attw --ignore-rules cjs-resolves-to-esm (tarball)', () => {
  // The package is ESM-only on purpose. attw's default ("strict") profile checks every resolution mode,
  // and one rule is ignored:
  //  - cjs-resolves-to-esm (node16 from CJS): attw's bundled TypeScript treats a CJS require() of an ESM
  //    file as an error. Node >= 20.19 loads ESM through require() unflagged (engines says >=20.19),
  //    TypeScript >= 5.8 accepts it under `module: nodenext`, and the require() steps and the cjs-ts
  //    consumer below prove that path for real.
  // node10 (TypeScript's legacy `moduleResolution: node`) ignores `exports`; `typesVersions` maps the
  // subpaths (kubegrace/express, ...) for it, so it is checked like the rest.
  const r = run(join(bins, 'attw'), [
    tarball,
    '--ignore-rules',
    'cjs-resolves-to-esm',
    '--format',
    'table',
    '--no-emoji',
    '--no-color',
  ]);
  show(r);
  return r.status === 0;
});

const project = join(work, 'consumer');
let installed = false;
step('install the tarball into an empty project', () => {
  mkdirSync(project);
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'kubegrace-consumer', version: '1.0.0', private: true }, null, 2),
  );
  const r = run(
    'npm',
    ['install', '--no-audit', '--no-fund', '--prefer-offline', '--no-package-lock', tarball],
    { cwd: project },
  );
  if (r.status !== 0) {
    show(r);
    return false;
  }
  // Optional peers (express, prom-client, ws) are the app's to install. Link the repo's copies instead of
  // fetching them: the check stays offline and still resolves them from the consumer's node_modules only.
  for (const peer of Object.keys(pkg.peerDependencies ?? {})) {
    const from = join(root, 'node_modules', peer);
    const to = join(project, 'node_modules', peer);
    if (existsSync(from) && !existsSync(to)) {
      mkdirSync(dirname(to), { recursive: true });
      symlinkSync(from, to, 'dir');
    }
  }
  installed = existsSync(join(project, 'node_modules', 'kubegrace', 'package.json'));
  return installed;
});
if (!installed) finish();

// Each probe runs in its own process from the consumer project and prints the specifier's export names.
const probe = (mode, specifier) =>
  mode === 'import'
    ? `const m = await import(${JSON.stringify(specifier)}); console.log(JSON.stringify(Object.keys(m).sort()));`
    : `const m = require(${JSON.stringify(specifier)}); console.log(JSON.stringify(Object.keys(m).sort()));`;

// Every subpath in `exports` must load both ways; the names listed here must be among its exports.
const required = { kubegrace: ['createKubegrace'] };
const subpaths = Object.keys(pkg.exports ?? { '.': null })
  .filter((key) => !key.endsWith('.json') && !key.includes('*'))
  .map((key) => (key === '.' ? pkg.name : `${pkg.name}/${key.slice(2)}`));
for (const specifier of subpaths) {
  const expected = required[specifier] ?? [];
  for (const mode of ['import', 'require']) {
    const what = expected.length > 0 ? `exposes ${expected.join(', ')}` : 'loads';
    step(`${mode}('${specifier}') ${what}`, () => {
      const r = run(
        process.execPath,
        [mode === 'import' ? '--input-type=module' : '--input-type=commonjs', '-e', probe(mode, specifier)],
        { cwd: project },
      );
      if (r.status !== 0) {
        show(r);
        return false;
      }
      const names = JSON.parse(r.stdout.trim().split('\n').pop() ?? '[]');
      console.log(`    exports: ${names.join(', ') || '(none)'}`);
      const missing = expected.filter((name) => !names.includes(name));
      if (missing.length > 0) {
        console.log(`    missing from ${specifier}: ${missing.join(', ')}`);
        return false;
      }
      return true;
    });
  }
}

step('kubegrace --help (bin)', () => {
  const bin = join(project, 'node_modules', '.bin', 'kubegrace');
  if (!existsSync(bin)) {
    const declared = JSON.stringify(pkg.bin ?? null);
    console.log(`    no node_modules/.bin/kubegrace after install (package.json bin: ${declared};`);
    console.log('    the file must exist in the tarball, under dist/)');
    return false;
  }
  const r = run(bin, ['--help'], { cwd: project });
  show(r);
  if (r.status !== 0) {
    console.log(`    exited ${r.status}`);
    return false;
  }
  if (!/kubegrace/i.test(r.stdout)) {
    console.log('    --help printed nothing that names kubegrace');
    return false;
  }
  return true;
});

step('every link in the packed README.md resolves', () => {
  const unpacked = join(work, 'unpacked');
  mkdirSync(unpacked);
  const r = run('tar', ['-xzf', tarball, '-C', unpacked]);
  if (r.status !== 0) {
    show(r);
    return false;
  }
  const problems = readmeLinkProblems(join(unpacked, 'package'));
  for (const problem of problems) console.log(`    ${problem}`);
  return problems.length === 0;
});

if (consumers) {
  step('consumer services: compile, run, SIGTERM, clean exit (scripts/pack-consumers.mjs)', () => {
    const r = spawnSync(process.execPath, [join(root, 'scripts', 'pack-consumers.mjs'), tarball], {
      stdio: 'inherit',
      env: process.env,
    });
    return r.status === 0;
  });
} else {
  console.log('pack-check: skipped   consumer services (--no-consumers)');
}

/**
 * The README as npm shows it has no repository around it: a relative link must name a file in the
 * package, a link into the repository a file that exists here, an anchor a heading of the README.
 */
function readmeLinkProblems(packageDir) {
  const readme = readFileSync(join(packageDir, 'README.md'), 'utf8').replace(/```[\s\S]*?```/g, '');
  const repo = String(pkg.repository?.url ?? '')
    .replace(/^git\+/, '')
    .replace(/\.git$/, '');
  const headings = new Set(
    [...readme.matchAll(/^#{1,6}\s+(.+)$/gm)].map(([, text]) =>
      text
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\s-]/gu, '')
        .trim()
        .replace(/\s/g, '-'),
    ),
  );
  const problems = [];
  const links = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map(([, target]) => target);
  for (const link of links) {
    const [path, anchor] = link.split('#');
    if (link.startsWith('#')) {
      if (!headings.has(anchor)) problems.push(`${link}: no such heading in README.md`);
    } else if (/^https?:\/\//.test(link)) {
      const inRepo =
        repo && link.startsWith(`${repo}/`)
          ? /^\/(?:blob|tree)\/[^/]+\/(.+)$/.exec(path.slice(repo.length))
          : null;
      if (
        repo &&
        link.startsWith(`${repo}/`) &&
        !/^\/(?:issues|releases|pkgs)\b/.test(path.slice(repo.length)) &&
        !inRepo
      ) {
        problems.push(`${link}: a repository link that is neither blob/<ref>/<path> nor tree/<ref>/<path>`);
      }
      if (inRepo && !existsSync(join(root, decodeURIComponent(inRepo[1])))) {
        problems.push(`${link}: ${inRepo[1]} does not exist in the repository`);
      }
    } else if (!/^mailto:/.test(link) && !existsSync(join(packageDir, decodeURIComponent(path)))) {
      problems.push(`${link}: not in the package (relative links must name a packed file)`);
    }
  }
  console.log(`    ${links.length} links checked`);
  return problems;
}

finish();
