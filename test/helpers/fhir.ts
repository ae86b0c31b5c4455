// Small, valid FHIR R4 resources for tests and benchmarks.
export const LOINC = 'http://loinc.org';
const OBS_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
const CONDITION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/condition-category';
export const CONFIDENTIALITY = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';

export function observation(code = '2345-7', value = 5.4, unit = 'mmol/L') {
  return {
    resourceType: 'Observation',
    status: 'final',
    category: [{ coding: [{ system: OBS_CATEGORY, code: 'laboratory' }] }],
    code: { coding: [{ system: LOINC, code }] },
    valueQuantity: { value, unit },
  };
}

export function vitalSign(code = '8480-6', value = 128) {
  return {
    ...observation(code, value, 'mm[Hg]'),
    category: [{ coding: [{ system: OBS_CATEGORY, code: 'vital-signs' }] }],
  };
}

export function condition(snomed = '44054006', restricted = false) {
  return {
    resourceType: 'Condition',
    ...(restricted ? { meta: { security: [{ system: CONFIDENTIALITY, code: 'R' }] } } : {}),
    category: [{ coding: [{ system: CONDITION_CATEGORY, code: 'problem-list-item' }] }],
    code: { coding: [{ system: 'http://snomed.info/sct', code: snomed }] },
  };
}
