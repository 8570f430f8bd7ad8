// Preloaded by scripts/run-tests.mjs (`--import`) into every process node's test runner starts for a
// test file. Node 20 applies --test-timeout to a whole file; Node 26 applies it to each test only, so
// there a file whose tests are done but whose process stays alive (a server or socket left open) would
// hang the whole suite, and CI with it. This gives each file the same budget on every version: past it,
// the file's process names what is still open and exits 1, which the runner reports as a failed file.
const budgetMs = Number(process.env.KUBEGRACE_TEST_FILE_BUDGET_MS);
const file = process.argv[1] ?? '';

// NODE_TEST_CONTEXT is set by the runner in the processes it starts for test files; processes a test
// spawns inherit it, so also require that this process is running a test file itself.
if (process.env.NODE_TEST_CONTEXT && budgetMs > 0 && /\.test\.[cm]?[jt]s$/.test(file)) {
  const timer = setTimeout(() => {
    const open = {};
    for (const kind of process.getActiveResourcesInfo()) open[kind] = (open[kind] ?? 0) + 1;
    delete open.TTYWrap;
    const list =
      Object.entries(open)
        .map(([kind, count]) => `${kind} ×${count}`)
        .join(', ') || 'none';
    process.stderr.write(
      `\nrun-tests: ${file} still running ${budgetMs} ms after it started: a test hangs, or its tests ` +
        `finished but left something open (open now: ${list}). Failing the file instead of hanging the suite.\n`,
    );
    process.exit(1);
  }, budgetMs);
  // Guards only: it must not be what keeps the process alive.
  timer.unref();
}
