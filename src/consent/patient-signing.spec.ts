import canonicalize from 'canonicalize';
// What `custodia sign-grant` signs: exactly the bytes the API's consentPayload answers, and
// nothing that GrantConsentInput would refuse (the patient learns it before signing, not at
// grantConsent).
import { BadUserInputError } from '../common/errors';
import {
  choicePayload,
  keyPayload,
  revocationPayload,
  settingPayload,
} from '@custodia/chaincode/signed-consent';
import { grantPayloadOf, signableChange } from './patient-signing';

const PATIENT = '6f0d3a4e-1f5b-4c1e-9d7a-2b8e5c3a9f10';
const grant = {
  id: 'g-1',
  granteeType: 'CLINICIAN',
  granteeId: 'dr-bob',
  purpose: 'TREATMENT',
  actions: ['READ'],
};

describe('the payload a signing tool signs', () => {
  it('is the JCS of the grant terms, arrays sorted, for the patient', () => {
    const payload = grantPayloadOf({ ...grant, actions: ['WRITE', 'READ'] }, PATIENT);
    expect(JSON.parse(payload)).toMatchObject({
      id: 'g-1',
      patientId: PATIENT,
      actions: ['READ', 'WRITE'],
    });
  });

  it.each([
    ['an unknown field', { extra: 1 }, 'extra'],
    ['an unknown grantee type', { granteeType: 'NURSE' }, 'granteeType'],
    ['an unknown purpose', { purpose: 'MARKETING' }, 'purpose'],
    ['an unknown action', { actions: ['READ', 'DELETE'] }, 'actions'],
    // Values of another type than GrantConsentInput's: once signed as something else (a
    // number for validUntil as no end at all), now refused as the API refuses them.
    ['a number for validUntil', { validUntil: 1796310000000 }, 'validUntil'],
    ['true for validUntil', { validUntil: true }, 'validUntil'],
    ['an object for validFrom', { validFrom: {} }, 'validFrom'],
    ['a string for includeRestricted', { includeRestricted: 'false' }, 'includeRestricted'],
    ['0 for includeRestricted', { includeRestricted: 0 }, 'includeRestricted'],
    ['a string for resourceTypes', { resourceTypes: 'Observation' }, 'resourceTypes'],
    ['an object for categories', { categories: { a: 1 } }, 'categories'],
    ['a string for actions', { actions: 'READ' }, 'actions'],
  ])('refuses %s before it is signed', (_, change, field) => {
    const refuse = () => grantPayloadOf({ ...grant, ...change }, PATIENT);
    expect(refuse).toThrow(BadUserInputError);
    try {
      refuse();
    } catch (e) {
      expect((e as BadUserInputError).details.field).toBe(field);
    }
  });

  it('refuses a patient id that is not one (a UUID, as registerPatient gives it)', () => {
    for (const patient of ['', 'someone', `${PATIENT} `]) {
      expect(() => grantPayloadOf(grant, patient)).toThrow(BadUserInputError);
    }
  });

  it('signs null and absent optional fields alike, as the API reads them', () => {
    expect(
      grantPayloadOf(
        { ...grant, validUntil: null, resourceTypes: null, includeRestricted: null },
        PATIENT,
      ),
    ).toBe(grantPayloadOf(grant, PATIENT));
  });

  it('signs the JSON consentPayload answered as it is (it names the patient)', () => {
    const payload = grantPayloadOf(
      { ...grant, validFrom: '2030-01-01T09:00:00+02:00', categories: ['b', 'a'] },
      PATIENT,
    );
    const answered = JSON.parse(payload) as Record<string, unknown>;
    expect(grantPayloadOf(answered, answered.patientId as string)).toBe(payload);
  });
});

describe('what `custodia sign` signs', () => {
  it('says which change each payload the API answers makes, naming what it changes', () => {
    const kid = 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs';
    expect(signableChange(keyPayload(PATIENT, kid, false, 1))).toBe(
      `adding device key ${kid} to the keys of patient ${PATIENT} (as they stand at version 1)`,
    );
    expect(signableChange(keyPayload(PATIENT, kid, true, 3))).toBe(
      `removing device key ${kid} from the keys of patient ${PATIENT} (as they stand at version 3)`,
    );
    expect(signableChange(settingPayload(PATIENT, false, 2))).toBe(
      `turning signed-only consent off for patient ${PATIENT} (setting version 2)`,
    );
    expect(signableChange(revocationPayload(PATIENT, 'g-1'))).toBe(
      `revoking grant g-1 of patient ${PATIENT}`,
    );
    expect(signableChange(choicePayload(PATIENT, 'emergency-access', true, 1))).toBe(
      `allowing emergency access for patient ${PATIENT} (turned off 1 times before)`,
    );
  });

  it('refuses a payload that is not whole: a field missing, extra or of another shape', () => {
    for (const partial of [
      '{"type":"custodia.patient-key/v1"}',
      canonicalize({ type: 'custodia.revocation/v1', patientId: PATIENT })!,
      canonicalize({ type: 'custodia.revocation/v1', patientId: PATIENT, grantId: 'g 1' })!,
      canonicalize({ type: 'custodia.revocation/v1', patientId: 'bob', grantId: 'g-1' })!,
      canonicalize({ type: 'custodia.revocation/v1', patientId: PATIENT, grantId: 'g-1', x: 1 })!,
      canonicalize({
        type: 'custodia.signed-consent/v1',
        patientId: PATIENT,
        requireSignedConsent: 'no',
        version: 1,
      })!,
      canonicalize({
        type: 'custodia.patient-choice/v1',
        patientId: PATIENT,
        choice: 'everything',
        allow: true,
        version: 0,
      })!,
    ]) {
      expect(() => signableChange(partial)).toThrow(/not whole/);
    }
  });

  it("refuses a grant's terms, anything of no or unknown kind, and bytes not canonical", () => {
    const terms = grantPayloadOf(grant, PATIENT);
    expect(() => signableChange(terms)).toThrow(
      /a grant's terms: sign a grant with `custodia sign-grant/,
    );
    expect(() => signableChange('not json')).toThrow(/not JSON/);
    expect(() => signableChange('[1]')).toThrow(/names no change/);
    expect(() => signableChange('{"type":"custodia.grant/v1"}')).toThrow(/unknown kind/);
    const spaced = revocationPayload(PATIENT, 'g-1').replace(',', ', ');
    expect(() => signableChange(spaced)).toThrow(BadUserInputError);
    expect(() => signableChange(spaced)).toThrow(/canonical form/);
  });

  it('refuses to sign a grant id the API would refuse', () => {
    expect(() => grantPayloadOf({ ...grant, id: 'x y' }, PATIENT)).toThrow(
      /id must be an id of 1–128/,
    );
    expect(() => grantPayloadOf({ ...grant, id: 'a'.repeat(129) }, PATIENT)).toThrow(/id must be/);
  });
});
