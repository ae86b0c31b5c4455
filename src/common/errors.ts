// One error class per code of the public contract (ARCHITECTURE section 8). Services throw
// these; the GraphQL error formatter maps them to `extensions.code` in one place. Messages
// say what was wrong and what to do, and never carry PHI, keys, tokens or stack traces.

export const ERROR_CODES = [
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'CONSENT_REQUIRED',
  'NOT_FOUND',
  'BAD_USER_INPUT',
  'CONFLICT',
  'LEDGER_UNAVAILABLE',
  'INTERNAL',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export abstract class CustodiaError extends Error {
  abstract readonly code: ErrorCode;
  /** Extra, PHI-free details for clients (e.g. the offending input field). */
  readonly details: Record<string, unknown>;

  constructor(message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = new.target.name;
    this.details = details;
  }
}

export class UnauthenticatedError extends CustodiaError {
  readonly code = 'UNAUTHENTICATED';
}

export class ForbiddenError extends CustodiaError {
  readonly code = 'FORBIDDEN';
}

export class ConsentRequiredError extends CustodiaError {
  readonly code = 'CONSENT_REQUIRED';
}

export class NotFoundError extends CustodiaError {
  readonly code = 'NOT_FOUND';
}

export class BadUserInputError extends CustodiaError {
  readonly code = 'BAD_USER_INPUT';

  /** `field` names the offending input, e.g. `input.resource.status` or `first`. */
  constructor(message: string, field?: string) {
    super(message, field ? { field } : {});
  }
}

export class ConflictError extends CustodiaError {
  readonly code = 'CONFLICT';
}

export class LedgerUnavailableError extends CustodiaError {
  readonly code = 'LEDGER_UNAVAILABLE';
}

/** Something broke on our side (e.g. a stored ciphertext failed authentication). */
export class InternalError extends CustodiaError {
  readonly code = 'INTERNAL';
}
