import { badUserInput } from '../../../test/helpers/errors';
import { corpusFiles, corpusResource, type Resource } from '../../../test/helpers/fhir-corpus';
import {
  clinicalDate,
  codeTerms,
  componentTerm,
  hasComboTerm,
  hasTerm,
  indexTerms,
  mainCodings,
  tokenTerm,
} from './clinical-facts';

const LOINC = 'http://loinc.org';

describe('clinical facts of a resource', () => {
  it('reads the main code of each type from its own element', () => {
    const med = {
      resourceType: 'MedicationRequest',
      medicationCodeableConcept: { coding: [{ system: 'rx', code: '860975' }] },
    };
    const enc = {
      resourceType: 'Encounter',
      type: [{ coding: [{ system: 's', code: 'a' }] }, { coding: [{ code: 'b' }] }],
    };
    const imm = {
      resourceType: 'Immunization',
      vaccineCode: { coding: [{ system: 'cvx', code: '140' }] },
    };
    expect(mainCodings(med)).toEqual([{ system: 'rx', code: '860975' }]);
    expect(mainCodings(enc)).toEqual([
      { system: 's', code: 'a' },
      { system: null, code: 'b' },
    ]);
    expect(mainCodings(imm)).toEqual([{ system: 'cvx', code: '140' }]);
    expect(mainCodings({ resourceType: 'Observation', code: { text: 'free text only' } })).toEqual(
      [],
    );
  });

  it('indexes each coding by system|code, by code, by system, and without a system as such', () => {
    const obs = {
      resourceType: 'Observation',
      code: { coding: [{ system: LOINC, code: '4548-4' }, { code: 'x' }] },
    };
    expect(codeTerms(obs)).toEqual(['c:4548-4', 'c:x', 'ns:x', `s:${LOINC}`, `sc:${LOINC}|4548-4`]);
    expect(hasTerm(obs, tokenTerm(`${LOINC}|4548-4`, 'code'))).toBe(true);
    expect(hasTerm(obs, tokenTerm('4548-4', 'code'))).toBe(true);
    expect(hasTerm(obs, tokenTerm('|4548-4', 'code'))).toBe(false);
    expect(hasTerm(obs, tokenTerm('|x', 'code'))).toBe(true);
    // `system|`: any code of that system.
    expect(hasTerm(obs, tokenTerm(`${LOINC}|`, 'code'))).toBe(true);
    expect(hasTerm(obs, tokenTerm('http://snomed.info/sct|', 'code'))).toBe(false);
  });

  it("reads FHIR's escapes in a token, and refuses an OR (a comma) rather than match nothing", () => {
    const odd = {
      resourceType: 'Observation',
      code: { coding: [{ system: 'urn:x|y', code: 'a,b' }] },
    };
    expect(hasTerm(odd, tokenTerm('urn:x\\|y|a\\,b', 'code'))).toBe(true);
    expect(hasTerm(odd, tokenTerm('a\\,b', 'code'))).toBe(true);
    for (const or of ['4548-4,2345-7', `${LOINC}|4548-4,${LOINC}|2345-7`]) {
      expect(() => tokenTerm(or, 'code')).toThrow(/a comma is FHIR's OR/);
    }
    for (const bad of ['a\\', 'a\\x', 'a|b|c', '|']) {
      expect(() => tokenTerm(bad, 'code')).toThrow(/must be a FHIR token/);
    }
  });

  it("finds an Observation by a component's code only as combo-code does, never as its main code", () => {
    const panel = {
      resourceType: 'Observation',
      code: { coding: [{ system: LOINC, code: '55284-4' }] },
      component: [
        { code: { coding: [{ system: LOINC, code: '8480-6' }] }, valueQuantity: { value: 120 } },
        { code: { coding: [{ system: LOINC, code: '8462-4' }] }, valueQuantity: { value: 80 } },
      ],
    };
    const systolic = tokenTerm(`${LOINC}|8480-6`, 'code');
    expect(hasTerm(panel, systolic)).toBe(false);
    expect(hasComboTerm(panel, systolic)).toBe(true);
    expect(hasComboTerm(panel, tokenTerm('8462-4', 'code'))).toBe(true);
    expect(hasComboTerm(panel, tokenTerm('55284-4', 'code'))).toBe(true);
    expect(hasComboTerm(panel, tokenTerm('8310-5', 'code'))).toBe(false);
    // A component's term is another string than the same main code's: `code` search stays exact.
    expect(indexTerms(panel)).toContain(componentTerm(systolic));
    expect(indexTerms(panel)).not.toContain(systolic);
    // Only Observations have components.
    expect(hasComboTerm({ ...panel, resourceType: 'DiagnosticReport' }, systolic)).toBe(false);
  });

  it('rejects tokens that are not FHIR tokens, naming the field', () => {
    for (const t of ['', '|', 'a|b|c', 'tab\there', 'x'.repeat(513)]) {
      expect(badUserInput(() => tokenTerm(t, 'codes[2]')).details).toMatchObject({
        field: 'codes[2]',
      });
    }
  });

  it('takes the clinical date by preference, partial dates and periods from their start', () => {
    expect(
      clinicalDate({
        resourceType: 'Observation',
        effectivePeriod: { start: '2020-02' },
        issued: '2021-01-01T00:00:00Z',
      }),
    ).toEqual(new Date('2020-02-01T00:00:00Z'));
    expect(
      clinicalDate({ resourceType: 'Observation', issued: '2021-01-01T10:00:00+01:00' }),
    ).toEqual(new Date('2021-01-01T09:00:00Z'));
    expect(clinicalDate({ resourceType: 'Condition', recordedDate: '2019' })).toEqual(
      new Date('2019-01-01T00:00:00Z'),
    );
    expect(
      clinicalDate({ resourceType: 'Encounter', period: { start: '2018-03-04T05:06:07Z' } }),
    ).toEqual(new Date('2018-03-04T05:06:07Z'));
    expect(clinicalDate({ resourceType: 'Procedure', performedString: 'last spring' })).toBeNull();
    // A Period without a start is dated by its end, not left to fall back to when it was stored.
    expect(
      clinicalDate({ resourceType: 'Observation', effectivePeriod: { end: '2016-01-01' } }),
    ).toEqual(new Date('2016-01-01T00:00:00Z'));
    // A Timing by its earliest event.
    expect(
      clinicalDate({
        resourceType: 'Observation',
        effectiveTiming: { event: ['2017-05-02T10:00:00Z', 'not a date', '2017-05-01'] },
      }),
    ).toEqual(new Date('2017-05-01T00:00:00Z'));
    expect(
      clinicalDate({ resourceType: 'Observation', effectiveTiming: { repeat: { count: 2 } } }),
    ).toBeNull();
    expect(clinicalDate({ resourceType: 'Observation' })).toBeNull();
  });

  it('reads the years 0000–0099 of partial dates as themselves, not as 1900–1999', () => {
    for (const [value, iso] of [
      ['0050', '0050-01-01T00:00:00.000Z'],
      ['0050-06', '0050-06-01T00:00:00.000Z'],
      ['0050-06-01', '0050-06-01T00:00:00.000Z'],
      // Year 0 (which FHIR does not allow) is before any instant RFC 3339 writes.
      ['0000-01-01', '0001-01-01T00:00:00.000Z'],
    ]) {
      expect(
        clinicalDate({ resourceType: 'Observation', effectiveDateTime: value })?.toISOString(),
      ).toBe(iso);
    }
  });

  it('keeps an instant its offset puts outside the years 0001–9999 within them (RFC 3339 writes no other)', () => {
    for (const [value, iso] of [
      ['9999-12-31T23:00:00-05:00', '9999-12-31T23:59:59.999Z'],
      ['0001-01-01T00:00:00+01:00', '0001-01-01T00:00:00.000Z'],
      ['9999-12-31T18:00:00-05:00', '9999-12-31T23:00:00.000Z'],
    ]) {
      expect(
        clinicalDate({ resourceType: 'Observation', effectiveDateTime: value })?.toISOString(),
      ).toBe(iso);
    }
  });

  it('reads a leap second (23:59:60, which FHIR allows) as the second after 23:59:59', () => {
    for (const [value, iso] of [
      ['2016-12-31T23:59:60Z', '2017-01-01T00:00:00.000Z'],
      ['2016-12-31T23:59:60.5Z', '2017-01-01T00:00:00.500Z'],
      ['2016-12-31T18:59:60-05:00', '2017-01-01T00:00:00.000Z'],
    ]) {
      expect(
        clinicalDate({ resourceType: 'Observation', effectiveDateTime: value })?.toISOString(),
      ).toBe(iso);
    }
    expect(
      clinicalDate({ resourceType: 'Observation', effectiveDateTime: '2016-12-31T23:59:61Z' }),
    ).toBeNull();
  });

  it("reads the dates of HL7's own NutritionOrder, RiskAssessment and Specimen examples", () => {
    const at = (file: string, change: (r: Resource) => void = () => undefined) => {
      const r = corpusResource(file);
      change(r);
      return clinicalDate(r)?.toISOString() ?? null;
    };
    expect(at('hl7-NutritionOrder-1.json')).toBe('2014-09-17T00:00:00.000Z');
    expect(at('hl7-RiskAssessment-2.json')).toBe('2006-01-13T23:01:00.000Z');
    // Inside the collection first, then when the lab received it.
    expect(at('hl7-Specimen-1.json')).toBe('2011-05-30T06:15:00.000Z');
    expect(at('hl7-Specimen-1.json', (r) => delete r.collection)).toBe('2011-03-04T07:03:00.000Z');
    expect(at('hl7-Specimen-2.json', (r) => (r.collection = [r.collection]))).toBeNull();
    // Every example of these types that names a date has one.
    for (const file of corpusFiles().filter((f) =>
      /-(NutritionOrder|RiskAssessment|Specimen)-/.test(f),
    )) {
      const text = JSON.stringify(corpusResource(file));
      const dated =
        /"(dateTime|occurrenceDateTime|occurrencePeriod|collectedDateTime|receivedTime)"/;
      expect([file, at(file) !== null]).toEqual([file, dated.test(text)]);
    }
  });
});
