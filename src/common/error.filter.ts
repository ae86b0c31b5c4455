import { ArgumentsHost, Catch, HttpStatus } from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import { GqlContextType } from '@nestjs/graphql';
import type { Response } from 'express';
import { DatabaseUnavailableError, isDatabaseUnavailable } from '../database/availability';
import { CustodiaError, ErrorCode } from './errors';

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

/**
 * GraphQL errors pass straight to the one formatter (formatGraphQLError), which maps them to
 * contract codes and logs only the unexpected ones, without their message. Without this,
 * Nest would log every resolver error, message and all.
 */
@Catch()
export class ErrorFilter extends BaseExceptionFilter {
  override catch(exception: unknown, host: ArgumentsHost) {
    // A database outage (a restart, say) is said as such rather than as a bare INTERNAL.
    if (isDatabaseUnavailable(exception)) exception = new DatabaseUnavailableError();
    if (host.getType<GqlContextType>() === 'graphql') return exception;
    // Plain HTTP routes (the federated binary endpoints) answer in GraphQL's error shape.
    if (exception instanceof CustodiaError && host.getType() === 'http') {
      host
        .switchToHttp()
        .getResponse<Response>()
        .status(HTTP_STATUS[exception.code])
        .json({
          errors: [
            {
              message: exception.message,
              extensions: { code: exception.code, ...exception.details },
            },
          ],
        });
      return;
    }
    return super.catch(exception, host);
  }
}
