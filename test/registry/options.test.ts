/**
 * `registry()` and every adapter refuse an option they do not know, naming it and the one probably
 * meant, and take every option their docs list (so a key left out of an allow-list fails here).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { createConsulRegistry } from '../../src/registry/consul/index.js';
import { createEtcdRegistry } from '../../src/registry/etcd/index.js';
import { createEurekaRegistry } from '../../src/registry/eureka/index.js';
import { registry, type Registry } from '../../src/registry/index.js';
import { createNacosRegistry } from '../../src/registry/nacos/index.js';

const read = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

/** The option names in the first column of every `| option | …` table of a doc page. */
function documentedOptions(path: string, only?: (names: readonly string[]) => boolean): string[] {
  const names: string[] = [];
  let table: string[] | undefined;
  const lines = [...read(path).split('\n'), ''];
  for (const line of lines) {
    if (line.startsWith('| option |')) {
      table = [];
    } else if (table !== undefined && line.startsWith('|')) {
      const first = line.split('|')[1] ?? '';
      table.push(...[...first.matchAll(/`([A-Za-z]+)`/g)].map((m) => m[1] as string));
    } else if (table !== undefined) {
      if (only === undefined || only(table)) names.push(...table);
      table = undefined;
    }
  }
  return names;
}

const identityTable = (names: readonly string[]): boolean => names.includes('serviceName');
const IDENTITY_DOCUMENTED = documentedOptions('docs/registries.md', identityTable);
const REGISTRY_DOCUMENTED = documentedOptions('docs/registries.md', (names) => !identityTable(names));

const identity = { serviceName: 'checkout', instanceId: 'i-1', address: '10.0.0.1', port: 8080, env: {} };
/** A valid value for every identity option. */
const IDENTITY_SAMPLES = { ...identity, metadata: { zone: 'a' } };

const adapter: Registry = { name: 'stub', register: async () => {}, deregister: async () => {} };
const SECRET = 'hunter2-do-not-print';

interface Case {
  readonly label: string;
  readonly create: (options: Record<string, unknown>) => unknown;
  /** Enough for the factory to succeed. */
  readonly minimal: Record<string, unknown>;
  /** A valid value for every option the docs list. */
  readonly samples: Record<string, unknown>;
  readonly documented: readonly string[];
  /** Misspelt option, and the name the error must suggest (undefined: nothing is close). */
  readonly misspelt: readonly (readonly [key: string, suggested: string | undefined])[];
}

const cases: readonly Case[] = [
  {
    label: 'registry',
    create: (options) => registry(adapter, options),
    minimal: { env: {} },
    samples: {
      register: false,
      deregister: 'afterDrain',
      callTimeoutMs: 500,
      registerTimeoutMs: 2000,
      retries: 1,
      retryBackoffMs: 50,
      clientCacheMs: 0,
      registerRetryIntervalMs: 1000,
      name: 'registry:stub',
      env: {},
    },
    documented: REGISTRY_DOCUMENTED,
    misspelt: [
      ['deregistr', 'deregister'],
      ['callTimeout', 'callTimeoutMs'],
      ['Retries', 'retries'],
      ['serviceName', undefined],
    ],
  },
  {
    label: 'etcd',
    create: (options) => createEtcdRegistry(options),
    minimal: { ...identity, endpoints: ['http://etcd:2379'] },
    samples: {
      ...IDENTITY_SAMPLES,
      endpoints: ['http://etcd:2379'],
      prefix: '/apps/',
      key: '/apps/checkout/i-1',
      ttlSeconds: 5,
      value: () => 'up',
      username: 'root',
      password: SECRET,
      clientOptions: { dialTimeout: 1000 },
      // Never used: nothing is called before register().
      client: { close() {} },
      clientCacheMs: 0,
    },
    documented: [...IDENTITY_DOCUMENTED, ...documentedOptions('docs/registries/etcd.md')],
    misspelt: [
      ['pasword', 'password'],
      ['endpoint', 'endpoints'],
      ['ttl', undefined],
    ],
  },
  {
    label: 'consul',
    create: (options) => createConsulRegistry(options),
    minimal: { ...identity, url: 'http://consul:8500' },
    samples: {
      ...IDENTITY_SAMPLES,
      url: 'http://consul:8500',
      token: SECRET,
      mode: 'catalog',
      tags: ['v1'],
      checkTtlSeconds: 10,
      deregisterCriticalAfterSeconds: 90,
      node: 'node-1',
      nodeAddress: '10.0.0.2',
      datacenter: 'dc1',
      maintenanceReason: 'rollout',
      clientCacheMs: 0,
    },
    documented: [...IDENTITY_DOCUMENTED, ...documentedOptions('docs/registries/consul.md')],
    misspelt: [
      ['tokn', 'token'],
      ['dataCenter', 'datacenter'],
      ['aclToken', undefined],
    ],
  },
  {
    label: 'eureka',
    create: (options) => createEurekaRegistry(options),
    minimal: { ...identity, url: 'http://eureka:8761/eureka' },
    samples: {
      ...IDENTITY_SAMPLES,
      url: 'http://eureka:8761/eureka',
      app: 'checkout',
      hostName: 'checkout.local',
      vipAddress: 'checkout',
      heartbeatIntervalSeconds: 10,
      leaseDurationSeconds: 30,
      clientCacheMs: 0,
    },
    documented: [...IDENTITY_DOCUMENTED, ...documentedOptions('docs/registries/eureka.md')],
    misspelt: [
      ['ap', 'app'],
      ['hostname', 'hostName'],
      ['instanceID', 'instanceId'],
    ],
  },
  {
    label: 'nacos',
    create: (options) => createNacosRegistry(options),
    minimal: { ...identity, url: 'http://nacos:8848/nacos' },
    samples: {
      ...IDENTITY_SAMPLES,
      url: 'http://nacos:8848/nacos',
      namespace: 'dev',
      group: 'GROUP_A',
      cluster: 'east',
      weight: 2,
      accessToken: SECRET,
      username: 'nacos',
      password: SECRET,
      heartbeatIntervalMs: 1000,
      clientCacheMs: 0,
    },
    documented: [...IDENTITY_DOCUMENTED, ...documentedOptions('docs/registries/nacos.md')],
    misspelt: [
      ['namespce', 'namespace'],
      ['acessToken', 'accessToken'],
      ['pasword', 'password'],
    ],
  },
];

/** The option list an unknown-option error gives (`…; the options are a, b, c`). */
function acceptedOptions(error: unknown): string[] {
  const message = error instanceof Error ? error.message : '';
  return (message.split('; the options are ')[1] ?? '').split(', ');
}

for (const c of cases) {
  describe(`${c.label} options`, () => {
    it('refuses a misspelt option, naming it and the one probably meant, never showing its value', () => {
      for (const [key, suggested] of c.misspelt) {
        const hint = suggested === undefined ? '' : ` \\(did you mean ${suggested}\\?\\)`;
        assert.throws(
          () => c.create({ ...c.minimal, [key]: SECRET }),
          (error: unknown) => {
            assert.ok(error instanceof Error);
            assert.equal((error as { code?: string }).code, 'ERR_KUBEGRACE_INVALID_OPTION');
            assert.equal((error as { option?: string }).option, `${c.label} options.${key}`);
            assert.match(
              error.message,
              new RegExp(`^${c.label} options: unknown option "${key}"${hint}; the options are `),
            );
            assert.doesNotMatch(error.message, new RegExp(SECRET));
            return true;
          },
          key,
        );
      }
    });

    it('refuses options that are not an object', () => {
      assert.throws(() => c.create('http://example:80' as never), {
        code: 'ERR_KUBEGRACE_INVALID_OPTION',
        message: `${c.label} options must be an object, received "http://example:80"`,
      });
    });

    it('takes every option its docs list, all at once', () => {
      assert.ok(c.documented.length > 5, `docs tables found (${c.documented.join(', ')})`);
      const options: Record<string, unknown> = {};
      for (const key of c.documented) {
        assert.ok(key in c.samples, `a sample value for the documented option ${key}`);
        options[key] = c.samples[key];
      }
      assert.doesNotThrow(() => c.create(options));
    });

    it('accepts exactly the documented options', () => {
      let error: unknown;
      try {
        c.create({ ...c.minimal, notAnOption: true });
      } catch (e) {
        error = e;
      }
      assert.deepEqual(acceptedOptions(error).sort(), [...new Set(c.documented)].sort());
    });
  });
}

describe('etcd clientOptions', () => {
  const minimal = { ...identity, endpoints: ['http://etcd:2379'] };

  it("takes every etcd3 option but hosts (the endpoints replace it), with etcd3's own shapes", () => {
    assert.doesNotThrow(() =>
      createEtcdRegistry({
        ...minimal,
        clientOptions: {
          credentials: { rootCertificate: Buffer.from('ca') },
          grpcOptions: { 'grpc.keepalive_time_ms': 10_000 },
          auth: { username: 'root', password: SECRET },
          defaultCallOptions: () => ({}),
          dialTimeout: 1000,
          faultHandling: {},
        },
      }),
    );
  });

  it('refuses a misspelt one, and hosts, which would be dropped', () => {
    assert.throws(() => createEtcdRegistry({ ...minimal, clientOptions: { credential: {} } as never }), {
      code: 'ERR_KUBEGRACE_INVALID_OPTION',
      option: 'etcd.clientOptions.credential',
      message:
        'etcd.clientOptions: unknown option "credential" (did you mean credentials?); the options are ' +
        'credentials, grpcOptions, auth, defaultCallOptions, dialTimeout, faultHandling',
    });
    assert.throws(
      () => createEtcdRegistry({ ...minimal, clientOptions: { hosts: ['http://other:2379'] } as never }),
      { option: 'etcd.clientOptions.hosts', message: /^etcd\.clientOptions: unknown option "hosts"; / },
    );
    assert.throws(() => createEtcdRegistry({ ...minimal, clientOptions: 'tls' as never }), {
      message: 'etcd.clientOptions must be an object of etcd3 options, received "tls"',
    });
  });
});
