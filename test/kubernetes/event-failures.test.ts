/**
 * What becomes of Events the API does not take, and what the one warning says about it: one slow
 * Event must not cost the shutdown its other Events, a refused Event is not "retried", and a
 * kubeconfig the client refuses to use is a configuration error, not an unreachable API.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { createKubegrace } from '../../src/kubegrace.js';
import { kubernetes } from '../../src/kubernetes/index.js';
import { createApiWarnings } from '../../src/kubernetes/warnings.js';
import {
  captureLog,
  clientMajors,
  seedPod,
  setEndpointReady,
  startFakeKubeApi,
  waitFor,
  fakeKubernetesOptions,
} from '../support/fake-kube-api.js';

for (const major of clientMajors()) {
  describe(`Event failures via ${major.label}`, { skip: major.skip ?? false }, () => {
    it('one Event answered after requestTimeoutMs does not suppress the later ones', async () => {
      const client = await major.load();
      const fake = await startFakeKubeApi();
      try {
        const pod = seedPod(fake, { graceSeconds: 30 });
        const log = captureLog();
        const kg = createKubegrace({
          handleSignals: false,
          logger: log.logger,
          exit: () => {},
          managementServer: false,
          budgetCheck: 'off',
          unreadyTimeoutMs: 100,
          propagation: { quietPeriodMs: 200, maxMs: 3000, proxyAllowanceMs: 300 },
          drain: { timeoutMs: 4000 },
          cleanupTimeoutMs: 500,
        });
        const k = await kg.use(
          kubernetes(
            fakeKubernetesOptions(fake, client, {
              podName: pod.name,
              requestTimeoutMs: 700,
            }),
          ),
        );
        try {
          await waitFor(() => k.watching.pod && k.watching.endpointSlices, 'the watches');
          kg.ready();
          let posts = 0;
          fake.setLatency(1500, (r) => r.resource === 'events' && r.method === 'POST' && posts++ === 0);
          const lease = kg.lease('job');
          setTimeout(() => lease.release(), 2500);
          const done = kg.shutdown('SIGTERM');
          await delay(100);
          setEndpointReady(fake, 'shop', pod.slice, pod.uid, false);
          await done;
          await waitFor(
            () => fake.list('events', 'shop').some((e) => e.reason === 'ShutdownComplete'),
            'the final Event',
          );
          const reasons = fake.list('events', 'shop').map((e) => e.reason);
          assert.ok(reasons.includes('Drained'), `stored: ${reasons.join(', ')}`);
          const warnings = log.warnings();
          assert.equal(warnings.length, 1, warnings.join('\n'));
          assert.match(
            warnings[0] as string,
            /did not answer create events within 700 ms \(requestTimeoutMs\); that Event is dropped \(Events are not retried\); the next ones are still sent/,
          );
        } finally {
          await k.stop();
          await kg.destroy();
        }
      } finally {
        await fake.close();
      }
    });

    it('http:// without skipTLSVerify is named as the configuration error it is', async () => {
      const client = await major.load();
      const log = captureLog();
      const kg = createKubegrace({
        handleSignals: false,
        logger: log.logger,
        exit: () => {},
        managementServer: false,
      });
      const kubeConfig = new client.KubeConfig();
      kubeConfig.loadFromOptions({
        clusters: [{ name: 'c', server: 'http://127.0.0.1:9' }],
        users: [{ name: 'u', token: 'not-used' }],
        contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
        currentContext: 'x',
      });
      const k = await kg.use(
        kubernetes({
          kubeConfig,
          client,
          podName: 'web-1',
          namespace: 'shop',
          env: {},
          requestTimeoutMs: 500,
        }),
      );
      try {
        await waitFor(() => log.warnings().length > 0, 'the warning');
        const [warning] = log.warnings();
        assert.match(
          warning as string,
          /^the kubeconfig points at the Kubernetes API over plain HTTP \(http:\/\/127\.0\.0\.1:9\) without skipTLSVerify: .*use the https:\/\/ address/,
        );
        assert.doesNotMatch(warning as string, /unreachable|retrying/);
      } finally {
        await k.stop();
        await kg.destroy();
      }
    });
  });
}

describe('the warning for a refused Event', () => {
  it('says the Event is dropped, not that it is retried', () => {
    const log = captureLog();
    const warnings = createApiWarnings(log.logger, 'https://10.0.0.1', 2000);
    warnings.onFailure({
      kind: 'rejected',
      verb: 'create',
      resource: 'events',
      namespace: 'shop',
      status: 422,
      detail: 'Event "x" is invalid: reason: Required value',
    });
    assert.deepEqual(log.warnings(), [
      'the Kubernetes API at https://10.0.0.1 refused to create events in namespace shop (422 Event "x" is invalid: ' +
        'reason: Required value); that Event is dropped (Events are not retried); the next ones are still sent',
    ]);
    assert.equal(warnings.unavailable, false, 'a refused Event says nothing about the API being down');
  });
});
