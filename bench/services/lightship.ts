/**
 * lightship as its README sets it up: probes on lightship's own server, `shutdownDelay` matching
 * the readiness probe's `periodSeconds` of its example probe configuration (5 s, lightship's own
 * default in a cluster: set explicitly because outside a cluster it would default to 0), and the
 * README's shutdown handler, `server.close()`. lightship exits the process itself: 0 when the event
 * loop empties within 1 s of the handlers, else `process.exit(1)`.
 */
import type { AddressInfo } from 'node:net';
import { createLightship } from 'lightship';
import { createBenchApp } from './app.js';

const app = createBenchApp();
const lightship = await createLightship({ shutdownDelay: 5000 });
lightship.registerShutdownHandler(() => {
  app.server.close();
});
await app.listen({ path: '/ready', port: (lightship.server.address() as AddressInfo).port });
lightship.signalReady();
