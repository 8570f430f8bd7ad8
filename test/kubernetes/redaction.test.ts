/**
 * A kubeconfig whose server URL carries credentials (user info, or a token in the query) must not
 * put them in any log line: the start-up line, the warnings, and the transport errors that quote the
 * URL of the request that failed (docs/security.md).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { createKubegrace } from '../../src/kubegrace.js';
import { kubernetes } from '../../src/kubernetes/index.js';
import { captureLog, clientMajors, seedPod, startFakeKubeApi, type Json } from '../support/fake-kube-api.js';

for (const major of clientMajors()) {
  describe(`the API server URL in logs via ${major.label}`, { skip: major.skip ?? false }, () => {
    it('user info and query values are cut from every line, the fetch errors included', async () => {
      const client = await major.load();
      const fake = await startFakeKubeApi();
      try {
        const pod = seedPod(fake, { graceSeconds: 30 });
        const servers = [
          fake.url.replace('https://', 'https://admin:S3CRET-PASSWORD@'),
          'https://admin:S3CRET-PASSWORD@127.0.0.1:9',
          'https://127.0.0.1:9/?access_token=S3CRET-TOKEN',
        ];
        for (const server of servers) {
          const log = captureLog();
          const kg = createKubegrace({
            handleSignals: false,
            logger: log.logger,
            exit: () => {},
            managementServer: false,
          });
          const options = fake.kubeConfigOptions('shop') as { clusters: Json[] };
          (options.clusters[0] as Json).server = server;
          const kubeConfig = new client.KubeConfig();
          kubeConfig.loadFromOptions(options);
          const k = await kg.use(
            kubernetes({
              kubeConfig,
              client,
              podName: pod.name,
              namespace: 'shop',
              env: {},
              requestTimeoutMs: 800,
              retry: { initialMs: 100, maxMs: 200 },
            }),
          );
          await delay(400);
          await k.stop();
          await kg.destroy();
          const lines = log.lines.map((l) => `${l.level}: ${l.msg} ${JSON.stringify(l.fields)}`);
          assert.ok(lines.length > 0);
          const leaks = lines.filter((l) => l.includes('S3CRET'));
          assert.deepEqual(leaks, [], `${server.replace(/S3CRET[-A-Z]*/, '…')}: lines with the secret`);
          const quoted = lines.filter((l) => l.includes('127.0.0.1'));
          assert.ok(quoted.length > 0, 'the server is still named');
          for (const line of quoted) assert.match(line, /\*\*\*/, 'where it is named, it is redacted');
          if (server.includes(':9')) {
            assert.ok(
              log.warnings().some((w) => /unreachable \(.*(ECONNREFUSED|fetch failed|credentials)/.test(w)),
              `the transport error is quoted: ${log.warnings().join(' | ')}`,
            );
          }
        }
      } finally {
        await fake.close();
      }
    });
  });
}
