// Device keys for the benchmark's synthetic patients, registered on the ledger, and the
// signatures their grants carry: a detached compact JWS (ES256) over consentPayload, as a
// patient's device would make it. Signing happens in the benchmark process (the client side);
// `presign` moves it out of the measured window.
import { generateKeyPairSync, KeyObject, sign } from 'node:crypto';
import { consentPayload, GrantTerms } from '@custodia/chaincode/signed-consent';
import type { Ledger } from '../../src/ledger';

const HEADER = Buffer.from(JSON.stringify({ alg: 'ES256' })).toString('base64url');

export interface BenchGrant {
  id: string;
  patientId: string;
  grantee: { type: string; id: string };
  purpose: string;
  actions: string[];
}

export class PatientSigners {
  private readonly keys = new Map<string, KeyObject>();

  /** Makes a key for each patient and registers it (the patient's first key: unsigned). */
  async register(ledger: Ledger, patientIds: readonly string[]): Promise<void> {
    for (const patientId of patientIds) {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const { kty, crv, x, y } = publicKey.export({ format: 'jwk' });
      await ledger.submit('keys', 'RegisterPatientKey', [
        patientId,
        JSON.stringify({ kty, crv, x, y }),
        '',
      ]);
      this.keys.set(patientId, privateKey);
    }
  }

  /** The grant's JSON with the patient's signature over its terms. */
  signed(grant: BenchGrant): string {
    const key = this.keys.get(grant.patientId);
    if (!key) throw new Error(`no key for ${grant.patientId}`);
    const terms: GrantTerms = {
      ...grant,
      resourceTypes: [],
      categories: [],
      includeRestricted: false,
      validFrom: null,
      validUntil: null,
    };
    const input = Buffer.from(
      `${HEADER}.${Buffer.from(consentPayload(terms)).toString('base64url')}`,
    );
    const signature = sign('sha256', input, { key, dsaEncoding: 'ieee-p1363' });
    return JSON.stringify({ ...grant, signature: `${HEADER}..${signature.toString('base64url')}` });
  }
}
