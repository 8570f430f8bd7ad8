/**
 * The multi-process pod most images ship (`--tool naive-cluster`): the demo's baseline, a
 * `node:cluster` primary that forwards SIGTERM to its 2 workers and exits at once, each worker doing
 * `server.close()`. One file for both, so the benchmark measures exactly what the demo shows.
 */
import '../../src/cli/demo/naive-cluster-service.js';
