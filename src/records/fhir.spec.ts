import { grantAsFhirConsent } from '../consent/fhir-consent';
import {
  contradictedLabel,
  confidentialityOf,
  deriveCategory,
  withConfidentiality,
  labelledRestricted,
  validatePatientResource,
} from './fhir';
import { badUserInput } from '../../test/helpers/errors';

const P = '6f0d3a4e-1f5b-4c1e-9d7a-2b8e5c3a9f10';
const glucose = {
  resourceType: 'Observation',
  status: 'final',
  category: [
    {
      coding: [
        {
          system: 'http://terminology.hl7.org/CodeSystem/observation-category',
          code: 'laboratory',
        },
      ],
    },
  ],
  code: { coding: [{ system: 'http://loinc.org', code: '2345-7' }] },
  valueQuantity: { value: 5.4, unit: 'mmol/L' },
};

describe('FHIR resources', () => {
  it('accepts a valid Observation and sets its subject to the owner', () => {
    const r = validatePatientResource(glucose, P);
    expect(r.subject).toEqual({ reference: `Patient/${P}` });
    expect(glucose).not.toHaveProperty('subject');
  });

  it('accepts a subject that already names the owner', () => {
    const r = validatePatientResource({ ...glucose, subject: { reference: `Patient/${P}` } }, P);
    expect(r.subject).toEqual({ reference: `Patient/${P}` });
  });

  it('rejects a subject naming another patient', () => {
    const e = badUserInput(() =>
      validatePatientResource({ ...glucose, subject: { reference: 'Patient/someone-else' } }, P),
    );
    expect(e.details.field).toBe('input.resource.subject');
  });

  it('binds resources whose owner element is `patient`', () => {
    const allergy = validatePatientResource(
      {
        resourceType: 'AllergyIntolerance',
        clinicalStatus: {
          coding: [
            {
              system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical',
              code: 'active',
            },
          ],
        },
        code: { text: 'penicillin' },
      },
      P,
    );
    expect(allergy.patient).toEqual({ reference: `Patient/${P}` });
  });

  it('gives a Patient resource the owner id', () => {
    expect(
      validatePatientResource({ resourceType: 'Patient', birthDate: '1970-01-01' }, P).id,
    ).toBe(P);
    badUserInput(() => validatePatientResource({ resourceType: 'Patient', id: 'other' }, P));
  });

  it('rejects an unknown resource type', () => {
    const e = badUserInput(() => validatePatientResource({ resourceType: 'Spaceship' }, P));
    expect(e.details.field).toBe('input.resource.resourceType');
  });

  it('rejects types that cannot belong to a patient', () => {
    badUserInput(() => validatePatientResource({ resourceType: 'Organization', name: 'x' }, P));
  });

  it('rejects invalid FHIR and names the path without echoing values', () => {
    const secret = 'Jane Q. Public';
    const e = badUserInput(() =>
      validatePatientResource(
        { ...glucose, status: undefined, valueQuantity: { value: secret } },
        P,
      ),
    );
    expect(e.message).toContain('Observation.status');
    expect(e.message).not.toContain(secret);
    expect(e.details.field).toBe('input.resource.status');
  });

  it('rejects control characters in a string (an escape sequence), keeping tab, CR and LF', () => {
    const e = badUserInput(() =>
      validatePatientResource({ ...glucose, code: { text: 'a\u0001\u001b[31mred' } }, P),
    );
    expect(e.message).toContain('control characters other than tab, CR and LF');
    expect(e.details.field).toBe('input.resource.code.text');
    expect(() =>
      validatePatientResource({ ...glucose, code: { text: 'two\r\nlines\tand a tab' } }, P),
    ).not.toThrow();
  });

  it('rejects a Range whose low is above its high (rng-2), with or without a unit', () => {
    for (const [low, high] of [
      [{ value: 5 }, { value: 1 }],
      [
        { value: 5, unit: 'drops' },
        { value: 1, unit: 'drops' },
      ],
      [
        { value: 5, system: 'http://unitsofmeasure.org', code: 'mg' },
        { value: 1, system: 'http://unitsofmeasure.org', code: 'mg' },
      ],
    ]) {
      const e = badUserInput(() =>
        validatePatientResource(
          { ...glucose, valueQuantity: undefined, valueRange: { low, high } },
          P,
        ),
      );
      expect(e.message).toContain('rng-2');
    }
    expect(() =>
      validatePatientResource(
        {
          ...glucose,
          valueQuantity: undefined,
          valueRange: { low: { value: 1 }, high: { value: 5 } },
        },
        P,
      ),
    ).not.toThrow();
  });

  it("rejects a grant's own Consent (its Custodia identifier) as a record", () => {
    const consent = grantAsFhirConsent({
      id: 'f2b1c7e0-2d7e-4c53-a0a4-8a1f1f7c9a11',
      patientId: P,
      grantee: { type: 'CLINICIAN', id: 'dr-house' },
      purpose: 'TREATMENT',
      actions: ['READ'],
      resourceTypes: [],
      categories: [],
      includeRestricted: false,
      validFrom: new Date('2026-01-01T00:00:00Z'),
      validUntil: null,
      status: 'ACTIVE',
      ledgerTxId: 'a'.repeat(64),
      createdAt: new Date('2026-01-01T00:00:00Z'),
    });
    const e = badUserInput(() => validatePatientResource(consent, P));
    expect(e.message).toContain('grants are made with grantConsent');
    expect(e.details.field).toBe('input.resource.identifier');
  });

  it('rejects properties FHIR does not define', () => {
    const e = badUserInput(() => validatePatientResource({ ...glucose, nickname: 'x' }, P));
    expect(e.message).toContain('nickname');
  });

  it.each([[null], [[]], ['Observation'], [42]])('rejects a non-object resource %j', (v) => {
    badUserInput(() => validatePatientResource(v, P));
  });

  it('derives the category from the first coded category', () => {
    expect(deriveCategory(glucose as never)).toBe('laboratory');
    expect(deriveCategory({ resourceType: 'Patient' })).toBeNull();
  });

  it('replaces the confidentiality labels with one, keeping other security labels', () => {
    const C = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';
    const other = { system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'HTEST' };
    expect(
      withConfidentiality([{ system: C, code: 'N' }, other], { system: C, code: 'R' }),
    ).toEqual([other, { system: C, code: 'R' }]);
    expect(
      confidentialityOf({
        resourceType: 'Condition',
        meta: { security: [{ system: C, code: 'N' }] },
      }),
    ).toBe('open');
    expect(
      confidentialityOf({ resourceType: 'Condition', meta: { security: [other] } }),
    ).toBeNull();
  });

  it("prefers a category coded in HL7's own code systems, as grants name them", () => {
    const HL7 = 'http://terminology.hl7.org/CodeSystem/observation-category';
    expect(
      deriveCategory({
        resourceType: 'Observation',
        category: [
          {
            coding: [
              { system: 'http://x', code: 'a' },
              { system: HL7, code: 'laboratory' },
            ],
          },
        ],
      }),
    ).toBe('laboratory');
    expect(
      deriveCategory({
        resourceType: 'Observation',
        category: [
          { coding: [{ system: 'http://x', code: 'a' }] },
          { coding: [{ system: HL7, code: 'vital-signs' }] },
        ],
      }),
    ).toBe('vital-signs');
    expect(
      deriveCategory({ resourceType: 'Observation', category: [{ coding: [{ code: 'a' }] }] }),
    ).toBe('a');
    // AllergyIntolerance.category is a list of bare codes.
    expect(deriveCategory({ resourceType: 'AllergyIntolerance', category: ['food'] })).toBe('food');
  });

  it('reads R and V confidentiality labels as restricted', () => {
    const label = (code: string) => ({
      resourceType: 'Condition',
      meta: {
        security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code }],
      },
    });
    expect(labelledRestricted(label('R'))).toBe(true);
    expect(labelledRestricted(label('V'))).toBe(true);
    expect(labelledRestricted(label('N'))).toBe(false);
    expect(labelledRestricted({ resourceType: 'Condition' })).toBe(false);
  });
});

describe('labels a resource contradicts', () => {
  const restricted = {
    resourceType: 'Condition',
    meta: { security: [{ code: 'R' }] },
    category: [{ coding: [{ code: 'problem-list-item' }] }],
  };
  const labels = {
    resourceType: 'Condition',
    category: 'problem-list-item',
    sensitivity: 'RESTRICTED',
  } as const;

  it('finds none in labels the record was created with', () => {
    expect(contradictedLabel(restricted, labels)).toBeNull();
    expect(contradictedLabel(restricted, { ...labels, category: 'chosen-at-creation' })).toBeNull();
  });

  it.each([
    ['resourceType', { resourceType: 'Observation' }],
    ['sensitivity', { sensitivity: 'NORMAL' }],
    ['category', { category: null }],
  ] as const)('names a changed %s', (label, change) => {
    expect(contradictedLabel(restricted, { ...labels, ...change })).toBe(label);
  });
});
