// Structured logs with pino. Requests are logged by method, path and status only: no
// query strings, bodies, variables or headers, so PHI and tokens cannot reach the log;
// redaction is the second line of defence for anything logged by hand.
import { Params } from 'nestjs-pino';
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

export function loggingParams(level: string): Params {
  return {
    pinoHttp: {
      level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      autoLogging: { ignore: (req) => req.url === '/health' || req.url === '/metrics' },
      customLogLevel: (_req, res, err) =>
        err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'debug',
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
    },
  };
}
