// Tells "the database cannot be reached right now" (restarting, down, unreachable) from every
// other failure, so that a request caught by an outage says so instead of a bare INTERNAL.
import { InternalError } from '../common/errors';

/** PostgreSQL's codes for a server shutting down, starting up or dropping the connection. */
const PG_UNAVAILABLE = new Set(['57P01', '57P02', '57P03', '08000', '08001', '08003', '08006']);
const NET_UNAVAILABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  // A Unix socket whose server is not there (yet).
  'ENOENT',
]);
/** node-postgres reports a lost or refused connection by message alone. */
const PG_CLIENT_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable',
];

export class DatabaseUnavailableError extends InternalError {
  constructor() {
    super(
      'The database is unavailable (restarting or unreachable); the request did not complete. ' +
        'Try again in a few seconds.',
    );
  }
}

export function isDatabaseUnavailable(e: unknown): boolean {
  for (let cause = e, depth = 0; cause && depth < 4; depth++) {
    const { code, message, driverError } = cause as {
      code?: unknown;
      message?: unknown;
      driverError?: unknown;
    };
    if (typeof code === 'string' && (PG_UNAVAILABLE.has(code) || NET_UNAVAILABLE.has(code))) {
      return true;
    }
    if (typeof message === 'string' && PG_CLIENT_MESSAGES.some((m) => message.startsWith(m))) {
      return true;
    }
    // TypeORM wraps the driver's error; pg-pool wraps a connect timeout's cause.
    cause = driverError ?? (cause as { cause?: unknown }).cause;
  }
  return false;
}
