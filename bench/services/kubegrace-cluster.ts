/**
 * The multi-process pod with kubegrace/cluster (`--tool kubegrace-cluster`): the demo's own
 * (`kubegrace demo --cluster`), a `node:cluster` primary and 2 workers serving `/work` on one shared
 * port. One file for both, so the benchmark measures exactly what the demo shows.
 */
import '../../src/cli/demo/cluster-service.js';
