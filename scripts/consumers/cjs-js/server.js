// A CommonJS JavaScript service: require() of the ESM package (Node >= 20.19).
'use strict';
const { createServer } = require('node:http');
const { createKubegrace } = require('kubegrace');

async function main() {
  const kg = createKubegrace({ probes: { port: 0, host: '127.0.0.1' } });
  const server = createServer((_req, res) => res.end('hello'));
  kg.attach(server);
  await kg.start();
  server.listen(0, '127.0.0.1', () => {
    kg.ready();
    console.log(`listening ${server.address().port}`);
  });
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
