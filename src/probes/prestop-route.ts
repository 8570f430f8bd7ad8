/**
 * `/prestop` on the management port: a preStop hook (kubelet `httpGet`, or `kubegrace prestop` as an
 * exec hook) starts the shutdown at the moment the kubelet begins terminating, so the deadline counts
 * from the real start and a container whose PID 1 does not forward SIGTERM still drains.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { sendJson, type RouteHandler } from './handler.js';

export const PRESTOP_PATH = '/prestop';

export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

function presentedToken(req: IncomingMessage): string | undefined {
  const header = req.headers['x-kubegrace-token'];
  if (typeof header === 'string') return header;
  // RFC 9110 §11.1: the scheme is case-insensitive (`bearer` is as good as `Bearer`), then 1*SP.
  const match = /^bearer +(\S+) *$/i.exec(req.headers.authorization ?? '');
  return match?.[1];
}

/**
 * Constant time whatever the lengths: both sides are hashed to 32 bytes first, so neither an early
 * return on a length mismatch nor the comparison itself tells a caller how close a guess came.
 */
function sameToken(presented: string, expected: string): boolean {
  const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();
  return timingSafeEqual(digest(presented), digest(expected));
}

export function createPrestopRoute(options: {
  readonly token: string;
  readonly trigger: () => void;
}): RouteHandler {
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'POST') {
      sendJson(req, res, 405, { status: 'method_not_allowed' }, { allow: 'GET, POST' });
      return;
    }
    const token = presentedToken(req);
    // From loopback *to* loopback: a mesh sidecar forwards off-pod callers from a loopback address
    // (Istio: 127.0.0.6) but to the pod IP, so the source alone would let other pods in.
    const allowed =
      options.token === ''
        ? isLoopback(req.socket.remoteAddress) && isLoopback(req.socket.localAddress)
        : token !== undefined && sameToken(token, options.token);
    if (!allowed) {
      sendJson(req, res, 403, { status: 'forbidden' });
      return;
    }
    options.trigger();
    // Answer at once: the kubelet sends SIGTERM next, which joins the shutdown already running.
    sendJson(req, res, 202, { status: 'shutting_down' });
  };
}
