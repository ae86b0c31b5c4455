import fc from 'fast-check';
import { createSecretKey, randomBytes } from 'node:crypto';
import { RowAuthenticator } from '../records/crypto';
import { ConsentGrantEntity } from './consent-grant.entity';
import { GrantAuthenticity, ProjectedGrant } from './grant-authenticity';

const GRANT: ProjectedGrant = {
  id: 'g-1',
  patientId: 'p-1',
  grantee: { type: 'CLINICIAN', id: 'dr-a' },
  purpose: 'TREATMENT',
  actions: ['READ'],
  resourceTypes: ['Observation'],
  categories: [],
  includeRestricted: false,
  validFrom: '2026-01-01T00:00:00.000Z',
  validUntil: '2027-01-01T00:00:00.000Z',
  status: 'ACTIVE',
  revokedAt: null,
  patientSigned: false,
};

function rowOf(g: ProjectedGrant, mac: Buffer | null): ConsentGrantEntity {
  return Object.assign(new ConsentGrantEntity(), {
    id: g.id,
    patientId: g.patientId,
    granteeType: g.grantee.type,
    granteeId: g.grantee.id,
    purpose: g.purpose,
    actions: [...g.actions],
    resourceTypes: [...g.resourceTypes],
    categories: [...g.categories],
    includeRestricted: g.includeRestricted,
    validFrom: new Date(g.validFrom),
    validUntil: g.validUntil ? new Date(g.validUntil) : null,
    status: g.status,
    revokedAt: g.revokedAt ? new Date(g.revokedAt) : null,
    patientSigned: g.patientSigned,
    mac: mac && Buffer.from(mac),
  });
}

/** One change to one MAC'd field of a row: what a database writer might try. */
const tampering: fc.Arbitrary<(row: ConsentGrantEntity) => void> = fc.oneof(
  fc.constant((r: ConsentGrantEntity) => (r.patientId = 'p-2')),
  fc.constant((r: ConsentGrantEntity) => (r.granteeType = 'ORGANIZATION')),
  fc.constant((r: ConsentGrantEntity) => (r.granteeId = 'dr-b')),
  fc.constant((r: ConsentGrantEntity) => (r.purpose = 'RESEARCH')),
  fc.constant((r: ConsentGrantEntity) => r.actions.push('TRAIN')),
  fc.constant((r: ConsentGrantEntity) => (r.resourceTypes = [])),
  fc.constant((r: ConsentGrantEntity) => r.categories.push('laboratory')),
  fc.constant((r: ConsentGrantEntity) => (r.includeRestricted = true)),
  fc.constant((r: ConsentGrantEntity) => (r.validFrom = new Date('2025-01-01T00:00:00Z'))),
  fc.constant((r: ConsentGrantEntity) => (r.validUntil = null)),
  fc.constant((r: ConsentGrantEntity) => (r.status = 'REVOKED')),
  fc.constant((r: ConsentGrantEntity) => (r.revokedAt = new Date())),
  fc.constant((r: ConsentGrantEntity) => (r.patientSigned = true)),
  fc.constant((r: ConsentGrantEntity) => (r.mac = randomBytes(32))),
  fc.constant((r: ConsentGrantEntity) => (r.mac = null)),
);

describe('GrantAuthenticity', () => {
  const macs = new RowAuthenticator(createSecretKey(randomBytes(32)));
  const fresh = () => new GrantAuthenticity(macs);

  it('believes a row it verified before without a second MAC, and the same grant', () => {
    const authenticity = fresh();
    const mac = authenticity.macOf(GRANT);
    const verify = jest.spyOn(macs, 'verify');
    try {
      expect(authenticity.believed([rowOf(GRANT, mac)]).grants).toEqual([GRANT]);
      expect(authenticity.believed([rowOf(GRANT, mac)]).grants).toEqual([GRANT]);
      expect(verify).toHaveBeenCalledTimes(1);
    } finally {
      verify.mockRestore();
    }
  });

  it('never believes a changed row, whether or not the authentic one was seen first', () => {
    fc.assert(
      fc.property(tampering, fc.boolean(), (tamper, seenFirst) => {
        const authenticity = fresh();
        const mac = authenticity.macOf(GRANT);
        if (seenFirst) expect(authenticity.authentic(rowOf(GRANT, mac))).toBe(true);
        const row = rowOf(GRANT, mac);
        tamper(row);
        expect(authenticity.authentic(row)).toBe(false);
        expect(authenticity.believed([row])).toEqual({ grants: [], forged: [row] });
      }),
    );
  });

  it('is not fooled by a caller that changes a grant it was given', () => {
    const authenticity = fresh();
    const mac = authenticity.macOf(GRANT);
    const [given] = authenticity.believed([rowOf(GRANT, mac)]).grants;
    given.actions.push('TRAIN');
    given.grantee.id = 'dr-b';
    const widened = rowOf({ ...GRANT, actions: ['READ', 'TRAIN'] }, mac);
    expect(authenticity.authentic(widened)).toBe(false);
    expect(authenticity.authentic(rowOf(GRANT, mac))).toBe(true);
  });
});
