// A strict ESM TypeScript service with express and without `ws`: kubegrace's declarations must compile
// with skipLibCheck false and no optional peer but the one the app uses.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createKubegrace, type KubegraceOptions } from 'kubegrace';
import { probeRouter } from 'kubegrace/express';

const options: KubegraceOptions = { probes: { port: 0, host: '127.0.0.1' } };
const kg = createKubegrace(options);
const app = express();
app.use(probeRouter(kg));
app.get('/', (_req, res) => {
  res.send('hello');
});
const server = createServer(app);
kg.attach(server);
await kg.start();
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
kg.ready();
console.log(`listening ${(server.address() as AddressInfo).port}`);
