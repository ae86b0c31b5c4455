import { ArgumentMetadata, Injectable, PipeTransform } from '@nestjs/common';
import { assertWellFormed } from './well-formed';

/**
 * Applied globally: every GraphQL argument (which Nest hands to pipes as `body`, named by the
 * argument) and every REST path, query and body value is checked before a resolver or
 * controller runs. Context, info and custom decorators (the caller) are not inputs.
 */
@Injectable()
export class WellFormedInputPipe implements PipeTransform {
  transform(value: unknown, { type, data }: ArgumentMetadata): unknown {
    if (type === 'body' || type === 'query' || type === 'param') {
      assertWellFormed(value, data ?? type);
    }
    return value;
  }
}
