/**
 * `kubegrace/fastify`: `kg.use(fastifyApp(app, { probes: true }))` for fastify 4 and 5. It drains
 * `app.server`, serves the probes on the app's port if asked, and runs `app.close()` (fastify's
 * `preClose` and `onClose` hooks) in kubegrace's cleanup phase.
 *
 * fastify's `close()` closes the listener (`server.close()`) and answers what still arrives with
 * 503; kubegrace keeps the listener open through the propagation wait and closes it in the drain.
 * So `close()` runs only in cleanup, after the drain: the listener is closed by then, fastify's
 * `server.close()` finds it so (ERR_SERVER_NOT_RUNNING, which fastify takes as done), and its hooks run.
 *
 * Structural types, no import of fastify: the app's own fastify (4 or 5) is the only copy, and
 * importing this entry point loads nothing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { invalidOption, KubegraceError } from '../errors.js';
import { defineIntegration, type Host, type Integration } from '../host.js';
import type { Kubegrace } from '../kubegrace.js';
import { errorText } from '../lifecycle.js';
import { createSettingReader } from '../settings.js';

/** The part of a fastify request kubegrace uses. */
export interface FastifyRequestLike {
  readonly raw: IncomingMessage | Http2ServerRequest;
}

/** The part of a fastify reply kubegrace uses. */
export interface FastifyReplyLike {
  readonly raw: ServerResponse | Http2ServerResponse;
  hijack(): unknown;
}

/**
 * The part of a fastify instance (4 or 5) kubegrace uses; every `fastify()` instance fits, and your
 * code compiles against either major.
 */
export interface FastifyAppLike {
  readonly server: Parameters<Kubegrace['attach']>[0];
  route(options: {
    method: ProbeMethod[];
    url: string;
    handler(request: FastifyRequestLike, reply: FastifyReplyLike): void;
  }): unknown;
  addHook(
    name: 'onRequest',
    hook: (request: FastifyRequestLike, reply: FastifyReplyLike, done: () => void) => void,
  ): unknown;
  addHook(name: 'preClose', hook: (done: () => void) => void): unknown;
  /** The plugin loader's next step; refused on both majors once the app booted. */
  after?(listener: (error: Error | null, done: (error?: Error | null) => void) => void): unknown;
  close(): PromiseLike<unknown>;
}

export interface FastifyAppOptions {
  /** Serve `/livez`, `/readyz` and `/startupz` on the app's own port as well. @default false */
  readonly probes?: boolean;
  /**
   * Drain `app.server` (`kg.attach`). `false` when you attach the server yourself (it is shared with
   * another framework); requests are then tracked in an `onRequest` hook. @default true
   */
  readonly attach?: boolean;
  /** Names the server and the cleanup participant in logs and the summary. @default 'fastify' */
  readonly name?: string;
  /** Time limit of `app.close()` in the cleanup phase, in ms. @default hookTimeoutMs */
  readonly closeTimeoutMs?: number;
}

export interface FastifyAppHandle {
  /** Stop draining the server and take `app.close()` out of the shutdown (routes and hooks stay). */
  detach(): void;
}

/** The apps given to kubegrace: a second `fastifyApp(app)` would add its routes and hooks twice. */
const inUse = new WeakSet<FastifyAppLike>();

/** Every method both majors route: the probes answer them all, so other methods get the management server's 405. */
const PROBE_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
type ProbeMethod = (typeof PROBE_METHODS)[number];

/** A fastify app for `kg.use()`: options are checked here, at once. Use it before `app.listen()`. */
export function fastifyApp(
  app: FastifyAppLike,
  options: FastifyAppOptions = {},
): Integration<FastifyAppHandle> {
  const looksLikeFastify =
    typeof app === 'object' &&
    app !== null &&
    typeof (app as Partial<FastifyAppLike>).server === 'object' &&
    ['route', 'addHook', 'close'].every(
      (method) => typeof (app as unknown as Record<string, unknown>)[method] === 'function',
    );
  if (!looksLikeFastify) throw invalidOption('app', 'a fastify instance (fastify 4 or 5)', app);
  const read = createSettingReader({});
  read.object('fastifyApp options', options, 'an object', ['probes', 'attach', 'name', 'closeTimeoutMs']);
  const probes = read.boolean('probes', options.probes, undefined) ?? false;
  const attach = read.boolean('attach', options.attach, undefined) ?? true;
  const name = read.string('name', options.name, undefined) ?? 'fastify';
  const closeTimeoutMs = read.ms('closeTimeoutMs', options.closeTimeoutMs, undefined, 1);
  return defineIntegration(name, (host) => install(host, app, { probes, attach, name, closeTimeoutMs }));
}

function install(
  host: Host,
  app: FastifyAppLike,
  options: { probes: boolean; attach: boolean; name: string; closeTimeoutMs: number | undefined },
): FastifyAppHandle {
  if (inUse.has(app)) {
    throw new KubegraceError(
      'ERR_KUBEGRACE_INVALID_STATE',
      `${options.name}: this fastify app was already given to kubegrace (its probe routes and hooks ` +
        'stay on it, even after detach()); call kg.use(fastifyApp(app)) once per app',
    );
  }
  // What throws once fastify started goes first, so a refused kg.use() leaves nothing behind. The
  // plugin loader refuses a new step after ready() on both majors, whatever the options (fastify 5
  // still takes the preClose hook, and with the defaults nothing else would be refused); before
  // ready() the step only passes the boot's error on.
  started(() => app.after?.((error, done) => done(error)));
  const probeRoutes = host.probeRoutes;
  if (options.probes) {
    for (const [url, handler] of probeRoutes) {
      started(() =>
        app.route({
          method: [...PROBE_METHODS],
          url,
          handler(request, reply) {
            // The probe writes the Node response itself, as on the management server.
            reply.hijack();
            const res = reply.raw as ServerResponse;
            Promise.resolve()
              .then(() => handler(request.raw as IncomingMessage, res))
              .catch((error: unknown) => {
                host.logger.warn(`${options.name}: probe ${url} failed: ${errorText(error)}`, {
                  component: 'fastify',
                });
                if (!res.headersSent) res.writeHead(500, { 'content-length': '0' });
                res.end();
              });
          },
        }),
      );
    }
  }
  let tracking = true;
  if (!options.attach) {
    // The kubelet's probes are not traffic: they must not hold the drain open or get its 503.
    const probePaths = new Set(probeRoutes.keys());
    started(() =>
      app.addHook('onRequest', (request, reply, done) => {
        const url = request.raw.url ?? '';
        const query = url.indexOf('?');
        if (tracking && !probePaths.has(query === -1 ? url : url.slice(0, query))) {
          // true: kubegrace answered it (503 during the drain); fastify must not run the route.
          if (host.trackRequest(request.raw, reply.raw)) reply.hijack();
        }
        done();
      }),
    );
  }
  let ours = false;
  started(() =>
    app.addHook('preClose', (done) => {
      // Someone else's close() during the shutdown closes the listener and answers 503 while kubegrace
      // still serves the propagation wait: a refused connection is a failed request.
      if (!ours && host.lifecycle.state === 'draining') {
        host.logger.warn(
          `${options.name}: app.close() was called during kubegrace's ${String(host.lifecycle.phase)} phase; ` +
            'fastify stops accepting and answers 503 from then on. Leave app.close() to kubegrace/fastify, ' +
            'which runs it in the cleanup phase',
          { component: 'fastify' },
        );
      }
      done();
    }),
  );
  const detachServer = options.attach ? host.attach(app.server, { name: options.name }) : undefined;
  const removeParticipant = host.addParticipant({
    name: options.name,
    timeoutMs: options.closeTimeoutMs ?? host.settings.hookTimeoutMs,
    cleanup: async () => {
      ours = true;
      await app.close();
    },
  });
  inUse.add(app);
  return {
    detach() {
      tracking = false;
      removeParticipant();
      detachServer?.();
    },
  };
}

/** fastify takes no hook or route once it started; say where `kg.use()` belongs. */
function started(add: () => unknown): void {
  try {
    add();
  } catch (error) {
    // fastify's own checks say FST_ERR_INSTANCE_ALREADY_LISTENING; its plugin loader (avvio), after
    // ready() or listen(), AVV_ERR_ROOT_PLG_BOOTED.
    const code = (error as { code?: unknown }).code;
    if (code !== 'FST_ERR_INSTANCE_ALREADY_LISTENING' && code !== 'AVV_ERR_ROOT_PLG_BOOTED') throw error;
    throw new KubegraceError(
      'ERR_KUBEGRACE_INVALID_STATE',
      'kg.use(fastifyApp(app)) must run before app.listen() or app.ready(): fastify takes no hooks or ' +
        'routes once it started',
      { cause: error },
    );
  }
}
