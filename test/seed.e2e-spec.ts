// `custodia seed --synthetic` as the API sees it: the cohort goes in through the real
// services (validated, encrypted, anchored), lands at its sites, reads back VERIFIED, and a
// second run adds nothing.
import type { Actor } from '../src/auth';
import {
  generateCohort,
  seedCohort,
  SeedSummary,
  siteId,
  syntheticPatientId,
  syntheticUserId,
} from '../src/federated/synthetic';
import { RecordsService } from '../src/records';
import { TestApi } from './helpers/test-api';

const OPTIONS = { patients: 12, sites: 3, seed: 42, alpha: 0.5 };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const RECORDS = `query($id: ID!) { records(patientId: $id, first: 20) {
  items { resourceType integrity resource } } }`;

type Counts = Record<string, Record<string, number>>;

describe('seeding a synthetic cohort', () => {
  const cohort = generateCohort(OPTIONS);
  let api: TestApi;
  let summary: SeedSummary;
  const progress: string[] = [];

  /** Records per patient id and resource type, straight from the table. */
  async function recordCounts(): Promise<Counts> {
    const { rows } = await api.db.query<{ patient_id: string; resource_type: string; n: string }>(
      `SELECT patient_id, resource_type, count(*) AS n FROM records
       GROUP BY patient_id, resource_type`,
    );
    const counts: Counts = {};
    for (const r of rows) (counts[r.patient_id] ??= {})[r.resource_type] = Number(r.n);
    return counts;
  }

  const expectedCounts = (): Counts =>
    Object.fromEntries(
      summary.patients.map((p, i) => [
        p.id,
        { Patient: 1, Observation: 5, ...(cohort.patients[i].label ? { Condition: 1 } : {}) },
      ]),
    );

  beforeAll(async () => {
    api = await TestApi.start();
    summary = await seedCohort(api.server.app, OPTIONS, (line) => progress.push(line));
  });
  afterAll(() => api?.stop());

  it('answers with the JSON shape of the contract: organisations, then patients', () => {
    const printed = JSON.parse(JSON.stringify(summary)) as SeedSummary;
    expect(Object.keys(printed)).toEqual(['organizations', 'patients']);
    expect(printed.organizations).toEqual([{ id: 'site-1' }, { id: 'site-2' }, { id: 'site-3' }]);
    expect(printed.patients).toHaveLength(OPTIONS.patients);
    printed.patients.forEach((p, i) => {
      expect(Object.keys(p)).toEqual(['id', 'userId', 'organizationId']);
      expect(p.id).toMatch(UUID);
      // The same seed prints the same cohort on any fresh instance, ids included.
      expect(p.id).toBe(syntheticPatientId(p.userId, api.config.orgId));
      expect(p.userId).toBe(syntheticUserId(OPTIONS, i));
      expect(p.organizationId).toBe(siteId(cohort.patients[i].site));
    });
    expect(new Set(printed.patients.map((p) => p.id)).size).toBe(OPTIONS.patients);
    expect(progress.at(-1)).toMatch(/^created \d+ records, 0 were already there$/);
  });

  it('creates the organisations and registers every patient at its site', async () => {
    const orgs = await api.db.query<{ id: string }>(
      `SELECT id FROM organizations WHERE id LIKE 'site-%' ORDER BY id`,
    );
    expect(orgs.rows.map((r) => r.id)).toEqual(['site-1', 'site-2', 'site-3']);
    const { rows } = await api.db.query<{ id: string; organization_id: string }>(
      'SELECT p.id, p.organization_id FROM patients p JOIN users u ON u.patient_id = p.id',
    );
    const atSite = Object.fromEntries(rows.map((r) => [r.id, r.organization_id]));
    for (const p of summary.patients) expect(atSite[p.id]).toBe(p.organizationId);
  });

  it('stores a Patient and five Observations each, and the Condition for positives', async () => {
    expect(await recordCounts()).toEqual(expectedCounts());
    expect(cohort.patients.some((p) => p.label === 1)).toBe(true);
  });

  it('anchors every record: the ledger verifies each one', async () => {
    const records = api.server.app.get(RecordsService);
    const { rows } = await api.db.query<{ id: string; patient_id: string }>(
      'SELECT id, patient_id FROM records',
    );
    const owner = new Map(summary.patients.map((p) => [p.id, p]));
    const statuses = await Promise.all(
      rows.map(async (r) => {
        const p = owner.get(r.patient_id)!;
        const actor: Actor = { id: p.userId, roles: ['PATIENT'], organizationId: p.organizationId };
        return (await records.verify(actor, r.id)).status;
      }),
    );
    expect(new Set(statuses)).toEqual(new Set(['VERIFIED']));
  });

  it('lets a seeded patient read their records over GraphQL with their own identity', async () => {
    const i = cohort.patients.findIndex((p) => p.label === 1);
    const p = summary.patients[i];
    const token = await api.token(p.userId, 'PATIENT', p.organizationId);
    type Item = { resourceType: string; integrity: string; resource: Record<string, unknown> };
    const { records } = await api.ok<{ records: { items: Item[] } }>(RECORDS, { id: p.id }, token);
    expect(records.items).toHaveLength(7);
    expect(records.items.every((r) => r.integrity === 'VERIFIED')).toBe(true);
    const glucose = records.items.find(
      (r) => (r.resource.code as { coding?: { code: string }[] })?.coding?.[0].code === '2345-7',
    );
    expect(glucose?.resource.valueQuantity).toMatchObject({
      value: cohort.patients[i].features.glucose,
      unit: 'mg/dL',
    });
  });

  it('adds nothing when run again with the same seed', async () => {
    const blocks = async () =>
      Number((await api.db.query('SELECT count(*) AS n FROM ledger_blocks')).rows[0].n);
    const before = await blocks();
    const lines: string[] = [];
    const again = await seedCohort(api.server.app, OPTIONS, (line) => lines.push(line));
    expect(again).toEqual(summary);
    expect(await recordCounts()).toEqual(expectedCounts());
    expect(await blocks()).toBe(before);
    expect(lines.at(-1)).toMatch(/^created 0 records, \d+ were already there$/);
  });

  it('gives a fresh instance seeded alike the same ids', async () => {
    const other = await TestApi.start();
    try {
      expect(await seedCohort(other.server.app, OPTIONS)).toEqual(summary);
    } finally {
      await other.stop();
    }
  });

  it('completes a patient whose seeding was interrupted after the first record', async () => {
    const p = summary.patients[0];
    await api.db.query(`DELETE FROM records WHERE patient_id = $1 AND resource_type <> 'Patient'`, [
      p.id,
    ]);
    await seedCohort(api.server.app, OPTIONS);
    expect(await recordCounts()).toEqual(expectedCounts());
  });
});
