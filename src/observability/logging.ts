// Structured logs with pino. Requests are logged by method, path and status only: no
// query strings, bodies, variables or headers, so PHI and tokens cannot reach the log;
// redaction is the second line of defence for anything logged by hand.
import { Params } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import type { Options } from 'pino-http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe } from '../common/graphql-errors';

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-custodia-manifest"]',
  '*.token',
  '*.password',
  '*.resource',
  '*.displayName',
  '*.kek',
  '*.key',
];

/** `destination`: where the lines go, stdout unless given (tests read them from one). */
export function loggingParams(level: string, destination?: DestinationStream): Params {
  const options: Options = {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    autoLogging: { ignore: (req) => req.url === '/health' || req.url === '/metrics' },
    // A 4xx is the caller's mistake, answered as such: worth a line, not an alert.
    customLogLevel: (_req, res, err) =>
      err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'info' : 'debug',
    serializers: {
      req: (req: IncomingMessage & { id?: unknown }) => ({
        id: req.id,
        method: req.method,
        path: req.url?.split('?')[0],
      }),
      res: (res: ServerResponse) => ({ statusCode: res.statusCode }),
      // An error's message may quote input (a database error echoing a value, say): log
      // its kind and where it happened, never its message.
      err: describe,
    },
  };
  return { pinoHttp: destination ? [options, destination] : options };
}
