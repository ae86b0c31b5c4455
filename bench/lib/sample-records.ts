// The records both servers answer with: the same FHIR Observations (lab results and vital
// signs from the test fixtures), so the app and the in-memory baseline return pages of the
// same shape and about the same size.
import { observation, vitalSign } from '../../test/helpers/fhir';

const LAB_CODES = ['2345-7', '2093-3', '4548-4', '718-7'];

/** The i-th sample resource, without a subject (the API sets it to the owner). */
export function sampleResource(i: number): ReturnType<typeof observation> {
  return i % 3 === 0
    ? vitalSign('8480-6', 100 + (i % 60))
    : observation(LAB_CODES[i % LAB_CODES.length], 3 + (i % 70) / 10);
}

/** The measured operation: one page of 20 records, every field a client would show. */
export const RECORDS_QUERY = `query($p: ID!) {
  records(patientId: $p, first: 20) {
    items { id resourceType category sensitivity resource version contentHash integrity createdAt }
    nextCursor
  }
}`;

export const PAGE_SIZE = 20;

/** The same page searched by code (a lab result every fourth lab record holds). */
export const SEARCH_QUERY = `query($p: ID!) {
  records(patientId: $p, code: "http://loinc.org|2345-7", first: 20) {
    items { id resourceType category sensitivity resource version contentHash integrity createdAt }
    nextCursor
  }
}`;
