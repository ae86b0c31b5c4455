import './testing/quiet-logs';
import { CompactSign, exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { Context } from 'fabric-contract-api';
import { ConsentContract, GrantRecord } from './consent.contract';
import { DecisionsContract } from './decisions.contract';
import { ChaincodeError } from './errors';
import { KEY_EVENTS, KeysContract, PatientKeyring } from './keys.contract';
import {
  choicePayload,
  consentPayload,
  GrantTerms,
  keyIdOf,
  keyPayload,
  parsePublicKeyJwk,
  PublicKeyJwk,
  revocationPayload,
  settingPayload,
} from './signed-consent';
import { KEYS } from './state';
import { eventsOf, FakeLedger } from './testing/fake-ledger';

const keys = new KeysContract();
const consent = new ConsentContract();
const decisions = new DecisionsContract();

/** A patient device key made with WebCrypto (through jose), as a browser or passkey would. */
interface DeviceKey {
  privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  jwk: PublicKeyJwk;
  id: string;
}

async function deviceKey(): Promise<DeviceKey> {
  const pair = await generateKeyPair('ES256', { extractable: true });
  const jwk = parsePublicKeyJwk(await exportJWK(pair.publicKey));
  return { privateKey: pair.privateKey, jwk, id: keyIdOf(jwk) };
}

/** A compact JWS with a detached payload (RFC 7515 appendix F): header..signature. */
async function sign(k: DeviceKey, payload: string, header: Record<string, unknown> = {}) {
  const jws = await new CompactSign(new TextEncoder().encode(payload))
    .setProtectedHeader({ alg: 'ES256', kid: k.id, ...header })
    .sign(k.privateKey);
  const [h, , s] = jws.split('.');
  return `${h}..${s}`;
}

function terms(overrides: Partial<GrantTerms> = {}): GrantTerms {
  return {
    id: 'grant-1',
    patientId: 'pat-1',
    grantee: { type: 'CLINICIAN', id: 'dr-1' },
    purpose: 'TREATMENT',
    actions: ['READ'],
    resourceTypes: ['Observation', 'Condition'],
    categories: [],
    includeRestricted: false,
    validFrom: '2025-01-01T00:00:00.000Z',
    validUntil: null,
    ...overrides,
  };
}

describe('patient-signed consent (keys contract and GrantConsent)', () => {
  let ledger: FakeLedger;
  let a: DeviceKey;
  let b: DeviceKey;
  let other: DeviceKey;

  beforeAll(async () => {
    [a, b, other] = await Promise.all([deviceKey(), deviceKey(), deviceKey()]);
  });

  beforeEach(() => {
    ledger = new FakeLedger();
  });

  const register = async (k: DeviceKey, signature = '', patientId = 'pat-1') =>
    (
      await ledger.invoke<PatientKeyring>((ctx) =>
        keys.RegisterPatientKey(ctx, patientId, JSON.stringify(k.jwk), signature),
      )
    ).result;

  const setSignedOnly = async (on: boolean, signature = '') =>
    (
      await ledger.invoke<PatientKeyring>((ctx) =>
        keys.SetSignedConsent(ctx, 'pat-1', String(on), signature),
      )
    ).result;

  const grant = async (t: GrantTerms, signature?: string) =>
    (
      await ledger.invoke<GrantRecord>((ctx) =>
        consent.GrantConsent(ctx, JSON.stringify({ ...t, signature })),
      )
    ).result;

  async function rejection(call: Parameters<FakeLedger['failure']>[0]): Promise<string> {
    const error = await ledger.failure(call);
    expect(error).toBeInstanceOf(ChaincodeError);
    return error.message;
  }

  const grantRejection = (t: GrantTerms | Record<string, unknown>, signature?: string) =>
    rejection((ctx) => consent.GrantConsent(ctx, JSON.stringify({ ...t, signature })));

  describe('RegisterPatientHome', () => {
    const home = (patientId = 'pat-1') =>
      ledger.invoke<PatientKeyring>((ctx) => keys.RegisterPatientHome(ctx, patientId));

    it('records the organisation a patient registers with, once, with one event', async () => {
      const { result, tx } = await home();
      expect(result).toMatchObject({ patientId: 'pat-1', homeOrganization: 'Org1MSP', keys: [] });
      expect(eventsOf(tx)).toEqual([{ name: KEY_EVENTS.home, payload: result }]);
      // The same organisation again: nothing changes.
      expect((await home()).result).toEqual(result);
      ledger.setCaller('Org2MSP');
      expect(await rejection((ctx) => keys.RegisterPatientHome(ctx, 'pat-1'))).toMatch(
        /^\[CONFLICT\] patient pat-1 is registered already, through Org1MSP/,
      );
    });

    it("lets only the home organisation register a patient's first key, which another may then not take", async () => {
      await home();
      ledger.setCaller('Org2MSP');
      expect(
        await rejection((ctx) =>
          keys.RegisterPatientKey(ctx, 'pat-1', JSON.stringify(other.jwk), ''),
        ),
      ).toBe(
        "[FORBIDDEN] a patient's first key is registered through their home organisation (Org1MSP), not Org2MSP",
      );
      expect(ledger.read(KEYS.keyring, ['pat-1'])).toMatchObject({ keys: [] });
      ledger.setCaller('Org1MSP');
      expect((await register(a)).keys.map((k) => k.id)).toEqual([a.id]);
      // A later key, signed by the patient, may come through any organisation.
      ledger.setCaller('Org2MSP');
      const ring = await register(b, await sign(a, keyPayload('pat-1', b.id, false, 1)));
      expect(ring).toMatchObject({ homeOrganization: 'Org1MSP', keysVersion: 2 });
    });

    it('makes the organisation of a first key its home where none was recorded (patients from before)', async () => {
      ledger.setCaller('Org2MSP');
      expect((await register(a)).homeOrganization).toBe('Org2MSP');
      ledger.setCaller('Org1MSP');
      expect(await rejection((ctx) => keys.RegisterPatientHome(ctx, 'pat-1'))).toMatch(
        /^\[CONFLICT\]/,
      );
    });
  });

  describe('RegisterPatientKey', () => {
    it('records the first key without a signature, by its thumbprint, and emits one event', async () => {
      const { result, tx } = await ledger.invoke<PatientKeyring>((ctx) =>
        keys.RegisterPatientKey(ctx, 'pat-1', JSON.stringify(a.jwk), ''),
      );
      expect(result.keys).toEqual([
        {
          id: a.id,
          publicKeyJwk: a.jwk,
          createdAt: '2025-01-15T09:30:00.000Z',
          txId: tx.txId,
          writtenBy: 'Org1MSP',
        },
      ]);
      expect(result.keysVersion).toBe(1);
      expect(ledger.read(KEYS.keyring, ['pat-1'])).toEqual(result);
      expect(eventsOf(tx)).toEqual([{ name: KEY_EVENTS.registered, payload: result }]);
    });

    it('keeps only the public members of a JWK that carries more (alg, use, kid)', async () => {
      const ring = await ledger.invoke<PatientKeyring>((ctx) =>
        keys.RegisterPatientKey(
          ctx,
          'pat-1',
          JSON.stringify({ ...a.jwk, alg: 'ES256', use: 'sig', kid: 'phone' }),
          '',
        ),
      );
      expect(ring.result.keys[0].publicKeyJwk).toEqual(a.jwk);
    });

    it('adds a second key signed by the first over the current key-set version', async () => {
      await register(a);
      const ring = await register(b, await sign(a, keyPayload('pat-1', b.id, false, 1)));
      expect(ring.keys.map((k) => k.id)).toEqual([a.id, b.id]);
      expect(ring.keysVersion).toBe(2);
    });

    it('refuses a second key without a signature', async () => {
      await register(a);
      const message = await rejection((ctx) =>
        keys.RegisterPatientKey(ctx, 'pat-1', JSON.stringify(b.jwk), ''),
      );
      expect(message).toMatch(/^\[INVALID_ARGUMENT\] signature is required/);
    });

    it('refuses a second key signed by the key being added (not yet registered)', async () => {
      await register(a);
      const sig = await sign(b, keyPayload('pat-1', b.id, false, 1), { kid: undefined });
      const message = await rejection((ctx) =>
        keys.RegisterPatientKey(ctx, 'pat-1', JSON.stringify(b.jwk), sig),
      );
      expect(message).toContain('does not verify');
    });

    it('refuses a replayed key signature once the key set has moved on', async () => {
      await register(a);
      const sigForB = await sign(a, keyPayload('pat-1', b.id, false, 1));
      await register(b, sigForB);
      const removeB = await sign(a, keyPayload('pat-1', b.id, true, 2));
      await ledger.invoke((ctx) => keys.RemovePatientKey(ctx, 'pat-1', b.id, removeB));
      // The old "add b" signature named version 1; the set is now at version 3: said so.
      const message = await rejection((ctx) =>
        keys.RegisterPatientKey(ctx, 'pat-1', JSON.stringify(b.jwk), sigForB),
      );
      expect(message).toContain(
        'signature was made over version 1 of what it changes, which is at version 3 now',
      );
    });

    it('refuses the same key twice', async () => {
      await register(a);
      const message = await rejection((ctx) =>
        keys.RegisterPatientKey(ctx, 'pat-1', JSON.stringify(a.jwk), 'ignored..' + 'A'.repeat(86)),
      );
      expect(message).toBe(`[CONFLICT] key ${a.id} is already registered for pat-1`);
    });

    it.each<[string, Record<string, unknown>, string]>([
      ['a private key', { d: 'A'.repeat(43) }, 'holds a private key'],
      ['an RSA key', { kty: 'RSA' }, 'must be an EC P-256 key'],
      ['a P-384 key', { crv: 'P-384' }, 'must be an EC P-256 key'],
      ['a short coordinate', { x: 'AAAA' }, '32-byte base64url coordinates'],
      ['a point off the curve', { y: 'A'.repeat(43) }, 'not a point on the P-256 curve'],
      ['a key for another algorithm', { alg: 'ES384' }, 'for alg "ES384"; only ES256'],
      ['an encryption key', { use: 'enc' }, 'has use "enc"'],
      ['a key not for verifying', { key_ops: ['sign'] }, 'key_ops without verify'],
    ])('refuses %s, without echoing it', async (_, change, reason) => {
      const jwk = JSON.stringify({ ...a.jwk, ...change });
      const message = await rejection((ctx) => keys.RegisterPatientKey(ctx, 'pat-1', jwk, ''));
      expect(message).toMatch(/^\[INVALID_ARGUMENT\] publicKeyJwk /);
      expect(message).toContain(reason);
      expect(message).not.toContain(a.jwk.x);
    });
  });

  it('takes a key that names ES256, use sig and verify among its key_ops', async () => {
    const jwk = JSON.stringify({ ...a.jwk, alg: 'ES256', use: 'sig', key_ops: ['verify'] });
    const { result } = await ledger.invoke<PatientKeyring>((ctx) =>
      keys.RegisterPatientKey(ctx, 'pat-1', jwk, ''),
    );
    expect(result.keys.map((k) => k.id)).toEqual([a.id]);
  });

  describe('RemovePatientKey', () => {
    beforeEach(async () => {
      await register(a);
      await register(b, await sign(a, keyPayload('pat-1', b.id, false, 1)));
    });

    it('removes a key with a signature by a registered key (rotation: b removes a)', async () => {
      const sig = await sign(b, keyPayload('pat-1', a.id, true, 2));
      const { result, tx } = await ledger.invoke<PatientKeyring>((ctx) =>
        keys.RemovePatientKey(ctx, 'pat-1', a.id, sig),
      );
      expect(result.keys.map((k) => k.id)).toEqual([b.id]);
      expect(result.keysVersion).toBe(3);
      expect(eventsOf(tx)).toEqual([{ name: KEY_EVENTS.removed, payload: result }]);
    });

    it('refuses a removal without a signature, or signed as an addition', async () => {
      expect(await rejection((ctx) => keys.RemovePatientKey(ctx, 'pat-1', a.id, ''))).toMatch(
        /signature is required/,
      );
      const asAdd = await sign(b, keyPayload('pat-1', a.id, false, 2));
      expect(await rejection((ctx) => keys.RemovePatientKey(ctx, 'pat-1', a.id, asAdd))).toContain(
        'does not verify',
      );
    });

    it('refuses a removal signed by a key of another patient', async () => {
      const sig = await sign(other, keyPayload('pat-1', a.id, true, 2), { kid: undefined });
      expect(await rejection((ctx) => keys.RemovePatientKey(ctx, 'pat-1', a.id, sig))).toContain(
        'does not verify',
      );
    });

    it('keeps the last key', async () => {
      const removeA = await sign(b, keyPayload('pat-1', a.id, true, 2));
      await ledger.invoke((ctx) => keys.RemovePatientKey(ctx, 'pat-1', a.id, removeA));
      const sig = await sign(b, keyPayload('pat-1', b.id, true, 3));
      expect(await rejection((ctx) => keys.RemovePatientKey(ctx, 'pat-1', b.id, sig))).toContain(
        'the last key cannot be removed',
      );
    });

    it('answers NOT_FOUND for a key the patient does not hold', async () => {
      const message = await rejection((ctx) =>
        keys.RemovePatientKey(ctx, 'pat-1', other.id, 'x..y'),
      );
      expect(message).toMatch(/^\[NOT_FOUND\]/);
    });
  });

  describe('SetSignedConsent', () => {
    it('refuses to turn signed-only on before any key is registered', async () => {
      expect(await rejection((ctx) => keys.SetSignedConsent(ctx, 'pat-1', 'true', ''))).toContain(
        'register a key before requiring signed consent',
      );
    });

    it('turns on without a signature, and off only with one over the current version', async () => {
      await register(a);
      const on = await setSignedOnly(true);
      expect(on).toMatchObject({ requireSignedConsent: true, settingVersion: 1 });

      expect(await rejection((ctx) => keys.SetSignedConsent(ctx, 'pat-1', 'false', ''))).toMatch(
        /signature is required/,
      );
      const stale = await sign(a, settingPayload('pat-1', false, 0));
      expect(
        await rejection((ctx) => keys.SetSignedConsent(ctx, 'pat-1', 'false', stale)),
      ).toContain(
        'signature was made over version 0 of what it changes, which is at version 1 now',
      );
      // Over other terms altogether (turning it on): no version explains it.
      const otherTerms = await sign(a, settingPayload('pat-1', true, 1));
      expect(
        await rejection((ctx) => keys.SetSignedConsent(ctx, 'pat-1', 'false', otherTerms)),
      ).toContain('does not verify');

      const offSig = await sign(a, settingPayload('pat-1', false, 1));
      const off = await setSignedOnly(false, offSig);
      expect(off).toMatchObject({ requireSignedConsent: false, settingVersion: 2 });

      // On again: the earlier "off" signature named version 1 and cannot be replayed.
      const again = await setSignedOnly(true);
      expect(
        await rejection((ctx) => keys.SetSignedConsent(ctx, 'pat-1', 'false', offSig)),
      ).toContain('over version 1 of what it changes, which is at version 3 now');

      // When it was on, by the transactions' own times: what an audit of the log reads.
      expect(on.signedOnlyPeriods).toEqual([{ from: expect.any(String), until: null }]);
      const [first, second] = again.signedOnlyPeriods!;
      expect(first).toEqual({ from: on.signedOnlyPeriods![0].from, until: expect.any(String) });
      expect(Date.parse(first.until!)).toBeGreaterThanOrEqual(Date.parse(first.from));
      expect(second).toEqual({ from: expect.any(String), until: null });
      expect(Date.parse(second.from)).toBeGreaterThanOrEqual(Date.parse(first.until!));
    });

    it('lists every keyring a page at a time, writing nothing, for reconciling settings', async () => {
      await register(a, '', 'pat-1');
      await register(b, '', 'pat-2');
      await register(other, '', 'pat-3');
      await setSignedOnly(true);
      const seen: PatientKeyring[] = [];
      let bookmark = '';
      do {
        const { result, tx } = await ledger.invoke<{
          keyrings: PatientKeyring[];
          bookmark: string;
        }>((ctx) => keys.ListPatientKeyrings(ctx, '2', bookmark));
        expect(tx.stub.putState.called).toBe(false);
        seen.push(...result.keyrings);
        bookmark = result.bookmark;
      } while (bookmark);
      expect(seen.map((r) => [r.patientId, r.requireSignedConsent, r.settingVersion])).toEqual([
        ['pat-1', true, 1],
        ['pat-2', false, 0],
        ['pat-3', false, 0],
      ]);
      expect(await rejection((ctx) => keys.ListPatientKeyrings(ctx, '1001', ''))).toContain(
        'pageSize must be at most 1000',
      );
    });

    it('writes nothing when the setting is already as asked', async () => {
      await register(a);
      const { tx } = await ledger.invoke((ctx) => keys.SetSignedConsent(ctx, 'pat-1', 'false', ''));
      expect(tx.stub.putState.called).toBe(false);
    });
  });

  describe('GrantConsent with a signature', () => {
    beforeEach(async () => {
      await register(a);
    });

    it('records a grant signed by a registered key as patient-signed, and by which key', async () => {
      const sig = await sign(a, consentPayload(terms()));
      const stored = await grant(terms(), sig);
      expect(stored).toMatchObject({ patientSigned: true, signedBy: a.id });
      expect(stored).not.toHaveProperty('signature');
      expect(ledger.read<GrantRecord>(KEYS.grant, ['grant-1'])?.patientSigned).toBe(true);
    });

    it('signs the terms with lists in any order and validFrom absent as null', async () => {
      const t = terms({ validFrom: null, resourceTypes: ['Condition', 'Observation'] });
      const sig = await sign(a, consentPayload(t));
      const { validFrom: _omitted, ...rest } = terms({
        resourceTypes: ['Observation', 'Condition'],
      });
      const stored = await grant(rest as GrantTerms, sig);
      expect(stored.patientSigned).toBe(true);
      expect(stored.validFrom).toBe('2025-01-15T09:30:00.000Z');
    });

    it('records an unsigned grant of a patient who does not require signatures as not signed', async () => {
      const stored = await grant(terms());
      expect(stored).toMatchObject({ patientSigned: false, signedBy: null });
    });

    it.each<[string, Partial<GrantTerms>]>([
      ['another grantee', { grantee: { type: 'CLINICIAN', id: 'dr-2' } }],
      ['a wider action set', { actions: ['READ', 'WRITE'] }],
      ['restricted records', { includeRestricted: true }],
      ['a later end', { validUntil: '2030-01-01T00:00:00.000Z' }],
      ['another id', { id: 'grant-2' }],
    ])('refuses a signature over other terms (%s)', async (_, change) => {
      const sig = await sign(a, consentPayload(terms()));
      const message = await grantRejection(terms(change), sig);
      expect(message).toMatch(/^\[INVALID_ARGUMENT\] grant\.signature does not verify/);
    });

    it('refuses a grant signed for another patient', async () => {
      await register(other, '', 'pat-2');
      const sig = await sign(other, consentPayload(terms({ patientId: 'pat-2' })), {
        kid: undefined,
      });
      expect(await grantRejection(terms(), sig)).toContain('does not verify');
      expect(await grantRejection(terms(), await sign(other, consentPayload(terms())))).toContain(
        'names a key (kid) not registered',
      );
    });

    it('refuses a signature by an unregistered key', async () => {
      const sig = await sign(b, consentPayload(terms()), { kid: undefined });
      expect(await grantRejection(terms(), sig)).toContain('does not verify');
    });

    it('refuses a signature by a removed key', async () => {
      await register(b, await sign(a, keyPayload('pat-1', b.id, false, 1)));
      const removeA = await sign(b, keyPayload('pat-1', a.id, true, 2));
      await ledger.invoke((ctx) => keys.RemovePatientKey(ctx, 'pat-1', a.id, removeA));
      const sig = await sign(a, consentPayload(terms()));
      expect(await grantRejection(terms(), sig)).toContain('names a key (kid) not registered');
      expect(
        await grantRejection(terms(), await sign(a, consentPayload(terms()), { kid: undefined })),
      ).toContain('does not verify');
    });

    it('refuses a replayed signed grant: its id is taken', async () => {
      const sig = await sign(a, consentPayload(terms()));
      await grant(terms(), sig);
      expect(await grantRejection(terms(), sig)).toBe('[CONFLICT] grant grant-1 already exists');
    });

    it('refuses alg none, HS256, an unknown header member and an attached payload, naming the reason', async () => {
      const payload = Buffer.from(consentPayload(terms())).toString('base64url');
      const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}..`;
      expect(await grantRejection(terms(), none)).toContain('must be a compact JWS');
      const hs = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .sign(new Uint8Array(32));
      const [hsHeader, , hsSig] = hs.split('.');
      expect(await grantRejection(terms(), `${hsHeader}..${hsSig}`)).toContain(
        'must be a compact JWS',
      );
      const sigOfA = (await sign(a, consentPayload(terms()))).split('..')[1];
      const hs256Header = Buffer.from('{"alg":"HS256"}').toString('base64url');
      expect(await grantRejection(terms(), `${hs256Header}..${sigOfA}`)).toContain(
        'must use alg ES256',
      );
      // A header member the check does not understand (here a key URL) is refused, not ignored.
      const jku = await sign(a, consentPayload(terms()), { jku: 'https://example.org/keys' });
      expect(await grantRejection(terms(), jku)).toContain('unsupported header member "jku"');
      // An attached payload is not the detached form.
      const attached = (await sign(a, consentPayload(terms()))).replace('..', `.${payload}.`);
      expect(await grantRejection(terms(), attached)).toContain('must be a compact JWS');
    });

    it('refuses a malformed signature', async () => {
      expect(await grantRejection(terms(), 'not a jws')).toContain('must be a compact JWS');
      expect(await grantRejection(terms(), `${'e30'}..${'A'.repeat(86)}`)).toContain(
        'must use alg ES256',
      );
      expect(
        await rejection((ctx) =>
          consent.GrantConsent(ctx, JSON.stringify({ ...terms(), signature: 42 })),
        ),
      ).toContain('grant.signature must be a compact JWS string');
    });

    it('refuses a signed grant for a patient with no key', async () => {
      const sig = await sign(a, consentPayload(terms({ patientId: 'pat-3' })));
      expect(await grantRejection(terms({ patientId: 'pat-3' }), sig)).toContain(
        'the patient has no registered key',
      );
    });
  });

  describe('a signed-only patient', () => {
    beforeEach(async () => {
      await register(a);
      await setSignedOnly(true);
    });

    it('gets no grant without their signature, whichever organisation submits it', async () => {
      for (const msp of ['Org1MSP', 'Org2MSP']) {
        ledger.setCaller(msp);
        expect(await grantRejection(terms())).toBe(
          '[FORBIDDEN] patient pat-1 accepts only grants they signed; this one carries no signature',
        );
      }
    });

    it('still gets the grants they signed', async () => {
      const stored = await grant(terms(), await sign(a, consentPayload(terms())));
      expect(stored.patientSigned).toBe(true);
    });

    it('may revoke with a signature, recorded as theirs; a bad one refuses the revocation', async () => {
      await grant(terms(), await sign(a, consentPayload(terms())));
      const other = await sign(a, revocationPayload('pat-1', 'grant-2'));
      expect(
        await rejection((ctx) => consent.RevokeSignedConsent(ctx, 'grant-1', other)),
      ).toContain('does not verify');
      const sig = await sign(a, revocationPayload('pat-1', 'grant-1'));
      const { result } = await ledger.invoke<GrantRecord>((ctx) =>
        consent.RevokeSignedConsent(ctx, 'grant-1', sig),
      );
      expect(result).toMatchObject({ status: 'REVOKED', revocationSignedBy: a.id });
    });

    it('may revoke without a signature', async () => {
      await grant(terms(), await sign(a, consentPayload(terms())));
      const { result } = await ledger.invoke<GrantRecord>((ctx) =>
        consent.RevokeConsent(ctx, 'grant-1'),
      );
      expect(result.status).toBe('REVOKED');
    });

    describe.each([
      ['emergency-access', (ctx: Context, json: string) => consent.SetEmergencyAccess(ctx, json)],
      ['ai-decisions', (ctx: Context, json: string) => decisions.SetAiDecisions(ctx, json)],
    ] as const)('turning %s back on', (choice, set) => {
      const setting = (allow: boolean, signature?: string) =>
        JSON.stringify({ patientId: 'pat-1', allow, signature });
      const choose = async (allow: boolean, signature?: string) =>
        (await ledger.invoke<{ allow: boolean }>((ctx) => set(ctx, setting(allow, signature))))
          .result;

      it('turns it off without a signature, and on again only with one, from any organisation', async () => {
        expect(await choose(false)).toMatchObject({ allow: false });
        for (const msp of ['Org1MSP', 'Org2MSP']) {
          ledger.setCaller(msp);
          expect(await rejection((ctx) => set(ctx, setting(true)))).toContain(
            `signature is required: a patient who accepts only signed consent turns ${choice} back on`,
          );
        }
        // Over other bytes (the grant's, or turning it on for another choice): refused.
        const wrong = await sign(a, consentPayload(terms()));
        expect(await rejection((ctx) => set(ctx, setting(true, wrong)))).toContain(
          'does not verify',
        );
        const on = await sign(a, choicePayload('pat-1', choice, true, 1));
        expect(await choose(true, on)).toMatchObject({ allow: true });
        // Already on: no signature needed to say so again; off needs none ever.
        expect(await choose(true)).toMatchObject({ allow: true });
        expect(await choose(false)).toMatchObject({ allow: false });
        // The signature was for the first turning on: replayed, it says so.
        expect(await rejection((ctx) => set(ctx, setting(true, on)))).toContain(
          'signature was made over version 1 of what it changes, which is at version 2 now',
        );
      });
    });
  });

  it('lets a patient who does not require signed consent turn a choice back on unsigned', async () => {
    await register(a);
    const choose = (allow: boolean) =>
      ledger.invoke((ctx) =>
        consent.SetEmergencyAccess(ctx, JSON.stringify({ patientId: 'pat-1', allow })),
      );
    await choose(false);
    await expect(choose(true)).resolves.toMatchObject({ result: { allow: true } });
  });
});
