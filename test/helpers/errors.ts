// The error a call must throw, for specs that then check its code, message and field.
import { BadUserInputError, CustodiaError } from '../../src/common/errors';

/** The BadUserInputError `fn` throws; any other outcome fails the test. */
export function badUserInput(fn: () => unknown): BadUserInputError {
  try {
    fn();
  } catch (e) {
    if (e instanceof BadUserInputError) return e;
    throw e;
  }
  throw new Error('expected BAD_USER_INPUT, but the call succeeded');
}

/** The CustodiaError `promise` rejects with; any other outcome fails the test. */
export async function errorOf(promise: Promise<unknown>): Promise<CustodiaError> {
  try {
    await promise;
  } catch (e) {
    if (e instanceof CustodiaError) return e;
    throw e;
  }
  throw new Error('expected the call to fail');
}
