// The shape of a patient's signature argument, checked before anything reaches the ledger.
import { BadUserInputError } from './errors';

/** Compact JWS: base64url header, empty payload, base64url signature. */
const DETACHED_JWS = /^[A-Za-z0-9_-]{1,512}\.\.[A-Za-z0-9_-]{1,512}$/;

/**
 * A patient's signature argument, if given, in the shape the chaincode verifies (it checks the
 * signature itself); `over` names the payload it should sign, for the message.
 */
export function checkDetachedJws(
  signature: string | null | undefined,
  field: string,
  over?: string,
): string | null {
  if (signature === undefined || signature === null) return null;
  if (!DETACHED_JWS.test(signature)) {
    throw new BadUserInputError(
      `signature must be a compact JWS with a detached payload (header..signature)${over ? ` over ${over}` : ''}`,
      field,
    );
  }
  return signature;
}
