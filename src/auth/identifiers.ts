// What a token's `sub` and `org` may hold, for the verifier (any issuer's tokens) and for the
// development issuer (which never mints what the verifier would refuse). They end up in
// Postgres text columns, ledger keys and logs: a NUL there is a database error (22021)
// instead of a refusal, and a lone surrogate cannot be encoded as UTF-8.

import { UNSTORABLE_IN_IDENTIFIER } from '@custodia/chaincode/policy';

export const MAX_IDENTIFIER_LENGTH = 255;

/** Why a non-empty identifier cannot be stored as it is, or null when it can. */
export function identifierProblem(value: string): 'too long' | 'unstorable' | null {
  if (value.length > MAX_IDENTIFIER_LENGTH) return 'too long';
  return UNSTORABLE_IN_IDENTIFIER.test(value) ? 'unstorable' : null;
}
