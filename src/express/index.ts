/**
 * `kubegrace/express`: the probes on the app's own port, and request tracking for the drain.
 * Only express users load this subpath, so it is the one place that imports express.
 */
import express from 'express';
import type { RequestHandler, Router } from 'express';
import { hostOf } from '../host.js';
import type { Kubegrace } from '../kubegrace.js';

export type { RouteHandler } from '../probes/handler.js';

/**
 * GET and HEAD on `/livez`, `/readyz`, `/startupz`, with the management server's semantics (405 for
 * other methods). Paths match exactly, as they do on the management server.
 */
export function probeRouter(kg: Kubegrace): Router {
  const router = express.Router({ caseSensitive: true, strict: true });
  for (const [path, handler] of hostOf(kg, 'probeRouter(kg)').probeRoutes) {
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
export function trackRequests(kg: Kubegrace): RequestHandler {
  const probePaths = new Set(hostOf(kg, 'trackRequests(kg)').probeRoutes.keys());
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
