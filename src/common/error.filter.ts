import { ArgumentsHost, Catch, HttpException, HttpStatus, Logger } from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import { GqlContextType } from '@nestjs/graphql';
import type { Response } from 'express';
import { DatabaseUnavailableError, isDatabaseUnavailable } from '../database/availability';
import { sendError } from './error-response';
import { CustodiaError, ErrorCode } from './errors';
import { codeForHttpStatus, describe, unexpectedError } from './graphql-errors';

const HTTP_STATUS: Record<ErrorCode, number> = {
  UNAUTHENTICATED: HttpStatus.UNAUTHORIZED,
  FORBIDDEN: HttpStatus.FORBIDDEN,
  CONSENT_REQUIRED: HttpStatus.FORBIDDEN,
  NOT_FOUND: HttpStatus.NOT_FOUND,
  BAD_USER_INPUT: HttpStatus.BAD_REQUEST,
  CONFLICT: HttpStatus.CONFLICT,
  LEDGER_UNAVAILABLE: HttpStatus.SERVICE_UNAVAILABLE,
  INTERNAL: HttpStatus.INTERNAL_SERVER_ERROR,
};

/** Messages for the 4xx that Nest and Express raise themselves (their own may quote the path). */
const CLIENT_MESSAGES: Record<number, string> = {
  [HttpStatus.NOT_FOUND]: 'Nothing here: check the method and the path.',
  [HttpStatus.BAD_REQUEST]: 'The request is malformed: check its path, query string and body.',
};

/**
 * GraphQL errors pass straight to the one formatter (formatGraphQLError), which maps them to
 * contract codes and logs only the unexpected ones, without their message. Without this,
 * Nest would log every resolver error, message and all. Plain HTTP routes (the federated
 * binary endpoints, health, JWKS) answer their errors in GraphQL's error shape with the same
 * codes, and log unexpected ones the same way; a deliberate 5xx (the health check's 503 with
 * its report) is answered as Nest does.
 */
@Catch()
export class ErrorFilter extends BaseExceptionFilter {
  private readonly log = new Logger('HTTP');

  override catch(exception: unknown, host: ArgumentsHost) {
    // A database outage (a restart, say) is said as such rather than as a bare INTERNAL.
    if (isDatabaseUnavailable(exception)) exception = new DatabaseUnavailableError();
    if (host.getType<GqlContextType>() === 'graphql') return exception;
    const res = host.switchToHttp().getResponse<Response>();
    if (res.headersSent) {
      res.end();
      return;
    }
    if (exception instanceof CustodiaError) {
      if (exception.code === 'INTERNAL') this.log.error(describe(exception), 'internal error');
      sendError(
        res,
        HTTP_STATUS[exception.code],
        exception.message,
        exception.code,
        exception.details,
      );
      return;
    }
    const status = clientErrorStatus(exception);
    if (status) {
      sendError(
        res,
        status,
        CLIENT_MESSAGES[status] ?? `The request was refused (HTTP ${status}).`,
        codeForHttpStatus(status),
      );
      return;
    }
    // Deliberate server-side answers (the health check's 503 with its report) stay Nest's.
    if (exception instanceof HttpException) return super.catch(exception, host);
    const { message, extensions } = unexpectedError(this.log, exception);
    const { code, ...details } = extensions;
    sendError(res, HttpStatus.INTERNAL_SERVER_ERROR, message, code, details);
  }
}

/** The 4xx status of a Nest HttpException or an Express (http-errors) error, if it is one. */
function clientErrorStatus(e: unknown): number | undefined {
  const status =
    e instanceof HttpException ? e.getStatus() : (e as { status?: unknown } | null)?.status;
  return typeof status === 'number' && status >= 400 && status < 500 ? status : undefined;
}
