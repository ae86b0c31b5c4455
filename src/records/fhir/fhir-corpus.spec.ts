// The validator against real data: every resource of the shared corpus (valid by HAPI's
// validator) must pass, and every one-violation variant of one must fail with BAD_USER_INPUT,
// naming the path and the rule, never the value.
import fc from 'fast-check';
import { corpusFiles, corpusResource, FHIR_VARIANTS } from '../../../test/helpers/fhir-corpus';
import { BadUserInputError } from '../../common/errors';
import { validateFhirResource, validatePatientResource } from '../fhir';
import { SKIPPED_INVARIANTS } from './index';
import { badUserInput } from '../../../test/helpers/errors';

const OWNER = '0b9c1d2e-3f4a-4b5c-8d6e-7f8091a2b3c4';

describe('the FHIR R4 corpus', () => {
  const files = corpusFiles();

  it('holds the 330 resources its SOURCES.md describes', () => {
    expect(files).toHaveLength(330);
  });

  it.each(files)('accepts %s, bound to its owner', (file) => {
    const resource = corpusResource(file);
    const stored = validatePatientResource(resource, OWNER);
    // Every corpus type names its patient; the full validation ran on the bound copy.
    expect(stored.subject ?? stored.patient).toEqual({ reference: `Patient/${OWNER}` });
    expect(validateFhirResource(stored)).toBe(stored);
  });

  it('enforces every invariant it knows of (none skipped)', () => {
    expect([...SKIPPED_INVARIANTS.keys()]).toEqual([]);
  });
});

describe('one-violation variants of real resources', () => {
  it.each(FHIR_VARIANTS.map((v) => [v.name, v] as const))('rejects %s', (_name, variant) => {
    const resource = corpusResource(variant.file);
    variant.mutate(resource);
    const e = badUserInput(() => validatePatientResource(resource, OWNER));
    expect(e.code).toBe('BAD_USER_INPUT');
    for (const mention of variant.mentions) expect(e.message).toContain(mention);
    expect(e.message).not.toContain(variant.secret);
    expect(String(e.details.field)).toMatch(/^input\.resource(\.|$)/);
  });

  it('points the field at the first offending element', () => {
    const resource = corpusResource('synthea-Observation-1.json');
    resource.status = 'not-a-status';
    expect(badUserInput(() => validatePatientResource(resource, OWNER)).details.field).toBe(
      'input.resource.status',
    );
  });
});

describe('arbitrary damage to real resources', () => {
  /** Every path to a value in a JSON tree, as property/index steps. */
  function paths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
    if (typeof value !== 'object' || value === null) return [prefix];
    const entries = Array.isArray(value)
      ? value.map((v, i) => [i, v] as const)
      : Object.entries(value);
    return [prefix, ...entries.flatMap(([k, v]) => paths(v, [...prefix, k]))];
  }
  const samples = [
    'synthea-Observation-1.json',
    'hl7-MedicationRequest-10.json',
    'hl7-RiskAssessment-2.json',
  ];

  it('is answered with BAD_USER_INPUT or acceptance, never another error', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...samples),
        fc.nat(),
        fc.jsonValue({ maxDepth: 3 }),
        (file, pick, replacement) => {
          const resource = corpusResource(file);
          const all = paths(resource).filter((p) => p.length > 0 && p[0] !== 'resourceType');
          const path = all[pick % all.length];
          // eslint-disable-next-line @typescript-eslint/no-explicit-any -- arbitrary JSON
          let parent: any = resource;
          for (const step of path.slice(0, -1)) parent = parent[step];
          parent[path[path.length - 1]] = replacement;
          try {
            validatePatientResource(resource, OWNER);
          } catch (e) {
            expect(e).toBeInstanceOf(BadUserInputError);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
