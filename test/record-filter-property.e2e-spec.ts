// The SQL record filter is a second expression of the consent rule: for random grant sets,
// PostgreSQL's answer over a universe of records (every resource type, category and
// sensitivity, with missing categories and awkward codes) is exactly the set of records that
// the chaincode's rule admits under some grant (PROPERTY_RUNS, default 1,000 cases).
import fc from 'fast-check';
import { ConsentGrant, recordAllowed, RecordFacts } from '../chaincode/src/policy';
import { grantsRecordFilterSql } from '../src/consent/policy-decision-point';
import { freshDatabase, TestDatabase } from './helpers/database';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 1000);
const TYPES = ['Observation', 'Condition', 'MedicationRequest', 'observation'];
const CATEGORIES = ['laboratory', 'vital-signs', "o'quote", 'ünïcode', 'a,b', 'NULL'];

const UNIVERSE: (RecordFacts & { id: number })[] = [];
for (const resourceType of TYPES) {
  for (const category of [null, ...CATEGORIES]) {
    for (const sensitivity of ['NORMAL', 'RESTRICTED'] as const) {
      UNIVERSE.push({ id: UNIVERSE.length, resourceType, category, sensitivity });
    }
  }
}

const grantArb: fc.Arbitrary<ConsentGrant> = fc.record({
  id: fc.uuid(),
  patientId: fc.constant('p'),
  grantee: fc.constant({ type: 'CLINICIAN' as const, id: 'dr' }),
  purpose: fc.constant('TREATMENT' as const),
  actions: fc.constant(['READ' as const]),
  resourceTypes: fc.subarray(TYPES),
  categories: fc.subarray(CATEGORIES),
  includeRestricted: fc.boolean(),
  validFrom: fc.constant('2026-01-01T00:00:00.000Z'),
  validUntil: fc.constant(null),
  status: fc.constant('ACTIVE' as const),
  revokedAt: fc.constant(null),
});

describe('the SQL record filter', () => {
  let db: TestDatabase;
  const values: string[] = [];
  const universeParams: unknown[] = [];

  beforeAll(async () => {
    db = await freshDatabase();
    for (const r of UNIVERSE) {
      universeParams.push(r.id, r.resourceType, r.category, r.sensitivity);
      const n = universeParams.length;
      values.push(`($${n - 3}::int, $${n - 2}::text, $${n - 1}::text, $${n}::text)`);
    }
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('admits exactly the records the chaincode rule admits, for any set of grants', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(grantArb, { minLength: 1, maxLength: 4 }), async (grants) => {
        const params = [...universeParams];
        const where = grantsRecordFilterSql(grants, 'r', params);
        const { rows } = await db.pool.query<{ id: number }>(
          `SELECT r.id FROM (VALUES ${values.join(', ')})
             AS r(id, resource_type, category, sensitivity)
           WHERE ${where} ORDER BY r.id`,
          params,
        );
        const expected = UNIVERSE.filter((r) => grants.some((g) => recordAllowed(g, r))).map(
          (r) => r.id,
        );
        expect(rows.map((r) => r.id)).toEqual(expected);
      }),
      { numRuns: RUNS },
    );
  });
});
