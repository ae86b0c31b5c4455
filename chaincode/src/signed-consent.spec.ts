import fc from 'fast-check';
import { CompactSign, exportJWK, generateKeyPair } from 'jose';
import {
  consentPayload,
  GrantTerms,
  keyIdOf,
  parsePublicKeyJwk,
  verifyDetachedJws,
} from './signed-consent';
import { ChaincodeError } from './errors';

const code = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,15}$/);
const id = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,15}$/);
const instant = fc
  .integer({ min: 0, max: 4_000_000_000_000 })
  .map((ms) => new Date(ms).toISOString());

const termsArb: fc.Arbitrary<GrantTerms> = fc.record({
  id,
  patientId: id,
  grantee: fc.record({ type: fc.constantFrom('CLINICIAN', 'ORGANIZATION', 'STUDY'), id }),
  purpose: fc.constantFrom('TREATMENT', 'RESEARCH'),
  actions: fc.uniqueArray(fc.constantFrom('READ', 'WRITE', 'TRAIN'), { minLength: 1 }),
  resourceTypes: fc.uniqueArray(code, { maxLength: 5 }),
  categories: fc.uniqueArray(code, { maxLength: 5 }),
  includeRestricted: fc.boolean(),
  validFrom: fc.option(instant, { nil: null }),
  validUntil: fc.option(instant, { nil: null }),
});

describe('consentPayload', () => {
  it('is the same for the same terms whatever the order of their lists', () => {
    fc.assert(
      fc.property(termsArb, fc.func(fc.integer()), (t, order) => {
        const shuffle = <T>(list: readonly T[]) =>
          [...list]
            .map((v, i) => [order(i), v] as const)
            .sort((a, b) => a[0] - b[0])
            .map(([, v]) => v);
        const shuffled = {
          ...t,
          actions: shuffle(t.actions),
          resourceTypes: shuffle(t.resourceTypes),
          categories: shuffle(t.categories),
        };
        expect(consentPayload(shuffled)).toBe(consentPayload(t));
      }),
    );
  });

  it('is JCS: members in code-point order, no whitespace, lists sorted, every term present', () => {
    fc.assert(
      fc.property(termsArb, (t) => {
        const text = consentPayload(t);
        const parsed = JSON.parse(text) as Record<string, unknown>;
        expect(Object.keys(parsed)).toEqual([...Object.keys(parsed)].sort());
        expect(JSON.stringify(parsed)).toBe(text);
        expect(parsed).toEqual({
          id: t.id,
          patientId: t.patientId,
          granteeType: t.grantee.type,
          granteeId: t.grantee.id,
          purpose: t.purpose,
          actions: [...t.actions].sort(),
          resourceTypes: [...t.resourceTypes].sort(),
          categories: [...t.categories].sort(),
          includeRestricted: t.includeRestricted,
          validFrom: t.validFrom,
          validUntil: t.validUntil,
        });
      }),
    );
  });

  it('differs whenever a term differs', () => {
    fc.assert(
      fc.property(termsArb, termsArb, (a, b) => {
        const same =
          JSON.stringify({
            ...a,
            actions: [...a.actions].sort(),
            resourceTypes: [...a.resourceTypes].sort(),
            categories: [...a.categories].sort(),
          }) ===
          JSON.stringify({
            ...b,
            actions: [...b.actions].sort(),
            resourceTypes: [...b.resourceTypes].sort(),
            categories: [...b.categories].sort(),
          });
        expect(consentPayload(a) === consentPayload(b)).toBe(same);
      }),
    );
  });
});

describe('verifyDetachedJws', () => {
  it('accepts only the exact signature: any flipped bit of it is refused', async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    const jwk = parsePublicKeyJwk(await exportJWK(pair.publicKey));
    const keys = [{ id: keyIdOf(jwk), publicKeyJwk: jwk }];
    const payload = '{"id":"g"}';
    const [h, , s] = (
      await new CompactSign(new TextEncoder().encode(payload))
        .setProtectedHeader({ alg: 'ES256' })
        .sign(pair.privateKey)
    ).split('.');
    await expect(verifyDetachedJws(`${h}..${s}`, payload, keys)).resolves.toBe(keys[0].id);
    const bytes = Buffer.from(s, 'base64url');
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: bytes.length * 8 - 1 }), async (bit) => {
        const flipped = Buffer.from(bytes);
        flipped[bit >> 3] ^= 1 << (bit & 7);
        await expect(
          verifyDetachedJws(`${h}..${flipped.toString('base64url')}`, payload, keys),
        ).rejects.toThrow(ChaincodeError);
      }),
      { numRuns: 50 },
    );
  });
});
