/** The few HTTP calls the Consul, Eureka and Nacos adapters make: fetch with a signal, errors with codes. */
import { registryError } from './registry.js';

export interface HttpRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  readonly url: URL;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  readonly signal: AbortSignal;
}

export interface HttpResponse {
  readonly status: number;
  readonly text: string;
}

/**
 * Send one request. Network failures become `ERR_KUBEGRACE_REGISTRY_UNAVAILABLE`, an aborted call
 * `ERR_KUBEGRACE_REGISTRY_TIMEOUT`; any HTTP status is returned for the adapter to judge.
 */
export async function send(registry: string, what: string, request: HttpRequest): Promise<HttpResponse> {
  try {
    const response = await fetch(request.url, {
      method: request.method,
      headers: { accept: 'application/json', ...request.headers },
      ...(request.body === undefined ? {} : { body: request.body }),
      signal: request.signal,
      redirect: 'error',
    });
    return { status: response.status, text: await response.text() };
  } catch (error) {
    if (request.signal.aborted) {
      throw registryError('ERR_KUBEGRACE_REGISTRY_TIMEOUT', `${registry} ${what}: no answer in time`, error);
    }
    throw registryError('ERR_KUBEGRACE_REGISTRY_UNAVAILABLE', `${registry} ${what}: request failed`, error);
  }
}

/**
 * The error for a status the adapter did not expect. The body goes into `cause`, not the message:
 * messages stay free of payloads, and operators still see why in the logged cause.
 */
export function rejected(registry: string, what: string, response: HttpResponse): Error {
  const body = response.text.length > 500 ? `${response.text.slice(0, 500)}…` : response.text;
  return registryError(
    'ERR_KUBEGRACE_REGISTRY_REJECTED',
    `${registry} ${what}: answered HTTP ${response.status}`,
    new Error(body === '' ? `HTTP ${response.status} with an empty body` : body),
  );
}

/** Parse a JSON body, or undefined when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
