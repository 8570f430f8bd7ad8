import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import { describe, it } from 'node:test';
import { createHttpDrainer } from '../../src/drain/http.js';
import { createTrafficActivity } from '../../src/propagation/activity.js';
import {
  closeHard,
  delay,
  listen,
  phaseContext,
  rawClient,
  recordingObserver,
  trackerWithFlags,
} from '../support/drain-fixtures.js';

interface StreamClient {
  /** Resolves with the whole body once the server ended the response; rejects on a reset. */
  readonly body: Promise<string>;
}

function streamClient(port: number): Promise<StreamClient> {
  return new Promise((resolve, reject) => {
    const req = http.get({
      host: '127.0.0.1',
      port,
      path: '/events',
      agent: new http.Agent({ keepAlive: true }),
    });
    req.once('error', reject);
    req.once('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      const body = new Promise<string>((done, fail) => {
        res.once('end', () => done(text));
        res.once('aborted', () => fail(new Error('response aborted (reset)')));
        res.once('error', fail);
      });
      body.catch(() => undefined);
      resolve({ body });
    });
  });
}

/**
 * The shutdown as the lifecycle runs it, up to the drain: returns the drain's phase and the drain
 * itself. Its budget (8 s) makes a drain that waits for the streams fail the test instead of hanging.
 */
async function shutDownAndDrain(
  drainer: ReturnType<typeof createHttpDrainer>,
  flags: ReturnType<typeof trackerWithFlags>['flags'],
  unreadyMs = 0,
): Promise<{ phase: ReturnType<typeof phaseContext>; drained: Promise<void> }> {
  flags.shuttingDown = true;
  await drainer.unready?.(phaseContext('unready').ctx);
  if (unreadyMs > 0) await delay(unreadyMs);
  flags.draining = true;
  const phase = phaseContext('drain');
  setTimeout(phase.abort, 8000).unref();
  return { phase, drained: Promise.resolve(drainer.drain?.(phase.ctx)).then(() => undefined) };
}

describe('event streams in the drain', () => {
  it('ends every text/event-stream at a message boundary, after the last event, with nothing lost', async () => {
    const observer = recordingObserver();
    const { tracker, flags } = trackerWithFlags();
    /** Every event each stream's write() accepted, in order. */
    const accepted: string[][] = [];
    const timers = new Set<NodeJS.Timeout>();
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      const mine: string[] = [];
      accepted.push(mine);
      let n = 0;
      /** An event is half written: no other may start (on a busy machine the interval can fire first). */
      let half = false;
      const timer = setInterval(() => {
        if (res.writableEnded || half) return;
        n++;
        if (n % 3 === 0) {
          // An event in two writes: the drain must not end the stream between them.
          const k = n;
          half = true;
          res.write(`id: ${k}\n`);
          setImmediate(() => {
            half = false;
            if (!res.writableEnded) {
              res.write(`data: half ${k}\n\n`);
              mine.push(`id: ${k}\ndata: half ${k}`);
            }
          });
        } else {
          res.write(`id: ${n}\ndata: event ${n}\n\n`);
          mine.push(`id: ${n}\ndata: event ${n}`);
        }
      }, 2);
      timers.add(timer);
      res.on('close', () => clearInterval(timer));
    });
    const drainer = createHttpDrainer(server, {
      tracker,
      activity: createTrafficActivity(),
      observer,
      pacing: { windowMs: 5000, budgetMs: 10_000 },
      lastEvent: () => 'event: reconnect\ndata: elsewhere',
    });
    const port = await listen(server);
    const clients = await Promise.all(Array.from({ length: 5 }, () => streamClient(port)));
    try {
      await delay(50);
      const { phase, drained } = await shutDownAndDrain(drainer, flags, 30);
      await drained;
      assert.deepEqual(phase.forced, [], 'nothing forced: the drain did not wait for its budget');

      const bodies = await Promise.all(clients.map((c) => c.body));
      const received = bodies.map((body) => {
        assert.ok(body.endsWith('\n\n'), 'the stream ended at a message boundary');
        return body.slice(0, -2).split('\n\n');
      });
      for (const events of received) {
        assert.equal(events.at(-1), 'event: reconnect\ndata: elsewhere', 'the last event came last');
      }
      // Every event a stream accepted reached its client, in order, and nothing else did.
      const sent = accepted.map((events) => events.join('|')).sort();
      const got = received.map((events) => events.slice(0, -1).join('|')).sort();
      assert.deepEqual(got, sent);
      assert.ok(
        received.every((events) => events.length > 2),
        'events flowed before the drain',
      );
      assert.equal(observer.count('http1', 'event_stream_end'), 5);
      assert.equal(observer.paced.filter((p) => p.protocol === 'event_stream').length, 5);
    } finally {
      for (const timer of timers) clearInterval(timer);
      drainer.detach();
      await closeHard(server);
    }
  });

  it('a stream whose headers go out after the drain began, or whose request came during it, is ended too', async () => {
    const observer = recordingObserver();
    const { tracker, flags } = trackerWithFlags();
    const timers = new Set<NodeJS.Timeout>();
    /** The handler subscribes (or authenticates) for `setup` ms before the stream's headers go out. */
    const server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname !== '/events') {
        res.end('ok');
        return;
      }
      const setup = Number(url.searchParams.get('setup') ?? 0);
      const started = setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        let n = 0;
        const tick = setInterval(() => {
          if (!res.writableEnded) res.write(`data: ${++n}\n\n`);
        }, 20);
        timers.add(tick);
        res.on('close', () => clearInterval(tick));
      }, setup);
      timers.add(started);
    });
    const drainer = createHttpDrainer(server, {
      tracker,
      activity: createTrafficActivity(),
      observer,
      lastEvent: () => 'event: reconnect',
    });
    const port = await listen(server);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const duringAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const open = (path: string, via = agent): Promise<string> =>
      new Promise((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port, path, agent: via }, (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => (text += chunk));
            res.once('end', () => resolve(text));
            res.once('aborted', () => reject(new Error('reset')));
          })
          .once('error', reject);
      });
    try {
      // A plain request first, so the agent keeps a socket that is still open in the drain.
      const warm = new Promise<void>((resolve) =>
        http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
          res.resume();
          resolve();
        }),
      );
      await warm;
      // And one on a second socket, open through the drain (a young idle socket gets a grace).
      assert.equal(await open('/', duringAgent), 'ok');
      const late = open('/events?setup=300');
      await delay(50);
      const { phase, drained } = await shutDownAndDrain(drainer, flags);
      await delay(20);
      const during = open('/events?setup=0', duringAgent);
      const body = await late;
      assert.match(body, /event: reconnect\n\n$/, 'headers after the drain began: ended with the last event');
      assert.match(await during, /event: reconnect\n\n$/, 'a request during the drain: ended the same way');
      await drained;
      assert.deepEqual(phase.forced, [], 'nothing forced: the drain did not wait for its budget');
      assert.equal(observer.count('http1', 'event_stream_end'), 2);
    } finally {
      for (const timer of timers) clearInterval(timer);
      agent.destroy();
      duringAgent.destroy();
      drainer.detach();
      await closeHard(server);
    }
  });

  it('a late stream pipelined behind a slow answer, or begun after a refused writeHead, is ended too', async () => {
    const { tracker, flags } = trackerWithFlags();
    const timers = new Set<NodeJS.Timeout>();
    const sse = { 'content-type': 'text/event-stream' };
    const stream = (res: http.ServerResponse): void => {
      res.write('data: first\n\n');
      const tick = setInterval(() => res.write('data: tick\n\n'), 20);
      timers.add(tick);
      res.on('close', () => clearInterval(tick));
    };
    const server = http.createServer((req, res) => {
      const later = (fn: () => void): void => void timers.add(setTimeout(fn, 200));
      if (req.url === '/slow') later(() => res.end('slow'));
      else if (req.url === '/late') later(() => (res.writeHead(200, sse), stream(res)));
      else
        later(() => {
          assert.throws(() => res.writeHead(99_999, sse), /Invalid status code/);
          res.writeHead(200, sse);
          stream(res);
        });
    });
    const drainer = createHttpDrainer(server, {
      tracker,
      activity: createTrafficActivity(),
      lastEvent: () => 'event: bye',
    });
    const port = await listen(server);
    try {
      const pipelined = await rawClient(port);
      const refused = await rawClient(port);
      pipelined.socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /late HTTP/1.1\r\nHost: x\r\n\r\n');
      refused.socket.write('GET /refused HTTP/1.1\r\nHost: x\r\n\r\n');
      await delay(50);
      const { phase, drained } = await shutDownAndDrain(drainer, flags);
      await drained;
      assert.deepEqual(phase.forced, [], 'nothing forced: the drain did not wait for its budget');
      for (const client of [pipelined, refused]) {
        await client.ended;
        // However Node cut it into chunks (Node 26 sent both events in one): the first event, then the
        // last one, then the end of the body.
        const received = client.received();
        assert.match(received, /data: first\n\n[\s\S]*event: bye\n\n\r\n0\r\n\r\n$/);
      }
      assert.match(pipelined.received(), /slow/);
    } finally {
      for (const timer of timers) clearInterval(timer);
      drainer.detach();
      await closeHard(server);
    }
  });

  it('over HTTP/2 (the compatibility API): a stream open at the shutdown and one begun in the drain end cleanly', async () => {
    const observer = recordingObserver();
    const { tracker, flags } = trackerWithFlags();
    const timers = new Set<NodeJS.Timeout>();
    /** The late stream's headers go out when the test says so: after the drain began. */
    let releaseLate!: () => void;
    const lateReleased = new Promise<void>((resolve) => (releaseLate = resolve));
    let eventsWritten = 0;
    const server = http2.createServer((req, res) => {
      const late = new URL(req.url, 'http://x').searchParams.has('late');
      void (late ? lateReleased : Promise.resolve()).then(() => {
        {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          let n = 0;
          const tick = setInterval(() => {
            if (res.writableEnded) return;
            n++;
            // Every other event in two writes: the drain must not end the stream between them.
            eventsWritten++;
            if (n % 2 === 0) {
              res.write(`data: ${n}\n\n`);
              return;
            }
            res.write(`id: ${n}\n`);
            const k = n;
            setImmediate(() => {
              if (!res.writableEnded) res.write(`data: ${k}\n\n`);
            });
          }, 5);
          timers.add(tick);
          res.on('close', () => clearInterval(tick));
        }
      });
    });
    const seen: string[] = [];
    const drainer = createHttpDrainer(server, {
      tracker,
      activity: createTrafficActivity(),
      observer,
      pacing: { windowMs: 200, budgetMs: 10_000 },
      lastEvent: (req) => (seen.push(req.url ?? ''), 'event: reconnect'),
    });
    const port = await listen(server);
    const client = http2.connect(`http://127.0.0.1:${port}`);
    const open = (path: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const stream = client.request({ ':path': path });
        let text = '';
        stream.setEncoding('utf8');
        stream.on('data', (chunk: string) => (text += chunk));
        stream.once('end', () => resolve(text));
        stream.once('error', reject);
        stream.once('close', () => {
          if (stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR)
            reject(new Error(`reset (${stream.rstCode})`));
        });
      });
    try {
      const open1 = open('/events');
      // Its handler subscribes (or authenticates) until the drain began: its headers go out then.
      const late = open('/events?late');
      while (eventsWritten < 3) await delay(5);
      // As in a real shutdown, the streams' writes are watched for a while before the drain (the
      // propagation wait): a stream is taken to be at a boundary only until its writes say otherwise.
      const { phase, drained } = await shutDownAndDrain(drainer, flags, 30);
      releaseLate();
      const [body, lateBody] = await Promise.all([open1, late]);
      await drained;
      assert.deepEqual(phase.forced, [], 'nothing forced: the drain did not wait for its budget');
      const events = /^(?:id: \d+\ndata: \d+\n\n|data: \d+\n\n)+event: reconnect\n\n$/;
      assert.match(body, events, 'whole events, then the last one');
      // Ended just after its headers went out (its handler wrote nothing in that turn).
      assert.equal(lateBody, 'event: reconnect\n\n');
      assert.deepEqual(seen.sort(), ['/events', '/events?late'], 'lastEvent got each HTTP/2 request');
      assert.equal(
        observer.paced.filter((p) => p.protocol === 'event_stream').length,
        1,
        'the open one was paced',
      );
    } finally {
      for (const timer of timers) clearInterval(timer);
      client.destroy();
      drainer.detach();
      await closeHard(server);
    }
  });
});
