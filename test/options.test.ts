import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  describe as shown,
  describeSecret,
  invalidOption,
  KubegraceError,
  redactUrlsInText,
} from '../src/errors.js';
import {
  checkBudget,
  defaults,
  didYouMean,
  isHostAddress,
  resolveSettings,
  settingName,
  settingSpecs,
  shutdownBudget,
  type KubegraceSettings,
} from '../src/options.js';

const invalidOptions: ReadonlyArray<readonly [string, unknown, RegExp]> = [
  // At least 1, whatever is wrong: Kubernetes' 0 (kill at once) leaves nothing to shut down in.
  ['gracePeriodSeconds', -5, /^gracePeriodSeconds must be a positive integer \(seconds\), received -5$/],
  ['gracePeriodSeconds', 0, /^gracePeriodSeconds must be a positive integer \(seconds\), received 0$/],
  ['gracePeriodSeconds', 1.5, /^gracePeriodSeconds must be a positive integer \(seconds\), received 1.5$/],
  ['gracePeriodSeconds', '30', /^gracePeriodSeconds must be a positive integer \(seconds\), received "30"$/],
  // × 1000 it must still fit a timer: a longer one fires after 1 ms and the deadline timer spins.
  [
    'gracePeriodSeconds',
    2_147_484,
    /^gracePeriodSeconds must be at most 2147483 \(seconds; about 24\.8 days, the longest timer Node arms\), received 2147484$/,
  ],
  [
    'preStopSleepSeconds',
    1.5,
    /^preStopSleepSeconds must be a non-negative integer \(seconds\), received 1.5$/,
  ],
  ['safetyMarginMs', -5, /^safetyMarginMs must be an integer of at least 750 \(ms\), received -5$/],
  ['safetyMarginMs', 100, /^safetyMarginMs must be an integer of at least 750 \(ms\), received 100$/],
  ['budgetCheck', 'loud', /^budgetCheck must be one of 'error', 'warn', 'off', received "loud"$/],
  ['unreadyTimeoutMs', Number.NaN, /^unreadyTimeoutMs must be a non-negative integer \(ms\), received NaN$/],
  [
    'propagation.strategy',
    'smart',
    /^propagation.strategy must be one of 'adaptive', 'fixed', received "smart"$/,
  ],
  ['propagation.delayMs', null, /^propagation.delayMs must be a non-negative integer \(ms\), received null$/],
  [
    'propagation.quietPeriodMs',
    -1,
    /^propagation.quietPeriodMs must be a non-negative integer \(ms\), received -1$/,
  ],
  [
    'propagation.minMs',
    Infinity,
    /^propagation.minMs must be a non-negative integer \(ms\), received Infinity$/,
  ],
  ['propagation.maxMs', '10s', /^propagation.maxMs must be a non-negative integer \(ms\), received "10s"$/],
  [
    'propagation.proxyAllowanceMs',
    -1,
    /^propagation.proxyAllowanceMs must be a non-negative integer \(ms\), received -1$/,
  ],
  [
    'propagation.rateWindowMs',
    '1m',
    /^propagation.rateWindowMs must be a non-negative integer \(ms\), received "1m"$/,
  ],
  ['drain.timeoutMs', -1, /^drain.timeoutMs must be a non-negative integer \(ms\), received -1$/],
  [
    'drain.timeoutMs',
    2 ** 31,
    /^drain.timeoutMs must be at most 2147483647 \(ms; about 24\.8 days, the longest timer Node arms\), received 2147483648$/,
  ],
  ['drain.pacingWindowMs', 2.5, /^drain.pacingWindowMs must be a non-negative integer \(ms\), received 2.5$/],
  ['drain.rejectDuringDrain', 'yes', /^drain.rejectDuringDrain must be true or false, received "yes"$/],
  [
    'drain.retryAfterSeconds',
    -2,
    /^drain.retryAfterSeconds must be a non-negative integer \(seconds\), received -2$/,
  ],
  ['cleanupTimeoutMs', 1.1, /^cleanupTimeoutMs must be a non-negative integer \(ms\), received 1.1$/],
  [
    'hookTimeoutMs',
    [],
    /^hookTimeoutMs must be a non-negative integer \(ms\), received an array of length 0$/,
  ],
  ['fatalTimeoutMs', {}, /^fatalTimeoutMs must be a non-negative integer \(ms\), received an object$/],
  ['managementServer', 1, /^managementServer must be true or false, received 1$/],
  ['probes.port', 70000, /^probes.port must be an integer port from 0 to 65535, received 70000$/],
  ['probes.host', 127, /^probes.host must be a string, received 127$/],
  // A last label that is a number makes the resolver read a legacy IPv4 form: `1.5` is 1.0.0.5.
  [
    'probes.host',
    '1.5',
    /^probes.host must be '' \(every interface\), an IP address or a host name, received "1.5"$/,
  ],
  ['probes.host', '0x7f000001', /^probes.host must be .*, received "0x7f000001"$/],
  ['probes.host', 'pod.10', /^probes.host must be .*, received "pod.10"$/],
  ['probes.checkTimeoutMs', -1, /^probes.checkTimeoutMs must be a positive integer \(ms\), received -1$/],
  ['probes.checkTimeoutMs', 0, /^probes.checkTimeoutMs must be a positive integer \(ms\), received 0$/],
  ['probes.details', 'no', /^probes.details must be true or false, received "no"$/],
  [
    'probes.readinessUntil',
    'never',
    /^probes.readinessUntil must be one of 'shutdown', 'drain', received "never"$/,
  ],
  ['probes.eventLoopLagMs', -1, /^probes.eventLoopLagMs must be a non-negative integer \(ms\), received -1$/],
  ['signals', [], /^signals must be a non-empty list of SIGTERM, SIGINT, .*, received an array of length 0$/],
  // The entry at fault is named, not the array: `received an array of length 2` said nothing.
  ['signals', ['SIGKILL'], /^signals\[0\] must be one of SIGTERM, SIGINT, .*, received "SIGKILL"$/],
  ['signals', ['SIGTERM', 'SIGFOO'], /^signals\[1\] must be one of SIGTERM, SIGINT, .*, received "SIGFOO"$/],
  ['signals', ['SIGTERM', 15], /^signals\[1\] must be one of SIGTERM, SIGINT, .*, received 15$/],
  [
    'signals',
    ['SIGTERM', 'SIGINT', 'SIGTERM'],
    /^signals\[2\] must be a signal not listed before \(listed twice, one SIGTERM would count as a second signal and force the exit\), received "SIGTERM"$/,
  ],
  ['signals', 'SIGTERM', /^signals must be a non-empty list of .*, received "SIGTERM"$/],
  ['secondSignal', 'panic', /^secondSignal must be one of 'force', 'ignore', received "panic"$/],
  ['catchErrors', 'true', /^catchErrors must be true or false, received "true"$/],
  // A secret is described, never shown.
  ['prestop.token', 42, /^prestop.token must be a string, received a number \(not shown\)$/],
  // The token where its object belongs: not echoed either.
  ['prestop', 'Sup3rSecretTokenValue', /^prestop must be an object, received 21 characters \(not shown\)$/],
  [
    'prestop.token',
    'Sup3rSecretTokenValue x',
    /^prestop.token must be printable ASCII without spaces \('' = loopback callers only\), received 23 characters \(not shown\) with a space at position 22$/,
  ],
  [
    'prestop.token',
    'Sup3rSecret\u00e9',
    /^prestop.token must be .*, received 12 characters \(not shown\) with a non-ASCII character at position 12$/,
  ],
  ['exitCodes.clean', 256, /^exitCodes.clean must be an integer exit code from 0 to 255, received 256$/],
  [
    'exitCodes.incomplete',
    -1,
    /^exitCodes.incomplete must be an integer exit code from 0 to 255, received -1$/,
  ],
  ['exitCodes.fatal', 'x', /^exitCodes.fatal must be an integer exit code from 0 to 255, received "x"$/],
];

function withPath(path: string, value: unknown): KubegraceSettings {
  const keys = path.split('.');
  const root: Record<string, unknown> = {};
  let cur = root;
  for (const key of keys.slice(0, -1)) cur = cur[key] = {};
  cur[keys.at(-1) as string] = value;
  return root;
}

function throwsInvalid(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof KubegraceError, 'a KubegraceError');
    assert.equal(error.code, 'ERR_KUBEGRACE_INVALID_OPTION');
    assert.match(error.message, message);
    // The name is data too, the same the message starts with.
    assert.equal(error.option, error.message.split(' ')[0]);
    assert.doesNotMatch(error.message, /Sup3rSecret/, 'a secret is never quoted');
    return true;
  });
}

describe('options', () => {
  it('has a spec, a default and an environment variable for every setting', () => {
    assert.ok(settingSpecs.length >= 25);
    const envs = new Set(settingSpecs.map((s) => s.env));
    assert.equal(envs.size, settingSpecs.length, 'env names are unique');
    for (const s of settingSpecs) assert.match(s.env, /^KUBEGRACE_[A-Z0-9_]+$/);
    assert.equal(defaults.gracePeriodSeconds, 30);
    assert.equal(defaults.propagation.strategy, 'adaptive');
    assert.equal(defaults.probes.port, 9000);
    assert.ok(Object.isFrozen(defaults) && Object.isFrozen(defaults.propagation));
  });

  it('resolves to the defaults when nothing is given', () => {
    assert.deepEqual(resolveSettings({}, {}), defaults);
  });

  for (const [path, value, message] of invalidOptions) {
    it(`rejects ${path} = ${String(JSON.stringify(value) ?? value)}`, () => {
      throwsInvalid(() => resolveSettings(withPath(path, value), {}), message);
    });
  }

  it('covers every setting in the invalid-option table', () => {
    const covered = new Set(invalidOptions.map(([path]) => path));
    for (const s of settingSpecs) assert.ok(covered.has(s.path), `no invalid-value test for ${s.path}`);
  });

  it('rejects unknown options by name, also nested, with the nearest known one', () => {
    throwsInvalid(
      () => resolveSettings({ graceSeconds: 3 } as never, {}),
      /^graceSeconds is not a kubegrace option$/,
    );
    throwsInvalid(
      () => resolveSettings({ drain: { timeoutMS: 3 } } as never, {}),
      /^drain.timeoutMS is not a kubegrace option; did you mean drain.timeoutMs\?$/,
    );
    throwsInvalid(
      () => resolveSettings({ gracePeriodSecond: 3 } as never, {}),
      /^gracePeriodSecond is not a kubegrace option; did you mean gracePeriodSeconds\?$/,
    );
    throwsInvalid(
      () => resolveSettings({ probe: { port: 1 } } as never, {}),
      /^probe is not a kubegrace option; did you mean probes\?$/,
    );
    throwsInvalid(
      () => resolveSettings({ loger: false } as never, {}, ['logger']),
      /^loger is not a kubegrace option; did you mean logger\?$/,
    );
    throwsInvalid(
      () => resolveSettings({ drain: { timeout: 3 } } as never, {}),
      /^drain.timeout is not a kubegrace option; did you mean drain.timeoutMs\?$/,
    );
    throwsInvalid(() => resolveSettings({ drain: 5 } as never, {}), /^drain must be an object, received 5$/);
  });

  it('refuses a renamed option by its new name, and a name Object.prototype has as unknown', () => {
    throwsInvalid(
      () => resolveSettings({ probes: { enabled: false } } as never, {}),
      /^probes.enabled was renamed to managementServer \(CHANGELOG, Unreleased\)$/,
    );
    for (const name of ['constructor', 'toString', 'hasOwnProperty', 'valueOf', '__proto__']) {
      // JSON.parse makes `__proto__` an own key, as a parsed config file would.
      const options = JSON.parse(`{"${name}": {"x": 1}}`) as KubegraceSettings;
      throwsInvalid(() => resolveSettings(options, {}), new RegExp(`^${name} is not a kubegrace option$`));
      throwsInvalid(
        () => resolveSettings({ drain: JSON.parse(`{"${name}": 1}`) as never }, {}),
        new RegExp(`^drain.${name} is not a kubegrace option$`),
      );
    }
  });

  it('describes values without payloads or secrets', () => {
    assert.equal(
      shown('http://admin:p@ss@consul:8500/v1'),
      '"http://***@consul:8500/v1"',
      'a password holding @',
    );
    assert.equal(shown('http://a:x@e1:2379,https://b:y@e2:2379'), '"http://***@e1:2379,https://***@e2:2379"');
    assert.equal(shown('http://admin:pa/ss@consul'), '"http://***@consul"', 'a password holding /');
    assert.equal(shown('https://consul:8500'), '"https://consul:8500"', 'no user info, nothing cut');
    assert.equal(shown('http://e1:2379, https://e2:2379'), '"http://e1:2379, https://e2:2379"');
    assert.equal(shown('x'.repeat(41)), `"${'x'.repeat(40)}…"`);
    assert.equal(describeSecret('abc'), '3 characters (not shown)');
    assert.equal(describeSecret('a\tb'), '3 characters (not shown) with a tab at position 2');
    assert.equal(
      describeSecret('ab\u0001'),
      '3 characters (not shown) with a control character at position 3',
    );
    assert.equal(describeSecret('é'), '1 character (not shown) with a non-ASCII character at position 1');
    assert.equal(describeSecret({ token: 'x' }), 'an object (not shown)');
    assert.equal(describeSecret(['x']), 'an array (not shown)');
    assert.equal(describeSecret(undefined), 'undefined');
    // A name that says secret is enough, whoever calls.
    const error = invalidOption('nacos.accessToken', 'a non-empty string', 'Sup3rSecret ');
    assert.equal(
      error.message,
      'nacos.accessToken must be a non-empty string, received 12 characters (not shown) with a space at position 12',
    );
    assert.equal(error.option, 'nacos.accessToken');
  });

  it('never shows the user info of a URL, nor the values of its query or fragment, even when it does not parse', () => {
    const cases: ReadonlyArray<readonly [value: string, display: string, why: string]> = [
      // Reported leaks.
      ['http//admin:s3cr3tpw@push', '"http//***@push"', 'a typo in the scheme'],
      ['admin:s3cr3tpw@push:9091', '"***@push:9091"', 'no scheme'],
      ['http://admin:s3cr,3tpw@push:99999', '"http://***@push:99999"', 'a comma in the password'],
      ['https://push:99999/?token=s3cr3tpw', '"https://push:99999/?token=***"', 'a token in the query'],
      // The user info is everything before the last @, whatever it holds.
      ['http:/admin:s3cr3tpw@push', '"http:/***@push"', 'one slash'],
      ['http:admin:s3cr3tpw@push', '"***@push"', 'no slash: `http:` may be the user name'],
      ['http://admin:s3cr,etpw://x@push', '"http://***@push"', 'a comma and a scheme in the password'],
      ['http://admin:s3cr@tpw,x@push', '"http://***@push"', '@ and a comma'],
      // After a `?` or `#` an `@` may be in a value: what follows it goes too.
      ['http://admin:s3cr#3tpw@push:9091', '"http://***@***"', '# in the password'],
      ['http://admin:s3cr?3tpw@push:9091', '"http://***@***"', '? in the password'],
      ['http://admin:s3cr/3tpw@push', '"http://***@push"', '/ in the password'],
      ['http://admin:s3cr%40%2C3tpw@push', '"http://***@push"', 'percent-encoded'],
      ['http://admin:s3cr3tpw@[::1]:99999', '"http://***@[::1]:99999"', 'an IPv6 host'],
      ['http://admin@push:99999', '"http://***@push:99999"', 'a user without a password'],
      ['http://admin:s3cr3tpw http://x@push', '"http://***@push"', 'a space, then what looks like a URL'],
      ['HTTPS://ADMIN:S3CR3TPW@PUSH', '"HTTPS://***@PUSH"', 'upper case'],
      // Query and fragment: every value goes, the names stay.
      [
        'https://push/?token=s3cr%263tpw&job=x',
        '"https://push/?token=***&job=***"',
        'percent-encoded in a query',
      ],
      ['https://push/?s3cr3tpw', '"https://push/?***"', 'a query without a name'],
      ['https://app/#access_token=s3cr3tpw&x', '"https://app/#access_token=***&***"', 'a fragment'],
      [
        'https://push/?to=ops@s3cr3tpw.example&token=s3cr3tpw',
        '"https://***@***&token=***"',
        '@ in the query',
      ],
      // A list keeps its items where each starts at a scheme after a comma or a space.
      ['http://e1:2379,http://admin:s3cr3tpw@e2:2379', '"http://e1:2379,http://***@e2:2379"', 'a list'],
      ['http//admin:s3cr3tpw@e1,http:/admin:s3cr3tpw@e2', '"http//***@e1,http:/***@e2"', 'typos in a list'],
      [
        'http://[::1]:2379 https://admin:s3cr3tpw@[::2]:2379',
        '"http://[::1]:2379 https://***@[::2]:2379"',
        'IPv6 list',
      ],
      // ... but not after something that cannot end a URL, nor after a query that may go on.
      ['http://admin:s3cr,http://x@push', '"http://***@push"', '`admin:s3cr` is no host and port'],
      ['http://push/?token=s3cr3tpw,http://e2', '"http://push/?token=***"', 'the value may hold the comma'],
      ['admin:s3cr3tpw,http://x@push', '"***@push"', 'no scheme before the comma'],
    ];
    for (const [value, display, why] of cases) {
      assert.equal(shown(value), display, why);
      assert.doesNotMatch(shown(value), /s3cr|tpw|admin/i, why);
    }
  });

  it('redacts URLs in free text, and leaves e-mail addresses and other words with an @ alone', () => {
    const cases: [string, string][] = [
      [
        'request to https://admin:S3CRET@10.0.0.1:6443/api failed',
        'request to https://***@10.0.0.1:6443/api failed',
      ],
      [
        'at https://api.example.com/?access_token=S3CRET, retrying',
        'at https://api.example.com/?access_token=***, retrying',
      ],
      ['(admin:S3CRET@10.0.0.1:6443)', '(***@10.0.0.1:6443)'],
      ['User "alice@example.com" cannot list pods', 'User "alice@example.com" cannot list pods'],
      [`exec node "$@"`, `exec node "$@"`],
      ['mail ops@example.org or see /var/run/@ns/x', 'mail ops@example.org or see /var/run/@ns/x'],
    ];
    for (const [text, expected] of cases) {
      assert.equal(redactUrlsInText(text), expected, text);
      assert.doesNotMatch(redactUrlsInText(text), /S3CRET/);
    }
  });

  it('cuts a long value after redacting it, so the cut never uncovers a secret', () => {
    const secret = 'Zq'.repeat(30);
    assert.equal(shown(`http://admin:${secret}@push:9091/metrics`), '"http://***@push:9091/metrics"');
    assert.equal(shown(`admin:${secret}@push`), '"***@push"', 'the @ past the first 40 characters');
    // Cut inside the marker: what is left of it is still a marker.
    assert.equal(
      shown(`https://push.example.org:99999/?token=${secret}`),
      '"https://push.example.org:99999/?token=**…"',
    );
    assert.equal(
      shown(`https://push.example.org:99999/metrics/job/x?token=${secret}`),
      '"https://push.example.org:99999/metrics/j…"',
    );
    // Linear time: a list split and joined again was quadratic (seconds for 200 kB of `http://a:b,`).
    const started = performance.now();
    for (const long of [' '.repeat(200_000), 'http://a:b,'.repeat(20_000), 'http://a?b,'.repeat(20_000)]) {
      assert.ok(shown(long).length <= 43);
    }
    assert.ok(performance.now() - started < 2000, `${Math.round(performance.now() - started)} ms`);
    for (const value of [`${'x'.repeat(38)}${secret}@push`, `http://push/?${'x'.repeat(30)}=${secret}`]) {
      assert.doesNotMatch(shown(value), /Zq/, value);
    }
  });

  it('did you mean: same letters in another case first, then a few edits, else nothing', () => {
    const known = ['drain.timeoutMs', 'gracePeriodSeconds', 'KUBEGRACE_GRACE_PERIOD_SECONDS'];
    assert.equal(didYouMean('DRAIN.TIMEOUTMS', known), 'drain.timeoutMs');
    assert.equal(didYouMean('drain.timoutMs', known), 'drain.timeoutMs');
    assert.equal(didYouMean('drain.tiemoutMs', known), 'drain.timeoutMs', 'a swap is one edit');
    assert.equal(didYouMean('KUBEGRACE_GRACE_PERIOD_SECOND', known), 'KUBEGRACE_GRACE_PERIOD_SECONDS');
    assert.equal(didYouMean('graceSeconds', known), undefined);
    assert.equal(didYouMean('x', known), undefined);
  });

  it('names a setting by where its value came from', () => {
    assert.equal(
      settingName('probes.port', { probes: { port: 1 } }, { KUBEGRACE_PROBES_PORT: '2' }),
      'probes.port',
    );
    assert.equal(settingName('probes.port', {}, { KUBEGRACE_PROBES_PORT: '2' }), 'KUBEGRACE_PROBES_PORT');
    assert.equal(
      settingName('probes.port', {}, { KUBEGRACE_PROBES_PORT: '' }),
      'probes.port (or KUBEGRACE_PROBES_PORT)',
    );
  });

  it('takes IP addresses and host names, not names a resolver reads as numbers', () => {
    for (const host of [
      '127.0.0.1',
      '::1',
      'fe80::1',
      'localhost',
      'pod-0.web.shop.svc',
      'a1.example.',
      '1a',
    ]) {
      assert.ok(isHostAddress(host), host);
    }
    for (const host of [
      '1.5',
      '10.1',
      '127.1',
      '0x7f.1',
      '0x7f000001',
      '2130706433',
      'web.0x',
      '1.2.3.4.5',
      '',
    ]) {
      assert.equal(isHostAddress(host), false, host);
    }
  });

  it('rejects minMs above maxMs naming both', () => {
    throwsInvalid(
      () => resolveSettings({ propagation: { minMs: 5000, maxMs: 1000 } }, {}),
      /^propagation.minMs must be at most propagation.maxMs \(1000\), received 5000$/,
    );
  });

  it('reads KUBEGRACE_* variables, with explicit options taking precedence', () => {
    const env = {
      KUBEGRACE_GRACE_PERIOD_SECONDS: '45',
      KUBEGRACE_PROPAGATION_QUIET_PERIOD_MS: '250',
      KUBEGRACE_PROPAGATION_STRATEGY: 'fixed',
      KUBEGRACE_PROBES_DETAILS: 'true',
      KUBEGRACE_SIGNALS: 'SIGTERM, SIGHUP',
      KUBEGRACE_DRAIN_TIMEOUT_MS: '',
    };
    const s = resolveSettings({ propagation: { strategy: 'adaptive' } }, env);
    assert.equal(s.gracePeriodSeconds, 45);
    assert.equal(s.propagation.quietPeriodMs, 250);
    assert.equal(s.propagation.strategy, 'adaptive', 'the option beats the variable');
    assert.equal(s.probes.details, true);
    assert.deepEqual(s.signals, ['SIGTERM', 'SIGHUP']);
    assert.equal(s.drain.timeoutMs, defaults.drain.timeoutMs, 'an empty variable is unset');
  });

  it('names the environment variable and the raw text when a variable is invalid', () => {
    for (const raw of ['thirty', '-5', '0', '1.5']) {
      throwsInvalid(
        () => resolveSettings({}, { KUBEGRACE_GRACE_PERIOD_SECONDS: raw }),
        new RegExp(
          `^KUBEGRACE_GRACE_PERIOD_SECONDS must be a positive integer \\(seconds\\), received "${raw}"$`,
        ),
      );
    }
    throwsInvalid(
      () => resolveSettings({}, { KUBEGRACE_DRAIN_TIMEOUT_MS: '-3' }),
      /^KUBEGRACE_DRAIN_TIMEOUT_MS must be a non-negative integer \(ms\), received "-3"$/,
    );
    throwsInvalid(
      () => resolveSettings({}, { KUBEGRACE_PROBES_DETAILS: 'maybe' }),
      /^KUBEGRACE_PROBES_DETAILS must be true or false, received "maybe"$/,
    );
  });

  it('refuses from KUBEGRACE_PRESTOP_TOKEN the whitespace prestop.token refuses, never showing it', () => {
    const expected = "printable ASCII without spaces \\('' = loopback callers only\\)";
    for (const [raw, why] of [
      ['   ', '3 characters \\(not shown\\) with a space at position 1'],
      [' Sup3rSecret ', '13 characters \\(not shown\\) with a space at position 1'],
      [
        'Sup3rSecret\n',
        '12 characters \\(not shown\\) ending in a line break \\(as `echo` writes one: use `printf` or `--from-literal`\\)',
      ],
      ['Sup3r\nSecret', '12 characters \\(not shown\\) with a line break at position 6'],
    ] as const) {
      throwsInvalid(
        () => resolveSettings({}, { KUBEGRACE_PRESTOP_TOKEN: raw }),
        new RegExp(`^KUBEGRACE_PRESTOP_TOKEN must be ${expected}, received ${why}$`),
      );
      throwsInvalid(
        () => resolveSettings({ prestop: { token: raw } }, {}),
        new RegExp(`^prestop.token must be ${expected}, received ${why}$`),
      );
    }
    assert.equal(resolveSettings({}, { KUBEGRACE_PRESTOP_TOKEN: '' }).prestop.token, '', 'empty is unset');
  });

  it('adds up the budget term by term', () => {
    const { terms, totalMs, graceMs } = shutdownBudget(defaults);
    assert.deepEqual(
      terms.map((t) => t.option),
      [
        'preStopSleepSeconds',
        'unreadyTimeoutMs',
        'propagation.maxMs',
        'drain.timeoutMs',
        'cleanupTimeoutMs',
        'safetyMarginMs',
      ],
    );
    assert.equal(totalMs, 0 + 2000 + 10000 + 10000 + 5000 + 1000);
    assert.equal(graceMs, 30000);
    assert.equal(checkBudget(defaults), undefined, 'the defaults fit the default grace period');
  });

  it('fails fast when the phases do not fit the grace period, naming every term and the fix', () => {
    const settings = resolveSettings({ gracePeriodSeconds: 20, preStopSleepSeconds: 5 }, {});
    assert.throws(
      () => checkBudget(settings),
      (error: unknown) => {
        assert.ok(error instanceof KubegraceError);
        assert.equal(error.code, 'ERR_KUBEGRACE_BUDGET_EXCEEDS_GRACE');
        for (const part of [
          'preStop sleep 5000 ms (preStopSleepSeconds)',
          'unready 2000 ms (unreadyTimeoutMs)',
          'propagation max 10000 ms (propagation.maxMs)',
          'drain 10000 ms (drain.timeoutMs)',
          'cleanup 5000 ms (cleanupTimeoutMs)',
          'safety margin 1000 ms (safetyMarginMs)',
          '= 33000 ms',
          'grace period 20000 ms',
          'at least 33 s',
        ]) {
          assert.ok(error.message.includes(part), `message lacks "${part}": ${error.message}`);
        }
        return true;
      },
    );
    const fixed = resolveSettings(
      { gracePeriodSeconds: 20, propagation: { strategy: 'fixed', delayMs: 1000 } },
      {},
    );
    assert.equal(checkBudget(fixed), undefined, 'the fixed strategy counts its delay, not maxMs');
    const warn = resolveSettings({ gracePeriodSeconds: 10, budgetCheck: 'warn' }, {});
    assert.match(checkBudget(warn) ?? '', /exceeds the grace period/);
    assert.equal(checkBudget(resolveSettings({ gracePeriodSeconds: 1, budgetCheck: 'off' }, {})), undefined);
  });
});
