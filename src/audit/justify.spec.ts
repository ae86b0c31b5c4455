import type { EmergencyRecord, GrantRecord, SignedOnlyPeriod } from '@custodia/chaincode';
import type { ChoicePeriod } from '@custodia/chaincode/policy';
import type { AccessEventContent } from './audit-chain';
import {
  COMMIT_ALLOWANCE_MS,
  grantPatientSigned,
  justifyPermits,
  LabelledVersion,
  LedgerAuthority,
  MAX_SEQS_KEPT,
  versionsReadAt,
} from './justify';

const grant: GrantRecord = {
  id: 'g1',
  patientId: 'p1',
  grantee: { type: 'CLINICIAN', id: 'dr-1' },
  purpose: 'TREATMENT',
  actions: ['READ'],
  resourceTypes: [],
  categories: [],
  includeRestricted: false,
  validFrom: '2026-01-01T00:00:00.000Z',
  validUntil: '2026-02-01T00:00:00.000Z',
  status: 'ACTIVE',
  revokedAt: null,
  createdAt: '2026-01-01T00:00:00.000Z',
  txId: 't1',
  writtenBy: 'org1',
};
const emergency: EmergencyRecord = {
  id: 'em1',
  patientId: 'p1',
  clinicianId: 'dr-2',
  declaredAt: '2026-01-10T10:00:00.000Z',
  expiresAt: '2026-01-10T11:00:00.000Z',
  txId: 't2',
  writtenBy: 'org1',
};

function event(overrides: Partial<AccessEventContent> = {}): AccessEventContent {
  return {
    seq: 1,
    id: 'e1',
    actorId: 'dr-1',
    patientId: 'p1',
    recordIds: [],
    action: 'READ',
    purpose: 'TREATMENT',
    decision: 'PERMIT',
    consentId: 'g1',
    breakGlass: false,
    reason: null,
    at: '2026-01-15T00:00:00.000Z',
    ...overrides,
  };
}

function authority(
  grants: GrantRecord[],
  emergencies: EmergencyRecord[] = [],
  periods: SignedOnlyPeriod[] = [],
  emergencyOff: ChoicePeriod[] = [],
): LedgerAuthority {
  return {
    grant: async (id) => grants.find((g) => g.id === id) ?? null,
    emergency: async (id) => emergencies.find((e) => e.id === id) ?? null,
    signedOnlyPeriods: async (patientId) => (patientId === 'p1' ? periods : []),
    emergencyOffPeriods: async (patientId) => (patientId === 'p1' ? emergencyOff : []),
  };
}

const owner = async (actorId: string, patientId: string) =>
  actorId === 'pat-user' && patientId === 'p1';

async function problemsOf(e: AccessEventContent, grants = [grant], ems = [emergency]) {
  return (await justifyPermits([e], authority(grants, ems), owner)).problems;
}

describe('justifyPermits', () => {
  it('justifies a read under a grant that named the clinician and was in force', async () => {
    const check = await justifyPermits([event()], authority([grant]), owner);
    expect(check).toMatchObject({ permits: 1, justified: 1, patientSigned: 0, problems: [] });
  });

  it('counts the permits whose grant the patient signed, and lists the others by grant', async () => {
    const signed = { ...grant, id: 'g2', patientSigned: true };
    const check = await justifyPermits(
      [
        event(),
        event({ seq: 2, consentId: 'g2' }),
        event({ seq: 3, consentId: 'g2' }),
        event({ seq: 4 }),
        event({ seq: 5, purpose: 'SELF', actorId: 'pat-user', consentId: null }),
        event({
          seq: 6,
          actorId: 'dr-2',
          breakGlass: true,
          emergencyId: 'em1',
          consentId: null,
          at: '2026-01-10T10:30:00.000Z',
        }),
      ],
      authority([grant, signed], [emergency]),
      owner,
    );
    expect(check).toMatchObject({ permits: 6, justified: 6, patientSigned: 2, problems: [] });
    expect([...check.unsigned]).toEqual([['g1', { patientId: 'p1', permits: 2, seqs: [1, 4] }]]);
  });

  it('keeps the first event numbers of an unsigned grant and counts the rest', async () => {
    const many = Array.from({ length: MAX_SEQS_KEPT + 5 }, (_, i) => event({ seq: i + 1 }));
    const check = await justifyPermits(many, authority([grant]), owner);
    expect(check.unsigned.get('g1')?.permits).toBe(MAX_SEQS_KEPT + 5);
    expect(check.unsigned.get('g1')?.seqs).toHaveLength(MAX_SEQS_KEPT);
  });

  it('does not count denials', async () => {
    const check = await justifyPermits([event({ decision: 'DENY' })], authority([]), owner);
    expect(check).toMatchObject({ permits: 0, justified: 0, patientSigned: 0, problems: [] });
    expect(check.unsigned.size).toBe(0);
  });

  it("says whether a PERMIT's grant was signed from the ledger's record, null without a grant", async () => {
    const ledger = authority([grant, { ...grant, id: 'g2', patientSigned: true }]);
    expect(await grantPatientSigned(event(), ledger)).toBe(false);
    expect(await grantPatientSigned(event({ consentId: 'g2' }), ledger)).toBe(true);
    expect(
      await grantPatientSigned(event({ decision: 'DENY', consentId: null }), ledger),
    ).toBeNull();
    expect(
      await grantPatientSigned(event({ breakGlass: true, consentId: null }), ledger),
    ).toBeNull();
    expect(
      await grantPatientSigned(event({ purpose: 'SELF', consentId: null }), ledger),
    ).toBeNull();
    expect(await grantPatientSigned(event({ consentId: 'forged' }), ledger)).toBeNull();
  });

  it('refuses an unsigned grant while the patient accepted only signed ones, and only then', async () => {
    const on = '2026-01-10T00:00:00.000Z';
    const periods = [{ from: on, until: '2026-01-20T00:00:00.000Z' }];
    const signed = { ...grant, id: 'g2', patientSigned: true };
    const ledger = authority([grant, signed], [emergency], periods);
    const at = (t: string, consentId = 'g1') => event({ at: t, consentId });
    const check = await justifyPermits(
      [
        at('2026-01-05T00:00:00.000Z'), // before it was on
        at(new Date(Date.parse(on) + COMMIT_ALLOWANCE_MS - 1).toISOString()), // decided before
        at('2026-01-15T00:00:00.000Z'), // while on: a break
        at('2026-01-15T00:00:00.000Z', 'g2'), // a signed grant stands
        at('2026-01-25T00:00:00.000Z'), // after it was turned off
      ].map((e, i) => ({ ...e, seq: i + 1 })),
      ledger,
      owner,
    );
    expect(check.problems).toEqual([
      'access event 3 (READ by dr-1): grant g1 is unsigned, and the patient accepted only signed grants at 2026-01-15T00:00:00.000Z',
    ]);
    expect(check).toMatchObject({ permits: 5, justified: 4, patientSigned: 1 });
    const still = await justifyPermits(
      [at('2026-03-01T00:00:00.000Z')],
      authority([{ ...grant, validUntil: null }], [], [{ from: on, until: null }]),
      owner,
    );
    expect(still.problems).toHaveLength(1);
  });

  it('refuses a grant the ledger never held', async () => {
    expect(await problemsOf(event({ consentId: 'forged' }))).toEqual([
      'access event 1 (READ by dr-1): grant forged is not on the ledger',
    ]);
  });

  it('refuses a grant to another clinician, patient, purpose or action', async () => {
    expect(await problemsOf(event({ actorId: 'dr-9' }))).toHaveLength(1);
    expect(await problemsOf(event({ patientId: 'p2' }))).toHaveLength(1);
    expect(await problemsOf(event({ action: 'WRITE' }))).toHaveLength(1);
  });

  it('matches an ORGANIZATION grant against the organisation the event records', async () => {
    const org = { ...grant, grantee: { type: 'ORGANIZATION' as const, id: 'org-a' } };
    expect(await problemsOf(event({ actorOrganizationId: 'org-a' }), [org])).toEqual([]);
    expect(await problemsOf(event({ actorOrganizationId: 'org-b' }), [org])).toHaveLength(1);
    expect(await problemsOf(event(), [org])).toHaveLength(1);
  });

  it('refuses a read before the grant was written or after its window', async () => {
    expect(await problemsOf(event({ at: '2025-12-31T00:00:00.000Z' }))).toHaveLength(1);
    expect(await problemsOf(event({ at: '2026-03-01T00:00:00.000Z' }))).toHaveLength(1);
  });

  it('allows for commit time after a revocation, and no more', async () => {
    const revoked = { ...grant, status: 'REVOKED' as const, revokedAt: '2026-01-15T00:00:00.000Z' };
    const just = new Date(Date.parse(revoked.revokedAt) + COMMIT_ALLOWANCE_MS - 1).toISOString();
    const late = new Date(Date.parse(revoked.revokedAt) + COMMIT_ALLOWANCE_MS).toISOString();
    expect(await problemsOf(event({ at: just }), [revoked])).toEqual([]);
    expect(await problemsOf(event({ at: late }), [revoked])).toEqual([
      `access event 1 (READ by dr-1): grant g1 had been revoked by ${late}`,
    ]);
  });

  it('justifies a break-glass read under an emergency the ledger holds for that clinician', async () => {
    const read = event({
      actorId: 'dr-2',
      consentId: null,
      breakGlass: true,
      emergencyId: 'em1',
      at: '2026-01-10T10:30:00.000Z',
    });
    expect(await problemsOf(read)).toEqual([]);
    expect(await problemsOf({ ...read, actorId: 'dr-1' })).toHaveLength(1);
    expect(await problemsOf({ ...read, emergencyId: undefined })).toHaveLength(1);
    expect(await problemsOf({ ...read, emergencyId: 'em-forged' })).toHaveLength(1);
    expect(await problemsOf({ ...read, at: '2026-01-10T12:00:00.000Z' })).toHaveLength(1);
  });

  it('refuses a break-glass read made after the patient turned emergency access off, even once back on', async () => {
    const read = (at: string) =>
      event({ actorId: 'dr-2', consentId: null, breakGlass: true, emergencyId: 'em1', at });
    const check = async (at: string, off: ChoicePeriod[]) =>
      (await justifyPermits([read(at)], authority([grant], [emergency], [], off), owner)).problems;
    // Off at 10:20 (declared 10:00): reads before, and within the commit allowance, stand.
    const offAt = '2026-01-10T10:20:00.000Z';
    const plus = (ms: number) => new Date(Date.parse(offAt) + ms).toISOString();
    expect(await check('2026-01-10T10:10:00.000Z', [{ from: offAt, until: null }])).toEqual([]);
    expect(await check(plus(COMMIT_ALLOWANCE_MS - 1), [{ from: offAt, until: null }])).toEqual([]);
    expect(await check(plus(COMMIT_ALLOWANCE_MS), [{ from: offAt, until: null }])).toEqual([
      expect.stringMatching(
        /em1 had ended at 2026-01-10T10:20:00.000Z, when the patient turned emergency access off/,
      ),
    ]);
    // Turned back on at 10:25: the emergency stays ended (a new one would have to be declared).
    const onAgain = [{ from: offAt, until: '2026-01-10T10:25:00.000Z' }];
    expect(await check('2026-01-10T10:30:00.000Z', onAgain)).toHaveLength(1);
    // A period before the declaration ends nothing (a declaration while off is refused).
    const earlier = [{ from: '2026-01-10T09:00:00.000Z', until: '2026-01-10T09:30:00.000Z' }];
    expect(await check('2026-01-10T10:30:00.000Z', earlier)).toEqual([]);
  });

  it("justifies a patient's own read only from the patient's own account", async () => {
    const own = event({ actorId: 'pat-user', purpose: 'SELF', consentId: null });
    expect(await problemsOf(own)).toEqual([]);
    expect(await problemsOf({ ...own, actorId: 'dr-1' })).toHaveLength(1);
  });

  it('refuses a permitted access that cites nothing', async () => {
    expect(await problemsOf(event({ consentId: null }))).toHaveLength(1);
  });
});

describe("justifyPermits, held to the grant's record filters", () => {
  const at = Date.parse('2026-01-15T00:00:00.000Z');
  const labelled = (
    from: number,
    facts: Partial<LabelledVersion['facts']> = {},
    patientId = 'p1',
  ): LabelledVersion => ({
    from,
    patientId,
    facts: { resourceType: 'Observation', category: 'laboratory', sensitivity: 'NORMAL', ...facts },
  });
  const labs: GrantRecord = {
    ...grant,
    resourceTypes: ['Observation'],
    categories: ['laboratory'],
  };
  const problems = async (
    recordIds: string[],
    versions: Record<string, LabelledVersion[]>,
    g: GrantRecord = labs,
    overrides: Partial<AccessEventContent> = {},
  ) => {
    const asked: string[][] = [];
    const check = await justifyPermits(
      [event({ recordIds, ...overrides })],
      authority([g], [emergency]),
      owner,
      async (ids) => {
        asked.push([...ids]);
        return new Map(Object.entries(versions).filter(([id]) => ids.includes(id)));
      },
    );
    return { problems: check.problems, asked, justified: check.justified };
  };

  it('passes records the grant allows, and asks for the labels of a page at once', async () => {
    const r = await problems(['r1', 'r2'], { r1: [labelled(0)], r2: [labelled(0)] });
    expect(r).toEqual({ problems: [], asked: [['r1', 'r2']], justified: 1 });
  });

  it('finds a record of another type, category or sensitivity, naming only the filter', async () => {
    const r = await problems(['r1', 'r2', 'r3', 'r4'], {
      r1: [labelled(0)],
      r2: [labelled(0, { resourceType: 'Condition', category: null })],
      r3: [labelled(0, { category: 'vital-signs' })],
      r4: [labelled(0, { sensitivity: 'RESTRICTED' })],
    });
    expect(r.justified).toBe(0);
    expect(r.problems).toEqual([
      'access event 1 (READ by dr-1): 3 of its 4 record(s) lay outside what grant g1 allows: r2 (its resource type), r3 (its category), r4 (restricted)',
    ]);
    // A grant that includes restricted records and names no filters allows all three.
    const open = { ...grant, includeRestricted: true };
    expect(
      (
        await problems(
          ['r2', 'r3', 'r4'],
          {
            r2: [labelled(0)],
            r3: [labelled(0)],
            r4: [labelled(0, { sensitivity: 'RESTRICTED' })],
          },
          open,
        )
      ).problems,
    ).toEqual([]);
  });

  it("finds a record of another patient's under this patient's grant", async () => {
    const r = await problems(['r1'], { r1: [labelled(0, {}, 'p2')] });
    expect(r.problems).toEqual([expect.stringContaining("r1 (another patient's)")]);
  });

  it('judges a record by the labels it had when read, not before or after', async () => {
    const day = 86_400_000;
    // Restricted a day before the read: the earlier, allowed labels no longer count.
    const restricted = [labelled(at - 2 * day), labelled(at - day, { sensitivity: 'RESTRICTED' })];
    expect((await problems(['r1'], { r1: restricted })).problems).toHaveLength(1);
    // Restricted a day after it: the read saw the allowed labels.
    const later = [labelled(at - day), labelled(at + day, { sensitivity: 'RESTRICTED' })];
    expect((await problems(['r1'], { r1: later })).problems).toEqual([]);
    // Amended between the decision and the stamp (within the commit allowance): either stands.
    const amended = [
      labelled(at - day, { sensitivity: 'RESTRICTED' }),
      labelled(at - COMMIT_ALLOWANCE_MS / 2),
    ];
    expect((await problems(['r1'], { r1: amended })).problems).toEqual([]);
  });

  it('passes over records gone with an erasure, and does not ask about reads not under a grant', async () => {
    expect((await problems(['gone'], {})).problems).toEqual([]);
    const own = await problems(['r1'], { r1: [labelled(0, { sensitivity: 'RESTRICTED' })] }, labs, {
      actorId: 'pat-user',
      purpose: 'SELF',
      consentId: null,
    });
    expect(own).toEqual({ problems: [], asked: [[]], justified: 1 });
  });

  it('names three records and counts the rest', async () => {
    const ids = ['a', 'b', 'c', 'd', 'e'];
    const all = Object.fromEntries(
      ids.map((id) => [id, [labelled(0, { category: 'social-history' })]]),
    );
    expect((await problems(ids, all)).problems[0]).toMatch(
      /a \(its category\), b \(its category\), c \(its category\) and 2 more$/,
    );
  });

  it('takes the version current a commit allowance before the stamp, and any written since', () => {
    const v = [
      labelled(0),
      labelled(at - 2 * COMMIT_ALLOWANCE_MS),
      labelled(at - 1),
      labelled(at + 1),
    ];
    expect(versionsReadAt(v, at)).toEqual([v[1], v[2]]);
    // Every version written after the read: the first is the one read.
    expect(versionsReadAt([labelled(at + 5)], at)).toEqual([labelled(at + 5)]);
  });
});
