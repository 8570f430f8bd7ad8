/**
 * The Event recorder on its own: one POST at a time in the order recorded, a strictly increasing
 * microsecond eventTime, names that sort the same way, a time limit counted from the moment an Event
 * was recorded, abandoned Events never sent. A stub API where the order of answers is the point; the
 * wire format against the fake API (which refuses what a real server refuses) at the end.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import type { ApiFailure, ApiResult, KubeApi } from '../../src/kubernetes/client.js';
import { createApiClock } from '../../src/kubernetes/api-clock.js';
import { createKubeApi } from '../../src/kubernetes/client.js';
import { createEventRecorder, limitMessage, microTime } from '../../src/kubernetes/events.js';
import { parseMicroTime, startFakeKubeApi } from '../support/fake-kube-api.js';

interface Call {
  readonly body: Record<string, unknown>;
  readonly waitedMs: number | undefined;
  answer(result: ApiResult<void>): void;
}

function stubApi(): { api: KubeApi; calls: Call[]; inFlight: () => number } {
  const calls: Call[] = [];
  let open = 0;
  const api: KubeApi = {
    server: 'https://stub',
    clock: createApiClock(),
    list: () => Promise.reject(new Error('not used')),
    watch: () => {
      throw new Error('not used');
    },
    createEvent(_namespace, body, _signal, options) {
      open += 1;
      return new Promise((resolve) => {
        calls.push({
          body,
          waitedMs: options?.waitedMs,
          answer: (result) => {
            open -= 1;
            resolve(result);
          },
        });
      });
    },
  };
  return { api, calls, inFlight: () => open };
}

const pod = { name: 'web-5f7c9-abcde', namespace: 'shop', uid: '3f1c' };
const ok: ApiResult<void> = { ok: true, value: undefined };
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('createEventRecorder', () => {
  it('posts one Event at a time, in the order recorded, each after the previous was answered', async () => {
    const { api, calls, inFlight } = stubApi();
    let clock = 1_800_000_000_000;
    const recorder = createEventRecorder({ api, pod: () => pod, onFailure: () => {}, now: () => clock });
    const results = [
      recorder.record('Normal', 'ShutdownStarted', 'a'),
      recorder.record('Normal', 'PropagationComplete', 'b'),
      recorder.record('Normal', 'Drained', 'c'),
    ];
    for (let i = 0; i < 3; i++) {
      await tick();
      assert.equal(inFlight(), 1, 'never two requests at once');
      assert.equal(calls.length, i + 1);
      clock += 250;
      calls[i]?.answer(ok);
    }
    assert.deepEqual(await Promise.all(results), [true, true, true]);
    assert.deepEqual(
      calls.map((c) => c.body.reason),
      ['ShutdownStarted', 'PropagationComplete', 'Drained'],
    );
    assert.equal(recorder.posted, 3);
  });

  it('gives Events recorded in the same millisecond distinct, increasing eventTimes and names that sort alike', async () => {
    const { api, calls } = stubApi();
    const recorder = createEventRecorder({
      api,
      pod: () => pod,
      onFailure: () => {},
      now: () => 1_800_000_000_000,
    });
    for (const reason of ['ShutdownComplete', 'ShutdownDeadlineReached', 'ConnectionsForcedClosed'] as const)
      void recorder.record('Warning', reason, reason);
    for (let i = 0; i < 3; i++) {
      await tick();
      calls[i]?.answer(ok);
    }
    await recorder.settled();
    const times = calls.map((c) => parseMicroTime(c.body.eventTime));
    assert.deepEqual(times, [1_800_000_000_000_000, 1_800_000_000_000_001, 1_800_000_000_000_002]);
    const names = calls.map((c) => String((c.body.metadata as { name: string }).name));
    assert.deepEqual([...names].sort(), names);
    for (const c of calls) {
      assert.equal(c.body.firstTimestamp, '2027-01-15T08:00:00.000Z');
      assert.equal(c.body.reportingComponent, 'kubegrace');
      assert.equal(c.body.reportingInstance, pod.name);
      assert.equal(typeof c.body.action, 'string');
    }
  });

  it("counts an Event's time limit from when it was recorded: the wait in the queue is passed on", async () => {
    const { api, calls } = stubApi();
    let clock = 1_000;
    const recorder = createEventRecorder({ api, pod: () => pod, onFailure: () => {}, now: () => clock });
    void recorder.record('Normal', 'ShutdownStarted', 'a');
    void recorder.record('Normal', 'PropagationComplete', 'b');
    await tick();
    assert.equal(calls[0]?.waitedMs, 0);
    clock += 700;
    calls[0]?.answer(ok);
    await tick();
    assert.equal(calls[1]?.waitedMs, 700);
    calls[1]?.answer(ok);
    await recorder.settled();
  });

  it('does not send an Event abandoned while it waited, nor any after a 403', async () => {
    const { api, calls } = stubApi();
    const failures: ApiFailure[] = [];
    const recorder = createEventRecorder({ api, pod: () => pod, onFailure: (f) => failures.push(f) });
    const controller = new AbortController();
    const first = recorder.record('Normal', 'ShutdownStarted', 'a');
    const abandoned = recorder.record('Normal', 'Drained', 'b', controller.signal);
    const third = recorder.record('Normal', 'ShutdownComplete', 'c');
    await tick();
    controller.abort();
    const forbidden: ApiFailure = {
      kind: 'forbidden',
      verb: 'create',
      resource: 'events',
      namespace: 'shop',
      status: 403,
      detail: 'events is forbidden',
    };
    calls[0]?.answer({ ok: false, failure: forbidden });
    assert.deepEqual(await Promise.all([first, abandoned, third]), [false, false, false]);
    assert.equal(calls.length, 1, 'nothing sent after the abort and the 403');
    assert.deepEqual(failures, [forbidden]);
  });
});

describe('Event fields within what the API server allows', () => {
  it('eventTime is a MicroTime: six fractional digits, UTC', () => {
    assert.equal(microTime(1_700_000_000_123_456), '2023-11-14T22:13:20.123456Z');
    assert.equal(microTime(1_700_000_000_000_007), '2023-11-14T22:13:20.000007Z');
    assert.equal(parseMicroTime(microTime(1_700_000_000_123_456)), 1_700_000_000_123_456);
  });

  it('a message is cut to 1024 bytes of UTF-8 at a character boundary', () => {
    const cut = limitMessage('é'.repeat(2000));
    assert.ok(Buffer.byteLength(cut) <= 1024, `${Buffer.byteLength(cut)} bytes`);
    assert.ok(cut.endsWith('…'));
    assert.equal(cut.replace('…', '').replace(/é/g, ''), '', 'no character split');
    assert.equal(limitMessage('short'), 'short');
  });

  it('an Event whose whole time limit went by in the queue is given up without a request', async () => {
    const fake = await startFakeKubeApi();
    try {
      const kc = new k8s.KubeConfig();
      kc.loadFromOptions(fake.kubeConfigOptions('shop'));
      const api = createKubeApi(k8s, kc, { requestTimeoutMs: 500 });
      const body = { metadata: { name: 'x.1', namespace: 'shop' }, involvedObject: { namespace: 'shop' } };
      const late = await api.createEvent('shop', body, undefined, { waitedMs: 500 });
      assert.equal(late.ok, false);
      assert.equal(late.ok ? undefined : late.failure.kind, 'timeout');
      assert.equal(fake.requests.length, 0, 'nothing was sent');
      const inTime = await api.createEvent('shop', body, undefined, { waitedMs: 100 });
      assert.equal(inTime.ok, true);
      assert.equal(fake.requests.length, 1);
    } finally {
      await fake.close();
    }
  });
});
