/**
 * The management port faces the kubelet and Prometheus, and anything else that can reach the pod:
 * methods, what answers give away, limits and timeouts, who may call /prestop, and a seeded fuzz of
 * malformed HTTP on raw sockets. docs/security.md lists the answers asserted here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { after, afterEach, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { createKubegrace, type Kubegrace, type KubegraceOptions } from '../../src/index.js';
import { metrics } from '../../src/metrics/index.js';
import { startFaultService, type FaultChild } from '../support/fault-child.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});
const children = new Set<FaultChild>();
after(() => {
  for (const c of children) c.kill();
});

async function management(options: KubegraceOptions = {}): Promise<{ kg: Kubegrace; port: number }> {
  const kg = createKubegrace({
    logger: false,
    handleSignals: false,
    exit: () => {},
    probes: { port: 0, host: '127.0.0.1' },
    ...options,
  });
  cleanup.push(() => kg.destroy());
  await kg.start();
  return { kg, port: kg.managementAddress?.port ?? 0 };
}

interface RawOptions {
  readonly host?: string;
  readonly localAddress?: string;
  /** Half-close after sending (default): the server answers, then closes. */
  readonly end?: boolean;
  readonly timeoutMs?: number;
}

/** Send `text` on a raw socket; resolves with everything received until the server closed. */
function raw(port: number, text: string | Buffer, options: RawOptions = {}): Promise<string> {
  return new Promise((resolve) => {
    const socket: Socket = connect({
      port,
      host: options.host ?? '127.0.0.1',
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    });
    let received = '';
    const timer = setTimeout(() => socket.destroy(), options.timeoutMs ?? 3000);
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
    socket.write(text);
    if (options.end !== false) socket.end();
  });
}

/** Status codes of every response in a raw answer (pipelined and interim ones included). */
const statuses = (answer: string): number[] =>
  [...answer.matchAll(/(?:^|\r\n)HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));

const request = (method: string, path: string, headers: readonly string[] = []): string =>
  `${method} ${path} HTTP/1.1\r\nHost: pod\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`;

function headersOf(answer: string): Map<string, string> {
  const head = answer.split('\r\n\r\n')[0] ?? '';
  return new Map(
    head
      .split('\r\n')
      .slice(1)
      .map((line) => {
        const i = line.indexOf(':');
        return [line.slice(0, i).toLowerCase(), line.slice(i + 1).trim()] as const;
      }),
  );
}

const bodyOf = (answer: string): string => answer.slice(answer.indexOf('\r\n\r\n') + 4);

describe('management port hardening', () => {
  it('probes and /metrics answer GET and HEAD only; every other method gets 405 with Allow', async () => {
    const { kg, port } = await management();
    kg.use(metrics({ registry: new Registry() }));
    kg.ready();
    for (const path of ['/livez', '/readyz', '/startupz', '/metrics']) {
      assert.deepEqual(statuses(await raw(port, request('GET', path))), [200], `GET ${path}`);
      const head = await raw(port, request('HEAD', path));
      assert.deepEqual(statuses(head), [200], `HEAD ${path}`);
      assert.equal(bodyOf(head), '', `HEAD ${path} has no body`);
      for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND']) {
        const answer = await raw(port, request(method, path, ['Content-Length: 0']));
        assert.deepEqual(statuses(answer), [405], `${method} ${path}`);
        assert.equal(headersOf(answer).get('allow'), 'GET, HEAD', `${method} ${path}`);
      }
    }
  });

  it('/prestop takes GET and POST only; unknown paths are 404 whatever the method; garbage methods 400', async () => {
    const { port } = await management({ prestop: { token: 'abc' } });
    for (const method of ['PUT', 'DELETE', 'HEAD', 'OPTIONS']) {
      const answer = await raw(port, request(method, '/prestop'));
      assert.deepEqual(statuses(answer), [405], method);
      assert.equal(headersOf(answer).get('allow'), 'GET, POST');
    }
    for (const method of ['GET', 'POST', 'DELETE']) {
      assert.deepEqual(statuses(await raw(port, request(method, '/admin'))), [404], method);
    }
    assert.deepEqual(statuses(await raw(port, request('FOO', '/livez'))), [400]);
  });

  it('gives nothing away: no Server or X-Powered-By header, no stack, no check errors, no versions', async () => {
    const { kg, port } = await management();
    kg.use(metrics({ registry: new Registry() }));
    kg.addReadinessCheck('db', () => {
      throw new Error('password=hunter2 at db.internal:5432');
    });
    kg.addManagementRoute('/boom', () => {
      throw new Error('secret path /srv/app/config.json');
    });
    kg.ready();
    const answers = new Map<string, string>();
    for (const path of ['/livez', '/readyz', '/startupz', '/metrics', '/boom', '/nope', '/prestop']) {
      answers.set(path, await raw(port, request('GET', path, ['X-Forwarded-For: 10.0.0.9'])));
    }
    answers.set('bad request', await raw(port, 'GET /livez HTTP/1.1\r\nBad Header\r\n\r\n'));
    for (const [path, answer] of answers) {
      const headers = headersOf(answer);
      assert.equal(headers.has('server'), false, `${path}: Server header`);
      assert.equal(headers.has('x-powered-by'), false, `${path}: X-Powered-By header`);
      for (const leak of [
        /hunter2/,
        /\/srv\/app/,
        /\n\s+at /,
        /node:internal/,
        new RegExp(process.version),
      ]) {
        assert.doesNotMatch(answer, leak, `${path} leaks ${String(leak)}`);
      }
    }
    const body = (path: string): unknown => JSON.parse(bodyOf(answers.get(path) ?? ''));
    assert.deepEqual(body('/readyz'), { status: 'not_ready', reason: 'check_failed' });
    assert.deepEqual(body('/boom'), { status: 'error' });
    assert.deepEqual(body('/nope'), { status: 'not_found' });
    assert.deepEqual(body('/prestop'), { status: 'shutting_down' });
    assert.deepEqual(statuses(answers.get('bad request') ?? ''), [400]);
    assert.equal(bodyOf(answers.get('bad request') ?? ''), '');
    // Only kubegrace's own series on a registry of its own: no runtime or version metrics.
    for (const line of bodyOf(answers.get('/metrics') ?? '').split('\n')) {
      assert.match(line, /^(# (HELP|TYPE) kubegrace_|kubegrace_|$)/, line);
    }
  });

  it('check details appear only when enabled, and then as one line without a stack', async () => {
    const { kg, port } = await management({ probes: { port: 0, host: '127.0.0.1', details: true } });
    kg.addReadinessCheck('db', () => {
      throw new Error('connection refused');
    });
    kg.ready();
    const body = JSON.parse(bodyOf(await raw(port, request('GET', '/readyz')))) as {
      checks: { name: string; ok: boolean; error: string }[];
    };
    assert.equal(body.checks[0]?.name, 'db');
    assert.match(body.checks[0]?.error ?? '', /connection refused/);
    assert.doesNotMatch(JSON.stringify(body), /\\n\s+at /);
  });

  it('limits: headers over 8 KiB get 431; a request whose headers never end gets 408; an idle keep-alive connection is closed', async () => {
    const { port } = await management();
    const big = await raw(port, request('GET', '/livez', [`X-Big: ${'a'.repeat(9 * 1024)}`]));
    assert.deepEqual(statuses(big), [431]);
    const long = await raw(port, request('GET', `/livez?${'q'.repeat(9 * 1024)}`));
    assert.deepEqual(statuses(long), [431], 'a long request target counts against the same limit');
    // Both at once, so the test waits for the timeouts once: headersTimeout 5 s, keepAliveTimeout 5 s.
    const startedAt = Date.now();
    const [unfinished, idle] = await Promise.all([
      raw(port, 'GET /livez HTTP/1.1\r\nHost: pod\r\n', { end: false, timeoutMs: 9000 }),
      raw(port, request('GET', '/livez'), { end: false, timeoutMs: 9000 }),
    ]);
    const took = Date.now() - startedAt;
    assert.deepEqual(statuses(unfinished), [408]);
    assert.deepEqual(statuses(idle), [200], 'served, then closed by the server when idle');
    assert.ok(took >= 4500 && took < 8500, `closed after ${took} ms`);
  });
});

function podAddress(): string | undefined {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

const POD_IP = podAddress();

describe('/prestop is reachable only from the pod itself', () => {
  const skip = POD_IP === undefined ? 'no non-loopback IPv4 interface on this machine' : false;

  it(
    'without a token: loopback to loopback only; the pod IP and a sidecar forwarding from 127.0.0.6 get 403',
    { skip },
    async () => {
      const pod = POD_IP as string;
      const { kg, port } = await management({ probes: { port: 0, host: '' } });
      const call = (host: string, localAddress?: string): Promise<number[]> =>
        raw(port, request('POST', '/prestop', ['Content-Length: 0']), {
          host,
          ...(localAddress ? { localAddress } : {}),
        }).then(statuses);
      // Another pod: from its own address to ours.
      assert.deepEqual(await call(pod, pod), [403]);
      // A mesh sidecar (Istio ≥ 1.10) forwards inbound traffic from 127.0.0.6 to the pod IP.
      assert.deepEqual(await call(pod, '127.0.0.6'), [403]);
      assert.equal(kg.state, 'starting', 'nothing started a shutdown');
      // `kubegrace prestop` in the container: loopback to loopback.
      assert.deepEqual(await call('127.0.0.1'), [202]);
      assert.equal(kg.state, 'draining');
    },
  );

  it('with a token: any address presenting it; without it, not even loopback', { skip }, async () => {
    const pod = POD_IP as string;
    const { kg, port } = await management({
      probes: { port: 0, host: '' },
      prestop: { token: 's3cret-t0ken' },
    });
    const call = (host: string, headers: string[]): Promise<number[]> =>
      raw(port, request('GET', '/prestop', headers), { host }).then(statuses);
    assert.deepEqual(await call('127.0.0.1', []), [403]);
    assert.deepEqual(await call(pod, ['Authorization: Bearer s3cret-t0keN']), [403]);
    assert.deepEqual(await call(pod, ['Authorization: Basic s3cret-t0ken']), [403]);
    assert.deepEqual(await call(pod, ['X-Kubegrace-Token: s3cret']), [403]);
    assert.equal(kg.state, 'starting');
    assert.deepEqual(await call(pod, ['Authorization: Bearer s3cret-t0ken']), [202]);
    assert.equal(kg.state, 'draining');
  });
});

// ---------------------------------------------------------------------------------------------
// Fuzz

/** mulberry32: small, fast, and the same sequence for the same seed on every machine. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = Number(process.env.KUBEGRACE_FUZZ_SEED ?? 0x6b756265);
const CASES = Number(process.env.KUBEGRACE_FUZZ_CASES ?? 400);
const CONCURRENCY = 8;
/** Every answer the management port may give: the table in docs/security.md, read from there. */
function documentedAnswers(): Set<number> {
  const doc = readFileSync(new URL('../../docs/security.md', import.meta.url), 'utf8');
  const table = doc.split('<!-- answers:start -->')[1]?.split('<!-- answers:end -->')[0] ?? '';
  return new Set([...table.matchAll(/^\| (\d{3}) \|/gm)].map((m) => Number(m[1])));
}
const DOCUMENTED = documentedAnswers();
// 500 belongs to routes the application adds; kubegrace's own never throw.
DOCUMENTED.delete(500);

function generator(random: () => number) {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const chance = (p: number): boolean => random() < p;
  const bytes = (n: number): string =>
    Array.from({ length: n }, () => String.fromCharCode(Math.floor(random() * 256))).join('');
  const methods = [
    'GET',
    'HEAD',
    'POST',
    'PUT',
    'DELETE',
    'OPTIONS',
    'TRACE',
    'PATCH',
    'CONNECT',
    'PRI',
    'get',
    'G ET',
    'GETT',
    '',
  ];
  const paths = [
    '/livez',
    '/readyz',
    '/startupz',
    '/metrics',
    '/prestop',
    '/',
    '*',
    '/livez?probe=1&x',
    '/%00',
    '/../../etc/passwd',
    'http://evil/readyz',
    '//livez',
    '/LIVEZ',
    '/livez#frag',
    '/\u00e9',
    `/${'a'.repeat(9000)}`,
    'pod:9000',
  ];
  const versions = ['HTTP/1.1', 'HTTP/1.0', 'HTTP/0.9', 'HTTP/2.0', 'HTTP/1.1x', 'http/1.1', 'HTTP/1.', ''];
  const headerPool = [
    'Host: pod',
    'Host: pod',
    'Host:',
    'Content-Length: 0',
    'Content-Length: 5',
    'Content-Length: -1',
    'Content-Length: 99999999999999999999',
    'Content-Length: 1, 2',
    'Transfer-Encoding: chunked',
    'Transfer-Encoding: gzip, chunked',
    'Transfer-Encoding: bogus',
    'Expect: 100-continue',
    'Expect: teapot',
    'Connection: keep-alive',
    'Connection: close',
    'Connection: Upgrade',
    'Upgrade: websocket',
    'Upgrade: h2c',
    'Authorization: Bearer guess',
    'X-Kubegrace-Token: guess',
    'NoColonHere',
    'Space Before : colon',
    ' folded-continuation',
    'X-Nul: a\u0000b',
    `X-Long: ${'x'.repeat(9000)}`,
    'X-Forwarded-For: 127.0.0.1',
  ];
  const eols = ['\r\n', '\r\n', '\r\n', '\n', '\r'];

  const goodMethods = ['GET', 'GET', 'HEAD', 'POST'];
  const goodPaths = ['/livez', '/readyz', '/startupz', '/metrics', '/prestop', '/nope'];
  /** A well-formed request, then a few mutations: most cases stay close enough to reach the routes. */
  const one = (): string => {
    let method = pick(goodMethods);
    let path = pick(goodPaths);
    let version = 'HTTP/1.1';
    let eol = '\r\n';
    const headers = ['Host: pod'];
    let body = '';
    let end = true;
    const mutations: (() => void)[] = [
      () => (method = chance(0.2) ? bytes(4) : pick(methods)),
      () => (path = chance(0.2) ? bytes(8) : pick(paths)),
      () => (version = pick(versions)),
      () => (eol = pick(eols)),
      () => headers.push(...Array.from({ length: 1 + Math.floor(random() * 3) }, () => pick(headerPool))),
      () => headers.splice(0, 1),
      () => headers.push(...Array.from({ length: 60 }, (_, i) => `X-Many-${i}: v`)),
      () => headers.push(bytes(20)),
      () => (end = false),
    ];
    const count = Math.floor(random() * 3);
    for (let i = 0; i < count; i++) pick(mutations)();
    if (headers.some((h) => h.startsWith('Content-Length: 5'))) body = chance(0.5) ? 'hello' : 'hel';
    if (headers.some((h) => h.includes('chunked'))) {
      body = pick(['5\r\nhello\r\n0\r\n\r\n', 'zz\r\nbad\r\n', '0\r\n\r\n', '5\r\nhel']);
    }
    const line = [method, path, version].join(' ');
    return `${line}${eol}${headers.map((h) => `${h}${eol}`).join('')}${end ? eol : ''}${body}`;
  };

  return function next(): { chunks: string[]; pauseMs: number } {
    let text = one();
    while (chance(0.15)) text += one(); // pipelined
    if (chance(0.08)) text = text.slice(0, Math.floor(random() * text.length)); // truncated
    if (chance(0.03)) text = bytes(64 + Math.floor(random() * 512)); // pure noise
    // Split into chunks, a few sent with a pause in between.
    const chunks: string[] = [];
    for (let rest = text; rest.length > 0;) {
      const size = chance(0.3) ? 1 + Math.floor(random() * 16) : rest.length;
      chunks.push(rest.slice(0, size));
      rest = rest.slice(size);
      if (chunks.length > 40) {
        chunks.push(rest);
        break;
      }
    }
    return { chunks, pauseMs: chance(0.2) ? Math.floor(random() * 30) : 0 };
  };
}

/** Sends one case, chunk by chunk, half-closes, and collects the answer. */
function sendCase(port: number, c: { chunks: string[]; pauseMs: number }): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    const timer = setTimeout(() => socket.destroy(), 3000);
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
    socket.on('connect', () => {
      void (async () => {
        for (const chunk of c.chunks) {
          if (socket.destroyed) return;
          socket.write(Buffer.from(chunk, 'latin1'));
          if (c.pauseMs > 0) await delay(c.pauseMs);
        }
        if (!socket.destroyed) socket.end();
      })();
    });
  });
}

describe('management port fuzz', () => {
  it('docs/security.md lists every answer the other tests see', () => {
    for (const code of [100, 200, 202, 400, 403, 404, 405, 408, 417, 431, 503]) {
      assert.ok(DOCUMENTED.has(code), `docs/security.md lacks ${code}`);
    }
  });

  it(`${CASES} malformed requests (seed ${SEED}): no crash, only documented answers, probes keep working`, async (t) => {
    const child = await startFaultService({
      KUBEGRACE_PRESTOP_TOKEN: 'fuzz-token-not-guessable',
      KUBEGRACE_PROPAGATION_QUIET_PERIOD_MS: '200',
    });
    children.add(child);
    const port = child.managementPort;
    const next = generator(prng(SEED));
    const cases = Array.from({ length: CASES }, next);
    const seen = new Map<number, number>();
    let unanswered = 0;
    const startedAt = Date.now();
    for (let i = 0; i < cases.length; i += CONCURRENCY) {
      const batch = cases.slice(i, i + CONCURRENCY);
      const answers = await Promise.all(batch.map((c) => sendCase(port, c)));
      answers.forEach((answer, j) => {
        const codes = statuses(answer);
        if (codes.length === 0) unanswered++;
        for (const code of codes) {
          seen.set(code, (seen.get(code) ?? 0) + 1);
          assert.ok(
            DOCUMENTED.has(code),
            `case ${i + j} (seed ${SEED}) got ${code}: ${JSON.stringify(batch[j]?.chunks.join('').slice(0, 300))}`,
          );
        }
        for (const leak of [/\n\s+at /, /node:internal/, /Error: /, new RegExp(process.version)]) {
          assert.doesNotMatch(answer, leak, `case ${i + j} (seed ${SEED}) leaked ${String(leak)}`);
        }
      });
      assert.equal(child.process.exitCode, null, `the service died after case ${i + CONCURRENCY}`);
      if ((i / CONCURRENCY) % 10 === 0) {
        assert.deepEqual(
          statuses(await raw(port, request('GET', '/livez'))),
          [200],
          'the probe still answers',
        );
      }
    }
    const took = Date.now() - startedAt;
    t.diagnostic(
      `seed ${SEED}: ${CASES} cases in ${took} ms; answers ${JSON.stringify(Object.fromEntries(seen))}; ${unanswered} closed without one`,
    );
    assert.ok(took < 60_000, `the fuzz took ${took} ms`);
    // Most cases get an answer; the rest are truncated requests or CONNECT, closed without one.
    assert.ok(unanswered < CASES / 3, `${unanswered} of ${CASES} cases got no answer`);
    for (const code of [200, 400, 404, 405]) assert.ok(seen.has(code), `the fuzz reached ${code}`);
    assert.equal(
      child.events.some((e) => e.event === 'state' && e.state === 'draining'),
      false,
    );
    child.process.kill('SIGTERM');
    const exit = await child.exited;
    assert.equal(exit.code, 0, 'it still shuts down cleanly');
    assert.equal(child.stderr.join(''), '');
  });
});
