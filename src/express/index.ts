/**
 * `kubegrace/express`: the probes on the app's own port, and request tracking for the drain.
 * Only express users load this subpath, so it is the one place that imports express.
 */
import express from 'express';
import type { RequestHandler, Router } from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RouteHandler } from '../probes/handler.js';

export type { RouteHandler } from '../probes/handler.js';

/** The part of a kubegrace instance these helpers need. */
export interface KubegraceLike {
  /** `/livez`, `/readyz`, `/startupz` (from `createProbeRoutes`). */
  readonly probeRoutes: ReadonlyMap<string, RouteHandler>;
  /** Counts the request as in flight until it ends; true means it was already answered (503 while draining). */
  trackRequest(req: IncomingMessage, res: ServerResponse): boolean;
}

/**
 * GET and HEAD on `/livez`, `/readyz`, `/startupz`, with the management server's semantics (405 for
 * other methods). Paths match exactly, as they do on the management server.
 */
export function probeRouter(kg: KubegraceLike): Router {
  const router = express.Router({ caseSensitive: true, strict: true });
  for (const [path, handler] of kg.probeRoutes) {
    // `all`, so the handler itself answers 405 with `Allow` instead of the app's 404.
    router.all(path, (req, res, next) => {
      Promise.resolve()
        .then(() => handler(req, res))
        .catch(next);
    });
  }
  return router;
}

/**
 * Tracks every request as in flight for the drain. Probe paths are left alone wherever the
 * middleware is mounted: the kubelet's probes are not traffic, must not hold the drain open, and
 * `/livez` must never get the drain's 503.
 */
export function trackRequests(kg: KubegraceLike): RequestHandler {
  const probePaths = new Set(kg.probeRoutes.keys());
  return (req, res, next) => {
    if (probePaths.has(req.path)) {
      next();
      return;
    }
    let handled: boolean;
    try {
      handled = kg.trackRequest(req, res);
    } catch (error) {
      next(error);
      return;
    }
    if (!handled) next();
  };
}
