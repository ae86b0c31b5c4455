// Patient-signed consent on a real two-organisation network: the chaincode verifies the
// patient's signature on both orgs' peers (the endorsement policy needs both), so a key
// registered through the hospital (Org1) checks a grant submitted through research (Org2),
// and neither org's identity can write an unsigned grant for a signed-only patient.
import { consentPayload, GrantTerms } from '@custodia/chaincode/signed-consent';
import { generateKeyPairSync, KeyObject, randomUUID, sign } from 'node:crypto';
import { BadUserInputError, ForbiddenError } from '../../src/common/errors';
import { FabricLedger } from '../../src/ledger/fabric';
import { orgConfig } from './network';
import { errorOf } from '../helpers/errors';

const HEADER = Buffer.from('{"alg":"ES256"}').toString('base64url');

function detachedJws(key: KeyObject, payload: string): string {
  const input = `${HEADER}.${Buffer.from(payload).toString('base64url')}`;
  const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${HEADER}..${signature.toString('base64url')}`;
}

describe('patient-signed consent on Fabric', () => {
  let hospital: FabricLedger;
  let research: FabricLedger;
  const patientId = `patient-${randomUUID()}`;
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const { kty, crv, x, y } = publicKey.export({ format: 'jwk' });

  const terms = (id: string): GrantTerms => ({
    id,
    patientId,
    grantee: { type: 'ORGANIZATION', id: 'org2' },
    purpose: 'TREATMENT',
    actions: ['READ'],
    resourceTypes: [],
    categories: [],
    includeRestricted: false,
    validFrom: null,
    validUntil: null,
  });
  const grantJson = (t: GrantTerms, signature?: string) =>
    JSON.stringify({ ...t, validFrom: undefined, signature });

  beforeAll(async () => {
    hospital = new FabricLedger(orgConfig(1));
    research = new FabricLedger(orgConfig(2));
    await hospital.submit('keys', 'RegisterPatientKey', [
      patientId,
      JSON.stringify({ kty, crv, x, y }),
      '',
    ]);
  });

  afterAll(async () => {
    await hospital?.close();
    await research?.close();
  });

  it('verifies on both peers a grant signed with a key registered through the other org', async () => {
    const t = terms(`g-${randomUUID()}`);
    const signature = detachedJws(privateKey, consentPayload(t));
    const { result } = await research.submit<{ patientSigned: boolean; writtenBy: string }>(
      'consent',
      'GrantConsent',
      [grantJson(t, signature)],
    );
    expect(result).toMatchObject({ patientSigned: true, writtenBy: 'Org2MSP' });
  });

  it('refuses a signature over other terms, whichever org submits it', async () => {
    const t = terms(`g-${randomUUID()}`);
    const signature = detachedJws(privateKey, consentPayload({ ...t, includeRestricted: true }));
    for (const ledger of [hospital, research]) {
      const error = await errorOf(
        ledger.submit('consent', 'GrantConsent', [grantJson(t, signature)]),
      );
      expect(error).toBeInstanceOf(BadUserInputError);
      expect(error.message).toContain('does not verify');
    }
  });

  it('refuses an unsigned grant for a signed-only patient from either org', async () => {
    await hospital.submit('keys', 'SetSignedConsent', [patientId, 'true', '']);
    for (const ledger of [hospital, research]) {
      const t = terms(`g-${randomUUID()}`);
      const error = await errorOf(ledger.submit('consent', 'GrantConsent', [grantJson(t)]));
      expect(error).toBeInstanceOf(ForbiddenError);
    }
  });
});
