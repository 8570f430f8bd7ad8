// A CommonJS TypeScript service (package.json "type": "commonjs"): `module: nodenext` compiles these
// imports to require() of the ESM package, which TypeScript accepts from 5.8 and Node runs from 20.19.
// tsconfig.node10.json type-checks the same file under the legacy `moduleResolution: node`, which sees
// the subpaths through `typesVersions`.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createKubegrace } from 'kubegrace';
import { kubernetes, type KubernetesIntegration } from 'kubegrace/kubernetes';

async function main(): Promise<void> {
  const kg = createKubegrace({ probes: { port: 0, host: '127.0.0.1' } });
  const server = createServer((_req, res) => res.end('hello'));
  kg.attach(server);
  await kg.start();
  // A subpath through the one plug-in shape, at run time and in both type-check modes. Turned off, so
  // nothing is loaded: @kubernetes/client-node is not installed here.
  const cluster: KubernetesIntegration = await kg.use(kubernetes({ enabled: false }));
  server.listen(0, '127.0.0.1', () => {
    kg.ready();
    console.log(
      `listening ${(server.address() as AddressInfo).port} (kubernetes: ${cluster.enabled ? 'on' : cluster.reason})`,
    );
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
