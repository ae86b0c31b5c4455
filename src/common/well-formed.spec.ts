import fc from 'fast-check';
import { BadUserInputError } from './errors';
import { assertWellFormed, isStorableInstant, MAX_INPUT_DEPTH } from './well-formed';

function rejection(value: unknown, field = 'input'): BadUserInputError {
  try {
    assertWellFormed(value, field);
  } catch (e) {
    if (e instanceof BadUserInputError) return e;
    throw e;
  }
  throw new Error('accepted');
}

function nested(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

describe('assertWellFormed', () => {
  it('accepts ordinary text, numbers, dates and nested values', () => {
    expect(() =>
      assertWellFormed(
        { resource: { code: { text: 'Glucose 🩸 naïve' }, value: 5.4 }, at: new Date() },
        'input',
      ),
    ).not.toThrow();
  });

  it('rejects a number no double holds (1e400 reads as Infinity), naming the path', () => {
    for (const value of [Infinity, -Infinity, NaN]) {
      const e = rejection({ resource: { valueQuantity: { value } } });
      expect(e.details).toEqual({ field: 'input.resource.valueQuantity.value' });
      expect(e.message).toContain('finite number');
    }
  });

  it('rejects a NUL in a string, naming the path and not quoting the value', () => {
    const e = rejection({ resource: { code: { coding: [{ code: 'secret\u0000' }] } } });
    expect(e.details).toEqual({ field: 'input.resource.code.coding[0].code' });
    expect(e.message).toContain('NUL');
    expect(e.message).not.toContain('secret');
  });

  it('rejects a NUL in a property name, naming the object that holds it', () => {
    const e = rejection({ resource: { ['secret\u0000key']: 1 } });
    expect(e.details).toEqual({ field: 'input.resource' });
    expect(e.message).not.toContain('secret');
  });

  it('rejects unpaired surrogates but accepts paired ones', () => {
    expect(rejection('a\ud800b', 'reason').details).toEqual({ field: 'reason' });
    expect(rejection('\udc00', 'reason').details).toEqual({ field: 'reason' });
    expect(() => assertWellFormed('\ud83e\ude78', 'reason')).not.toThrow();
  });

  it(`accepts ${MAX_INPUT_DEPTH} levels of nesting and refuses one more`, () => {
    expect(() => assertWellFormed(nested(MAX_INPUT_DEPTH), 'input')).not.toThrow();
    const e = rejection(nested(MAX_INPUT_DEPTH + 1));
    expect(e.message).toContain(String(MAX_INPUT_DEPTH));
    expect(e.details.field).toMatch(/^input(\[0\])+$/);
  });

  it('refuses very deep nesting without overflowing the stack', () => {
    expect(rejection(nested(100_000)).code).toBe('BAD_USER_INPUT');
  });

  it('rejects dates PostgreSQL cannot store or that are invalid', () => {
    expect(rejection(new Date(Number.NaN), 'validUntil').details).toEqual({ field: 'validUntil' });
    expect(rejection(new Date('-010000-01-01T00:00:00Z'), 'validUntil').code).toBe(
      'BAD_USER_INPUT',
    );
    expect(isStorableInstant(8.64e15)).toBe(false);
    expect(isStorableInstant(Date.parse('2025-05-01T00:00:00Z'))).toBe(true);
  });

  it('does not quote an odd property name in the path', () => {
    const e = rejection({ ['patient name is Jane']: 'x\u0000' });
    expect(e.details).toEqual({ field: 'input[…]' });
  });

  it('accepts every well-formed JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 10 }), (v) => {
        const wellFormed = !JSON.stringify(v).includes('\\u0000');
        if (wellFormed) assertWellFormed(v, 'input');
      }),
    );
  });
});
