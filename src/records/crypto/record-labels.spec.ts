import canonicalize from 'canonicalize';
import fc from 'fast-check';
import { labelsJcs, labelsOnly } from './record-labels';

describe('labelsJcs', () => {
  it('writes exactly the JCS of the labels, whatever text they hold', () => {
    fc.assert(
      fc.property(
        fc.record({
          recordId: fc.string(),
          patientId: fc.string(),
          version: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
          resourceType: fc.string({ unit: 'grapheme' }),
          category: fc.option(fc.string({ unit: 'binary' }), { nil: null }),
          sensitivity: fc.constantFrom('NORMAL' as const, 'RESTRICTED' as const),
        }),
        (labels) => {
          expect(labelsJcs(labels)).toBe(canonicalize(labelsOnly(labels)));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('refuses a version that is not a safe integer', () => {
    const labels = {
      recordId: 'r',
      patientId: 'p',
      version: 1.5,
      resourceType: 'Observation',
      category: null,
      sensitivity: 'NORMAL' as const,
    };
    expect(() => labelsJcs(labels)).toThrow(TypeError);
  });
});
