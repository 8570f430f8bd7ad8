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
  | 'ERR_KUBEGRACE_MISSING_PEER'
  /** `kubegrace/cluster`: a worker was killed at the deadline or exited non-zero during the shutdown. */
  | 'ERR_KUBEGRACE_WORKER_FAILED';

/** The one error class of kubegrace: a stable `code` and an optional `cause`. */
export class KubegraceError extends Error {
  readonly code: KubegraceErrorCode;
  /**
   * The option, environment variable or flag at fault, as named in the message (with
   * `ERR_KUBEGRACE_INVALID_OPTION`), so a program can point at it without parsing text.
   */
  readonly option?: string;

  constructor(
    code: KubegraceErrorCode,
    message: string,
    options?: { readonly cause?: unknown; readonly option?: string },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KubegraceError';
    this.code = code;
    if (options?.option !== undefined) this.option = options.option;
  }
}

/**
 * `<name> must be <expected>, received <what came>[: <why, and the fix>]`. The value is never shown
 * when it is a secret: `secret` says so, and a name that looks like one (token, password, …) is
 * treated as one anyway.
 */
export function invalidOption(
  name: string,
  expected: string,
  received: unknown,
  options: { readonly secret?: boolean; readonly cause?: unknown; readonly fix?: string } = {},
): KubegraceError {
  const shown = options.secret === true || isSecretName(name) ? describeSecret(received) : describe(received);
  const fix = options.fix === undefined ? '' : `: ${options.fix}`;
  return new KubegraceError(
    'ERR_KUBEGRACE_INVALID_OPTION',
    `${name} must be ${expected}, received ${shown}${fix}`,
    {
      option: name,
      ...(options.cause === undefined ? {} : { cause: options.cause }),
    },
  );
}

const SECRET_NAME = /token|passw(?:or)?d|secret|credential|api[-_]?key|private[-_]?key/i;

/** Whether a name says it holds a secret (`prestop.token`, `KUBEGRACE_REGISTRY_ETCD_PASSWORD`). */
export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

/**
 * What can be said of a secret without showing it: its type, and for a string its length and the
 * first character a header cannot carry (its class and position, never the character itself).
 */
export function describeSecret(value: unknown): string {
  if (value === undefined || value === null) return String(value);
  if (typeof value !== 'string') {
    const type = Array.isArray(value) ? 'array' : typeof value;
    return `${/^[aeiou]/.test(type) ? 'an' : 'a'} ${type} (not shown)`;
  }
  const chars = [...value];
  const length = `${chars.length} character${chars.length === 1 ? '' : 's'} (not shown)`;
  const bad = chars.findIndex((c) => !/^[\x21-\x7e]$/.test(c));
  if (bad === -1) return length;
  const c = chars[bad] as string;
  // A Secret written with `echo` ends in a line break: say so, it is the usual cause.
  if ((c === '\n' || c === '\r') && /^[\r\n]+$/.test(chars.slice(bad).join(''))) {
    return `${length} ending in a line break (as \`echo\` writes one: use \`printf\` or \`--from-literal\`)`;
  }
  const kind =
    c === ' '
      ? 'a space'
      : c === '\t'
        ? 'a tab'
        : c === '\n' || c === '\r'
          ? 'a line break'
          : c.charCodeAt(0) < 0x20 || c === '\x7f'
            ? 'a control character'
            : 'a non-ASCII character';
  return `${length} with ${kind} at position ${bad + 1}`;
}

// URLs are redacted whether or not they parse (a typo'd scheme, no scheme, a comma in the password,
// a port out of range): the user info is everything before the last `@` of an item, and every value
// of its query and fragment goes. When in doubt, more is cut, never less.

// A scheme: any as `name://`, and `http:/` or `http//` (https too), the typos made in the options
// that take URLs. Not a bare `name:`: in `admin:pass@host` that is the user name.
const SCHEME = /^(?:[a-z][a-z0-9+.-]*:\/\/|https?:\/|https?\/\/)/i;
// A list is split before a scheme that follows a comma or white space.
const LIST_ITEMS = /((?<![\s,])[\s,]+)(?=[a-z][a-z0-9+.-]*:\/\/|https?:\/|https?\/\/)/i;
// What may end an item for certain: a host (IPv6 in brackets), a numeric port, a path.
const PLAIN_HOST = /^(?:[\w.~%-]+|\[[\w:.%]*\])(?::\d*)?(?:\/[\s\S]*)?$/;

/** Query and fragment parameters: the names stay, the values go (`token=***`, `***`). */
function redactParams(text: string): string {
  return text.replace(/[^?#&;]+/g, (param) => {
    const eq = param.indexOf('=');
    return eq === -1 ? '***' : `${param.slice(0, eq)}=***`;
  });
}

function redactItem(item: string): string {
  const scheme = SCHEME.exec(item)?.[0] ?? '';
  const rest = item.slice(scheme.length);
  const at = rest.lastIndexOf('@');
  // An `@` after a `?` or `#` may be in a query value (`?to=ops@example.org&token=…`): all after it goes.
  if (at !== -1 && /[?#]/.test(rest.slice(0, at))) return `${scheme}***@${redactParams(rest.slice(at + 1))}`;
  const tail = at === -1 ? rest : rest.slice(at + 1);
  const query = tail.search(/[?#]/);
  const shown = query === -1 ? tail : `${tail.slice(0, query)}${redactParams(tail.slice(query))}`;
  return `${scheme}${at === -1 ? '' : '***@'}${shown}`;
}

/**
 * Whether a list item certainly ends where the next begins: no query or fragment runs on, and what
 * follows its last `@` is a plain host, port and path. Otherwise `http://admin:pass,http://x@host`
 * could be one URL whose password holds the comma, and `?token=a,http://b` a value that does.
 */
function endsItem(item: string, hasQuery: boolean): boolean {
  if (hasQuery) return false;
  const rest = item.slice(SCHEME.exec(item)?.[0].length ?? 0);
  return PLAIN_HOST.test(rest.slice(rest.lastIndexOf('@') + 1));
}

/**
 * `text` with the user info and the query and fragment values of any URL in it cut: for a value that
 * is a URL (or a list of them); free text that quotes one goes through `redactUrlsInText`.
 */
export function redactUrls(text: string): string {
  const parts = text.split(LIST_ITEMS);
  let shown = '';
  let item = parts[0] ?? '';
  let hasQuery = /[?#]/.test(item);
  let ends = item === '' || endsItem(item, hasQuery);
  for (let i = 1; i < parts.length; i += 2) {
    const separator = parts[i] ?? '';
    const next = parts[i + 1] ?? '';
    if (ends) {
      shown += `${redactItem(item)}${separator}`;
      item = next;
      hasQuery = /[?#]/.test(next);
      ends = endsItem(next, hasQuery);
    } else {
      // One item so far: only an `@` in what joins it can make it end (before, the separator sits in
      // its host). Judged on that part alone, so a long value costs linear time, not quadratic.
      item += `${separator}${next}`;
      hasQuery ||= /[?#]/.test(next);
      ends = next.includes('@') && endsItem(next, hasQuery);
    }
  }
  return shown + redactItem(item);
}

/**
 * Free text (an error message, a log line) with every URL in it redacted as `redactUrls` does: each
 * whitespace-separated word that holds a scheme (`https://`) or user info (`user:password@`) is one URL, so the words
 * around it stay readable (a URL's own spaces are percent-encoded in what Node and fetch report).
 */
export function redactUrlsInText(text: string): string {
  // A scheme, or user info (`user:password@`) without one; a bare `@` (an e-mail address, a user
  // name in a 403, `"$@"` in a command) is left alone.
  return text.replace(/[^\s]*(?:[a-z][a-z0-9+.-]*:\/\/|[^\s/@:]*:[^\s/@]*@)[^\s]*/gi, (word) => {
    // Quotes and brackets around it, and a trailing comma or semicolon, belong to the sentence.
    const head = /^["'(<[]+/.exec(word)?.[0] ?? '';
    const tail = /[,;)\]>"']+$/.exec(word.slice(head.length))?.[0] ?? '';
    return `${head}${redactUrls(word.slice(head.length, word.length - tail.length))}${tail}`;
  });
}

/** A short, payload-free rendering of a bad value for an error message. */
export function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (typeof value === 'string') {
    // Redacted before the cut, so the cut cannot leave a secret that redaction would have found.
    const text = redactUrls(value);
    const shown = text.length > 40 ? `${text.slice(0, 40)}…` : text;
    return JSON.stringify(shown);
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return String(value);
  }
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  return `an object`;
}
