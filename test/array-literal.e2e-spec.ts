// Bulk parameters are sent as array literals written here (src/database/array-literal.ts),
// not by node-postgres: whatever the elements, PostgreSQL must read back exactly the values
// given, as it does node-postgres's own literal of them.
import fc from 'fast-check';
import { arrayLiteral, type ArrayElement } from '../src/database/array-literal';
import { freshDatabase, TestDatabase } from './helpers/database';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 500);

/** Text PostgreSQL can hold (no NUL), weighted towards what a literal must quote or escape. */
const awkward = fc.constantFrom(
  '',
  ' ',
  'NULL',
  'null',
  'Null',
  '"',
  '\\',
  '{',
  '}',
  ',',
  'a b',
  'a,b',
  '{x}',
  '\\"',
  "o'quote",
  'ünïcode',
  '日本',
  '😀',
  '\t\n',
  'auth0|abc',
  'a@b.example',
);
const text = fc.oneof(
  awkward,
  fc.uuid(),
  fc.string({ unit: 'grapheme' }).map((s) => s.replace(/\0/g, '')),
  fc.string({ unit: 'binary' }).map((s) => s.replace(/\0/g, '').replace(/[\uD800-\uDFFF]/g, '')),
);

describe('array literals', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await freshDatabase();
  });
  afterAll(() => db?.drop());

  const roundTrip = async (values: ArrayElement[], type: string) => {
    const { rows } = await db.pool.query(`SELECT $1::${type}[] AS a`, [arrayLiteral(values)]);
    return rows[0].a as unknown[];
  };

  it('gives PostgreSQL back exactly the texts and nulls it was given', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.option(text, { nil: null }), { maxLength: 12 }), async (v) => {
        expect(await roundTrip(v, 'text')).toEqual(v);
      }),
      { numRuns: RUNS },
    );
  });

  it('writes numbers, booleans and ids as PostgreSQL reads them', async () => {
    expect(await roundTrip([1, -2, 9007199254740991, null], 'bigint')).toEqual([
      '1',
      '-2',
      '9007199254740991',
      null,
    ]);
    expect(await roundTrip([true, false, null], 'boolean')).toEqual([true, false, null]);
    const id = '0f8fad5b-d9cb-469f-a165-70867728950e';
    expect(await roundTrip([id, undefined], 'uuid')).toEqual([id, null]);
    expect(await roundTrip([], 'text')).toEqual([]);
  });

  it('refuses a number it cannot write', () => {
    expect(() => arrayLiteral([Number.NaN])).toThrow(RangeError);
    expect(() => arrayLiteral([Infinity])).toThrow(RangeError);
  });
});
