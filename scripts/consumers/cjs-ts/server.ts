// A CommonJS TypeScript service (package.json "type": "commonjs"): `module: nodenext` compiles these
// imports to require() of the ESM package, which TypeScript accepts from 5.8 and Node runs from 20.19.
// tsconfig.node10.json type-checks the same file under the legacy `moduleResolution: node`, which sees
// the subpaths through `typesVersions`.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createKubegrace } from 'kubegrace';
import type { KubegraceLike } from 'kubegrace/express';

async function main(): Promise<void> {
  const kg = createKubegrace({ probes: { port: 0, host: '127.0.0.1' } });
  // The subpath's types resolve too (a type-only import: this service does not use express).
  const probeTarget: KubegraceLike = kg;
  const server = createServer((_req, res) => res.end('hello'));
  kg.attach(server);
  await kg.start();
  server.listen(0, '127.0.0.1', () => {
    kg.ready();
    console.log(
      `listening ${(server.address() as AddressInfo).port} (${probeTarget.probeRoutes.size} probe routes)`,
    );
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
