/**
 * The fake API keeps a real API server's rules for what kubegrace and the scenario drivers send, as
 * the version it plays: what a Kubernetes 1.25 server refused (a pod with the preStop `sleep` action:
 * 422 plus a `299 unknown field` warning) and accepted (an Event without a reason), Event validation
 * as core/v1 does it (legacyValidateEvent), MicroTime parsing, whole-second timestamps. Raw HTTPS
 * here, so the status line, the Status body and the Warning header are what is checked.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { describe, it } from 'node:test';
import { seedPod, startFakeKubeApi, type FakeKubeApi, type Json } from '../support/fake-kube-api.js';

interface Answer {
  readonly status: number;
  readonly warning: string | undefined;
  readonly date: string | undefined;
  readonly body: Json;
}

function call(fake: FakeKubeApi, method: string, path: string, body?: Json): Promise<Answer> {
  const text = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      `${fake.url}${path}`,
      {
        method,
        ca: fake.caPem,
        headers: {
          authorization: `Bearer ${readFileSync(fake.tokenFile, 'utf8')}`,
          'content-type': 'application/json',
          // Node sends a DELETE body neither chunked nor with a length unless told.
          ...(text === undefined ? {} : { 'content-length': Buffer.byteLength(text) }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const warning = res.headers.warning;
          resolve({
            status: res.statusCode ?? 0,
            warning: Array.isArray(warning) ? warning.join(', ') : warning,
            date: res.headers.date,
            body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Json,
          });
        });
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

async function withFake(
  version: string | undefined,
  fn: (fake: FakeKubeApi) => Promise<void>,
): Promise<void> {
  const fake = await startFakeKubeApi(version === undefined ? {} : { version });
  try {
    await fn(fake);
  } finally {
    await fake.close();
  }
}

const podWith = (preStop: Json, graceSeconds = 30): Json => ({
  metadata: { name: 'web-1' },
  spec: {
    terminationGracePeriodSeconds: graceSeconds,
    containers: [{ name: 'app', image: 'web:1', lifecycle: { preStop } }],
  },
});

/** POST a pod named `name` whose container has this preStop handler. */
const postPod = (fake: FakeKubeApi, preStop: Json, name = 'web-1', query = ''): Promise<Answer> =>
  call(fake, 'POST', `/api/v1/namespaces/shop/pods${query}`, { ...podWith(preStop), metadata: { name } });

const event = (fields: Json): Json => ({
  metadata: { name: `web-1.${Math.random().toString(16).slice(2)}` },
  involvedObject: { kind: 'Pod', name: 'web-1', namespace: 'shop' },
  ...fields,
});

describe('the fake API plays a Kubernetes version', () => {
  it('answers /version (1.25 by default)', async () => {
    await withFake(undefined, async (fake) => {
      const answer = await call(fake, 'GET', '/version/');
      assert.equal(answer.status, 200);
      assert.deepEqual(
        [answer.body.major, answer.body.minor, answer.body.gitVersion],
        ['1', '25', 'v1.25.16'],
      );
    });
    await withFake('v1.31.2', async (fake) => {
      assert.equal((await call(fake, 'GET', '/version')).body.minor, '31');
    });
  });

  it('1.25 refuses a pod with the preStop sleep action: 422 and a 299 unknown-field warning', async () => {
    await withFake(undefined, async (fake) => {
      const answer = await postPod(fake, { sleep: { seconds: 5 } });
      assert.equal(answer.status, 422);
      assert.equal(
        answer.body.message,
        'Pod "web-1" is invalid: spec.containers[0].lifecycle.preStop: Required value: must specify a handler type',
      );
      assert.equal(answer.warning, '299 - "unknown field \\"spec.containers[0].lifecycle.preStop.sleep\\""');
      assert.equal(fake.get('pods', 'shop', 'web-1'), undefined);
    });
  });

  it('1.29 drops the sleep action without a warning (alpha, off); 1.30 takes it; 1.33 takes zero seconds', async () => {
    await withFake('v1.29.0', async (fake) => {
      const answer = await postPod(fake, { sleep: { seconds: 5 } });
      assert.equal(answer.status, 422);
      assert.equal(answer.warning, undefined);
    });
    await withFake('v1.30.0', async (fake) => {
      const answer = await postPod(fake, { sleep: { seconds: 5 } });
      assert.equal(answer.status, 201);
      const spec = answer.body.spec as { containers: { lifecycle: unknown }[] };
      assert.deepEqual(spec.containers[0]?.lifecycle, { preStop: { sleep: { seconds: 5 } } });
      assert.equal((answer.body.status as Json).phase, 'Pending');
      const zero = await postPod(fake, { sleep: { seconds: 0 } }, 'web-2');
      assert.equal(zero.status, 422);
      assert.match(
        String(zero.body.message),
        /preStop\.sleep: Invalid value: 0: must be greater than 0 and less than terminationGracePeriodSeconds \(30\)$/,
      );
    });
    await withFake('v1.33.1', async (fake) => {
      const zero = await postPod(fake, { sleep: { seconds: 0 } });
      assert.equal(zero.status, 201);
    });
  });

  it('exec on any version; two handlers refused; fieldValidation=Strict turns the warning into a 400', async () => {
    await withFake(undefined, async (fake) => {
      const exec = await postPod(fake, { exec: { command: ['sleep', '5'] } });
      assert.equal(exec.status, 201);
      assert.equal(exec.warning, undefined);
      const two = await postPod(
        fake,
        { exec: { command: ['sleep', '5'] }, httpGet: { path: '/prestop', port: 9000 } },
        'web-2',
      );
      assert.equal(two.status, 422);
      assert.match(String(two.body.message), /preStop: Forbidden: may not specify more than 1 handler type$/);
      const strict = await postPod(fake, { sleep: { seconds: 5 } }, 'web-1', '?fieldValidation=Strict');
      assert.equal(strict.status, 400);
      assert.match(
        String(strict.body.message),
        /strict decoding error: unknown field "spec\.containers\[0\]\.lifecycle\.preStop\.sleep"/,
      );
    });
  });
});

describe('writes', () => {
  it('a PUT carrying an old resourceVersion is a 409 Conflict, as optimistic concurrency has it', async () => {
    await withFake(undefined, async (fake) => {
      const created = await call(fake, 'POST', '/api/v1/namespaces/shop/services', {
        metadata: { name: 'web' },
        spec: { ports: [{ port: 80 }] },
      });
      assert.equal(created.status, 201);
      const stale = created.body;
      const first = await call(fake, 'PUT', '/api/v1/namespaces/shop/services/web', stale);
      assert.equal(first.status, 200);
      const second = await call(fake, 'PUT', '/api/v1/namespaces/shop/services/web', stale);
      assert.equal(second.status, 409);
      assert.match(String(second.body.message), /the object has been modified; please apply your changes/);
    });
  });
});

describe('Events as core/v1 validates them', () => {
  const path = '/api/v1/namespaces/shop/events';

  it('without eventTime only the namespaces must agree: no reason or type required', async () => {
    await withFake(undefined, async (fake) => {
      const bare = await call(fake, 'POST', path, event({ message: 'no reason', type: 'Unusual' }));
      assert.equal(bare.status, 201, String(bare.body.message));
      const elsewhere = await call(
        fake,
        'POST',
        path,
        event({ involvedObject: { kind: 'Pod', name: 'web-1', namespace: 'other' } }),
      );
      assert.equal(elsewhere.status, 422);
      assert.match(
        String(elsewhere.body.message),
        /involvedObject\.namespace: Invalid value: "other": does not match event\.namespace$/,
      );
    });
  });

  it('with eventTime: reportingController (reportingComponent on the wire), reportingInstance, action and reason required', async () => {
    await withFake(undefined, async (fake) => {
      const answer = await call(fake, 'POST', path, event({ eventTime: '2026-12-03T21:13:59.123456Z' }));
      assert.equal(answer.status, 422);
      assert.match(
        String(answer.body.message),
        /is invalid: \[reportingController: Required value, reportingInstance: Required value, action: Required value, reason: Required value\]$/,
      );
      const long = await call(
        fake,
        'POST',
        path,
        event({
          eventTime: '2026-12-03T21:13:59.123456Z',
          reportingComponent: 'kubegrace',
          reportingInstance: 'web-1',
          action: 'Shutdown',
          reason: 'Drained',
          message: 'x'.repeat(1025),
        }),
      );
      assert.equal(long.status, 422);
      assert.match(
        String(long.body.message),
        /message: Invalid value: "": can have at most 1024 characters$/,
      );
    });
  });

  it("refuses an eventTime in JavaScript's toISOString form (three digits): a MicroTime has six", async () => {
    await withFake(undefined, async (fake) => {
      const answer = await call(fake, 'POST', path, event({ eventTime: new Date(0).toISOString() }));
      assert.equal(answer.status, 400);
      assert.match(String(answer.body.message), /cannot parse "\.000Z" as "\.000000"/);
    });
  });

  it('stores firstTimestamp and lastTimestamp to the second, eventTime to the microsecond', async () => {
    await withFake(undefined, async (fake) => {
      const answer = await call(
        fake,
        'POST',
        path,
        event({
          eventTime: '2026-12-03T21:13:59.123456Z',
          firstTimestamp: '2026-12-03T21:13:59.123Z',
          lastTimestamp: '2026-12-03T21:13:59.999Z',
          reportingComponent: 'kubegrace',
          reportingInstance: 'web-1',
          action: 'Shutdown',
          reason: 'ShutdownStarted',
          somethingElse: true,
        }),
      );
      assert.equal(answer.status, 201);
      assert.equal(answer.body.firstTimestamp, '2026-12-03T21:13:59Z');
      assert.equal(answer.body.lastTimestamp, '2026-12-03T21:13:59Z');
      assert.equal(answer.body.eventTime, '2026-12-03T21:13:59.123456Z');
      assert.equal(answer.body.somethingElse, undefined);
      assert.equal(answer.warning, '299 - "unknown field \\"somethingElse\\""');
    });
  });
});

describe('Events: what the decoder and BeforeCreate refuse before validation', () => {
  const path = '/api/v1/namespaces/shop/events';
  const valid = {
    eventTime: '2026-12-03T21:13:59.123456Z',
    reportingComponent: 'kubegrace',
    reportingInstance: 'web-1',
    action: 'Shutdown',
    reason: 'Drained',
  };

  it('a field of the wrong JSON type is a 400 decode error, not a 422', async () => {
    await withFake(undefined, async (fake) => {
      const reason = await call(fake, 'POST', path, event({ ...valid, reason: 42 }));
      assert.equal(reason.status, 400);
      assert.match(
        String(reason.body.message),
        /cannot unmarshal number into Go struct field Event\.reason of type string$/,
      );
      const count = await call(fake, 'POST', path, event({ ...valid, count: 'many' }));
      assert.equal(count.status, 400);
      assert.match(
        String(count.body.message),
        /cannot unmarshal string into Go struct field Event\.count of type int32$/,
      );
    });
  });

  it('a name that cannot be a path segment is a 422', async () => {
    await withFake(undefined, async (fake) => {
      for (const [name, why] of [
        ['a/b', "may not contain '/'"],
        ['..', "may not be '..'"],
      ] as const) {
        const answer = await call(fake, 'POST', path, { ...event(valid), metadata: { name } });
        assert.equal(answer.status, 422, name);
        assert.equal(
          answer.body.message,
          `Event ${JSON.stringify(name)} is invalid: metadata.name: Invalid value: ${JSON.stringify(name)}: ${why}`,
        );
      }
    });
  });
});

describe('pod deletion as the API server does it', () => {
  const deletePath = (name: string): string => `/api/v1/namespaces/shop/pods/${name}`;

  it('a second delete with a shorter grace period moves deletionTimestamp earlier (MODIFIED); a longer one is ignored', async () => {
    await withFake(undefined, async (fake) => {
      const pod = seedPod(fake, { graceSeconds: 30 });
      const first = await call(fake, 'DELETE', deletePath(pod.name), { gracePeriodSeconds: 30 });
      const firstMeta = first.body.metadata as Json;
      assert.equal(firstMeta.deletionGracePeriodSeconds, 30);
      const rvAfterFirst = fake.resourceVersion;
      const longer = await call(fake, 'DELETE', deletePath(pod.name), { gracePeriodSeconds: 60 });
      assert.deepEqual(longer.body.metadata, firstMeta, 'a longer grace period changes nothing');
      assert.equal(fake.resourceVersion, rvAfterFirst, 'and is no change (no watch event)');
      const shorter = await call(fake, 'DELETE', deletePath(pod.name), { gracePeriodSeconds: 3 });
      const meta = shorter.body.metadata as Json;
      assert.equal(meta.deletionGracePeriodSeconds, 3);
      assert.equal(
        Date.parse(String(meta.deletionTimestamp)),
        Date.parse(String(firstMeta.deletionTimestamp)) - 27_000,
        'moved by the difference, from the stored timestamp',
      );
      assert.equal(fake.resourceVersion, rvAfterFirst + 1, 'one MODIFIED');
      const killed = fake.deletedPod('shop', pod.name);
      assert.equal(killed?.graceSeconds, 3);
      assert.ok(killed && killed.killAt - killed.deletedAt === 3000, 'the kubelet starts again with 3 s');
    });
  });

  it('grace period 0, or a pod no kubelet runs, is removed at once', async () => {
    await withFake(undefined, async (fake) => {
      const zero = seedPod(fake, { graceSeconds: 30 });
      const answer = await call(fake, 'DELETE', deletePath(zero.name), { gracePeriodSeconds: 0 });
      assert.equal(answer.status, 200);
      assert.equal(fake.get('pods', 'shop', zero.name), undefined, 'gone, no terminating stage');
      const pending = fake.put('pods', {
        metadata: { name: 'pending', namespace: 'shop' },
        spec: { terminationGracePeriodSeconds: 30, containers: [{ name: 'app', image: 'web:1' }] },
      });
      void pending;
      const deleted = fake.deletePod('shop', 'pending');
      assert.equal(deleted.graceSeconds, 0, 'unscheduled: no grace period');
      assert.equal(fake.get('pods', 'shop', 'pending'), undefined);
    });
  });

  it("stamps with the API server's clock (clockSkewMs): deletionTimestamp and the Date header", async () => {
    const fake = await startFakeKubeApi({ clockSkewMs: 5000 });
    try {
      const pod = seedPod(fake, { graceSeconds: 10 });
      const before = Date.now();
      const answer = await call(fake, 'GET', '/api/v1/namespaces/shop/pods');
      const dateSkew = Date.parse(String(answer.date)) - before;
      assert.ok(dateSkew > 3900 && dateSkew < 6000, `Date header ${dateSkew} ms ahead`);
      const deleted = fake.deletePod('shop', pod.name);
      const stampSkew = Date.parse(deleted.deletionTimestamp) - deleted.killAt;
      assert.ok(stampSkew > 3900 && stampSkew <= 5000, `deletionTimestamp ${stampSkew} ms after the kill`);
    } finally {
      await fake.close();
    }
  });
});
