// Instants as the contract's DateTime takes them: an RFC 3339 date-time with its time zone
// (`2030-01-01T09:00:00Z`, `…+02:00`), or a bare date (`2030-01-01`, midnight UTC, as
// ECMAScript reads it). A date-time without a zone is refused, not read in the server's own
// zone: the same text would otherwise name different instants on different machines (a
// patient's signing tool and the server would sign and check different terms). So is a date
// the calendar does not have (`2030-02-30`), which JavaScript would roll into March.

const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?([Zz]|[+-](\d{2}):(\d{2})))?$/;

/** What an instant must be, for messages that refuse one (`${field} must be ${INSTANT_RULE}`). */
export const INSTANT_RULE =
  'an RFC 3339 date-time with its time zone (such as 2030-01-01T09:00:00Z) or a date (2030-01-01, read as midnight UTC), on a real calendar day between the years 0001 and 9999';

/** The instant `text` names, or an invalid Date (NaN) when it is not one as described above. */
export function parseInstant(text: string): Date {
  const m = DATE_TIME.exec(text);
  if (!m || !onRealCalendarDay(text)) return new Date(NaN);
  if (m[4] !== undefined) {
    const [hour, minute, second] = [Number(m[4]), Number(m[5]), Number(m[6])];
    // 60 would be a leap second, which no instant here (nor PostgreSQL) can hold.
    if (hour > 23 || minute > 59 || second > 59) return new Date(NaN);
    if (m[8] !== undefined && (Number(m[8]) > 23 || Number(m[9]) > 59)) return new Date(NaN);
  }
  return new Date(text);
}

/**
 * False when `text` starts with a full date (YYYY-MM-DD, as FHIR's date, dateTime and instant
 * do) that the calendar has not, such as 2019-02-30; true otherwise (partial dates included).
 */
export function onRealCalendarDay(text: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(text);
  if (!m) return true;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return month >= 1 && month <= 12 && day >= 1 && day <= daysIn(year, month);
}

function daysIn(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

const FHIR_PARTIAL = /^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?$/;
const LEAP_SECOND = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:)60(\.\d+)?(.*)$/;

/**
 * The time (ms since the epoch) a FHIR date, dateTime or instant in a resource names, or NaN.
 * Partial dates ("2019", "2019-05", "2019-05-03") are their first moment, UTC. A leap second
 * (23:59:60, which FHIR's dateTime allows and ECMAScript's Date refuses) reads as the second
 * after 23:59:59, as POSIX time counts it. Unlike parseInstant, which judges what clients send
 * the API, this reads what stored resources say.
 */
export function fhirTime(text: string): number {
  const partial = FHIR_PARTIAL.exec(text);
  // As ISO text: Date.UTC would take years 0–99 for 1900–1999.
  if (partial)
    return Date.parse(`${partial[1]}-${partial[2] ?? '01'}-${partial[3] ?? '01'}T00:00:00Z`);
  const leap = LEAP_SECOND.exec(text);
  if (leap) {
    const before = Date.parse(`${leap[1]}59${leap[2] ?? ''}${leap[3]}`);
    return Number.isFinite(before) ? before + 1000 : NaN;
  }
  return Date.parse(text);
}
