// Patient-signed consent over the API and the embedded ledger: a patient's device key (made by
// `custodia keygen`, or WebCrypto through jose) signs the grant terms, the chaincode verifies
// them, and for a signed-only patient not even the operator writing straight to the ledger
// port can make a grant.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { calculateJwkThumbprint, CompactSign, exportJWK, generateKeyPair, JWK } from 'jose';
import type { GrantRecord } from '@custodia/chaincode';
import { ForbiddenError } from '../src/common/errors';
import { PolicyDecisionPoint } from '../src/consent';
import { Ledger, LEDGER } from '../src/ledger';
import { observation } from './helpers/fhir';
import { codes, TestApi } from './helpers/test-api';

const ROOT = join(__dirname, '..');
const BIN = join(ROOT, 'bin', 'custodia.js');
/** The first CLI command may compile the sources (bin/custodia.js does that). */
const COMMAND_TIMEOUT = 120_000;

const PAYLOAD = `query($input: GrantConsentInput!) { consentPayload(input: $input) }`;
const GRANT = `mutation($input: GrantConsentInput!) {
  grantConsent(input: $input) { id patientSigned status } }`;
const REGISTER = `mutation($jwk: JSON!, $sig: String) {
  registerPatientKey(publicKeyJwk: $jwk, signature: $sig) { id patientId publicKeyJwk ledgerTxId } }`;
const KEY_PAYLOAD = `query($jwk: JSON!, $remove: Boolean) { keyPayload(publicKeyJwk: $jwk, remove: $remove) }`;
const REMOVE = `mutation($jwk: JSON!, $sig: String!) { removePatientKey(publicKeyJwk: $jwk, signature: $sig) { id } }`;
const KEYS = `query($p: ID!) { patientKeys(patientId: $p) { id } }`;
const REQUIRE = `mutation($on: Boolean!, $sig: String) {
  requireSignedConsent(require: $on, signature: $sig) { id requireSignedConsent } }`;
const SETTING_PAYLOAD = `query($on: Boolean!) { settingPayload(requireSignedConsent: $on) }`;
const LIST = `query($p: ID!) { records(patientId: $p) { items { id } } }`;

/** A device key made with WebCrypto (through jose), as a browser or passkey would. */
async function webCryptoKey() {
  const pair = await generateKeyPair('ES256', { extractable: true });
  return { privateKey: pair.privateKey, jwk: await exportJWK(pair.publicKey) };
}

/** A compact JWS with a detached payload (RFC 7515 appendix F): header..signature. */
async function signWith(key: CryptoKeyLike, payload: string): Promise<string> {
  const jws = await new CompactSign(new TextEncoder().encode(payload))
    .setProtectedHeader({ alg: 'ES256' })
    .sign(key);
  const [h, , s] = jws.split('.');
  return `${h}..${s}`;
}
type CryptoKeyLike = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

describe('patient-signed consent', () => {
  let api: TestApi;
  let dir: string;
  let patient: string;
  let patientId: string;
  let recordId: string;
  let ledger: Ledger;
  let keyFile: string;
  let cliPublicJwk: JWK;
  let counter = 0;
  const clinician = () => api.token('dr-signed', 'CLINICIAN', 'org1');

  function terms(overrides: Record<string, unknown> = {}) {
    return {
      id: `signed-${++counter}`,
      granteeType: 'CLINICIAN',
      granteeId: 'dr-signed',
      purpose: 'TREATMENT',
      actions: ['READ'],
      resourceTypes: ['Observation'],
      ...overrides,
    };
  }

  /** Runs the CLI with `stdin` as its input (closed, so that nothing waits on it). */
  async function cli(args: string[], stdin = ''): Promise<string> {
    const running = promisify(execFile)(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      timeout: COMMAND_TIMEOUT,
    });
    running.child.stdin?.end(stdin);
    return (await running).stdout.trim();
  }

  async function payloadOf(input: Record<string, unknown>): Promise<string> {
    return (await api.ok<{ consentPayload: string }>(PAYLOAD, { input }, patient)).consentPayload;
  }

  async function reads(): Promise<string[]> {
    const res = await api.gql<{ records: { items: { id: string }[] } }>(
      LIST,
      { p: patientId },
      await clinician(),
    );
    return res.data?.records.items.map((r) => r.id) ?? codes(res);
  }

  /** The grant as the ledger holds it, or null: to show that a refused call wrote nothing. */
  async function onLedger(id: string): Promise<GrantRecord | null> {
    return ledger.evaluate<GrantRecord>('consent', 'GetConsent', [id]).catch(() => null);
  }

  async function projected(id: string): Promise<number> {
    return (await api.db.query('SELECT 1 FROM consent_grants WHERE id = $1', [id])).rowCount ?? 0;
  }

  beforeAll(async () => {
    api = await TestApi.start();
    ledger = api.server.app.get<Ledger>(LEDGER);
    dir = await mkdtemp(join(tmpdir(), 'custodia-keys-'));
    keyFile = join(dir, 'phone.jwk');
    patient = await api.token('sara', 'PATIENT');
    ({
      registerPatient: { id: patientId },
    } = await api.ok<{ registerPatient: { id: string } }>(
      'mutation { registerPatient { id } }',
      {},
      patient,
    ));
    ({
      createRecord: { id: recordId },
    } = await api.ok<{ createRecord: { id: string } }>(
      'mutation($r: JSON!) { createRecord(input: {resource: $r}) { id } }',
      { r: observation() },
      patient,
    ));
  }, COMMAND_TIMEOUT);

  afterAll(async () => {
    await api?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('records on the ledger, at registration, the organisation the patient registered with', async () => {
    const ring = await ledger.evaluate<{ homeOrganization?: string }>('keys', 'GetPatientKeys', [
      patientId,
    ]);
    expect(ring.homeOrganization).toBe(api.config.orgId);
  });

  it(
    'runs the whole flow: keygen, register, sign with the CLI, grant, read',
    async () => {
      cliPublicJwk = JSON.parse(await cli(['keygen', '--out', keyFile])) as JWK;
      expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
      expect(cliPublicJwk).not.toHaveProperty('d');
      expect(JSON.parse(await readFile(keyFile, 'utf8'))).toHaveProperty('d');

      const { registerPatientKey } = await api.ok<{
        registerPatientKey: { id: string; patientId: string; ledgerTxId: string };
      }>(REGISTER, { jwk: cliPublicJwk }, patient);
      expect(registerPatientKey).toMatchObject({ id: cliPublicJwk.kid, patientId });

      const input = terms();
      const inputFile = join(dir, 'grant.json');
      await writeFile(inputFile, JSON.stringify({ ...input, patientId }));
      const signature = await cli(['sign-grant', '--key', keyFile, '--input', inputFile]);
      expect(signature).toMatch(/^[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]+$/);

      expect(await reads()).toEqual(['CONSENT_REQUIRED']);
      const { grantConsent } = await api.ok<{
        grantConsent: { id: string; patientSigned: boolean };
      }>(GRANT, { input: { ...input, signature } }, patient);
      expect(grantConsent).toEqual({ id: input.id, patientSigned: true, status: 'ACTIVE' });
      expect(await onLedger(input.id)).toMatchObject({
        patientSigned: true,
        signedBy: cliPublicJwk.kid,
      });
      expect(await reads()).toEqual([recordId]);
      // As FHIR, the grant says it was verified with the patient.
      const { consents } = await api.ok<{
        consents: { id: string; fhir: Record<string, unknown> }[];
      }>('query { consents { id fhir } }', {}, patient);
      expect(consents.find((c) => c.id === input.id)?.fhir).toMatchObject({
        verification: [{ verified: true, verifiedWith: { reference: `Patient/${patientId}` } }],
      });

      // Terms that would sign different bytes on different machines, or for another patient
      // than the input names, are refused by the CLI rather than signed.
      const zoneless = join(dir, 'zoneless.json');
      await writeFile(
        zoneless,
        JSON.stringify({ ...terms(), patientId, validUntil: '2030-01-01T00:00:00' }),
      );
      await expect(cli(['sign-grant', '--key', keyFile, '--input', zoneless])).rejects.toThrow(
        /validUntil must be an RFC 3339 date-time with its time zone/,
      );
      await expect(
        cli(['sign-grant', '--key', keyFile, '--input', inputFile, '--patient', 'someone-else']),
      ).rejects.toThrow(/name different patients/);
      // A value of another type would have been signed as something else (no end at all).
      const numeric = join(dir, 'numeric.json');
      await writeFile(
        numeric,
        JSON.stringify({ ...terms(), patientId, validUntil: 1796310000000 }),
      );
      await expect(cli(['sign-grant', '--key', keyFile, '--input', numeric])).rejects.toThrow(
        /validUntil must be an RFC 3339 date-time/,
      );
      // Nothing on stdin is nothing to sign.
      await expect(cli(['sign', '--key', keyFile])).rejects.toThrow(/nothing to sign/);
      // A public key file, or a key whose private part is not its own, says so plainly.
      const publicFile = join(dir, 'public.jwk');
      await writeFile(publicFile, JSON.stringify(cliPublicJwk), { mode: 0o600 });
      await expect(cli(['sign-grant', '--key', publicFile, '--input', inputFile])).rejects.toThrow(
        /holds no private key \(a public JWK\?\)/,
      );
      const mismatched = join(dir, 'mismatched.jwk');
      const own = JSON.parse(await readFile(keyFile, 'utf8')) as JWK;
      await writeFile(mismatched, JSON.stringify({ ...own, d: 'A'.repeat(43) }), { mode: 0o600 });
      await expect(cli(['sign-grant', '--key', mismatched, '--input', inputFile])).rejects.toThrow(
        /not a usable EC P-256 private key/,
      );
      await expect(cli(['keygen', '--out', ''])).rejects.toThrow(
        /could not write the key to "": no such directory/,
      );
      // A huge argument is quoted cut, not echoed whole.
      const huge = await cli(['token', '--sub', 'x'.repeat(100_000), '--role', 'PATIENT']).catch(
        (e: { stderr: string }) => e.stderr,
      );
      expect(huge).toMatch(/argument 'x{80}…' \(100000 characters\) is invalid/);
      expect(huge.length).toBeLessThan(1_000);
      // `sign` signs key changes, settings and revocations, never a grant's terms (a patient
      // told to "sign this setting" must not sign a grant), nor bytes other than the API's.
      const grantTerms = await payloadOf(
        terms({ includeRestricted: true, actions: ['READ', 'WRITE'] }),
      );
      await expect(cli(['sign', '--key', keyFile], grantTerms)).rejects.toThrow(
        /the payload is a grant's terms: sign a grant with `custodia sign-grant/,
      );
      const { settingPayload } = await api.ok<{ settingPayload: string }>(
        'query { settingPayload(requireSignedConsent: true) }',
        {},
        patient,
      );
      const reordered = JSON.stringify(
        Object.fromEntries(Object.entries(JSON.parse(settingPayload)).reverse()),
      );
      await expect(cli(['sign', '--key', keyFile], reordered)).rejects.toThrow(
        /not in its canonical form/,
      );
      await expect(
        cli(['sign', '--key', keyFile], '{"type":"custodia.anything/v9"}'),
      ).rejects.toThrow(/unknown kind/);
      expect(await cli(['sign', '--key', keyFile], settingPayload)).toMatch(
        /^[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]+$/,
      );
      // An id the API would refuse is refused before it is signed.
      const spaced = join(dir, 'spaced.json');
      await writeFile(spaced, JSON.stringify({ ...terms({ id: 'x y' }), patientId }));
      await expect(cli(['sign-grant', '--key', keyFile, '--input', spaced])).rejects.toThrow(
        /id must be an id of 1–128 letters, digits/,
      );

      // The patient's check of their access log says which reads rest on a grant they signed.
      const { verifyAccessLog } = await api.ok<{
        verifyAccessLog: { ok: boolean; permitsJustified: number; permitsPatientSigned: number };
      }>(
        `query($p: ID!) { verifyAccessLog(patientId: $p) { ok permitsJustified permitsPatientSigned } }`,
        { p: patientId },
        patient,
      );
      expect(verifyAccessLog).toMatchObject({ ok: true, permitsPatientSigned: 1 });
      expect(verifyAccessLog.permitsJustified).toBeGreaterThanOrEqual(1);
    },
    COMMAND_TIMEOUT * 2,
  );

  it('gives the exact bytes to sign: JCS of the terms, lists sorted, absent validFrom as null', async () => {
    const payload = await payloadOf(
      terms({ id: 'p-1', actions: ['READ', 'WRITE'], resourceTypes: ['Observation', 'Condition'] }),
    );
    expect(payload).toBe(
      JSON.stringify({
        actions: ['READ', 'WRITE'],
        categories: [],
        granteeId: 'dr-signed',
        granteeType: 'CLINICIAN',
        id: 'p-1',
        includeRestricted: false,
        patientId,
        purpose: 'TREATMENT',
        resourceTypes: ['Condition', 'Observation'],
        validFrom: null,
        validUntil: null,
      }),
    );
    const noId = await api.gql(PAYLOAD, { input: { ...terms(), id: undefined } }, patient);
    expect(codes(noId)).toEqual(['BAD_USER_INPUT']);
  });

  describe('refuses, writing nothing', () => {
    let key: Awaited<ReturnType<typeof webCryptoKey>>;

    beforeAll(async () => {
      // A second key, added with a signature by the first (the CLI's): WebCrypto this time.
      key = await webCryptoKey();
      const { keyPayload } = await api.ok<{ keyPayload: string }>(
        KEY_PAYLOAD,
        { jwk: key.jwk },
        patient,
      );
      // `custodia sign` signs the bytes on its stdin: here the keyPayload.
      const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) => {
        const child = execFile(
          process.execPath,
          [BIN, 'sign', '--key', keyFile],
          { cwd: ROOT, timeout: COMMAND_TIMEOUT },
          (e, out) => (e ? reject(e) : resolve({ stdout: out })),
        );
        // With the line break `jq -r` or `echo` ends a pipeline's text with: not signed.
        child.stdin!.end(`${keyPayload}\n`);
      });
      await api.ok(REGISTER, { jwk: key.jwk, sig: stdout.trim() }, patient);
    }, COMMAND_TIMEOUT);

    it.each<[string, Record<string, unknown>]>([
      ['another grantee', { granteeId: 'dr-other' }],
      ['restricted records too', { includeRestricted: true }],
      ['every resource type', { resourceTypes: [] }],
      ['a later end', { validUntil: '2099-01-01T00:00:00.000Z' }],
    ])('a signature over other terms (%s)', async (_, change) => {
      const input = terms();
      const signature = await signWith(key.privateKey, await payloadOf(input));
      const res = await api.gql(GRANT, { input: { ...input, ...change, signature } }, patient);
      expect(codes(res)).toEqual(['BAD_USER_INPUT']);
      expect(res.errors![0].message).toContain('does not verify');
      expect(await onLedger(input.id)).toBeNull();
      expect(await projected(input.id)).toBe(0);
    });

    it('a signature by a key the patient never registered', async () => {
      const stranger = await webCryptoKey();
      const input = terms();
      const signature = await signWith(stranger.privateKey, await payloadOf(input));
      const res = await api.gql(GRANT, { input: { ...input, signature } }, patient);
      expect(codes(res)).toEqual(['BAD_USER_INPUT']);
      expect(await onLedger(input.id)).toBeNull();
    });

    it('a replayed signed grant: its id is taken', async () => {
      const input = terms();
      const signature = await signWith(key.privateKey, await payloadOf(input));
      await api.ok(GRANT, { input: { ...input, signature } }, patient);
      const res = await api.gql(GRANT, { input: { ...input, signature } }, patient);
      expect(codes(res)).toEqual(['CONFLICT']);
      // A retry (its first answer lost) learns that this very grant stands: no new signature.
      expect(res.errors![0].message).toContain('already exists with these terms and is ACTIVE');
      // The same id with other terms is another grant's id, whatever the signature.
      const other = await api.gql(
        GRANT,
        { input: { ...input, resourceTypes: ['Condition'], signature } },
        patient,
      );
      expect(codes(other)).toEqual(['CONFLICT']);
      expect(other.errors![0].message).not.toContain('with these terms');
      // Once revoked, a replay revives nothing.
      await api.ok(
        'mutation($id: ID!) { revokeConsent(id: $id) { id } }',
        { id: input.id },
        patient,
      );
      const after = await api.gql(GRANT, { input: { ...input, signature } }, patient);
      expect(codes(after)).toEqual(['CONFLICT']);
      expect(after.errors![0].message).not.toContain('with these terms');
      expect(await onLedger(input.id)).toMatchObject({ status: 'REVOKED' });
    });

    it('a malformed signature, or a signature without the id it signed', async () => {
      const input = terms();
      const bad = await api.gql(GRANT, { input: { ...input, signature: 'a.b.c' } }, patient);
      expect(codes(bad)).toEqual(['BAD_USER_INPUT']);
      const signature = await signWith(key.privateKey, await payloadOf(input));
      const noId = await api.gql(GRANT, { input: { ...input, id: null, signature } }, patient);
      expect(codes(noId)).toEqual(['BAD_USER_INPUT']);
      expect(await onLedger(input.id)).toBeNull();
    });

    it('a private key offered for registration, without echoing it', async () => {
      const secret = JSON.parse(await readFile(keyFile, 'utf8')) as JWK;
      const res = await api.gql(REGISTER, { jwk: secret }, patient);
      expect(codes(res)).toEqual(['BAD_USER_INPUT']);
      expect(JSON.stringify(res.errors)).not.toContain(secret.d);
    });

    it('a key that says it is for another algorithm or for encryption', async () => {
      const { jwk } = await webCryptoKey();
      for (const [claim, reason] of [
        [{ alg: 'ES384' }, /is for alg "ES384"; only ES256 keys sign consent/],
        [{ use: 'enc' }, /has use "enc"; a consent key's use is sig/],
      ] as const) {
        const res = await api.gql(REGISTER, { jwk: { ...jwk, ...claim } }, patient);
        expect(codes(res)).toEqual(['BAD_USER_INPUT']);
        expect(res.errors?.[0].message).toMatch(reason);
      }
    });

    it('a third key without a signature by a registered key', async () => {
      const third = await webCryptoKey();
      const res = await api.gql(REGISTER, { jwk: third.jwk }, patient);
      expect(codes(res)).toEqual(['BAD_USER_INPUT']);
      const keys = await api.ok<{ patientKeys: { id: string }[] }>(KEYS, { p: patientId }, patient);
      expect(keys.patientKeys).toHaveLength(2);
    });

    it(
      'rotates: the new key removes the old one, whose signatures then fail',
      async () => {
        const old = JSON.parse(await readFile(keyFile, 'utf8')) as JWK;
        const { d: _private, ...oldPublic } = old;
        const { keyPayload } = await api.ok<{ keyPayload: string }>(
          KEY_PAYLOAD,
          { jwk: oldPublic, remove: true },
          patient,
        );
        const { removePatientKey } = await api.ok<{ removePatientKey: { id: string }[] }>(
          REMOVE,
          { jwk: oldPublic, sig: await signWith(key.privateKey, keyPayload) },
          patient,
        );
        expect(removePatientKey.map((k) => k.id)).toEqual([await calculateJwkThumbprint(key.jwk)]);
        // The removal's signature named the key set's version: it cannot be used again.
        const again = await api.gql(
          REMOVE,
          { jwk: oldPublic, sig: await signWith(key.privateKey, keyPayload) },
          patient,
        );
        expect(codes(again)).toEqual(['NOT_FOUND']);

        const input = terms();
        const inputFile = join(dir, 'after-rotation.json');
        await writeFile(inputFile, JSON.stringify({ ...input, patientId }));
        const byOld = await cli(['sign-grant', '--key', keyFile, '--input', inputFile]);
        const res = await api.gql(GRANT, { input: { ...input, signature: byOld } }, patient);
        expect(codes(res)).toEqual(['BAD_USER_INPUT']);
        expect(await onLedger(input.id)).toBeNull();
      },
      COMMAND_TIMEOUT,
    );
  });

  describe('a signed-only patient', () => {
    let key: Awaited<ReturnType<typeof webCryptoKey>>;
    let other: string;
    let otherId: string;
    let unsignedBefore: string;

    beforeAll(async () => {
      ({ token: other, patientId: otherId } = await api.patientWithRecord('omar'));
      key = await webCryptoKey();
      await api.ok(REGISTER, { jwk: key.jwk }, other);
      unsignedBefore = await api.grantRead(other, 'dr-omar');
      const { createStudy } = await api.ok<{ createStudy: { id: string } }>(
        `mutation { createStudy(input: { title: "Signed-only", features: ["2345-7"],
           label: "44054006" }) { id } }`,
        {},
        await api.token('omar-researcher', 'RESEARCHER'),
      );
      studyId = createStudy.id;
      ({
        grantConsent: { id: unsignedTraining },
      } = await api.ok<{ grantConsent: { id: string } }>(
        GRANT,
        {
          input: {
            granteeType: 'STUDY',
            granteeId: studyId,
            purpose: 'RESEARCH',
            actions: ['TRAIN'],
          },
        },
        other,
      ));
    });
    let studyId: string;
    let unsignedTraining: string;
    /** Whom a training node may train on, asked twice (read whole, then recalled by MAC). */
    const trainable = async () => {
      const pdp = api.server.app.get(PolicyDecisionPoint);
      const first = await pdp.trainingGrants(studyId, [otherId], 'node-omar');
      expect(await pdp.trainingGrants(studyId, [otherId], 'node-omar')).toEqual(first);
      return [...first.values()];
    };

    const omarReads = async () => {
      const res = await api.gql<{ records: { items: { id: string }[] } }>(
        LIST,
        { p: otherId },
        await api.token('dr-omar', 'CLINICIAN', 'org1'),
      );
      return res.data?.records.items.length ?? codes(res);
    };
    const omarLists = async () => {
      const { myPatients } = await api.ok<{ myPatients: { items: { patient: { id: string } }[] } }>(
        '{ myPatients(first: 100) { items { patient { id } } } }',
        {},
        await api.token('dr-omar', 'CLINICIAN', 'org1'),
      );
      return myPatients.items.some((i) => i.patient.id === otherId);
    };

    it('turns signed-only on without a signature; unsigned grants from before stop counting', async () => {
      expect(await omarReads()).toBe(1);
      expect(await omarLists()).toBe(true);
      expect(await trainable()).toEqual([unsignedTraining]);
      const { requireSignedConsent } = await api.ok<{
        requireSignedConsent: { requireSignedConsent: boolean };
      }>(REQUIRE, { on: true }, other);
      expect(requireSignedConsent.requireSignedConsent).toBe(true);
      expect(await omarReads()).toEqual(['CONSENT_REQUIRED']);
      // Nor does myPatients list them for it: the list agrees with the decision point.
      expect(await omarLists()).toBe(false);
      // Nor may a training node use the unsigned TRAIN grant, whether the setting's row was
      // verified just now or is recalled by its MAC; a row turned off in the database (its
      // MAC kept, or its MAC changed) changes neither.
      expect(await trainable()).toEqual([]);
      const [setting] = (
        await api.db.query('SELECT mac FROM signed_consent_settings WHERE patient_id = $1', [
          otherId,
        ])
      ).rows;
      await api.db.query(
        'UPDATE signed_consent_settings SET require_signed = false WHERE patient_id = $1',
        [otherId],
      );
      expect(await trainable()).toEqual([]);
      await api.db.query(`UPDATE signed_consent_settings SET mac = $2 WHERE patient_id = $1`, [
        otherId,
        Buffer.alloc(setting.mac.length, 7),
      ]);
      expect(await trainable()).toEqual([]);
      await api.db.query(
        'UPDATE signed_consent_settings SET require_signed = true, mac = $2 WHERE patient_id = $1',
        [otherId, setting.mac],
      );
      // The grant is still on the ledger; the policy decision point treats it as absent.
      expect((await onLedger(unsignedBefore))?.status).toBe('ACTIVE');
    });

    it('refuses an unsigned grant through the API as a signature missing from the input', async () => {
      const input = terms();
      const res = await api.gql(GRANT, { input }, other);
      expect(codes(res)).toEqual(['BAD_USER_INPUT']);
      expect(res.errors?.[0].extensions?.field).toBe('input.signature');
      expect(res.errors?.[0].message).toMatch(/accept only grants you signed/);
      expect(await onLedger(input.id)).toBeNull();
    });

    it("refuses a grant the operator writes straight to the ledger port, in the patient's name", async () => {
      const forged = {
        id: 'forged-by-operator',
        patientId: otherId,
        grantee: { type: 'CLINICIAN', id: 'dr-omar' },
        purpose: 'TREATMENT',
        actions: ['READ'],
        resourceTypes: [],
        categories: [],
        includeRestricted: true,
      };
      await expect(
        ledger.submit('consent', 'GrantConsent', [JSON.stringify(forged)]),
      ).rejects.toBeInstanceOf(ForbiddenError);
      // A signature by the patient over other terms does not help either.
      const signature = await signWith(
        key.privateKey,
        await api
          .ok<{ consentPayload: string }>(PAYLOAD, { input: terms({ id: forged.id }) }, other)
          .then((r) => r.consentPayload),
      );
      await expect(
        ledger.submit('consent', 'GrantConsent', [JSON.stringify({ ...forged, signature })]),
      ).rejects.toThrow(/does not verify/);
      expect(await onLedger(forged.id)).toBeNull();
      expect(await omarReads()).toEqual(['CONSENT_REQUIRED']);
    });

    it('accepts a grant the patient signed', async () => {
      const input = terms({ granteeId: 'dr-omar' });
      const { consentPayload } = await api.ok<{ consentPayload: string }>(
        PAYLOAD,
        { input },
        other,
      );
      const signature = await signWith(key.privateKey, consentPayload);
      const { grantConsent } = await api.ok<{ grantConsent: { patientSigned: boolean } }>(
        GRANT,
        { input: { ...input, signature } },
        other,
      );
      expect(grantConsent.patientSigned).toBe(true);
      expect(await omarReads()).toBe(1);

      // Revoking needs no signature; a signed revocation is recorded as the patient's own.
      const { revocationPayload } = await api.ok<{ revocationPayload: string }>(
        `query($id: ID!) { revocationPayload(id: $id) }`,
        { id: input.id },
        other,
      );
      await api.ok(
        `mutation($id: ID!, $sig: String) { revokeConsent(id: $id, signature: $sig) { id } }`,
        { id: input.id, sig: await signWith(key.privateKey, revocationPayload) },
        other,
      );
      expect(await onLedger(input.id)).toMatchObject({
        status: 'REVOKED',
        revocationSignedBy: await calculateJwkThumbprint(key.jwk),
      });
      expect(await omarReads()).toEqual(['CONSENT_REQUIRED']);
    });

    it.each([
      ['EMERGENCY_ACCESS', 'setEmergencyAccess', 'allowEmergencyAccess'],
      ['AI_DECISIONS', 'setAiDecisions', 'allowAiDecisions'],
    ])(
      'turns %s off freely, and back on only with their signature (no operator reopens it)',
      async (choice, mutation, field) => {
        const set = (allow: boolean, signature?: string) =>
          api.gql<Record<string, Record<string, boolean>>>(
            `mutation($a: Boolean!, $s: String) { ${mutation}(allow: $a, signature: $s) { ${field} } }`,
            { a: allow, s: signature },
            other,
          );
        expect((await set(false)).data![mutation][field]).toBe(false);
        const unsigned = await set(true);
        expect(codes(unsigned)).toEqual(['BAD_USER_INPUT']);
        expect(unsigned.errors![0].message).toContain('signature is required');
        // Not a detached JWS at all: said before the ledger is asked, naming what to sign.
        const malformed = await set(true, 'eyJhbGciOiJFUzI1NiJ9.e30.c2ln');
        expect(codes(malformed)).toEqual(['BAD_USER_INPUT']);
        expect(malformed.errors![0].message).toContain(`over choicePayload(${choice}, true)`);
        expect(malformed.errors![0].extensions).toMatchObject({ field: 'signature' });
        // Straight through the ledger port, as an operator would: refused by the chaincode.
        const [contract, fn] =
          choice === 'EMERGENCY_ACCESS'
            ? (['consent', 'SetEmergencyAccess'] as const)
            : (['decisions', 'SetAiDecisions'] as const);
        await expect(
          ledger.submit(contract, fn, [JSON.stringify({ patientId: otherId, allow: true })]),
        ).rejects.toThrow(/signature is required/);
        const { choicePayload } = await api.ok<{ choicePayload: string }>(
          'query($c: PatientChoice!) { choicePayload(choice: $c, allow: true) }',
          { c: choice },
          other,
        );
        expect(JSON.parse(choicePayload)).toMatchObject({
          type: 'custodia.patient-choice/v1',
          patientId: otherId,
          allow: true,
        });
        const signed = await set(true, await signWith(key.privateKey, choicePayload));
        expect(signed.errors).toBeUndefined();
        expect(signed.data![mutation][field]).toBe(true);
      },
    );

    it('turns signed-only off only with a signature over the current setting version', async () => {
      const unsigned = await api.gql(REQUIRE, { on: false }, other);
      expect(codes(unsigned)).toEqual(['BAD_USER_INPUT']);
      const stranger = await webCryptoKey();
      const { settingPayload } = await api.ok<{ settingPayload: string }>(
        SETTING_PAYLOAD,
        { on: false },
        other,
      );
      const wrongKey = await api.gql(
        REQUIRE,
        { on: false, sig: await signWith(stranger.privateKey, settingPayload) },
        other,
      );
      expect(codes(wrongKey)).toEqual(['BAD_USER_INPUT']);

      const offSig = await signWith(key.privateKey, settingPayload);
      const { requireSignedConsent } = await api.ok<{
        requireSignedConsent: { requireSignedConsent: boolean };
      }>(REQUIRE, { on: false, sig: offSig }, other);
      expect(requireSignedConsent.requireSignedConsent).toBe(false);
      expect(await omarReads()).toBe(1);

      // On again, the old "off" signature (naming an older version) is refused.
      await api.ok(REQUIRE, { on: true }, other);
      expect(codes(await api.gql(REQUIRE, { on: false, sig: offSig }, other))).toEqual([
        'BAD_USER_INPUT',
      ]);
      expect(await omarReads()).toEqual(['CONSENT_REQUIRED']);
    });

    it("shows a patient's keys to that patient only", async () => {
      const own = await api.ok<{ patientKeys: { id: string }[] }>(KEYS, { p: otherId }, other);
      expect(own.patientKeys).toHaveLength(1);
      expect(codes(await api.gql(KEYS, { p: otherId }, patient))).toEqual(['NOT_FOUND']);
    });
  });
});
