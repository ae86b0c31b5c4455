import { ArgumentsHost, Catch } from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import { GqlContextType } from '@nestjs/graphql';

/**
 * GraphQL errors pass straight to the one formatter (formatGraphQLError), which maps them to
 * contract codes and logs only the unexpected ones, without their message. Without this,
 * Nest would log every resolver error, message and all.
 */
@Catch()
export class ErrorFilter extends BaseExceptionFilter {
  override catch(exception: unknown, host: ArgumentsHost) {
    if (host.getType<GqlContextType>() === 'graphql') return exception;
    return super.catch(exception, host);
  }
}
