// Text that people read where someone else wrote it: a patient's display name in a
// clinician's list, a study's title in the catalogue patients consent from, an emergency's
// reason in the patient's log. Unicode's bidirectional controls (embeddings, overrides,
// isolates) make such text read in another order than it was written ("‮evil" shows as
// "live"), and control characters break the line it is shown on: neither has a place in it.
import { BIDI_CONTROLS } from '@custodia/chaincode/policy';
import { BadUserInputError } from './errors';

/** C0 and C1 control characters, line breaks and tabs among them. */
const CONTROLS = /\p{Cc}/u;

/**
 * Refuses, at `field`, text that would read otherwise than written: bidirectional controls
 * always, and control characters in `singleLine` text (a name, a title).
 */
export function checkShownText(
  value: string,
  field: string,
  what: string,
  { singleLine }: { singleLine: boolean },
): void {
  if (BIDI_CONTROLS.test(value)) {
    throw new BadUserInputError(
      `${what} must not contain bidirectional control characters (U+202A–U+202E, U+2066–U+2069): they change the order in which it reads`,
      field,
    );
  }
  if (singleLine && CONTROLS.test(value)) {
    throw new BadUserInputError(
      `${what} must be one line of text, without control characters (line breaks, tabs, escapes)`,
      field,
    );
  }
}
