/**
 * `kubegrace prestop`: an exec preStop hook for images without a shell. It asks the service's
 * management port (on loopback) to start the shutdown, so the deadline counts from the moment the
 * kubelet began terminating. Port and token come from the same settings resolver as the library
 * (`KUBEGRACE_PROBES_PORT`, `KUBEGRACE_PRESTOP_TOKEN`), flags override them.
 */
import { request } from 'node:http';
import { isHostAddress, resolveSettings, settingSpecs } from '../options.js';
import { PRESTOP_PATH } from '../probes/prestop-route.js';
import type { CommandIo } from './demo/command.js';
import { durationFlag, inCommand, integerFlag, parseFlags, UsageError } from './flags.js';

export const prestopHelp = `Usage: kubegrace prestop [flags]

Start the service's shutdown from a Kubernetes preStop exec hook:
  lifecycle: { preStop: { exec: { command: ["kubegrace", "prestop"] } } }
Calls GET http://127.0.0.1:<port>${PRESTOP_PATH}; exits 0 once the service accepted (202).

Flags:
  --port N         management port (default: KUBEGRACE_PROBES_PORT, else 9000)
  --host H         address of the management server (default 127.0.0.1)
  --timeout D      give up after D (default 5s; e.g. 500ms, 2s)
  -h, --help       this text

The token, if the service requires one, is read from KUBEGRACE_PRESTOP_TOKEN; no other
KUBEGRACE_* variable than these two is read.
Exit codes: 0 accepted, 1 refused, unreachable or no answer in time, 2 bad usage.`;

export async function prestopCommand(
  args: readonly string[],
  io: CommandIo,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<number> {
  const values = parseFlags('prestop', args, {
    port: { type: 'string' },
    host: { type: 'string' },
    timeout: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.out(prestopHelp);
    return 0;
  }
  let settings;
  try {
    settings = resolveSettings({}, ownVariables(env));
  } catch (error) {
    throw new UsageError(`kubegrace prestop: ${(error as Error).message}`);
  }
  const { port, host, timeoutMs } = inCommand('prestop', () => {
    const port =
      values.port === undefined ? settings.probes.port : integerFlag('port', values.port, 1, 65535);
    const host = values.host ?? '127.0.0.1';
    if (!isHostAddress(host)) {
      throw new UsageError(`--host must be an IP address or a host name, received ${JSON.stringify(host)}`);
    }
    const timeoutMs =
      values.timeout === undefined ? 5000 : durationFlag('timeout', values.timeout, 600_000, 1);
    return { port, host, timeoutMs };
  });
  if (port === 0)
    throw new UsageError('kubegrace prestop: KUBEGRACE_PROBES_PORT is 0 (a random port): pass --port');
  const token = settings.prestop.token;

  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const outcome = await new Promise<{ status: number } | { error: string; connected: boolean }>((resolve) => {
    let connected = false;
    const req = request(
      {
        host,
        port,
        path: PRESTOP_PATH,
        method: 'GET',
        headers: token === '' ? {} : { 'x-kubegrace-token': token },
        signal: AbortSignal.timeout(timeoutMs),
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
      },
    );
    req.on('socket', (socket) => socket.once('connect', () => (connected = true)));
    req.on('error', (error: NodeJS.ErrnoException) =>
      resolve({ error: error.code ?? error.message, connected }),
    );
    req.end();
  });
  if ('error' in outcome) {
    const timedOut = outcome.error === 'ABORT_ERR';
    io.err(
      outcome.connected && timedOut
        ? `kubegrace prestop: ${where}${PRESTOP_PATH} did not answer within ${timeoutMs} ms ` +
            `(the request reached it: the shutdown may have started)`
        : `kubegrace prestop: cannot reach ${where}${PRESTOP_PATH}: ` +
            (timedOut ? `no connection within ${timeoutMs} ms` : outcome.error),
    );
    return 1;
  }
  if (outcome.status !== 202) {
    // A 403 comes from a missing or a wrong token; the token itself is never printed.
    const hint =
      outcome.status !== 403
        ? ''
        : token === ''
          ? ' (set KUBEGRACE_PRESTOP_TOKEN to the service’s token)'
          : ': the token it sent (KUBEGRACE_PRESTOP_TOKEN, not shown) was refused; it must match the service’s prestop.token';
    io.err(`kubegrace prestop: ${where}${PRESTOP_PATH} answered ${outcome.status}${hint}`);
    return 1;
  }
  io.out(`kubegrace prestop: shutdown started (${where})`);
  return 0;
}

/**
 * The variables this command reads, and only those: the service may run with another variable the
 * resolver refuses (an option set in code wins over it), and a hook that fails on it would cost the
 * pod its graceful shutdown.
 */
function ownVariables(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const own: Record<string, string> = {};
  for (const spec of settingSpecs) {
    if (spec.path !== 'probes.port' && spec.path !== 'prestop.token') continue;
    const value = spec.env === undefined ? undefined : env[spec.env];
    if (spec.env !== undefined && value !== undefined) own[spec.env] = value;
  }
  return own;
}
