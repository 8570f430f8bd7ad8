/** A structured logger: one JSON object per line. Any object with these three methods will do. */
export interface Logger {
  info(message: string, fields?: Readonly<Record<string, unknown>>): void;
  warn(message: string, fields?: Readonly<Record<string, unknown>>): void;
  error(message: string, fields?: Readonly<Record<string, unknown>>): void;
}

export function createJsonLogger(write: (line: string) => void): Logger {
  const log =
    (level: string) =>
    (message: string, fields: Readonly<Record<string, unknown>> = {}): void => {
      write(
        `${JSON.stringify({ level, time: new Date().toISOString(), logger: 'kubegrace', msg: message, ...fields })}\n`,
      );
    };
  return { info: log('info'), warn: log('warn'), error: log('error') };
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
