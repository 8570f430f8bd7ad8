#!/usr/bin/env node
// Runs the test suite with node's own test runner: `npm test [-- <paths|filters...> [--node-flags]]`.
//
// Node 20 does not expand globs in `node --test` arguments, so the files are found here:
// every test/**/*.test.ts, sorted. Arguments narrow the set:
//   - an existing directory  → the test files under it      (npm test -- test/drain)
//   - an existing file       → that file                     (npm test -- test/lifecycle.test.ts)
//   - anything else          → files whose path contains it  (npm test -- leases)
//   - a --flag               → passed to node as is           (npm test -- --test-name-pattern=drain)
// Environment:
//   KUBEGRACE_TEST_NODE         another node binary to run the suite under (CI uses it for Node 26)
//   KUBEGRACE_TEST_CONCURRENCY  test files run at once (default 2: the machines have 2 cores)
//   KUBEGRACE_TEST_TIMEOUT      budget of one test file in ms (default 120000), the same on every Node:
//                               passed as --test-timeout (Node 20 applies it to each file as a whole, Node 26
//                               to each test) and enforced per file by scripts/test-watchdog.mjs, which fails
//                               a file whose process outlives it (Node 26 would otherwise wait forever for a
//                               file that left a server open).
//   KUBEGRACE_TEST_TOTAL_TIMEOUT  ms for the whole run (default 1500000, 25 min): past it the runner and all
//                               it started are killed and the run fails, well inside CI's 90 minutes.
//
// The run ends with a digest (unless a --test-reporter flag is passed): totals of tests passed, failed,
// skipped and todo over the files, every skip and todo with its reason and file, every failure, and
// last, alone on its line, `N passed, N failed` (the line CI reads; the TAP `# pass N` / `# fail N`
// above it stay as they were). scripts/test-digest-reporter.mjs collects it next to the TAP reporter.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants, tmpdir } from 'node:os';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const testDir = join(root, 'test');

/** Paths relative to the repo root with forward slashes, so filters and output read the same everywhere. */
const toRel = (abs) => relative(root, abs).split(sep).join('/');

function findTests(dir) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    if (error.code === 'ENOENT') return [];
    throw error;
  }
  const found = [];
  for (const entry of entries) {
    const abs = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && !entry.name.startsWith('.')) found.push(...findTests(abs));
    } else if (entry.isFile() && entry.name.endsWith('.test.ts')) {
      found.push(abs);
    }
  }
  return found;
}

function positiveInt(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    console.error(`run-tests: ${name} must be a positive integer, received ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return value;
}

const args = process.argv.slice(2);
const nodeFlags = args.filter((a) => a.startsWith('--'));
const selectors = args.filter((a) => !a.startsWith('--'));

const all = findTests(testDir)
  .map(toRel)
  .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

let files = all;
if (selectors.length > 0) {
  const chosen = new Set();
  for (const selector of selectors) {
    const abs = resolve(process.cwd(), selector);
    let stat;
    try {
      stat = statSync(abs);
    } catch {
      stat = undefined;
    }
    let matches;
    if (stat?.isDirectory()) {
      const prefix = `${toRel(abs)}/`;
      matches = all.filter((f) => f.startsWith(prefix) || toRel(abs) === '');
    } else if (stat?.isFile()) {
      matches = [toRel(abs)];
    } else {
      matches = all.filter((f) => f.includes(selector));
    }
    if (matches.length === 0) {
      console.error(`run-tests: no test file matches ${JSON.stringify(selector)}`);
      process.exit(1);
    }
    for (const m of matches) chosen.add(m);
  }
  files = [...chosen].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

if (files.length === 0) {
  // A green run that ran nothing would hide a broken discovery; fail loudly instead.
  console.error('run-tests: no test files found under test/ (expected test/**/*.test.ts)');
  process.exit(1);
}

const nodeBin = process.env.KUBEGRACE_TEST_NODE || process.execPath;
const concurrency = positiveInt('KUBEGRACE_TEST_CONCURRENCY', 2);
const timeout = positiveInt('KUBEGRACE_TEST_TIMEOUT', 120_000);
const totalTimeout = positiveInt('KUBEGRACE_TEST_TOTAL_TIMEOUT', 1_500_000);
const watchdog = new URL('./test-watchdog.mjs', import.meta.url).href;

const flags = [
  '--import',
  'tsx',
  '--import',
  watchdog,
  '--test',
  `--test-concurrency=${concurrency}`,
  `--test-timeout=${timeout}`,
];
// Node 20 prints TAP (`# pass N`, `# fail N`) when stdout is not a terminal; Node ≥ 23 prints the spec
// format there. Ask for TAP explicitly off a terminal so CI logs read the same on every Node version.
const ownReporter = nodeFlags.some((f) => f.startsWith('--test-reporter'));
const digestDir = ownReporter ? undefined : mkdtempSync(join(tmpdir(), 'kubegrace-tests-'));
const digestFile = digestDir && join(digestDir, 'digest.jsonl');
if (digestFile) {
  flags.push(
    `--test-reporter=${process.stdout.isTTY ? 'spec' : 'tap'}`,
    '--test-reporter-destination=stdout',
    `--test-reporter=${new URL('./test-digest-reporter.mjs', import.meta.url).href}`,
    `--test-reporter-destination=${digestFile}`,
  );
}
flags.push(...nodeFlags);

console.error(
  `run-tests: ${files.length} file(s) under ${nodeBin} (${process.env.KUBEGRACE_TEST_NODE ? 'KUBEGRACE_TEST_NODE' : 'this node'}), concurrency ${concurrency}, timeout ${timeout} ms`,
);

const child = spawn(nodeBin, [...flags, ...files], {
  cwd: root,
  stdio: 'inherit',
  // The watchdog fires a little after node's own --test-timeout, so on Node 20 node's message comes first.
  env: { ...process.env, KUBEGRACE_TEST_FILE_BUDGET_MS: String(timeout + 5_000) },
  // Its own process group, so the total timeout can stop the runner and every process under it.
  detached: true,
});

const signalGroup = (signal) => {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
};

// Pass Ctrl-C / SIGTERM on to the whole group; the runner decides the exit code.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => signalGroup(signal));
}

let timedOut = false;
const totalTimer = setTimeout(() => {
  timedOut = true;
  console.error(`run-tests: the run exceeded KUBEGRACE_TEST_TOTAL_TIMEOUT (${totalTimeout} ms); stopping it`);
  signalGroup('SIGTERM');
  setTimeout(() => signalGroup('SIGKILL'), 5_000).unref();
}, totalTimeout);

child.on('error', (error) => {
  console.error(`run-tests: could not start ${nodeBin}: ${error.message}`);
  process.exit(1);
});

/** The digest's lines: totals, every skip/todo with reason and file, every failure, then `N passed, N failed`. */
function digest(exitCode) {
  let events = [];
  try {
    events = readFileSync(digestFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line));
  } catch {
    // no events: the runner died before reporting anything
  }
  const where = (e) => (e.file ? toRel(e.file) : '(no file)');
  const reason = (value) => (typeof value === 'string' && value !== '' ? value : 'no reason given');
  // A skipped or todo suite counts once, as what it is; a suite that fails only repeats its tests.
  const skipped = events.filter((e) => e.skip !== false);
  const todo = events.filter((e) => e.skip === false && e.todo !== false);
  const tests = events.filter((e) => !e.suite && e.skip === false && e.todo === false);
  const passed = tests.filter((e) => e.result === 'pass').length;
  const failures = tests.filter((e) => e.result === 'fail');
  // A file that failed outside any test (a crash at load time) shows only in the exit code.
  const failed = failures.length > 0 || exitCode === 0 ? failures.length : 1;
  const lines = [
    '',
    `run-tests: digest (${files.length} file(s), ${process.env.KUBEGRACE_TEST_NODE ? nodeBin : `node ${process.version}`})`,
    `run-tests:   ${passed} passed, ${failed} failed, ${skipped.length} skipped, ${todo.length} todo`,
  ];
  for (const [label, list, field] of [
    ['skipped', skipped, 'skip'],
    ['todo', todo, 'todo'],
  ]) {
    if (list.length === 0) continue;
    lines.push(`run-tests:   ${label}:`);
    for (const e of list) {
      lines.push(`run-tests:     ${where(e)}: ${e.suite ? 'suite ' : ''}"${e.name}": ${reason(e[field])}`);
    }
  }
  if (failures.length > 0) {
    lines.push('run-tests:   failed:');
    for (const e of failures) lines.push(`run-tests:     ${where(e)}: "${e.name}"`);
  } else if (failed > 0) {
    lines.push(
      `run-tests:   failed: the test runner exited ${exitCode} without a failing test (a file that did not load?)`,
    );
  }
  lines.push(`${passed} passed, ${failed} failed`);
  return lines;
}

child.on('exit', (code, signal) => {
  clearTimeout(totalTimer);
  // Nothing the runner started may outlive it (a test's server, a spawned service).
  signalGroup('SIGKILL');
  if (digestFile) {
    for (const line of digest(code ?? 1)) console.log(line);
    rmSync(digestDir, { recursive: true, force: true });
  }
  if (timedOut) process.exit(1);
  if (signal) {
    console.error(`run-tests: test runner killed by ${signal}`);
    process.exit(128 + (constants.signals[signal] ?? 0));
  }
  process.exit(code ?? 1);
});
