// Two organisations, two instances of the API on one Fabric network: Org1's and Org2's, each
// with its own PostgreSQL and its own peer identity. Consent is global (ARCHITECTURE.md §1):
// a grant or revocation made through Org1 governs, at Org2, the records Org2 holds of the
// patient — records never leave the organisation that holds them.
import { ConsentReconciliation } from '../../src/consent';
import { PatientsService } from '../../src/patients';
import { generateKeyPairSync } from 'node:crypto';
import { DataSource } from 'typeorm';
import { observation } from '../helpers/fhir';
import { codes, TestApi } from '../helpers/test-api';
import { applied, startOrganisations } from './organisations';

const REGISTER = `mutation { registerPatient(displayName: "Alice") { id } }`;
const CREATE = `mutation($input: CreateRecordInput!) { createRecord(input: $input) { id } }`;
const LIST = `query($p: ID!) { records(patientId: $p) { items { id resource } } }`;
const GRANT = `mutation($input: GrantConsentInput!) { grantConsent(input: $input) { id status } }`;
const REVOKE = `mutation($id: ID!) { revokeConsent(id: $id) { id status } }`;

/** Enforcement at the other organisation within this long of the commit (issue 12). */
const PROPAGATION_MS = 2_000;

describe('two organisations, each with its own API and database, on one Fabric network', () => {
  let org1: TestApi;
  let org2: TestApi;
  let patientId: string;
  let alice1: string;
  let alice2: string;
  let bob: string;
  let recordId: string;

  beforeAll(async () => {
    [org1, org2] = await startOrganisations();
    alice1 = await org1.token('alice', 'PATIENT');
    patientId = (await org1.ok<{ registerPatient: { id: string } }>(REGISTER, {}, alice1))
      .registerPatient.id;
    // Org2's registration desk admits Alice under the id the ledger knows her by; what Org2
    // records of her stays in Org2's database, encrypted under Org2's keys.
    await org2.server.app.get(PatientsService).admit('alice-at-org2', patientId);
    alice2 = await org2.token('alice-at-org2', 'PATIENT');
    recordId = (
      await org2.ok<{ createRecord: { id: string } }>(
        CREATE,
        { input: { resource: observation('2345-7', 6.1) } },
        alice2,
      )
    ).createRecord.id;
    bob = await org2.token('dr-bob', 'CLINICIAN', 'Org2MSP');
  });

  afterAll(async () => {
    await Promise.all([org1?.stop(), org2?.stop()]);
  });

  it('runs each instance on its own database and as its own organisation', async () => {
    const servers = await Promise.all(
      [org1, org2].map(async (api) => {
        const viaApp = (await api.server.app.get(DataSource).query('SHOW port')) as {
          port: string;
        }[];
        const direct = (await api.db.query('SHOW port')).rows as { port: string }[];
        expect(viaApp[0].port).toBe(direct[0].port);
        return direct[0].port;
      }),
    );
    expect(servers[0]).not.toBe(servers[1]);
    expect(org1.config.orgId).toBe('Org1MSP');
    expect(org2.config.orgId).toBe('Org2MSP');
    // Alice's Org2 record never reached Org1.
    const held = (api: TestApi) =>
      api.db.query('SELECT count(*)::int AS n FROM records WHERE patient_id = $1', [patientId]);
    expect((await held(org1)).rows[0].n).toBe(0);
    expect((await held(org2)).rows[0].n).toBe(1);
  });

  it('enforces at Org2, within 2 s, a grant made through Org1, and a revocation likewise', async () => {
    expect(codes(await org2.gql(LIST, { p: patientId }, bob))).toEqual(['CONSENT_REQUIRED']);

    const granted = applied(
      org2,
      (e) =>
        e.name === 'ConsentGranted' &&
        (e.payload as { patientId?: string }).patientId === patientId,
    );
    const { grantConsent } = await org1.ok<{ grantConsent: { id: string; status: string } }>(
      GRANT,
      {
        input: {
          granteeType: 'CLINICIAN',
          granteeId: 'dr-bob',
          purpose: 'TREATMENT',
          actions: ['READ'],
        },
      },
      alice1,
    );
    const committed = Date.now();
    expect(grantConsent.status).toBe('ACTIVE');
    expect((await granted) - committed).toBeLessThan(PROPAGATION_MS);
    const page = await org2.ok<{ records: { items: { id: string; resource: unknown }[] } }>(
      LIST,
      { p: patientId },
      bob,
    );
    expect(Date.now() - committed).toBeLessThan(PROPAGATION_MS);
    expect(page.records.items.map((r) => r.id)).toEqual([recordId]);
    expect(page.records.items[0].resource).toMatchObject({ valueQuantity: { value: 6.1 } });

    const revoked = applied(
      org2,
      (e) => e.name === 'ConsentRevoked' && (e.payload as { id?: string }).id === grantConsent.id,
    );
    await org1.ok(REVOKE, { id: grantConsent.id }, alice1);
    const revokedAt = Date.now();
    expect((await revoked) - revokedAt).toBeLessThan(PROPAGATION_MS);
    expect(codes(await org2.gql(LIST, { p: patientId }, bob))).toEqual(['CONSENT_REQUIRED']);
    expect(Date.now() - revokedAt).toBeLessThan(PROPAGATION_MS);
  });

  it("refuses at Org2 a token that claims Org1's organisation (ORG_CLAIMS=own)", async () => {
    // Org2's identity provider speaks for Org2 only: otherwise an ORGANIZATION grant to Org1
    // would admit whomever it says belongs to Org1.
    const claimed = await org2.token('dr-mallory', 'CLINICIAN', 'Org1MSP');
    expect(codes(await org2.gql(LIST, { p: patientId }, claimed))).toEqual(['UNAUTHENTICATED']);
  });

  it("logs Org2's read under the grant made through Org1, which the ledger confirms", async () => {
    const { rows } = await org2.db.query(
      `SELECT decision, consent_id FROM access_events
       WHERE patient_id = $1 AND actor_id = 'dr-bob' ORDER BY seq`,
      [patientId],
    );
    expect(rows.map((r) => r.decision)).toEqual(['DENY', 'PERMIT', 'DENY']);
    const check = await org2.ok<{
      verifyAccessLog: {
        ok: boolean;
        eventsChecked: number;
        permitsJustified: number;
        problems: string[];
      };
    }>(
      `query($p: ID!) { verifyAccessLog(patientId: $p) { ok eventsChecked permitsJustified problems } }`,
      { p: patientId },
      alice2,
    );
    expect(check.verifyAccessLog).toMatchObject({ ok: true, permitsJustified: 1, problems: [] });
  });

  it('lets only the organisation Alice registered with bind her first key: Org2, having admitted her, may not', async () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const { kty, crv, x, y } = publicKey.export({ format: 'jwk' });
    const REGISTER_KEY = `mutation($k: JSON!) { registerPatientKey(publicKeyJwk: $k) { id } }`;
    // Through Org2 (an operator there could as well link any subject to her id): refused by
    // the chaincode on both peers, so no key of Org2's choosing can sign grants as Alice.
    expect(codes(await org2.gql(REGISTER_KEY, { k: { kty, crv, x, y } }, alice2))).toEqual([
      'FORBIDDEN',
    ]);
    // Through Org1, her home: taken.
    expect(
      (await org1.gql(REGISTER_KEY, { k: { kty, crv, x, y } }, alice1)).errors,
    ).toBeUndefined();
  });

  it("leaves both instances' consent projections equal to the ledger", async () => {
    for (const api of [org1, org2]) {
      const report = await api.server.app.get(ConsentReconciliation).reconcile();
      expect(report).toMatchObject({ missing: [], extra: [], changed: [] });
      expect(report!.projectedRows).toBe(report!.ledgerGrants);
    }
  });
});
