import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import { describe, it } from 'node:test';
import { createHttpDrainer } from '../../src/drain/http.js';
import { createTrafficActivity } from '../../src/propagation/activity.js';
import {
  connectOutcome,
  delay,
  fetchVia,
  listen,
  phaseContext,
  recordingObserver,
  selfSignedCert,
  trackerWithFlags,
} from '../support/drain-fixtures.js';

/** One GET on `session`; rejects if the stream fails or closes without a complete response. */
function h2get(session: http2.ClientHttp2Session, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path });
    let status = 0;
    let body = '';
    let ended = false;
    stream.on('response', (headers) => (status = Number(headers[':status'])));
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (body += chunk));
    stream.on('end', () => {
      ended = true;
      if (status === 0) reject(new Error(`stream ended without a response (rstCode ${stream.rstCode})`));
      else resolve({ status, body });
    });
    stream.on('error', reject);
    stream.on('close', () => {
      if (!ended) reject(new Error(`stream closed without a response (rstCode ${stream.rstCode})`));
    });
  });
}

/** Records every GOAWAY a client session receives, with its last stream id. */
function connect(url: string, options: http2.SecureClientSessionOptions = {}) {
  const session = http2.connect(url, options);
  const goaways: number[] = [];
  const errors: unknown[] = [];
  session.on('goaway', (_code: number, lastStreamId: number) => goaways.push(lastStreamId));
  session.on('error', (error) => errors.push(error));
  const closed = new Promise<void>((resolve) => session.once('close', resolve));
  return { session, goaways, errors, closed };
}

function closeServer(server: http2.Http2Server | http2.Http2SecureServer): Promise<void> {
  return new Promise((resolve) => {
    if (server.listening) server.close(() => resolve());
    else resolve();
  });
}

describe('http2 drainer', () => {
  it('GOAWAY lets the in-flight stream complete; new sessions work during the wait', async () => {
    const observer = recordingObserver();
    const { tracker, flags } = trackerWithFlags({ observer });
    const activity = createTrafficActivity();
    let slowSeen = false;
    const server = http2.createServer((req, res) => {
      if (req.url === '/slow') slowSeen = true;
      setTimeout(() => res.end(`done ${req.url}`), req.url === '/slow' ? 800 : 1);
    });
    const drainer = createHttpDrainer(server, { tracker, activity, observer });
    const port = await listen(server);
    const url = `http://127.0.0.1:${port}`;
    const first = connect(url);
    try {
      assert.equal((await h2get(first.session, '/warm')).status, 200);
      let slowDoneAt = 0;
      const slow = h2get(first.session, '/slow').then((r) => ((slowDoneAt = Date.now()), r));
      while (!slowSeen) await delay(5);
      assert.equal(drainer.connections, 1);

      flags.shuttingDown = true;
      const unreadyAt = Date.now();
      await drainer.unready?.(phaseContext('unready').ctx);
      while (first.goaways.length === 0) await delay(5);
      const goawayAt = Date.now();
      assert.equal(first.goaways[0], 2 ** 31 - 1, 'first a shutdown notice that refuses nothing');
      assert.ok(first.session.closed, 'the client stops opening streams on this session');

      // The client opens a new session for new requests; the listener still accepts it.
      const second = connect(url);
      const fresh = await h2get(second.session, '/fresh');
      assert.equal(fresh.status, 200);
      assert.equal(fresh.body, 'done /fresh');
      assert.ok(activity.lastConnectionAt >= unreadyAt);
      while (second.goaways.length === 0) await delay(5);
      assert.equal(
        second.goaways[0],
        2 ** 31 - 1,
        'a session opened during the wait gets GOAWAY after its first stream',
      );

      const res = await slow;
      assert.equal(res.status, 200);
      assert.equal(res.body, 'done /slow');
      assert.ok(slowDoneAt > goawayAt, 'the stream completed after the GOAWAY');

      flags.draining = true;
      const drainPhase = phaseContext('drain');
      await drainer.drain?.(drainPhase.ctx);
      await Promise.all([first.closed, second.closed]);
      assert.equal(drainer.connections, 0);
      assert.deepEqual(drainPhase.forced, []);
      assert.equal(observer.count('http2', 'goaway'), 2);
      assert.deepEqual([...first.errors, ...second.errors], []);
      assert.equal(await connectOutcome(port), 'ECONNREFUSED');
      assert.equal(tracker.inflight, 0);
    } finally {
      first.session.destroy();
      drainer.detach();
      await closeServer(server);
    }
  });

  it('pacing the GOAWAYs of many sessions warns that the window is too short for them', async () => {
    const observer = recordingObserver();
    const { tracker, flags } = trackerWithFlags({ observer });
    const server = http2.createServer((_req, res) => res.end('ok'));
    // 500 sessions in a 1 s window: 500 reconnects in that second, the warning's bound.
    const drainer = createHttpDrainer(server, {
      tracker,
      activity: createTrafficActivity(),
      observer,
      pacing: { windowMs: 1000, budgetMs: 10_000 },
    });
    const port = await listen(server);
    const clients = Array.from({ length: 500 }, () => connect(`http://127.0.0.1:${port}`));
    try {
      for (let i = 0; i < clients.length; i += 50) {
        await Promise.all(clients.slice(i, i + 50).map((c) => h2get(c.session, '/')));
      }
      assert.equal(drainer.connections, 500);
      flags.shuttingDown = true;
      const unready = phaseContext('unready');
      await drainer.unready?.(unready.ctx);
      assert.equal(unready.warnings.length, 1, unready.warnings.join('\n'));
      assert.match(unready.warnings[0] ?? '', /500 connections over a 1000 ms window is 500 closes a second/);
      flags.draining = true;
      const drainPhase = phaseContext('drain');
      await drainer.drain?.(drainPhase.ctx);
      await Promise.all(clients.map((c) => c.closed));
      assert.equal(observer.count('http2', 'goaway'), 500);
      assert.deepEqual(drainPhase.forced, []);
    } finally {
      for (const c of clients) c.session.destroy();
      drainer.detach();
      await closeServer(server);
    }
  });

  it('multiplexed load across the shutdown loses no stream', async () => {
    const { tracker, flags } = trackerWithFlags();
    const old = http2.createServer((_req, res) => setTimeout(() => res.end('old'), Math.random() * 3));
    const replacement = http2.createServer((_req, res) => res.end('new'));
    const drainer = createHttpDrainer(old, { tracker, activity: createTrafficActivity() });
    const oldPort = await listen(old);
    const newPort = await listen(replacement);
    let target = oldPort;
    const sessions: ReturnType<typeof connect>[] = [];
    const open = (): ReturnType<typeof connect> => {
      const client = connect(`http://127.0.0.1:${target}`);
      // Like any HTTP/2 client: after GOAWAY, new streams go on a new session.
      client.session.on('goaway', () => {
        if (current === client) current = open();
      });
      sessions.push(client);
      return client;
    };
    let current = open();
    const failures: unknown[] = [];
    let served = 0;
    let retried = 0;
    let running = true;
    const worker = async (): Promise<void> => {
      while (running) {
        if (current.session.closed || current.session.destroyed) current = open();
        try {
          assert.equal((await h2get(current.session, '/')).status, 200);
          served++;
        } catch (error) {
          // REFUSED_STREAM means "never processed, safe to retry" (RFC 9113 §8.7), and conforming
          // clients (grpc, Go, Envoy) retry it. Node's client refuses streams it had queued but not
          // yet sent when any GOAWAY arrives, so the retry belongs to the client, not the drain.
          if (/REFUSED_STREAM/.test(String(error))) retried++;
          else failures.push(error);
        }
      }
    };
    const workers = Array.from({ length: 16 }, worker);
    try {
      await delay(300);
      flags.shuttingDown = true;
      await drainer.unready?.(phaseContext('unready').ctx);
      await delay(400);
      target = newPort;
      await delay(100);
      flags.draining = true;
      const drainPhase = phaseContext('drain');
      await drainer.drain?.(drainPhase.ctx);
      await delay(100);
      running = false;
      await Promise.all(workers);
      assert.deepEqual(failures, []);
      assert.deepEqual(
        sessions.flatMap((s) => s.errors),
        [],
      );
      assert.deepEqual(drainPhase.forced, []);
      assert.ok(served > 500, `streams served: ${served}`);
      // The figure docs/drain.md quotes: it depends on how many streams the client has in flight when
      // the GOAWAY reaches it (here 16, each answered in 0–3 ms), not on the server.
      console.log(
        `# refused (to retry): ${retried} of ${served + retried} streams (${((100 * retried) / (served + retried)).toFixed(2)} %)`,
      );
      assert.ok(retried < served / 10, `refused (retried) streams: ${retried} of ${served}`);
      assert.ok(sessions.length > 2, 'clients moved to new sessions');
    } finally {
      running = false;
      await Promise.all(workers);
      for (const s of sessions) s.session.destroy();
      drainer.detach();
      await closeServer(old);
      await closeServer(replacement);
    }
  });

  it('a secure server with allowHTTP1 drains HTTP/1 sockets and HTTP/2 sessions together', async () => {
    const { key, cert } = selfSignedCert();
    const observer = recordingObserver();
    const { tracker, flags } = trackerWithFlags();
    let seen = 0;
    const server = http2.createSecureServer({ key, cert, allowHTTP1: true }, (req, res) => {
      seen++;
      setTimeout(() => res.end(`v${req.httpVersion}`), 600);
    });
    const drainer = createHttpDrainer(server, { tracker, activity: createTrafficActivity(), observer });
    const port = await listen(server);
    const h2 = connect(`https://127.0.0.1:${port}`, { ca: cert });
    try {
      const overHttp2 = h2get(h2.session, '/');
      const overHttp1 = fetchVia(https.request, {
        host: '127.0.0.1',
        port,
        path: '/',
        agent: false,
        ca: cert,
      });
      while (seen < 2) await delay(5);
      assert.equal(drainer.connections, 2);
      assert.deepEqual([...observer.opened].sort(), ['http1', 'http2']);

      flags.shuttingDown = true;
      await drainer.unready?.(phaseContext('unready').ctx);
      await delay(100);
      flags.draining = true;
      await drainer.drain?.(phaseContext('drain').ctx);

      assert.deepEqual(await overHttp2, { status: 200, body: 'v2.0' });
      const http1 = await overHttp1;
      assert.equal(http1.body, 'v1.1');
      assert.equal(http1.headers.connection, 'close');
      assert.ok(h2.goaways.length > 0);
      assert.equal(drainer.connections, 0);
      assert.equal(observer.count('http1', 'response_boundary'), 1);
      assert.equal(observer.count('http2', 'goaway'), 1);
    } finally {
      h2.session.destroy();
      drainer.detach();
      await closeServer(server);
    }
  });

  it('on abort destroys sessions whose streams hang (stream API) and reports them', async () => {
    const observer = recordingObserver();
    const { tracker, flags } = trackerWithFlags();
    const server = http2.createServer();
    server.on('stream', (stream, headers) => {
      if (headers[':path'] === '/hang') return;
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
    const drainer = createHttpDrainer(server, { tracker, activity: createTrafficActivity(), observer });
    const port = await listen(server);
    const clients = [connect(`http://127.0.0.1:${port}`), connect(`http://127.0.0.1:${port}`)];
    try {
      const hanging = clients.map((c) =>
        h2get(c.session, '/hang').then(
          () => 'answered',
          () => 'failed',
        ),
      );
      while (drainer.connections < 2) await delay(5);
      await delay(50);
      flags.shuttingDown = true;
      await drainer.unready?.(phaseContext('unready').ctx);
      flags.draining = true;
      const drainPhase = phaseContext('drain');
      let resolvedAt = 0;
      const drained = Promise.resolve(drainer.drain?.(drainPhase.ctx)).then(() => (resolvedAt = Date.now()));
      await delay(300);
      assert.equal(resolvedAt, 0, 'GOAWAY alone does not end a hanging stream');
      assert.equal(drainer.connections, 2);
      const abortedAt = Date.now();
      drainPhase.abort();
      await drained;
      // At the abort, not at some later timer of its own (the requests hang for good); the bound is
      // loose for a loaded machine.
      assert.ok(resolvedAt - abortedAt < 1000, `resolved ${resolvedAt - abortedAt} ms after the abort`);
      assert.deepEqual(drainPhase.forced, [2]);
      assert.equal(observer.count('http2', 'forced'), 2);
      assert.deepEqual(await Promise.all(hanging), ['failed', 'failed']);
    } finally {
      for (const c of clients) c.session.destroy();
      drainer.detach();
      await closeServer(server);
    }
  });
});
