/** Instance identity and registry settings: Downward API variables, fallbacks, and errors that say what is wrong. */
import assert from 'node:assert/strict';
import { hostname, networkInterfaces } from 'node:os';
import { describe, it } from 'node:test';
import { resolveInstanceIdentity } from '../../src/registry/identity.js';
import { createEtcdRegistry } from '../../src/registry/etcd/index.js';

describe('instance identity', () => {
  it('comes from the Downward API variables (POD_NAME, POD_IP) and PORT', () => {
    const identity = resolveInstanceIdentity(
      {
        env: {
          KUBEGRACE_REGISTRY_SERVICE_NAME: 'checkout',
          POD_NAME: 'checkout-7d9f-x2x',
          POD_IP: '10.1.2.3',
          PORT: '8080',
        },
      },
      'consul',
    );
    assert.deepEqual(identity, {
      serviceName: 'checkout',
      instanceId: 'checkout-7d9f-x2x',
      address: '10.1.2.3',
      port: 8080,
      metadata: {},
    });
  });

  it('prefers options, then KUBEGRACE_REGISTRY_* variables, over the Downward API', () => {
    const env = {
      KUBEGRACE_REGISTRY_SERVICE_NAME: 'from-env',
      KUBEGRACE_REGISTRY_INSTANCE_ID: 'id-env',
      KUBEGRACE_REGISTRY_ADDRESS: '10.9.9.9',
      KUBEGRACE_REGISTRY_PORT: '9090',
      POD_NAME: 'pod',
      POD_IP: '10.1.2.3',
      PORT: '8080',
    };
    assert.deepEqual(resolveInstanceIdentity({ env }, 'eureka'), {
      serviceName: 'from-env',
      instanceId: 'id-env',
      address: '10.9.9.9',
      port: 9090,
      metadata: {},
    });
    const explicit = resolveInstanceIdentity(
      { env, serviceName: 'opt', instanceId: 'id-opt', address: '10.0.0.1', port: 1, metadata: { a: 'b' } },
      'eureka',
    );
    assert.deepEqual(explicit, {
      serviceName: 'opt',
      instanceId: 'id-opt',
      address: '10.0.0.1',
      port: 1,
      metadata: { a: 'b' },
    });
  });

  it('falls back to the hostname and the first non-internal IPv4 address', () => {
    const external = Object.values(networkInterfaces())
      .flat()
      .find((a) => a?.family === 'IPv4' && !a.internal)?.address;
    if (external === undefined) {
      assert.throws(() => resolveInstanceIdentity({ env: {}, serviceName: 's', port: 1 }, 'nacos'), {
        message:
          'nacos.address (or KUBEGRACE_REGISTRY_ADDRESS, or POD_IP from the Downward API) must be set: no non-internal IPv4 interface was found to default to, received undefined',
      });
      return;
    }
    const identity = resolveInstanceIdentity({ env: {}, serviceName: 's', port: 1 }, 'nacos');
    assert.equal(identity.instanceId, hostname());
    assert.equal(identity.address, external);
  });

  it('names the option or variable, what was expected, and what came', () => {
    assert.throws(() => resolveInstanceIdentity({ env: { PORT: '80' } }, 'consul'), {
      code: 'ERR_KUBEGRACE_INVALID_OPTION',
      message:
        'consul.serviceName (or KUBEGRACE_REGISTRY_SERVICE_NAME) must be a non-empty string, received undefined',
    });
    assert.throws(
      () => resolveInstanceIdentity({ env: { POD_IP: '10.0.0.1' }, serviceName: 's' }, 'consul'),
      {
        message:
          'consul.port (or KUBEGRACE_REGISTRY_PORT) must be an integer port from 1 to 65535, received undefined',
      },
    );
    assert.throws(
      () =>
        resolveInstanceIdentity(
          { env: { POD_IP: '10.0.0.1', KUBEGRACE_REGISTRY_PORT: '80a' }, serviceName: 's' },
          'consul',
        ),
      {
        message: 'KUBEGRACE_REGISTRY_PORT must be an integer from 1 to 65535, received "80a"',
      },
    );
    assert.throws(
      () =>
        resolveInstanceIdentity({ env: { POD_IP: '10.0.0.1', PORT: '70000' }, serviceName: 's' }, 'consul'),
      {
        message: 'PORT must be an integer from 1 to 65535, received "70000"',
      },
    );
    assert.throws(
      () =>
        resolveInstanceIdentity(
          { env: {}, serviceName: 's', port: 1, address: '10.0.0.1', metadata: { n: 1 } as never },
          'consul',
        ),
      {
        message: 'consul.metadata must be an object of string values, received an object',
      },
    );
    assert.throws(
      () => resolveInstanceIdentity({ env: {}, serviceName: '', port: 1, address: '10.0.0.1' }, 'consul'),
      {
        message: 'consul.serviceName must be a non-empty string, received ""',
      },
    );
  });
});

describe('etcd settings', () => {
  const base = { serviceName: 'checkout', instanceId: 'i-1', address: '10.0.0.1', port: 80 };

  it('builds the key from prefix, service name and instance id; reads the endpoints list', () => {
    const registry = createEtcdRegistry({
      ...base,
      env: {
        KUBEGRACE_REGISTRY_ETCD_ENDPOINTS: 'http://etcd-0:2379, http://etcd-1:2379',
        KUBEGRACE_REGISTRY_ETCD_PREFIX: '/apps',
      },
    });
    assert.equal(registry.key, '/apps/checkout/i-1');
    assert.equal(
      createEtcdRegistry({ ...base, env: {}, endpoints: ['http://e:2379'], key: '/custom' }).key,
      '/custom',
    );
  });

  it('rejects what etcd would not take, naming the source', () => {
    assert.throws(() => createEtcdRegistry({ ...base, env: {} }), {
      message:
        'etcd.endpoints (or KUBEGRACE_REGISTRY_ETCD_ENDPOINTS) must be a non-empty list of http(s) URLs, received undefined',
    });
    assert.throws(
      () => createEtcdRegistry({ ...base, env: { KUBEGRACE_REGISTRY_ETCD_ENDPOINTS: 'etcd:2379' } }),
      {
        message:
          'KUBEGRACE_REGISTRY_ETCD_ENDPOINTS must be a list of http:// or https:// URLs, received "etcd:2379"',
      },
    );
    assert.throws(
      () =>
        createEtcdRegistry({
          ...base,
          env: {
            KUBEGRACE_REGISTRY_ETCD_ENDPOINTS: 'http://e:2379',
            KUBEGRACE_REGISTRY_ETCD_TTL_SECONDS: '0',
          },
        }),
      { message: 'KUBEGRACE_REGISTRY_ETCD_TTL_SECONDS must be an integer from 1 to 2147483, received "0"' },
    );
  });
});
