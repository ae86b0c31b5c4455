// Plain HTTP refusals in GraphQL's error shape, with the contract's code: a client reads every
// answer, from /graphql or any other route, the same way.
import type { Response } from 'express';
import type { ErrorCode } from './errors';

export function sendError(
  res: Response,
  status: number,
  message: string,
  code: ErrorCode,
  details: Record<string, unknown> = {},
): void {
  res.status(status).json({ errors: [{ message, extensions: { code, ...details } }] });
}
