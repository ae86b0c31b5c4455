// The error a synchronous call must throw, for specs that then check its message and field.
import { BadUserInputError } from '../../src/common/errors';

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
