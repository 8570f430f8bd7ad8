/**
 * In-cluster detection and identity, the start-up budget check against the real pod spec, and the
 * promise that @kubernetes/client-node is only loaded in a cluster or when asked for.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type * as K1 from '@kubernetes/client-node';
import type * as K2 from 'k8s-client-2';
import { createKubegrace } from '../../src/kubegrace.js';
import { KubegraceError } from '../../src/errors.js';
import type { KubeClientModule, KubeConfigLike } from '../../src/kubernetes/client.js';
import { detectCluster, podIdentity } from '../../src/kubernetes/detect.js';
import { kubernetes } from '../../src/kubernetes/index.js';
import { captureLog, seedPod, startFakeKubeApi } from '../support/fake-kube-api.js';

// Compile-time proof that both majors fit the structural types the integration is written against.
export const fitsMajor1 = (m: typeof K1): KubeClientModule => m;
export const fitsMajor2 = (m: typeof K2): KubeClientModule => m;
export const kubeConfig1 = (kc: K1.KubeConfig): KubeConfigLike => kc;
export const kubeConfig2 = (kc: K2.KubeConfig): KubeConfigLike => kc;

function kubegrace(overrides: Parameters<typeof createKubegrace>[0] = {}) {
  return createKubegrace({
    handleSignals: false,
    logger: false,
    exit: () => {},
    managementServer: false,
    gracePeriodSeconds: 30,
    ...overrides,
  });
}

describe('detectCluster', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kubegrace-sa-'));
  writeFileSync(join(dir, 'token'), 'x');

  it('needs KUBERNETES_SERVICE_HOST and a mounted token', () => {
    assert.deepEqual(
      { ...detectCluster({}, dir), tokenFile: '', caFile: '', namespaceFile: '' },
      {
        inCluster: false,
        reason: 'KUBERNETES_SERVICE_HOST is not set',
        tokenFile: '',
        caFile: '',
        namespaceFile: '',
      },
    );
    const noToken = detectCluster({ KUBERNETES_SERVICE_HOST: '10.96.0.1' }, join(dir, 'missing'));
    assert.equal(noToken.inCluster, false);
    assert.match(
      noToken.reason,
      /^no service-account token at .*missing\/token \(automountServiceAccountToken: false\?\)$/,
    );
    const inCluster = detectCluster(
      { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' },
      dir,
    );
    assert.equal(inCluster.inCluster, true);
    assert.equal(inCluster.server, 'https://10.96.0.1:443');
  });

  it('brackets IPv6 and prefers the HTTPS port', () => {
    const v6 = detectCluster(
      {
        KUBERNETES_SERVICE_HOST: 'fd00::1',
        KUBERNETES_SERVICE_PORT: '80',
        KUBERNETES_SERVICE_PORT_HTTPS: '6443',
      },
      dir,
    );
    assert.equal(v6.server, 'https://[fd00::1]:6443');
  });
});

describe('podIdentity', () => {
  it('option, then Downward API env, then fallbacks', () => {
    const env = { POD_NAME: 'web-1', POD_NAMESPACE: 'shop', POD_UID: 'u-1', POD_IP: '10.0.0.7' };
    assert.deepEqual(podIdentity({ env, podName: 'explicit' }), {
      name: 'explicit',
      namespace: 'shop',
      uid: 'u-1',
      ip: '10.0.0.7',
      sources: { name: 'option', namespace: 'env', uid: 'env', ip: 'env' },
    });
    const fallback = podIdentity({
      env: {},
      hostname: () => 'web-7d4b9c-xk2lp',
      namespaceFile: '/sa/namespace',
      readFile: () => 'payments\n',
    });
    assert.deepEqual(fallback, {
      name: 'web-7d4b9c-xk2lp',
      namespace: 'payments',
      uid: undefined,
      ip: undefined,
      sources: { name: 'hostname', namespace: 'service-account' },
    });
    const fromContext = podIdentity({ env: {}, hostname: () => 'h', contextNamespace: 'dev' });
    assert.equal(fromContext.namespace, 'dev');
    assert.equal(fromContext.sources.namespace, 'kubeconfig');
  });
});

describe('kubernetes', () => {
  it('outside a cluster it stays off and never loads the client', async () => {
    const untouchable = new Proxy({} as KubeClientModule, {
      get(_target, property) {
        throw new Error(`the client module was used outside a cluster (${String(property)})`);
      },
    });
    const k = await kubegrace({ logger: false }).use(kubernetes({ env: {}, client: untouchable }));
    assert.equal(k.enabled, false);
    assert.equal(k.reason, 'not running in a cluster: KUBERNETES_SERVICE_HOST is not set');
    await k.stop();
  });

  it('in a cluster it loads the client itself and finds the API and the pod from the environment', async () => {
    const fake = await startFakeKubeApi();
    const pod = seedPod(fake, { graceSeconds: 30, namespace: 'payments' });
    const log = captureLog();
    const k = await kubegrace({ logger: log.logger }).use(
      kubernetes({
        env: {
          KUBERNETES_SERVICE_HOST: '127.0.0.1',
          KUBERNETES_SERVICE_PORT: String(fake.port),
          POD_NAME: pod.name,
        },
        serviceAccountDir: fake.serviceAccountDir('payments'),
        requestTimeoutMs: 2000,
      }),
    );
    try {
      assert.equal(k.enabled, true);
      assert.equal(k.reason, 'in cluster');
      assert.deepEqual(k.identity.sources, {
        name: 'env',
        namespace: 'service-account',
        uid: 'api',
        ip: 'api',
      });
      assert.equal(k.identity.uid, pod.uid);
      assert.equal(k.identity.ip, pod.ip);
      assert.equal(k.timing?.graceSeconds, 30);
      assert.deepEqual(log.warnings(), []);
      const on = log.lines.find((l) => l.msg === 'kubernetes integration on');
      assert.equal(on?.fields.server, `https://127.0.0.1:${fake.port}`);
    } finally {
      await k.stop();
      await fake.close();
    }
  });

  it('checks the budget against the real pod spec at start-up and names each term', async () => {
    const fake = await startFakeKubeApi();
    fake.put('pods', {
      metadata: { name: 'web-1', namespace: 'shop' },
      spec: {
        terminationGracePeriodSeconds: 20,
        containers: [{ name: 'app', lifecycle: { preStop: { exec: { command: ['sh', '-c', 'sleep 8'] } } } }],
      },
      status: { podIP: '10.0.0.1' },
    });
    const { K8s } = await loadClient();
    const kubeConfig = new K8s.KubeConfig();
    kubeConfig.loadFromOptions(fake.kubeConfigOptions('shop'));
    try {
      // 2 + 10 + 2 + 5 + 1 = 20 s fits the configured 20 s; with the 8 s preStop read from the pod it does not.
      const kg = kubegrace({ gracePeriodSeconds: 20, drain: { timeoutMs: 2000 } });
      await assert.rejects(
        kg.use(
          kubernetes({
            kubeConfig,
            client: K8s,
            podName: 'web-1',
            namespace: 'shop',
            env: {},
          }),
        ),
        (error: unknown) => {
          assert.ok(error instanceof KubegraceError);
          assert.equal(error.code, 'ERR_KUBEGRACE_BUDGET_EXCEEDS_GRACE');
          assert.equal(
            error.message,
            'shutdown budget 28 s exceeds terminationGracePeriodSeconds 20 s of pod shop/web-1 (container app): ' +
              'preStop sleep 8 s (lifecycle.preStop.exec.command) + unready 2 s (unreadyTimeoutMs / KUBEGRACE_UNREADY_TIMEOUT_MS) + ' +
              'propagation max 10 s (propagation.maxMs / KUBEGRACE_PROPAGATION_MAX_MS) + drain 2 s (drain.timeoutMs / KUBEGRACE_DRAIN_TIMEOUT_MS) + ' +
              'cleanup 5 s (cleanupTimeoutMs / KUBEGRACE_CLEANUP_TIMEOUT_MS) + safety margin 1 s (safetyMarginMs / KUBEGRACE_SAFETY_MARGIN_MS) = 28 s. ' +
              'Raise terminationGracePeriodSeconds to at least 28 and set KUBEGRACE_GRACE_PERIOD_SECONDS=28, or shorten the largest terms.',
          );
          return true;
        },
      );
      // budgetCheck 'warn' logs the same message once and carries on.
      const log = captureLog();
      const warnKg = kubegrace({
        logger: log.logger,
        gracePeriodSeconds: 20,
        drain: { timeoutMs: 2000 },
        budgetCheck: 'warn',
        preStopSleepSeconds: 8,
      });
      const k = await warnKg.use(
        kubernetes({
          kubeConfig,
          client: K8s,
          podName: 'web-1',
          namespace: 'shop',
          env: {},
        }),
      );
      assert.equal(k.enabled, true);
      assert.equal(log.warnings().length, 1);
      assert.match(
        log.warnings()[0] as string,
        /^shutdown budget 28 s exceeds terminationGracePeriodSeconds 20 s/,
      );
      await k.stop();
    } finally {
      await fake.close();
    }
  });

  it('warns once when KUBEGRACE_GRACE_PERIOD_SECONDS differs from terminationGracePeriodSeconds', async () => {
    const fake = await startFakeKubeApi();
    const pod = seedPod(fake, { graceSeconds: 20 });
    const { K8s } = await loadClient();
    const kubeConfig = new K8s.KubeConfig();
    kubeConfig.loadFromOptions(fake.kubeConfigOptions('shop'));
    const log = captureLog();
    const k = await kubegrace({ logger: log.logger, gracePeriodSeconds: 30, drain: { timeoutMs: 2000 } }).use(
      kubernetes({
        kubeConfig,
        client: K8s,
        podName: pod.name,
        namespace: 'shop',
        env: {},
      }),
    );
    try {
      assert.deepEqual(log.warnings(), [
        `pod shop/${pod.name} (container app): gracePeriodSeconds (KUBEGRACE_GRACE_PERIOD_SECONDS) is 30 s but ` +
          'terminationGracePeriodSeconds is 20 s: set KUBEGRACE_GRACE_PERIOD_SECONDS=20 (the deadline follows the pod)',
      ]);
    } finally {
      await k.stop();
      await fake.close();
    }
  });

  it('rejects bad options with the option, what was expected and what came', () => {
    // kubernetes() checks its options when it is called, before kg.use() sees the integration.
    assert.throws(() => kubernetes({ requestTimeoutMs: -5 }), {
      code: 'ERR_KUBEGRACE_INVALID_OPTION',
      message: 'kubernetes requestTimeoutMs must be an integer from 1 to 2147483647 (ms), received -5',
    });
    assert.throws(() => kubernetes({ enabled: 'yes' as never }), {
      code: 'ERR_KUBEGRACE_INVALID_OPTION',
      message: `kubernetes enabled must be one of 'auto', true, false, received "yes"`,
    });
  });
});

async function loadClient(): Promise<{ K8s: KubeClientModule }> {
  return { K8s: (await import('@kubernetes/client-node')) as unknown as KubeClientModule };
}
