import fc from 'fast-check';
import {
  AccessRequest,
  ACTIONS,
  ConsentGrant,
  decide,
  effectiveStatus,
  grantApplies,
  GRANTEE_TYPES,
  permits,
  PURPOSES,
  RecordFacts,
  recordAllowed,
  SENSITIVITIES,
} from './policy';

// Small domains, so that random grants and requests often agree on who, whom and what.
const BASE = Date.parse('2025-01-01T00:00:00Z');
const instant = fc
  .integer({ min: 0, max: 240 })
  .map((m) => new Date(BASE + m * 60_000).toISOString());
const someId = fc.constantFrom('a', 'b', 'c');
const patientId = fc.constantFrom('pat-1', 'pat-2');
const resourceType = fc.constantFrom('Observation', 'Condition', 'Encounter');
const category = fc.constantFrom('laboratory', 'vital-signs', 'imaging');

const grantArb: fc.Arbitrary<ConsentGrant> = fc.record({
  id: fc.constantFrom('g-1', 'g-2', 'g-3', 'g-4'),
  patientId,
  grantee: fc.record({ type: fc.constantFrom(...GRANTEE_TYPES), id: someId }),
  purpose: fc.constantFrom(...PURPOSES),
  actions: fc.subarray([...ACTIONS], { minLength: 1 }),
  resourceTypes: fc.subarray(['Observation', 'Condition', 'Encounter']),
  categories: fc.subarray(['laboratory', 'vital-signs', 'imaging']),
  includeRestricted: fc.boolean(),
  validFrom: instant,
  validUntil: fc.option(instant, { nil: null }),
  status: fc.constantFrom('ACTIVE', 'ACTIVE', 'REVOKED', 'EXPIRED'),
});

const recordArb: fc.Arbitrary<RecordFacts> = fc.record({
  resourceType,
  category: fc.option(category, { nil: null }),
  sensitivity: fc.constantFrom(...SENSITIVITIES),
});

const requestArb: fc.Arbitrary<AccessRequest> = fc.record(
  {
    actor: fc.record(
      {
        id: someId,
        organizationId: fc.option(someId, { nil: null }),
        studyId: fc.option(someId, { nil: null }),
      },
      { requiredKeys: ['id'] },
    ),
    patientId,
    action: fc.constantFrom(...ACTIONS),
    purpose: fc.constantFrom(...PURPOSES),
    at: instant,
    record: recordArb,
  },
  { requiredKeys: ['actor', 'patientId', 'action', 'purpose', 'at'] },
);

const MINUTE = 60_000;
const shifted = (iso: string, minutes: number) =>
  new Date(Date.parse(iso) + minutes * MINUTE).toISOString();

/**
 * A grant that agrees with the request on each term more often than chance, so that
 * properties see PERMITs as well as DENYs for every reason.
 */
function nearGrant(request: AccessRequest): fc.Arbitrary<ConsentGrant> {
  const at = String(request.at);
  const actor = request.actor;
  const or = <T>(near: fc.Arbitrary<T>, any: fc.Arbitrary<T>) =>
    fc.oneof({ arbitrary: near, weight: 4 }, { arbitrary: any, weight: 1 });
  const granteeOfActor = fc.constantFrom(
    { type: 'CLINICIAN' as const, id: actor.id },
    { type: 'ORGANIZATION' as const, id: actor.organizationId ?? 'a' },
    { type: 'STUDY' as const, id: actor.studyId ?? 'a' },
  );
  const record = request.record;
  return fc.record({
    id: fc.constantFrom('g-1', 'g-2', 'g-3', 'g-4'),
    patientId: or(fc.constant(request.patientId), patientId),
    grantee: or(granteeOfActor, fc.record({ type: fc.constantFrom(...GRANTEE_TYPES), id: someId })),
    purpose: or(fc.constant(request.purpose), fc.constantFrom(...PURPOSES)),
    actions: or(
      fc.subarray([...ACTIONS]).map((a) => [...new Set([...a, request.action])]),
      fc.subarray([...ACTIONS], { minLength: 1 }),
    ),
    resourceTypes: or(
      fc
        .subarray(['Observation', 'Condition', 'Encounter'])
        .map((t) => (record && t.length ? [...new Set([...t, record.resourceType])] : t)),
      fc.subarray(['Observation', 'Condition', 'Encounter']),
    ),
    categories: or(
      fc
        .subarray(['laboratory', 'vital-signs', 'imaging'])
        .map((c) => (record?.category && c.length ? [...new Set([...c, record.category])] : c)),
      fc.subarray(['laboratory', 'vital-signs', 'imaging']),
    ),
    includeRestricted: fc.boolean(),
    validFrom: or(
      fc.integer({ min: 0, max: 120 }).map((m) => shifted(at, -m)),
      fc.integer({ min: -120, max: 120 }).map((m) => shifted(at, m)),
    ),
    validUntil: or(
      fc.option(
        fc.integer({ min: 1, max: 120 }).map((m) => shifted(at, m)),
        { nil: null },
      ),
      fc.integer({ min: -120, max: 120 }).map((m) => shifted(at, m)),
    ),
    status: fc.constantFrom('ACTIVE', 'ACTIVE', 'ACTIVE', 'REVOKED', 'EXPIRED'),
  });
}

/** A request and grants near it. */
const scenarioArb: fc.Arbitrary<[ConsentGrant[], AccessRequest]> = requestArb.chain((request) =>
  fc.tuple(fc.array(nearGrant(request), { maxLength: 6 }), fc.constant(request)),
);
const pairArb: fc.Arbitrary<[ConsentGrant, AccessRequest]> = requestArb.chain((request) =>
  fc.tuple(nearGrant(request), fc.constant(request)),
);

/** A grant that permits `request`, so that properties also see many PERMITs. */
function matching(request: AccessRequest, overrides: Partial<ConsentGrant> = {}): ConsentGrant {
  const at = Date.parse(String(request.at));
  return {
    id: 'g-match',
    patientId: request.patientId,
    grantee: { type: 'CLINICIAN', id: request.actor.id },
    purpose: request.purpose,
    actions: [request.action],
    resourceTypes: [],
    categories: [],
    includeRestricted: true,
    validFrom: new Date(at).toISOString(),
    validUntil: new Date(at + 1).toISOString(),
    status: 'ACTIVE',
    ...overrides,
  };
}

describe('the consent rule (properties)', () => {
  it('permits a request iff some grant permits it, naming the lowest permitting grant id', () => {
    let permitted = 0;
    fc.assert(
      fc.property(scenarioArb, ([grants, request]) => {
        const permitting = grants.filter((g) => permits(g, request)).map((g) => g.id);
        const decision = decide(grants, request);
        expect(decision.decision).toBe(permitting.length ? 'PERMIT' : 'DENY');
        expect(decision.grantId).toBe(permitting.length ? [...permitting].sort()[0] : undefined);
        if (permitting.length) permitted++;
      }),
      { numRuns: 300 },
    );
    // The generator must exercise both outcomes, or the property says little.
    expect(permitted).toBeGreaterThan(30);
    expect(permitted).toBeLessThan(270);
  });

  it('decides the same whatever the order of the grants', () => {
    const permuted = scenarioArb.chain(([grants, request]) =>
      fc.tuple(
        fc.constant(grants),
        fc.shuffledSubarray(grants, { minLength: grants.length, maxLength: grants.length }),
        fc.constant(request),
      ),
    );
    fc.assert(
      fc.property(permuted, ([grants, shuffled, request]) => {
        expect(decide(shuffled, request)).toEqual(decide(grants, request));
      }),
    );
  });

  it('never turns a PERMIT into a DENY when a grant is added', () => {
    const withExtra = scenarioArb.chain(([grants, request]) =>
      fc.tuple(fc.constant(grants), fc.oneof(nearGrant(request), grantArb), fc.constant(request)),
    );
    fc.assert(
      fc.property(withExtra, ([grants, extra, request]) => {
        fc.pre(decide(grants, request).decision === 'PERMIT');
        expect(decide([...grants, extra], request).decision).toBe('PERMIT');
        expect(decide([extra, ...grants], request).decision).toBe('PERMIT');
      }),
    );
  });

  it('permits only where the grant applies and, for a record, admits the record', () => {
    fc.assert(
      fc.property(pairArb, ([grant, request]) => {
        if (permits(grant, request)) {
          expect(grantApplies(grant, request)).toBe(true);
          if (request.record) expect(recordAllowed(grant, request.record)).toBe(true);
        }
        const { record: _record, ...withoutRecord } = request;
        expect(permits(grant, withoutRecord)).toBe(grantApplies(grant, request));
      }),
      { numRuns: 300 },
    );
  });

  it('never permits with a grant that is not ACTIVE', () => {
    fc.assert(
      fc.property(pairArb, fc.constantFrom('REVOKED', 'EXPIRED'), ([g, request], status) => {
        const grant = { ...g, status } as ConsentGrant;
        expect(permits(grant, request)).toBe(false);
        expect(permits({ ...matching(request), status } as ConsentGrant, request)).toBe(false);
        expect(decide([grant], request)).toEqual({ decision: 'DENY' });
      }),
    );
  });

  it('never permits outside [validFrom, validUntil)', () => {
    fc.assert(
      fc.property(pairArb, ([grant, request]) => {
        const at = Date.parse(String(request.at));
        const outside =
          at < Date.parse(grant.validFrom) ||
          (grant.validUntil != null && at >= Date.parse(grant.validUntil));
        if (outside) expect(permits(grant, request)).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('permits from validFrom up to, but not at, validUntil', () => {
    fc.assert(
      fc.property(requestArb, fc.integer({ min: 1, max: 10_000 }), (request, width) => {
        const at = Date.parse(String(request.at));
        const grant = matching(request, {
          validFrom: new Date(at).toISOString(),
          validUntil: new Date(at + width).toISOString(),
        });
        const when = (t: number) => ({ ...request, at: new Date(t).toISOString() });
        expect(permits(grant, when(at - 1))).toBe(false);
        expect(permits(grant, when(at))).toBe(true);
        expect(permits(grant, when(at + width - 1))).toBe(true);
        expect(permits(grant, when(at + width))).toBe(false);
      }),
    );
  });

  it('admits every record when the type and category filters are empty', () => {
    fc.assert(
      fc.property(grantArb, recordArb, (g, record) => {
        const grant = { ...g, resourceTypes: [], categories: [] };
        expect(recordAllowed(grant, record)).toBe(
          record.sensitivity === 'NORMAL' || grant.includeRestricted,
        );
        expect(recordAllowed({ ...grant, includeRestricted: true }, record)).toBe(true);
      }),
    );
  });

  it('lets a grant with empty filters permit a record wherever it permits the request', () => {
    fc.assert(
      fc.property(pairArb, recordArb, ([g, request], record) => {
        const grant = { ...g, resourceTypes: [], categories: [], includeRestricted: true };
        expect(permits(grant, { ...request, record })).toBe(grantApplies(grant, request));
      }),
    );
  });

  it('admits a record only if each non-empty filter holds it', () => {
    fc.assert(
      fc.property(grantArb, recordArb, (grant, record) => {
        if (!recordAllowed(grant, record)) return;
        if (grant.resourceTypes.length) expect(grant.resourceTypes).toContain(record.resourceType);
        if (grant.categories.length) expect(grant.categories).toContain(record.category);
        if (record.sensitivity === 'RESTRICTED') expect(grant.includeRestricted).toBe(true);
      }),
    );
  });

  it('permits only the grantee the grant names: the actor, their organisation or their study', () => {
    fc.assert(
      fc.property(pairArb, ([grant, request]) => {
        fc.pre(permits(grant, request));
        const { type, id } = grant.grantee;
        if (type === 'CLINICIAN') expect(request.actor.id).toBe(id);
        if (type === 'ORGANIZATION') expect(request.actor.organizationId).toBe(id);
        if (type === 'STUDY') expect(request.actor.studyId).toBe(id);
        expect(grant.status).toBe('ACTIVE');
        expect(grant.patientId).toBe(request.patientId);
        expect(grant.actions).toContain(request.action);
        expect(grant.purpose).toBe(request.purpose);
      }),
    );
  });

  it('decides the same for an instant given as a string or as a Date', () => {
    fc.assert(
      fc.property(scenarioArb, ([grants, request]) => {
        const asDate = { ...request, at: new Date(String(request.at)) };
        expect(decide(grants, asDate)).toEqual(decide(grants, request));
      }),
    );
  });

  it('reads an ACTIVE grant as EXPIRED exactly from its validUntil on', () => {
    fc.assert(
      fc.property(grantArb, instant, (grant, at) => {
        const status = effectiveStatus(grant, at);
        if (grant.status !== 'ACTIVE') expect(status).toBe(grant.status);
        else if (grant.validUntil && Date.parse(at) >= Date.parse(grant.validUntil)) {
          expect(status).toBe('EXPIRED');
        } else expect(status).toBe('ACTIVE');
      }),
    );
  });

  it('never permits with a grant that reads as EXPIRED at the time of the request', () => {
    fc.assert(
      fc.property(pairArb, ([grant, request]) => {
        if (effectiveStatus(grant, request.at) !== 'ACTIVE') {
          expect(permits(grant, request)).toBe(false);
        }
      }),
    );
  });
});

describe('the consent rule (examples from ARCHITECTURE section 5)', () => {
  const grant = (overrides: Partial<ConsentGrant> = {}): ConsentGrant => ({
    id: 'grant-1',
    patientId: 'pat-1',
    grantee: { type: 'CLINICIAN', id: 'dr-1' },
    purpose: 'TREATMENT',
    actions: ['READ', 'WRITE'],
    resourceTypes: [],
    categories: [],
    includeRestricted: false,
    validFrom: '2025-01-01T00:00:00.000Z',
    validUntil: '2025-07-01T00:00:00.000Z',
    status: 'ACTIVE',
    ...overrides,
  });
  const request = (overrides: Partial<AccessRequest> = {}): AccessRequest => ({
    actor: { id: 'dr-1', organizationId: 'org-1' },
    patientId: 'pat-1',
    action: 'READ',
    purpose: 'TREATMENT',
    at: '2025-03-01T12:00:00Z',
    ...overrides,
  });

  it("permits a clinician to read a patient's lab results for treatment", () => {
    const g = grant({ resourceTypes: ['Observation'], categories: ['laboratory'] });
    const r = request({
      record: { resourceType: 'Observation', category: 'laboratory', sensitivity: 'NORMAL' },
    });
    expect(decide([g], r)).toEqual({ decision: 'PERMIT', grantId: 'grant-1' });
  });

  it('denies a clinician whose grant was revoked', () => {
    expect(decide([grant({ status: 'REVOKED' })], request())).toEqual({ decision: 'DENY' });
  });

  it('denies a grant without a validUntil only before its validFrom', () => {
    const g = grant({ validUntil: null });
    expect(permits(g, request({ at: '2024-12-31T23:59:59.999Z' }))).toBe(false);
    expect(permits(g, request({ at: '2099-01-01T00:00:00Z' }))).toBe(true);
  });

  it("lets an organisation grant cover any of the organisation's clinicians", () => {
    const g = grant({ grantee: { type: 'ORGANIZATION', id: 'org-1' } });
    expect(permits(g, request({ actor: { id: 'dr-7', organizationId: 'org-1' } }))).toBe(true);
    expect(permits(g, request({ actor: { id: 'dr-7', organizationId: 'org-2' } }))).toBe(false);
    expect(permits(g, request({ actor: { id: 'org-1' } }))).toBe(false);
  });

  it('lets a training node acting for a study train under that study grant only', () => {
    const g = grant({
      grantee: { type: 'STUDY', id: 'study-1' },
      purpose: 'RESEARCH',
      actions: ['TRAIN'],
    });
    const train = { action: 'TRAIN', purpose: 'RESEARCH' } as const;
    expect(permits(g, request({ ...train, actor: { id: 'node-1', studyId: 'study-1' } }))).toBe(
      true,
    );
    expect(permits(g, request({ ...train, actor: { id: 'node-1', studyId: 'study-2' } }))).toBe(
      false,
    );
    expect(permits(g, request({ ...train, actor: { id: 'study-1' } }))).toBe(false);
    expect(permits(g, request({ actor: { id: 'node-1', studyId: 'study-1' } }))).toBe(false);
  });

  it('denies a restricted record unless the grant includes restricted records', () => {
    const record = {
      resourceType: 'Condition',
      category: 'mental-health',
      sensitivity: 'RESTRICTED',
    } as const;
    expect(permits(grant(), request({ record }))).toBe(false);
    expect(permits(grant({ includeRestricted: true }), request({ record }))).toBe(true);
  });

  it('denies a record outside the categories a grant lists, including one with no category', () => {
    const g = grant({ categories: ['laboratory'] });
    expect(
      permits(
        g,
        request({
          record: { resourceType: 'Observation', category: 'imaging', sensitivity: 'NORMAL' },
        }),
      ),
    ).toBe(false);
    expect(
      permits(g, request({ record: { resourceType: 'Observation', sensitivity: 'NORMAL' } })),
    ).toBe(false);
  });

  it('still applies a grant whose record filters exclude the record, so the answer is an empty listing, not CONSENT_REQUIRED', () => {
    const g = grant({ resourceTypes: ['Observation'] });
    const r = request({ record: { resourceType: 'Condition', sensitivity: 'NORMAL' } });
    expect(grantApplies(g, r)).toBe(true);
    expect(permits(g, r)).toBe(false);
  });

  it('names the first permitting grant by id, not by position', () => {
    const grants = [
      grant({ id: 'grant-b' }),
      grant({ id: 'grant-a' }),
      grant({ id: 'grant-0', status: 'REVOKED' }),
    ];
    expect(decide(grants, request())).toEqual({ decision: 'PERMIT', grantId: 'grant-a' });
  });

  it('denies when there are no grants at all', () => {
    expect(decide([], request())).toEqual({ decision: 'DENY' });
  });
});
