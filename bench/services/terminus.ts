/**
 * @godaddy/terminus as its README sets it up for Kubernetes ("How to set Terminus up with
 * Kubernetes?"): a readiness health check, `beforeShutdown` waiting 5 s ("given your readiness
 * probes run every 5 second"), `useExit0: true`; everything else default (`timeout` 1000 ms for
 * in-flight requests once the server stops).
 */
import type { Server } from 'node:http';
import { createTerminus } from '@godaddy/terminus';
import { createBenchApp, sleep } from './app.js';

const app = createBenchApp();
// terminus types take an http(s) server; an h2c server gets the same treatment at run time.
createTerminus(app.server as Server, {
  healthChecks: { '/healthcheck': () => Promise.resolve() },
  beforeShutdown: () => sleep(5000),
  useExit0: true,
});
await app.listen({ path: app.protocol === 'h2' ? null : '/healthcheck' });
