// Maps every error leaving GraphQL to the contract's codes, in one place. Our own errors
// keep their message; malformed requests become BAD_USER_INPUT, their messages stripped of
// any value they quoted (client-error-messages); anything unexpected becomes
// INTERNAL with a reference id, and its details go to the log (without the message, which
// might quote data) rather than to the client.
import { unwrapResolverError } from '@apollo/server/errors';
import { HttpException } from '@nestjs/common';
import { GraphQLError, GraphQLFormattedError } from 'graphql';
import { randomUUID } from 'node:crypto';
import { withoutValues } from './client-error-messages';
import { CustodiaError, ErrorCode } from './errors';

const CLIENT_ERROR_CODES = new Set([
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_USER_INPUT',
  'BAD_REQUEST',
  'OPERATION_RESOLUTION_FAILURE',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'PERSISTED_QUERY_NOT_FOUND',
]);

const HTTP_STATUS_CODES: Record<number, ErrorCode> = {
  400: 'BAD_USER_INPUT',
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'CONFLICT',
  413: 'BAD_USER_INPUT',
};

/** The contract's code for an HTTP 4xx: any the table does not name is a bad request. */
export function codeForHttpStatus(status: number): ErrorCode {
  return HTTP_STATUS_CODES[status] ?? 'BAD_USER_INPUT';
}

export interface ErrorLog {
  error(obj: object, msg: string): void;
}

export function formatGraphQLError(log: ErrorLog) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = unwrapResolverError(error);
    const where = { path: formatted.path, locations: formatted.locations };
    if (original instanceof CustodiaError) {
      if (original.code === 'INTERNAL') log.error(describe(original), 'internal error');
      return formatCustodiaError(original, where);
    }
    if (original instanceof HttpException && HTTP_STATUS_CODES[original.getStatus()]) {
      return {
        message: original.message,
        ...where,
        extensions: { code: HTTP_STATUS_CODES[original.getStatus()] },
      };
    }
    const code = formatted.extensions?.code;
    if (
      typeof code === 'string' &&
      CLIENT_ERROR_CODES.has(code) &&
      original instanceof GraphQLError
    ) {
      return {
        message: withoutValues(formatted.message),
        ...where,
        extensions: { code: 'BAD_USER_INPUT' },
      };
    }
    return { ...unexpectedError(log, original), ...where };
  };
}

/**
 * An unexpected error as the client sees it: INTERNAL with a fresh reference, which the log
 * entry (kind and place, not the message) carries too. GraphQL and plain HTTP routes share it.
 */
export function unexpectedError(
  log: ErrorLog,
  e: unknown,
): { message: string; extensions: { code: 'INTERNAL'; reference: string } } {
  const reference = randomUUID();
  log.error({ ...describe(e), reference }, 'unexpected error');
  return {
    message: `Internal error (reference ${reference}); nothing was changed. Try again, and report the reference if it persists.`,
    extensions: { code: 'INTERNAL', reference },
  };
}

/** One of our own errors as the client sees it: its message, its code and its details. */
export function formatCustodiaError(
  e: CustodiaError,
  where: Pick<GraphQLFormattedError, 'path' | 'locations'>,
): GraphQLFormattedError {
  return { message: e.message, ...where, extensions: { code: e.code, ...e.details } };
}

/** A log entry for an error that keeps its kind and where it happened, not its message. */
export function describe(e: unknown): Record<string, unknown> {
  if (!(e instanceof Error)) return { errorType: typeof e };
  const safeMessage = e instanceof CustodiaError ? e.message : undefined;
  const extra = e as { code?: unknown; constraint?: unknown; routine?: unknown };
  return {
    errorType: e.name,
    ...(safeMessage ? { errorMessage: safeMessage } : {}),
    ...(typeof extra.code === 'string' ? { errorCode: extra.code } : {}),
    ...(typeof extra.constraint === 'string' ? { constraint: extra.constraint } : {}),
    stack: e.stack?.split('\n').slice(1, 8).join('\n'),
  };
}
