// Property tests of the decision point against a direct reading of the consent rule: for
// random grants (revoked or not, time windows, record filters, grantees), the records a
// clinician gets are exactly those some grant permits, and CONSENT_REQUIRED exactly when no
// grant applies. In-process over the real database (PROPERTY_RUNS, default 1,000 cases),
// and over GraphQL (PROPERTY_RUNS_HTTP, default 100 cases).
import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import {
  AccessRequest,
  ConsentGrant,
  grantApplies,
  permits,
  RecordFacts,
} from '../chaincode/src/policy';
import { Actor } from '../src/auth';
import { ConsentRequiredError } from '../src/common/errors';
import { ConsentProjection } from '../src/consent';
import { RecordsService } from '../src/records';
import { condition, observation } from './helpers/fhir';
import { codes, TestApi } from './helpers/test-api';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 1000);
const HTTP_RUNS = Number(process.env.PROPERTY_RUNS_HTTP ?? 100);
const CLINICIAN = 'dr-prop';
const ORG = 'org-prop';
const CONFIDENTIAL = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';
const OBS_CAT = 'http://terminology.hl7.org/CodeSystem/observation-category';

const restricted = <T extends object>(r: T) => ({
  ...r,
  meta: { security: [{ system: CONFIDENTIAL, code: 'R' }] },
});
const vital = {
  ...observation('8480-6', 120, 'mm[Hg]'),
  category: [{ coding: [{ system: OBS_CAT, code: 'vital-signs' }] }],
};
const uncategorised = { ...observation('39156-5', 27), category: undefined };
const diagnosis = {
  ...condition('38341003'),
  category: [
    {
      coding: [
        {
          system: 'http://terminology.hl7.org/CodeSystem/condition-category',
          code: 'encounter-diagnosis',
        },
      ],
    },
  ],
};
const RESOURCES = [
  observation(),
  restricted(observation('4548-4', 7)),
  vital,
  uncategorised,
  condition(),
  restricted(condition('73211009')),
  diagnosis,
];

type Offset = -7200 | -120 | 120 | 7200;
const offset = fc.constantFrom<Offset>(-7200, -120, 120, 7200);

const grantArb = fc.record({
  grantee: fc.oneof(
    fc.record({
      type: fc.constant('CLINICIAN' as const),
      id: fc.constantFrom(CLINICIAN, 'dr-other'),
    }),
    fc.record({
      type: fc.constant('ORGANIZATION' as const),
      id: fc.constantFrom(ORG, 'org-other'),
    }),
  ),
  purpose: fc.constantFrom('TREATMENT' as const, 'RESEARCH' as const),
  actions: fc.subarray(['READ', 'WRITE', 'TRAIN'] as const, { minLength: 1 }),
  resourceTypes: fc.subarray(['Observation', 'Condition', 'AllergyIntolerance']),
  categories: fc.subarray([
    'laboratory',
    'vital-signs',
    'problem-list-item',
    'encounter-diagnosis',
  ]),
  includeRestricted: fc.boolean(),
  from: offset,
  until: fc.option(offset, { nil: null }),
  revoked: fc.boolean(),
});
type GrantSpec = typeof grantArb extends fc.Arbitrary<infer T> ? T : never;
const caseArb = fc.record({
  grants: fc.array(grantArb, { maxLength: 4 }),
  organizationId: fc.constantFrom(ORG, 'org-other', null),
});

describe('the decision point, against the consent rule', () => {
  let api: TestApi;
  let patientId: string;
  let records: { id: string; facts: RecordFacts }[];

  beforeAll(async () => {
    api = await TestApi.start();
    const patient = await api.token('prop-patient', 'PATIENT');
    patientId = (
      await api.ok<{ registerPatient: { id: string } }>(
        'mutation { registerPatient { id } }',
        {},
        patient,
      )
    ).registerPatient.id;
    records = [];
    for (const r of RESOURCES) {
      const created = await api.ok<{
        createRecord: {
          id: string;
          resourceType: string;
          category: string | null;
          sensitivity: 'NORMAL' | 'RESTRICTED';
        };
      }>(
        'mutation($r: JSON!) { createRecord(input: {resource: $r}) { id resourceType category sensitivity } }',
        { r },
        patient,
      );
      const c = created.createRecord;
      records.push({
        id: c.id,
        facts: { resourceType: c.resourceType, category: c.category, sensitivity: c.sensitivity },
      });
    }
  });
  afterAll(() => api?.stop());

  /** Replaces the patient's projected grants with `specs` (windows relative to now). */
  async function project(specs: GrantSpec[]): Promise<ConsentGrant[]> {
    const now = Date.now();
    const grants: ConsentGrant[] = specs
      .filter((s) => s.until === null || s.until > s.from)
      .map((s) => ({
        id: randomUUID(),
        patientId,
        grantee: s.grantee,
        purpose: s.purpose,
        actions: [...s.actions],
        resourceTypes: [...s.resourceTypes],
        categories: [...s.categories],
        includeRestricted: s.includeRestricted,
        validFrom: new Date(now + s.from * 1000).toISOString(),
        validUntil: s.until === null ? null : new Date(now + s.until * 1000).toISOString(),
        status: s.revoked ? 'REVOKED' : 'ACTIVE',
        revokedAt: s.revoked ? new Date(now).toISOString() : null,
      }));
    await api.db.query('DELETE FROM consent_grants WHERE patient_id = $1', [patientId]);
    const projection = api.server.app.get(ConsentProjection);
    for (const g of grants) {
      await projection.apply({
        ...g,
        createdAt: new Date(now).toISOString(),
        txId: 'property-test',
        writtenBy: 'org1',
        revokedTxId: null,
      });
    }
    return grants;
  }

  /** What the rule itself says: null for CONSENT_REQUIRED, else the permitted record ids. */
  function expected(grants: ConsentGrant[], organizationId: string | null): string[] | null {
    const request: AccessRequest = {
      actor: { id: CLINICIAN, organizationId },
      patientId,
      action: 'READ',
      purpose: 'TREATMENT',
      at: new Date(),
    };
    if (!grants.some((g) => grantApplies(g, request))) return null;
    return records
      .filter((r) => grants.some((g) => permits(g, { ...request, record: r.facts })))
      .map((r) => r.id)
      .sort();
  }

  it(`equals a direct reading of the rule (${RUNS} random cases, in-process)`, async () => {
    const service = api.server.app.get(RecordsService);
    await fc.assert(
      fc.asyncProperty(caseArb, async ({ grants: specs, organizationId }) => {
        const grants = await project(specs);
        const actor: Actor = {
          id: CLINICIAN,
          roles: ['CLINICIAN'],
          organizationId: organizationId ?? undefined,
        };
        const want = expected(grants, organizationId);
        let got: string[] | null;
        try {
          got = (await service.list(actor, patientId, { first: 100 })).items
            .map((r) => r.id)
            .sort();
        } catch (e) {
          if (!(e instanceof ConsentRequiredError)) throw e;
          got = null;
        }
        expect(got).toEqual(want);
      }),
      { numRuns: RUNS },
    );
  });

  it(`never returns a record the rule denies over GraphQL (${HTTP_RUNS} random cases)`, async () => {
    const LIST = 'query($p: ID!) { records(patientId: $p, first: 100) { items { id } } }';
    await fc.assert(
      fc.asyncProperty(caseArb, async ({ grants: specs, organizationId }) => {
        const grants = await project(specs);
        const token = await api.token(CLINICIAN, 'CLINICIAN', organizationId ?? undefined);
        const want = expected(grants, organizationId);
        const res = await api.gql<{ records: { items: { id: string }[] } }>(
          LIST,
          { p: patientId },
          token,
        );
        if (res.errors && want !== null) throw new Error(JSON.stringify(res.errors));
        if (want === null) expect(codes(res)).toEqual(['CONSENT_REQUIRED']);
        else expect(res.data!.records.items.map((r) => r.id).sort()).toEqual(want);
      }),
      { numRuns: HTTP_RUNS },
    );
  });
});
