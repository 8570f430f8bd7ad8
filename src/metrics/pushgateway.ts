/**
 * One push of the final figures to a Prometheus Pushgateway: a plain HTTP PUT of the text
 * exposition format to `/metrics/job/<job>/namespace/<ns>/pod/<pod>`. PUT replaces the whole
 * group, so a retried push never leaves half of an older one behind.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { invalidOption, KubegraceError } from '../errors.js';

export interface PushOptions {
  /** Base URL of the Pushgateway, e.g. `http://pushgateway.monitoring:9091`; a path prefix is kept. */
  readonly url: string;
  /** Grouping labels in order, `job` first. */
  readonly grouping: ReadonlyArray<readonly [string, string]>;
  /** Text exposition format (version 0.0.4). */
  readonly body: string;
  readonly signal: AbortSignal;
}

export interface PushResult {
  readonly status: number;
  readonly durationMs: number;
}

const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
const MAX_ERROR_BODY = 200;

/** The push path: label values with a `/` (or empty ones) use the Pushgateway's base64 form. */
export function groupingPath(grouping: ReadonlyArray<readonly [string, string]>): string {
  return grouping
    .map(([label, value]) =>
      value === '' || value.includes('/')
        ? `/${label}@base64/${Buffer.from(value).toString('base64url') || '='}`
        : `/${label}/${encodeURIComponent(value)}`,
    )
    .join('');
}

export function validatePushUrl(url: unknown): URL {
  let parsed: URL | undefined;
  try {
    parsed = typeof url === 'string' ? new URL(url) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    throw invalidOption('pushgateway.url', 'an http:// or https:// URL', url);
  }
  return parsed;
}

/** Resolves on a 2xx answer; rejects with the status and the start of the body otherwise. */
export function push(options: PushOptions): Promise<PushResult> {
  const base = validatePushUrl(options.url);
  const started = performance.now();
  const path = `${base.pathname.replace(/\/+$/, '')}/metrics${groupingPath(options.grouping)}`;
  const body = Buffer.from(options.body.endsWith('\n') ? options.body : `${options.body}\n`);
  const request = base.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<PushResult>((resolve, reject) => {
    const req = request(
      {
        protocol: base.protocol,
        hostname: base.hostname.replace(/^\[|\]$/g, ''),
        port: base.port,
        method: 'PUT',
        path,
        ...(base.username
          ? { auth: `${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}` }
          : {}),
        headers: { 'content-type': CONTENT_TYPE, 'content-length': String(body.length) },
        signal: options.signal,
        // One request at the very end of the process: a pooled socket would only delay exit.
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (size < MAX_ERROR_BODY) chunks.push(chunk);
          size += chunk.length;
        });
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            resolve({ status, durationMs: Math.round(performance.now() - started) });
            return;
          }
          const text = Buffer.concat(chunks).toString('utf8').slice(0, MAX_ERROR_BODY).trim();
          reject(
            new KubegraceError(
              'ERR_KUBEGRACE_PUSH_FAILED',
              `Pushgateway answered ${status}${text ? `: ${text}` : ''}`,
            ),
          );
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
