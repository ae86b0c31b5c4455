import { fhirIssues } from '../records/fhir/index';
import { grantAsFhirConsent, GRANT_IDENTIFIER_SYSTEM, isGrantConsent } from './fhir-consent';

const P = '6f0d3a4e-1f5b-4c1e-9d7a-2b8e5c3a9f10';
const base = {
  id: 'f2b1c7e0-2d7e-4c53-a0a4-8a1f1f7c9a11',
  patientId: P,
  grantee: { type: 'CLINICIAN' as const, id: 'dr-house' },
  purpose: 'TREATMENT' as const,
  actions: ['READ' as const],
  resourceTypes: [] as string[],
  categories: [] as string[],
  includeRestricted: false,
  validFrom: new Date('2026-01-01T00:00:00Z'),
  validUntil: null as Date | null,
  status: 'ACTIVE' as const,
  ledgerTxId: 'a'.repeat(64),
  createdAt: new Date('2026-01-01T00:00:00Z'),
};

describe('a grant as a FHIR Consent', () => {
  it.each([
    ['a plain READ grant to a clinician', base],
    [
      'a filtered READ/WRITE grant to an organisation, restricted records included, ending',
      {
        ...base,
        grantee: { type: 'ORGANIZATION' as const, id: 'org1' },
        actions: ['READ' as const, 'WRITE' as const],
        resourceTypes: ['Observation', 'Condition'],
        categories: ['laboratory', 'vital-signs'],
        includeRestricted: true,
        validUntil: new Date('2027-01-01T00:00:00Z'),
      },
    ],
    [
      'a revoked research grant to a study',
      {
        ...base,
        grantee: { type: 'STUDY' as const, id: 'study-1' },
        purpose: 'RESEARCH' as const,
        actions: ['TRAIN' as const],
        status: 'REVOKED' as const,
      },
    ],
    ['a grant whose id is no FHIR id', { ...base, id: 'grant:signed_1' }],
    ['a grant the patient signed', { ...base, patientSigned: true }],
  ])('is valid FHIR R4 for %s', (_, grant) => {
    const consent = grantAsFhirConsent(grant);
    expect(fhirIssues(consent)).toEqual([]);
    expect(isGrantConsent(consent)).toBe(true);
  });

  it('carries the terms: recipient, actions, purpose, classes, period and status', () => {
    const consent = grantAsFhirConsent({
      ...base,
      grantee: { type: 'ORGANIZATION', id: 'org1' },
      actions: ['READ', 'WRITE'],
      resourceTypes: ['Observation'],
      validUntil: new Date('2027-01-01T00:00:00Z'),
      status: 'EXPIRED',
    });
    expect(consent).toMatchObject({
      status: 'inactive',
      patient: { reference: `Patient/${P}` },
      identifier: expect.arrayContaining([{ system: GRANT_IDENTIFIER_SYSTEM, value: base.id }]),
      provision: {
        type: 'permit',
        period: { start: '2026-01-01T00:00:00.000Z', end: '2027-01-01T00:00:00.000Z' },
        actor: [{ reference: { reference: 'Organization/org1' } }],
        action: [{ coding: [{ code: 'access' }] }, { coding: [{ code: 'correct' }] }],
        purpose: [{ code: 'TREAT' }],
        class: [{ code: 'Observation' }],
      },
    });
  });

  it('says a patient-signed grant was verified with the patient, and only that one', () => {
    expect(grantAsFhirConsent({ ...base, patientSigned: true }).verification).toEqual([
      {
        verified: true,
        verifiedWith: { reference: `Patient/${P}` },
        verificationDate: '2026-01-01T00:00:00.000Z',
      },
    ]);
    expect(grantAsFhirConsent({ ...base, patientSigned: false })).not.toHaveProperty(
      'verification',
    );
    expect(grantAsFhirConsent(base)).not.toHaveProperty('verification');
  });

  it('names a study, and an id FHIR cannot hold, by identifier: no reference R4 forbids', () => {
    const study = grantAsFhirConsent({
      ...base,
      grantee: { type: 'STUDY', id: 'study-1' },
      purpose: 'RESEARCH',
      actions: ['TRAIN'],
    });
    const actorOf = (c: Record<string, unknown>) =>
      (c.provision as { actor: { reference: Record<string, unknown> }[] }).actor[0].reference;
    expect(actorOf(study)).toEqual({
      identifier: { system: 'urn:custodia:study', value: 'study-1' },
      display: 'study study-1',
    });
    const odd = grantAsFhirConsent({ ...base, grantee: { type: 'CLINICIAN', id: 'dr_house' } });
    expect(actorOf(odd)).toEqual({
      identifier: { system: 'urn:custodia:clinician', value: 'dr_house' },
      display: 'clinician dr_house',
    });
    expect(fhirIssues(odd)).toEqual([]);
  });

  it('keeps an id FHIR cannot hold in the identifier only', () => {
    const consent = grantAsFhirConsent({ ...base, id: 'grant:signed_1' });
    expect(consent).not.toHaveProperty('id');
  });

  it('tells a grant from a consent document without our identifier', () => {
    expect(isGrantConsent({ resourceType: 'Consent', identifier: [{ value: 'x' }] })).toBe(false);
    expect(isGrantConsent({ resourceType: 'Observation' })).toBe(false);
  });
});
