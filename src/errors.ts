/** Stable error codes. Match on `error.code`, never on the message. */
export type KubegraceErrorCode =
  | 'ERR_KUBEGRACE_INVALID_OPTION'
  | 'ERR_KUBEGRACE_BUDGET_EXCEEDS_GRACE'
  | 'ERR_KUBEGRACE_INVALID_STATE'
  | 'ERR_KUBEGRACE_UNSUPPORTED_SERVER'
  | 'ERR_KUBEGRACE_FATAL'
  | 'ERR_KUBEGRACE_KUBERNETES_CLIENT_MISSING'
  | 'ERR_KUBEGRACE_PUSH_FAILED'
  | 'ERR_KUBEGRACE_REGISTRY_UNAVAILABLE'
  | 'ERR_KUBEGRACE_REGISTRY_REJECTED'
  | 'ERR_KUBEGRACE_REGISTRY_TIMEOUT'
  | 'ERR_KUBEGRACE_DEREGISTRATION_FAILED'
  | 'ERR_KUBEGRACE_MISSING_PEER';

/** The one error class of kubegrace: a stable `code` and an optional `cause`. */
export class KubegraceError extends Error {
  readonly code: KubegraceErrorCode;

  constructor(code: KubegraceErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KubegraceError';
    this.code = code;
  }
}

export function invalidOption(name: string, expected: string, received: unknown): KubegraceError {
  return new KubegraceError(
    'ERR_KUBEGRACE_INVALID_OPTION',
    `${name} must be ${expected}, received ${describe(received)}`,
  );
}

/** A short, payload-free rendering of a bad value for an error message. */
export function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (typeof value === 'string') {
    const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value;
    return JSON.stringify(shown);
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return String(value);
  }
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  return `an object`;
}
