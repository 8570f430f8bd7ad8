/** One HTTP request to 127.0.0.1 from a test, and what came back. */
import { request, type Agent } from 'node:http';

export interface Reply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
}

/** One HTTP request to 127.0.0.1; rejects on a network error, with the error's code. */
export function get(
  port: number,
  path: string,
  options: { readonly agent?: Agent | false; readonly method?: string; readonly timeoutMs?: number } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        agent: options.agent ?? false,
        signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}
