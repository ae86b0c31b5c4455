// What a token's `sub` and `org` may hold, for the verifier (any issuer's tokens) and for the
// development issuer (which never mints what the verifier would refuse). They end up in
// Postgres text columns, ledger keys and logs: a NUL there is a database error (22021)
// instead of a refusal, and a lone surrogate cannot be encoded as UTF-8.

export const MAX_IDENTIFIER_LENGTH = 255;
/**
 * Cc is C0, DEL and C1; with the u flag Cs matches only surrogates that are not part of a pair.
 * U+10FFFF, which Fabric's composite keys (the ledger's index of a grantee's grants) refuse.
 * And Unicode's bidirectional controls (U+202A–U+202E, U+2066–U+2069): an identifier is shown
 * to patients (who read their records, in their access log), and one of those would make it
 * read as another ("‮nimda" shows as "admin").
 */
const UNSTORABLE = /[\p{Cc}\p{Cs}\u{10FFFF}\u202A-\u202E\u2066-\u2069]/u;

/** Why a non-empty identifier cannot be stored as it is, or null when it can. */
export function identifierProblem(value: string): 'too long' | 'unstorable' | null {
  if (value.length > MAX_IDENTIFIER_LENGTH) return 'too long';
  return UNSTORABLE.test(value) ? 'unstorable' : null;
}
