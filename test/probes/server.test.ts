import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Agent, request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { connect, createServer as createNetServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { KubegraceError } from '../../src/errors.js';
import type { RouteHandler } from '../../src/probes/handler.js';
import { sendJson } from '../../src/probes/handler.js';
import { createManagementServer } from '../../src/probes/server.js';

interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

function request(
  port: number,
  path: string,
  options: { method?: string; host?: string; agent?: Agent } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: options.host ?? '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        agent: options.agent ?? false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Sends raw bytes and collects everything the server writes until it closes the connection. */
function raw(port: number, payload: string, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host });
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(received));
    socket.write(payload);
  });
}

const ok: RouteHandler = (req, res) => sendJson(req, res, 200, { status: 'ok' });

async function canBind(host: string): Promise<string | undefined> {
  const probe = createNetServer();
  try {
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen(0, host, resolve);
    });
    return undefined;
  } catch (error) {
    return (error as Error).message;
  } finally {
    probe.close();
  }
}

describe('createManagementServer: routing', () => {
  it('routes on the exact path, ignores query strings, answers 404 as JSON otherwise', async () => {
    const server = createManagementServer({ port: 0, host: '127.0.0.1', routes: new Map([['/livez', ok]]) });
    const { port } = await server.listen();
    try {
      assert.equal((await request(port, '/livez')).status, 200);
      assert.equal((await request(port, '/livez?verbose=1&x')).status, 200);
      assert.equal((await request(port, '/livez?')).status, 200);
      for (const path of ['/livez/', '/LIVEZ', '/livezz', '/', '/livez/x']) {
        const reply = await request(port, path);
        assert.equal(reply.status, 404, path);
        assert.deepEqual(JSON.parse(reply.body), { status: 'not_found' });
        assert.equal(reply.headers['content-type'], 'application/json');
      }
      const head = await request(port, '/nope', { method: 'HEAD' });
      assert.equal(head.status, 404);
      assert.equal(head.body, '');
      // Absolute-form request targets, as sent through proxies.
      const absolute = await raw(
        port,
        'GET http://pod:9000/livez?x=1 HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n',
      );
      assert.match(absolute, /^HTTP\/1\.1 200 /);
      const star = await raw(port, 'OPTIONS * HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n');
      assert.match(star, /^HTTP\/1\.1 404 /);
    } finally {
      await server.close();
    }
  });

  it('adds and removes routes while listening, and refuses duplicates and bad paths', async () => {
    const server = createManagementServer({ port: 0, host: '127.0.0.1' });
    const { port } = await server.listen();
    try {
      assert.equal((await request(port, '/metrics')).status, 404);
      const remove = server.addRoute('/metrics', ok);
      assert.equal((await request(port, '/metrics')).status, 200);
      const invalid = (error: unknown) =>
        error instanceof KubegraceError && error.code === 'ERR_KUBEGRACE_INVALID_OPTION';
      assert.throws(() => server.addRoute('/metrics', ok), invalid);
      assert.throws(() => server.addRoute('metrics', ok), invalid);
      assert.throws(() => server.addRoute('/metrics?x', ok), invalid);
      assert.throws(() => server.addRoute('/x', 'handler' as never), invalid);
      remove();
      assert.equal((await request(port, '/metrics')).status, 404);
      server.addRoute('/metrics', ok);
      remove(); // a stale remover leaves the new route alone
      assert.equal((await request(port, '/metrics')).status, 200);
    } finally {
      await server.close();
    }
  });

  it('answers 500 when a route throws or rejects, and keeps serving', async () => {
    const server = createManagementServer({
      port: 0,
      host: '127.0.0.1',
      routes: new Map<string, RouteHandler>([
        [
          '/throws',
          () => {
            throw new Error('sync');
          },
        ],
        ['/rejects', async () => Promise.reject(new Error('async'))],
        ['/ok', ok],
      ]),
    });
    const { port } = await server.listen();
    try {
      for (const path of ['/throws', '/rejects']) {
        const reply = await request(port, path);
        assert.equal(reply.status, 500, path);
        assert.deepEqual(JSON.parse(reply.body), { status: 'error' });
      }
      assert.equal((await request(port, '/ok')).status, 200);
    } finally {
      await server.close();
    }
  });
});

describe('createManagementServer: hostile input', () => {
  it('answers a malformed request with 400 on a raw socket and survives', async () => {
    const server = createManagementServer({ port: 0, host: '127.0.0.1', routes: new Map([['/livez', ok]]) });
    const { port } = await server.listen();
    try {
      for (const garbage of [
        'GARBAGE\r\n\r\n',
        'GET /livez HTTP/9.9\r\n\r\n',
        'GET /livez HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n',
        '\u0000\u0001\u0002\r\n\r\n',
      ]) {
        const reply = await raw(port, garbage);
        assert.match(reply, /^HTTP\/1\.1 400 Bad Request\r\n/, JSON.stringify(garbage));
        assert.match(reply, /Connection: close/);
      }
      const huge = await raw(port, `GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
      assert.match(huge, /^HTTP\/1\.1 431 /);
      assert.equal((await request(port, '/livez')).status, 200, 'still serving');
    } finally {
      await server.close();
    }
  });

  it('cuts off a client that never finishes its headers', async () => {
    const server = createManagementServer({ port: 0, host: '127.0.0.1', routes: new Map([['/livez', ok]]) });
    const { port } = await server.listen();
    try {
      const started = performance.now();
      const reply = await raw(port, 'GET /livez HTTP/1.1\r\nHost: x\r\n');
      const elapsed = performance.now() - started;
      assert.match(reply, /^HTTP\/1\.1 408 /);
      assert.ok(elapsed < 7_500, `closed after ${Math.round(elapsed)} ms`);
      assert.equal((await request(port, '/livez')).status, 200, 'still serving');
    } finally {
      await server.close();
    }
  });
});

describe('createManagementServer: addresses', () => {
  it("serves IPv4 and IPv6 on one dual-stack listener when host is ''", async (t) => {
    const server = createManagementServer({ port: 0, host: '', routes: new Map([['/livez', ok]]) });
    const address = await server.listen();
    try {
      const noV6 = await canBind('::1');
      if (noV6 !== undefined) {
        t.skip(`no IPv6 loopback: ${noV6}`);
        return;
      }
      assert.equal(address.address, '::', 'bound to the IPv6 wildcard');
      assert.equal((await request(address.port, '/livez', { host: '127.0.0.1' })).status, 200, 'IPv4');
      assert.equal((await request(address.port, '/livez', { host: '::1' })).status, 200, 'IPv6');
    } finally {
      await server.close();
    }
  });

  it('listens on an explicit host only', async () => {
    const server = createManagementServer({ port: 0, host: '127.0.0.1', routes: new Map([['/livez', ok]]) });
    const address = await server.listen();
    try {
      assert.equal(address.address, '127.0.0.1');
      assert.equal(address.family, 'IPv4');
    } finally {
      await server.close();
    }
  });

  it('rejects a busy port and can listen again once it is free', async () => {
    const blocker = createNetServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const busyPort = (blocker.address() as AddressInfo).port;
    const server = createManagementServer({
      port: busyPort,
      host: '127.0.0.1',
      routes: new Map([['/livez', ok]]),
    });
    try {
      await assert.rejects(server.listen(), (error: unknown) => {
        assert.ok(error instanceof KubegraceError, String(error));
        assert.equal(error.code, 'ERR_KUBEGRACE_INVALID_OPTION');
        assert.equal(error.option, 'probes.port');
        assert.equal(
          error.message,
          `probes.port must be a port free on 127.0.0.1, received ${busyPort}: something already listens ` +
            'there (EADDRINUSE); stop it (another process, or another server in this one) or choose ' +
            'another port (0 picks a free one)',
        );
        assert.equal((error.cause as NodeJS.ErrnoException).code, 'EADDRINUSE');
        return true;
      });
      assert.equal(server.address, undefined);
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
      const address = await server.listen();
      assert.equal(address.port, busyPort);
      assert.equal((await request(busyPort, '/livez')).status, 200);
    } finally {
      blocker.close();
      await server.close();
    }
  });

  it('a host this machine does not have, or that does not resolve, is named with the fix', async () => {
    const cases: readonly (readonly [host: string, message: RegExp])[] = [
      // TEST-NET-1 (RFC 5737): no interface has it.
      [
        '192.0.2.1',
        /^KUBEGRACE_PROBES_HOST must be an address of this machine, received "192\.0\.2\.1": no interface has it \(EADDRNOTAVAIL\); use '' for every interface/,
      ],
      // `.invalid` never resolves (RFC 2606).
      [
        'nowhere.invalid',
        /^KUBEGRACE_PROBES_HOST must be a host name that resolves to an address of this machine, received "nowhere\.invalid": it does not resolve \((ENOTFOUND|EAI_AGAIN)\)/,
      ],
    ];
    for (const [host, message] of cases) {
      const server = createManagementServer({
        port: 0,
        host,
        names: { port: 'KUBEGRACE_PROBES_PORT', host: 'KUBEGRACE_PROBES_HOST' },
      });
      await assert.rejects(server.listen(), (error: unknown) => {
        assert.ok(error instanceof KubegraceError, String(error));
        assert.equal(error.code, 'ERR_KUBEGRACE_INVALID_OPTION');
        assert.equal(error.option, 'KUBEGRACE_PROBES_HOST');
        assert.match(error.message, message);
        return true;
      });
      await server.close();
    }
  });

  it('rejects invalid port and host options', () => {
    const invalid = (error: unknown) =>
      error instanceof KubegraceError && error.code === 'ERR_KUBEGRACE_INVALID_OPTION';
    assert.throws(() => createManagementServer({ port: 70_000, host: '' }), invalid);
    assert.throws(() => createManagementServer({ port: -1, host: '' }), invalid);
    assert.throws(() => createManagementServer({ port: 0, host: 5 as never }), invalid);
  });
});

describe('createManagementServer: listen and close', () => {
  it('is idempotent in listen and close, and cannot listen again once closed', async () => {
    const server = createManagementServer({ port: 0, host: '127.0.0.1', routes: new Map([['/livez', ok]]) });
    assert.equal(server.address, undefined);
    const first = server.listen();
    assert.equal(server.listen(), first, 'same promise');
    const address = await first;
    assert.deepEqual(server.address, address);
    const closing = server.close();
    assert.equal(server.close(), closing, 'same promise');
    await closing;
    assert.equal(server.address, undefined);
    await assert.rejects(request(address.port, '/livez'), { code: 'ECONNREFUSED' });
    await assert.rejects(server.listen(), { code: 'ERR_KUBEGRACE_INVALID_STATE' });
  });

  it('closes at once a server that never listened', async () => {
    const server = createManagementServer({ port: 0, host: '127.0.0.1' });
    await server.close();
    assert.equal(server.address, undefined);
  });

  it('destroys keep-alive sockets on close instead of waiting for them', async () => {
    const server = createManagementServer({ port: 0, host: '127.0.0.1', routes: new Map([['/livez', ok]]) });
    const { port } = await server.listen();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    // The agent unrefs pooled sockets; something must keep the loop turning to see them close.
    const keepAlive = setInterval(() => {}, 1000);
    try {
      const reply = await request(port, '/livez', { agent });
      await new Promise((resolve) => setImmediate(resolve)); // the socket returns to the pool
      assert.equal(reply.headers['connection'], 'keep-alive');
      assert.match(String(reply.headers['keep-alive']), /timeout=5/);
      const [socket] = Object.values(agent.freeSockets).flat();
      assert.ok(socket, 'a pooled socket is open');
      const closed = once(socket, 'close');
      const started = performance.now();
      await server.close();
      await closed;
      assert.ok(performance.now() - started < 1000, 'close did not wait for the keep-alive timeout');
    } finally {
      clearInterval(keepAlive);
      agent.destroy();
    }
  });

  it('does not wait for a request still in flight when closing', { timeout: 5000 }, async () => {
    const server = createManagementServer({
      port: 0,
      host: '127.0.0.1',
      routes: new Map<string, RouteHandler>([['/hangs', () => new Promise<void>(() => {})]]),
    });
    const { port } = await server.listen();
    const pending = request(port, '/hangs');
    await sleep(50);
    const started = performance.now();
    await server.close();
    assert.ok(performance.now() - started < 1000, 'close returned without waiting');
    await assert.rejects(pending, { code: 'ECONNRESET' });
  });

  it('lets the process exit on its own after close', async () => {
    const serverModule = new URL('../../src/probes/server.ts', import.meta.url).href;
    const handlerModule = new URL('../../src/probes/handler.ts', import.meta.url).href;
    const script = `
      import { Agent, get } from 'node:http';
      import { createManagementServer } from ${JSON.stringify(serverModule)};
      import { sendJson } from ${JSON.stringify(handlerModule)};
      const server = createManagementServer({ port: 0, host: '', routes: new Map([['/livez', (q, s) => sendJson(q, s, 200, {})]]) });
      const { port } = await server.listen();
      const agent = new Agent({ keepAlive: true });
      await new Promise((resolve) => get({ port, host: '127.0.0.1', path: '/livez', agent }, (res) => { res.resume(); res.on('end', resolve); }));
      await server.close();
      console.log('closed');
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const started = performance.now();
    const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    clearTimeout(timer);
    assert.equal(
      signal,
      null,
      `killed after ${Math.round(performance.now() - started)} ms: still alive. ${output}`,
    );
    assert.equal(code, 0, output);
    assert.match(output, /closed/);
  });

  it('keeps serving requests that arrive while others wait on slow routes', async () => {
    const server = createManagementServer({
      port: 0,
      host: '127.0.0.1',
      routes: new Map<string, RouteHandler>([
        [
          '/slow',
          async (req, res) => {
            await sleep(200);
            sendJson(req, res, 200, { status: 'slow' });
          },
        ],
        ['/livez', ok],
      ]),
    });
    const { port } = await server.listen();
    try {
      const slow = request(port, '/slow');
      const started = performance.now();
      assert.equal((await request(port, '/livez')).status, 200);
      assert.ok(performance.now() - started < 150, 'not queued behind the slow route');
      assert.equal((await slow).status, 200);
    } finally {
      await server.close();
    }
  });
});
