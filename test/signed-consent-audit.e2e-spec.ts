// What a patient and an auditor learn about signed consent after the fact: each PERMIT in the
// access log says whether the grant behind it was patient-signed (from the ledger, whatever the
// database claims), the consents listing does not show a grant the decision point ignores as
// ACTIVE, and verify-ledger reconciles the signed-only settings table with the ledger.
import { CompactSign, exportJWK, generateKeyPair } from 'jose';
import { ConsentReconciliation } from '../src/consent';
import { SignedConsentSettings, settingMac } from '../src/consent/signed-consent-settings';
import { RowAuthenticator } from '../src/records/crypto';
import { codes, TestApi } from './helpers/test-api';

const GRANT = `mutation($input: GrantConsentInput!) { grantConsent(input: $input) { id patientSigned status } }`;
const PAYLOAD = `query($input: GrantConsentInput!) { consentPayload(input: $input) }`;
const REGISTER = `mutation($jwk: JSON!) { registerPatientKey(publicKeyJwk: $jwk) { id } }`;
const REQUIRE = `mutation($on: Boolean!, $sig: String) {
  requireSignedConsent(require: $on, signature: $sig) { requireSignedConsent } }`;
const SETTING_PAYLOAD = `query($on: Boolean!) { settingPayload(requireSignedConsent: $on) }`;
const READ = `query($p: ID!) { records(patientId: $p) { items { id } } }`;
const LOG = `query($p: ID!) { accessLog(patientId: $p, first: 100) {
  items { actorId decision consentId breakGlass purpose grantPatientSigned } } }`;
const VERIFY = `query($p: ID!) { verifyAccessLog(patientId: $p) {
  ok permitsJustified permitsPatientSigned problems } }`;
const CONSENTS = `query($status: ConsentStatus) { consents(status: $status) { id status patientSigned } }`;

interface LoggedEvent {
  actorId: string;
  decision: 'PERMIT' | 'DENY';
  consentId: string | null;
  breakGlass: boolean;
  purpose: string;
  grantPatientSigned: boolean | null;
}

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

/** A compact JWS with a detached payload (RFC 7515 appendix F): header..signature. */
async function signWith(key: PrivateKey, payload: string): Promise<string> {
  const jws = await new CompactSign(new TextEncoder().encode(payload))
    .setProtectedHeader({ alg: 'ES256' })
    .sign(key);
  const [h, , s] = jws.split('.');
  return `${h}..${s}`;
}

describe('signed consent in the audit trail, the listing and verify-ledger', () => {
  let api: TestApi;
  let patient: string;
  let patientId: string;
  let key: PrivateKey;
  let signedGrant: string;
  let unsignedGrant: string;
  const doctor = (sub: string) => api.token(sub, 'CLINICIAN', 'org1');

  async function reads(sub: string): Promise<number | string[]> {
    const res = await api.gql<{ records: { items: { id: string }[] } }>(
      READ,
      { p: patientId },
      await doctor(sub),
    );
    return res.data?.records.items.length ?? codes(res);
  }

  async function accessLog(): Promise<LoggedEvent[]> {
    return (await api.ok<{ accessLog: { items: LoggedEvent[] } }>(LOG, { p: patientId }, patient))
      .accessLog.items;
  }

  async function verifyAccessLog() {
    return (
      await api.ok<{
        verifyAccessLog: {
          ok: boolean;
          permitsJustified: number;
          permitsPatientSigned: number;
          problems: string[];
        };
      }>(VERIFY, { p: patientId }, patient)
    ).verifyAccessLog;
  }

  async function listed(token: string, status?: string) {
    return (
      await api.ok<{ consents: { id: string; status: string; patientSigned: boolean }[] }>(
        CONSENTS,
        { status },
        token,
      )
    ).consents;
  }

  beforeAll(async () => {
    // No periodic reconciliation: what the tests tamper with stays tampered until checked.
    api = await TestApi.start({ CONSENT_RECONCILE_INTERVAL_MS: '0' });
    ({ token: patient, patientId } = await api.patientWithRecord('ines'));
    const pair = await generateKeyPair('ES256', { extractable: true });
    key = pair.privateKey;
    await api.ok(REGISTER, { jwk: await exportJWK(pair.publicKey) }, patient);

    const input = {
      id: 'audit-signed-1',
      granteeType: 'CLINICIAN',
      granteeId: 'dr-signed',
      purpose: 'TREATMENT',
      actions: ['READ'],
    };
    const { consentPayload } = await api.ok<{ consentPayload: string }>(
      PAYLOAD,
      { input },
      patient,
    );
    const signature = await signWith(key, consentPayload);
    ({
      grantConsent: { id: signedGrant },
    } = await api.ok<{ grantConsent: { id: string } }>(
      GRANT,
      { input: { ...input, signature } },
      patient,
    ));
    unsignedGrant = await api.grantRead(patient, 'dr-unsigned');
  });

  afterAll(() => api?.stop());

  it('flags each PERMIT by whether its grant was signed, and counts them in verifyAccessLog', async () => {
    expect(await reads('dr-signed')).toBe(1);
    expect(await reads('dr-unsigned')).toBe(1);
    expect(await reads('dr-unsigned')).toBe(1);
    expect(await reads('dr-nobody')).toEqual(['CONSENT_REQUIRED']);

    const events = await accessLog();
    const flags = (actor: string) =>
      events.filter((e) => e.actorId === actor).map((e) => [e.decision, e.grantPatientSigned]);
    expect(flags('dr-signed')).toEqual([['PERMIT', true]]);
    expect(flags('dr-unsigned')).toEqual([
      ['PERMIT', false],
      ['PERMIT', false],
    ]);
    expect(flags('dr-nobody')).toEqual([['DENY', null]]);

    const check = await verifyAccessLog();
    expect(check).toMatchObject({ ok: true, permitsJustified: 3, permitsPatientSigned: 1 });
  });

  it("takes the flag from the ledger: flipping the projection's patient_signed changes nothing", async () => {
    await api.db.query(
      `UPDATE consent_grants SET patient_signed = NOT patient_signed WHERE id = ANY($1::text[])`,
      [[signedGrant, unsignedGrant]],
    );
    try {
      const flipped = await api.db.query(
        `SELECT id, patient_signed FROM consent_grants WHERE id = ANY($1::text[]) ORDER BY id`,
        [[signedGrant, unsignedGrant]],
      );
      expect(Object.fromEntries(flipped.rows.map((r) => [r.id, r.patient_signed]))).toEqual({
        [signedGrant]: false,
        [unsignedGrant]: true,
      });
      const events = await accessLog();
      const signedOf = (id: string) =>
        events.filter((e) => e.consentId === id).map((e) => e.grantPatientSigned);
      expect(signedOf(signedGrant)).toEqual([true]);
      expect(signedOf(unsignedGrant)).toEqual([false, false]);
      expect(await verifyAccessLog()).toMatchObject({
        permitsJustified: 3,
        permitsPatientSigned: 1,
      });
    } finally {
      await api.db.query(
        `UPDATE consent_grants SET patient_signed = NOT patient_signed WHERE id = ANY($1::text[])`,
        [[signedGrant, unsignedGrant]],
      );
    }
  });

  it('lists the unsigned PERMITs by grant in verify-ledger, with their event numbers', async () => {
    const result = await api.verifyLedger();
    expect(result.ok).toBe(true);
    expect(result.text).toMatch(/; 1 under grants the patient signed\./);
    expect(result.text).toMatch(
      /Permitted accesses under grants the patient did not sign: 2, under 1 grant\(s\):/,
    );
    expect(result.text).toMatch(
      new RegExp(
        `UNSIGNED: grant ${unsignedGrant} \\(patient ${patientId}\\): 2 PERMIT\\(s\\), access events \\d+, \\d+$`,
        'm',
      ),
    );
    expect(result.text).not.toContain(`grant ${signedGrant}`);
  });

  describe('once the patient accepts only signed grants', () => {
    beforeAll(async () => {
      await api.ok(REQUIRE, { on: true }, patient);
    });

    it('lists the unsigned grant as SUSPENDED, not ACTIVE, to the patient and the clinician', async () => {
      expect(await reads('dr-unsigned')).toEqual(['CONSENT_REQUIRED']);
      const mine = await listed(patient);
      expect(mine.find((g) => g.id === unsignedGrant)).toMatchObject({
        status: 'SUSPENDED',
        patientSigned: false,
      });
      expect(mine.find((g) => g.id === signedGrant)?.status).toBe('ACTIVE');
      expect((await listed(patient, 'ACTIVE')).map((g) => g.id)).toEqual([signedGrant]);
      expect((await listed(patient, 'SUSPENDED')).map((g) => g.id)).toEqual([unsignedGrant]);
      expect((await listed(await doctor('dr-unsigned'))).map((g) => g.status)).toEqual([
        'SUSPENDED',
      ]);
      // The DENY it caused carries no grant, so no flag.
      const last = (await accessLog()).find((e) => e.actorId === 'dr-unsigned');
      expect(last).toMatchObject({ decision: 'DENY', grantPatientSigned: null });
    });

    it('verifies clean with the setting compared to the ledger', async () => {
      const result = await api.verifyLedger();
      expect(result.text).toMatch(
        /Signed-only settings: 1 rows compared with 1 settings on the ledger\./,
      );
      expect(result.ok).toBe(true);
    });

    it('reports a setting flipped back to not signed-only, and repairs it from the ledger', async () => {
      await api.db.query(
        `UPDATE signed_consent_settings SET require_signed = false WHERE patient_id = $1`,
        [patientId],
      );
      const broken = await api.verifyLedger();
      expect(broken.ok).toBe(false);
      expect(broken.text).toContain(
        `BROKEN: signed-only settings table has 1 patient setting(s) that differ from the ledger (${patientId}); repaired from the ledger`,
      );
      const { rows } = await api.db.query(
        'SELECT require_signed FROM signed_consent_settings WHERE patient_id = $1',
        [patientId],
      );
      expect(rows).toEqual([{ require_signed: true }]);
      expect((await api.verifyLedger()).ok).toBe(true);
    });

    it('reports a deleted setting, which gives the unsigned grant nothing, and restores it', async () => {
      await api.db.query('DELETE FROM signed_consent_settings WHERE patient_id = $1', [patientId]);
      // The API holds what the ledger told it: the deletion buys a database writer nothing.
      expect(await reads('dr-unsigned')).toEqual(['CONSENT_REQUIRED']);
      expect((await listed(patient, 'SUSPENDED')).map((g) => g.id)).toEqual([unsignedGrant]);
      const broken = await api.verifyLedger();
      expect(broken.ok).toBe(false);
      expect(broken.text).toContain(
        `BROKEN: signed-only settings table lacks 1 patient setting(s) the ledger holds (${patientId}); repaired from the ledger`,
      );
      expect(await reads('dr-unsigned')).toEqual(['CONSENT_REQUIRED']);
      expect((await listed(patient, 'SUSPENDED')).map((g) => g.id)).toEqual([unsignedGrant]);
    });

    it('gives an older copy of the setting put back (its MAC valid) nothing either', async () => {
      const { rows: before } = await api.db.query(
        'SELECT * FROM signed_consent_settings WHERE patient_id = $1',
        [patientId],
      );
      // The row as it was before signed-only was turned on: an off setting, one version older.
      const older = before[0].setting_version - 1;
      await api.db.query(
        `UPDATE signed_consent_settings SET require_signed = false, setting_version = $2, mac = $3
         WHERE patient_id = $1`,
        [
          patientId,
          older,
          settingMac(api.server.app.get(RowAuthenticator), {
            patientId,
            requireSigned: false,
            settingVersion: older,
          }),
        ],
      );
      expect(await reads('dr-unsigned')).toEqual(['CONSENT_REQUIRED']);
      await api.server.app.get(ConsentReconciliation).reconcile();
      expect((await api.verifyLedger()).ok).toBe(true);
    });

    it("is repaired by the server's own reconciliation too (run at start-up and on schedule)", async () => {
      await api.db.query('DELETE FROM signed_consent_settings WHERE patient_id = $1', [patientId]);
      expect(await reads('dr-unsigned')).toEqual(['CONSENT_REQUIRED']);
      const report = await api.server.app.get(ConsentReconciliation).reconcile();
      expect(report).not.toBeNull();
      expect(await reads('dr-unsigned')).toEqual(['CONSENT_REQUIRED']);
      expect((await api.verifyLedger()).ok).toBe(true);
    });

    it('reports a setting for a patient the ledger never set one for, and deletes it', async () => {
      await api.db.query(
        `INSERT INTO signed_consent_settings (patient_id, require_signed, setting_version, ledger_tx_id, mac)
         SELECT 'made-up-patient', require_signed, setting_version, ledger_tx_id, mac
         FROM signed_consent_settings WHERE patient_id = $1`,
        [patientId],
      );
      const broken = await api.verifyLedger();
      expect(broken.ok).toBe(false);
      expect(broken.text).toContain(
        'BROKEN: signed-only settings table holds 1 patient setting(s) the ledger never wrote (made-up-patient); repaired from the ledger',
      );
      const { rowCount } = await api.db.query(
        `SELECT 1 FROM signed_consent_settings WHERE patient_id = 'made-up-patient'`,
      );
      expect(rowCount).toBe(0);
    });

    it('names a read under the unsigned grant while signed-only was on, even when the PDP was fooled', async () => {
      // This stands for a bug or bypass in the decision point: the PDP is told nobody is
      // signed-only. The access log still cannot justify the read against the ledger.
      const settings = api.server.app.get(SignedConsentSettings);
      jest.spyOn(settings, 'judge').mockReturnValue(new Set());
      jest.spyOn(settings, 'signedOnly').mockResolvedValue(new Set());
      // A minute on, past the allowance for a read decided just before signed-only went on.
      jest.useFakeTimers({
        now: Date.now() + 60_000,
        advanceTimers: true,
        doNotFake: [
          'hrtime',
          'nextTick',
          'performance',
          'queueMicrotask',
          'setImmediate',
          'clearImmediate',
          'setInterval',
          'clearInterval',
          'setTimeout',
          'clearTimeout',
        ],
      });
      try {
        expect(await reads('dr-unsigned')).toBe(1);
      } finally {
        jest.useRealTimers();
        jest.restoreAllMocks();
      }
      const problem = new RegExp(
        `access event \\d+ \\(READ by dr-unsigned\\): grant ${unsignedGrant} is unsigned, and the patient accepted only signed grants at `,
      );
      const check = await verifyAccessLog();
      expect(check.ok).toBe(false);
      expect(check.problems).toEqual([expect.stringMatching(problem)]);
      const result = await api.verifyLedger();
      expect(result.ok).toBe(false);
      expect(result.text).toMatch(problem);
    });

    it('lists the grant ACTIVE again once the patient turns signed-only off with a signature', async () => {
      const { settingPayload } = await api.ok<{ settingPayload: string }>(
        SETTING_PAYLOAD,
        { on: false },
        patient,
      );
      await api.ok(REQUIRE, { on: false, sig: await signWith(key, settingPayload) }, patient);
      expect((await listed(patient, 'SUSPENDED')).map((g) => g.id)).toEqual([]);
      expect((await listed(patient, 'ACTIVE')).map((g) => g.id).sort()).toEqual(
        [signedGrant, unsignedGrant].sort(),
      );
      expect(await reads('dr-unsigned')).toBe(1);
    });
  });
});
