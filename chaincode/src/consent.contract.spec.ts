import './testing/quiet-logs';
import * as sinon from 'sinon';
import {
  CONSENT_EVENTS,
  ConsentContract,
  EmergencyAccessSetting,
  EmergencyRecord,
  GrantRecord,
} from './consent.contract';
import { KEYS } from './state';
import { compositeKey, eventsOf, FakeLedger } from './testing/fake-ledger';
import { ChaincodeError } from './errors';

const consent = new ConsentContract();

/** A valid grant's terms: a clinician may read a patient's records for treatment. */
function terms(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'grant-1',
    patientId: 'pat-1',
    grantee: { type: 'CLINICIAN', id: 'dr-1' },
    purpose: 'TREATMENT',
    actions: ['READ'],
    resourceTypes: [],
    categories: [],
    includeRestricted: false,
    validFrom: '2025-01-01T00:00:00Z',
    validUntil: '2025-07-01T00:00:00Z',
    ...overrides,
  };
}

/** A valid training grant: a study may train on a patient's records for research. */
function studyTerms(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return terms({
    id: 'grant-study',
    grantee: { type: 'STUDY', id: 'study-1' },
    purpose: 'RESEARCH',
    actions: ['TRAIN'],
    ...overrides,
  });
}

function request(overrides: Record<string, unknown> = {}): string {
  return JSON.stringify({
    actor: { id: 'dr-1' },
    patientId: 'pat-1',
    action: 'READ',
    purpose: 'TREATMENT',
    ...overrides,
  });
}

interface Decision {
  decision: 'PERMIT' | 'DENY';
  grantId?: string;
  at: string;
}

describe('ConsentContract', () => {
  let ledger: FakeLedger;

  beforeEach(() => {
    ledger = new FakeLedger();
    ledger.setTime('2025-01-15T09:30:00Z');
  });

  async function grant(t: Record<string, unknown>, at?: string): Promise<GrantRecord> {
    const { result } = await ledger.invoke<GrantRecord>(
      (ctx) => consent.GrantConsent(ctx, JSON.stringify(t)),
      { at },
    );
    return result;
  }

  async function revoke(id: string, at?: string): Promise<GrantRecord> {
    const { result } = await ledger.invoke<GrantRecord>((ctx) => consent.RevokeConsent(ctx, id), {
      at,
    });
    return result;
  }

  async function check(req: string, at?: string): Promise<Decision> {
    const { result, tx } = await ledger.invoke<Decision>((ctx) => consent.CheckAccess(ctx, req), {
      at,
    });
    sinon.assert.notCalled(tx.stub.putState);
    return result;
  }

  async function rejection(call: Parameters<FakeLedger['failure']>[0], at?: string) {
    const error = await ledger.failure(call, { at });
    expect(error).toBeInstanceOf(ChaincodeError);
    return error.message;
  }

  describe('GrantConsent', () => {
    it('stores a valid grant as ACTIVE, stamped with the transaction time, id and caller', async () => {
      const { result, tx } = await ledger.invoke<GrantRecord>((ctx) =>
        consent.GrantConsent(ctx, JSON.stringify(terms())),
      );

      const expected: GrantRecord = {
        id: 'grant-1',
        patientId: 'pat-1',
        grantee: { type: 'CLINICIAN', id: 'dr-1' },
        purpose: 'TREATMENT',
        actions: ['READ'],
        resourceTypes: [],
        categories: [],
        includeRestricted: false,
        validFrom: '2025-01-01T00:00:00.000Z',
        validUntil: '2025-07-01T00:00:00.000Z',
        status: 'ACTIVE',
        revokedAt: null,
        createdAt: '2025-01-15T09:30:00.000Z',
        txId: tx.txId,
        writtenBy: 'Org1MSP',
        revokedTxId: null,
        patientSigned: false,
        signedBy: null,
      };
      expect(result).toEqual(expected);
      expect(ledger.read(KEYS.grant, ['grant-1'])).toEqual(expected);
    });

    it('indexes the grant by patient and by grantee', async () => {
      await grant(terms());

      const byPatient = compositeKey(KEYS.grantByPatient, ['pat-1', 'grant-1']);
      const byGrantee = compositeKey(KEYS.grantByGrantee, ['CLINICIAN', 'dr-1', 'grant-1']);
      expect(byPatient).toBe('\u0000custodia.grant~patient\u0000pat-1\u0000grant-1\u0000');
      expect(ledger.state.has(byPatient)).toBe(true);
      expect(ledger.state.has(byGrantee)).toBe(true);
      expect([...ledger.state.keys()].sort()).toEqual(
        [compositeKey(KEYS.grant, ['grant-1']), byPatient, byGrantee].sort(),
      );
    });

    it('emits exactly one ConsentGranted event carrying the stored grant', async () => {
      const { result, tx } = await ledger.invoke<GrantRecord>((ctx) =>
        consent.GrantConsent(ctx, JSON.stringify(terms())),
      );

      expect(eventsOf(tx)).toEqual([{ name: CONSENT_EVENTS.granted, payload: result }]);
      expect(CONSENT_EVENTS.granted).toBe('ConsentGranted');
    });

    it('records the MSP id of whichever organisation wrote the grant', async () => {
      ledger.setCaller('Org2MSP');
      expect((await grant(terms())).writtenBy).toBe('Org2MSP');
    });

    it('starts a grant at the transaction time when validFrom is omitted', async () => {
      const t = terms({ validUntil: null });
      delete t.validFrom;
      const stored = await grant(t, '2025-02-03T04:05:06.789Z');
      expect(stored.validFrom).toBe('2025-02-03T04:05:06.789Z');
      expect(stored.validUntil).toBeNull();
    });

    it('normalises instants with an offset to UTC', async () => {
      const stored = await grant(terms({ validFrom: '2025-01-01T02:00:00+02:00' }));
      expect(stored.validFrom).toBe('2025-01-01T00:00:00.000Z');
    });

    it.each(['2025-02-30T00:00:00Z', '2025-04-31T10:00:00Z', '2025-01-01T24:00:00Z'])(
      'rejects an impossible date (%s) instead of rolling it over',
      async (validUntil) => {
        const message = await rejection((ctx) =>
          consent.GrantConsent(ctx, JSON.stringify(terms({ validUntil }))),
        );
        expect(message).toContain('grant.validUntil is not a real date and time');
      },
    );

    it('takes the years 0001–0099 as themselves (not 1901–1999)', async () => {
      const stored = await grant(terms({ validFrom: '0001-01-01T00:00:00Z' }));
      expect(stored.validFrom).toBe('0001-01-01T00:00:00.000Z');
    });

    it('answers a grant whose window has already closed as EXPIRED', async () => {
      const stored = await grant(
        terms({ validFrom: '2020-01-01T00:00:00Z', validUntil: '2020-02-01T00:00:00Z' }),
      );
      expect(stored.status).toBe('EXPIRED');
    });

    it('accepts a training grant from a patient to a study for research', async () => {
      const stored = await grant(studyTerms());
      expect(stored.grantee).toEqual({ type: 'STUDY', id: 'study-1' });
      expect(stored.actions).toEqual(['TRAIN']);
    });

    it.each<[string, string, string]>([
      ['input that is not JSON', '{"id": "grant-1"', 'grant'],
      ['a JSON array', '[]', 'grant'],
      ['an unknown field', JSON.stringify(terms({ colour: 'blue' })), 'grant.colour'],
      [
        'an unknown grantee field',
        JSON.stringify(terms({ grantee: { type: 'CLINICIAN', id: 'dr-1', name: 'Dr Who' } })),
        'grant.grantee.name',
      ],
      [
        'a grantee that is not an object',
        JSON.stringify(terms({ grantee: 'dr-1' })),
        'grant.grantee',
      ],
      ['a grant id with a space', JSON.stringify(terms({ id: 'grant 1' })), 'grant.id'],
      [
        'a patient name instead of an id',
        JSON.stringify(terms({ patientId: 'Jane Doe' })),
        'grant.patientId',
      ],
      [
        'a grantee id with a control character',
        JSON.stringify(terms({ grantee: { type: 'CLINICIAN', id: 'dr\u0007jones' } })),
        'grant.grantee.id',
      ],
      [
        'a grantee id of 256 characters',
        JSON.stringify(terms({ grantee: { type: 'CLINICIAN', id: 'd'.repeat(256) } })),
        'grant.grantee.id',
      ],
      [
        'an unknown grantee type',
        JSON.stringify(terms({ grantee: { type: 'NURSE', id: 'n-1' } })),
        'grant.grantee.type',
      ],
      ['an unknown purpose', JSON.stringify(terms({ purpose: 'MARKETING' })), 'grant.purpose'],
      [
        'an unknown action',
        JSON.stringify(terms({ actions: ['READ', 'DELETE'] })),
        'grant.actions[1]',
      ],
      ['no actions', JSON.stringify(terms({ actions: [] })), 'grant.actions'],
      ['a repeated action', JSON.stringify(terms({ actions: ['READ', 'READ'] })), 'grant.actions'],
      [
        'TRAIN for purpose TREATMENT',
        JSON.stringify(studyTerms({ purpose: 'TREATMENT' })),
        'grant.actions:',
      ],
      [
        'TRAIN to a clinician',
        JSON.stringify(studyTerms({ grantee: { type: 'CLINICIAN', id: 'dr-1' } })),
        'grant.actions:',
      ],
      [
        'READ for purpose RESEARCH',
        JSON.stringify(terms({ purpose: 'RESEARCH' })),
        'grant.actions:',
      ],
      [
        'WRITE next to TRAIN for purpose RESEARCH',
        JSON.stringify(studyTerms({ actions: ['TRAIN', 'WRITE'] })),
        'grant.actions:',
      ],
      [
        'a validUntil equal to validFrom',
        JSON.stringify(terms({ validUntil: '2025-01-01T00:00:00Z' })),
        'grant.validUntil',
      ],
      [
        'a validUntil before validFrom',
        JSON.stringify(terms({ validUntil: '2024-12-31T23:59:59Z' })),
        'grant.validUntil',
      ],
      [
        'a date without a time',
        JSON.stringify(terms({ validFrom: '2025-01-01' })),
        'grant.validFrom',
      ],
      [
        'a date-time without a time zone',
        JSON.stringify(terms({ validFrom: '2025-01-01T00:00:00' })),
        'grant.validFrom',
      ],
      [
        'an instant that is not ISO-8601',
        JSON.stringify(terms({ validUntil: 'next week' })),
        'grant.validUntil',
      ],
      [
        'an instant out of range',
        JSON.stringify(terms({ validUntil: '2025-13-01T00:00:00Z' })),
        'grant.validUntil',
      ],
      [
        'more than 64 resource types',
        JSON.stringify(terms({ resourceTypes: Array.from({ length: 65 }, (_, i) => `Type${i}`) })),
        'grant.resourceTypes',
      ],
      [
        'a resource type that is not a code',
        JSON.stringify(terms({ resourceTypes: ['Lab Result'] })),
        'grant.resourceTypes[0]',
      ],
      [
        'a repeated category',
        JSON.stringify(terms({ categories: ['laboratory', 'laboratory'] })),
        'grant.categories',
      ],
      [
        'a non-boolean includeRestricted',
        JSON.stringify(terms({ includeRestricted: 'yes' })),
        'grant.includeRestricted',
      ],
    ])('rejects %s, naming the field', async (_case, json, field) => {
      const message = await rejection((ctx) => consent.GrantConsent(ctx, json));
      expect(message.startsWith(`[INVALID_ARGUMENT] ${field} `)).toBe(true);
    });

    it.each([
      ['a zero-width space', 'dr-bob\u200b'],
      ['a zero-width joiner', 'dr\u200dbob'],
      ['a soft hyphen', 'dr-\u00adbob'],
      ['a byte-order mark', '\ufeffdr-bob'],
      ['a no-break space', 'dr\u00a0bob'],
      ['a line separator', 'dr-bob\u2028'],
      ['a leading space', ' dr-bob'],
      ['a trailing space', 'dr-bob '],
    ])('rejects a grantee id holding %s, which would read as another id', async (_case, id) => {
      const json = JSON.stringify(terms({ grantee: { type: 'CLINICIAN', id } }));
      const message = await rejection((ctx) => consent.GrantConsent(ctx, json));
      expect(message).toMatch(/^\[INVALID_ARGUMENT\] grant\.grantee\.id must not hold invisible/);
      expect(ledger.read(KEYS.grant, ['grant-1'])).toBeUndefined();
    });

    it('accepts a grantee id with plain spaces inside it', async () => {
      const g = await grant(terms({ grantee: { type: 'ORGANIZATION', id: 'St Mary Hospital' } }));
      expect(g.grantee.id).toBe('St Mary Hospital');
    });

    it('accepts exactly 64 resource types', async () => {
      const resourceTypes = Array.from({ length: 64 }, (_, i) => `Type${i}`);
      expect((await grant(terms({ resourceTypes }))).resourceTypes).toHaveLength(64);
    });

    it('rejects a second grant with the same id and keeps the first', async () => {
      const first = await grant(terms());
      const message = await rejection((ctx) =>
        consent.GrantConsent(ctx, JSON.stringify(terms({ patientId: 'pat-2' }))),
      );
      expect(message).toBe('[CONFLICT] grant grant-1 already exists');
      expect(ledger.read(KEYS.grant, ['grant-1'])).toEqual(first);
    });
  });

  describe('RevokeConsent', () => {
    it('marks the grant REVOKED at the transaction time and emits one ConsentRevoked event', async () => {
      const granted = await grant(terms());
      const { result, tx } = await ledger.invoke<GrantRecord>(
        (ctx) => consent.RevokeConsent(ctx, 'grant-1'),
        { at: '2025-02-01T08:00:00Z' },
      );

      expect(result).toEqual({
        ...granted,
        status: 'REVOKED',
        revokedAt: '2025-02-01T08:00:00.000Z',
        revokedTxId: tx.txId,
      });
      expect(ledger.read(KEYS.grant, ['grant-1'])).toEqual(result);
      expect(eventsOf(tx)).toEqual([{ name: CONSENT_EVENTS.revoked, payload: result }]);
      expect(CONSENT_EVENTS.revoked).toBe('ConsentRevoked');
    });

    it('keeps the revoked grant in its patient and grantee indexes', async () => {
      await grant(terms());
      const keysBefore = [...ledger.state.keys()].sort();
      await revoke('grant-1');
      expect([...ledger.state.keys()].sort()).toEqual(keysBefore);
    });

    it('rejects revoking a grant that does not exist', async () => {
      const message = await rejection((ctx) => consent.RevokeConsent(ctx, 'grant-404'));
      expect(message).toBe('[NOT_FOUND] grant grant-404 does not exist');
    });

    it('rejects revoking a grant that was already revoked', async () => {
      await grant(terms());
      await revoke('grant-1', '2025-02-01T08:00:00Z');
      const message = await rejection((ctx) => consent.RevokeConsent(ctx, 'grant-1'));
      expect(message).toBe(
        '[CONFLICT] grant grant-1 was already revoked at 2025-02-01T08:00:00.000Z',
      );
    });

    it('rejects a grant id that is not an id', async () => {
      const message = await rejection((ctx) => consent.RevokeConsent(ctx, 'grant 1'));
      expect(message.startsWith('[INVALID_ARGUMENT] grantId ')).toBe(true);
    });
  });

  describe('GetConsent', () => {
    it('reads a stored grant without writing anything', async () => {
      const granted = await grant(terms());
      const { result, tx } = await ledger.invoke<GrantRecord>((ctx) =>
        consent.GetConsent(ctx, 'grant-1'),
      );
      expect(result).toEqual(granted);
      sinon.assert.notCalled(tx.stub.putState);
      sinon.assert.notCalled(tx.stub.setEvent);
    });

    it('reads a grant past its validUntil as EXPIRED while the ledger still stores ACTIVE', async () => {
      await grant(terms());
      const { result } = await ledger.invoke<GrantRecord>(
        (ctx) => consent.GetConsent(ctx, 'grant-1'),
        {
          at: '2025-07-01T00:00:00.001Z',
        },
      );
      expect(result.status).toBe('EXPIRED');
      expect(ledger.read<GrantRecord>(KEYS.grant, ['grant-1'])!.status).toBe('ACTIVE');
    });

    it('reads a grant as EXPIRED from the very instant of its validUntil', async () => {
      await grant(terms());
      const before = await ledger.invoke<GrantRecord>((ctx) => consent.GetConsent(ctx, 'grant-1'), {
        at: '2025-06-30T23:59:59.999Z',
      });
      const at = await ledger.invoke<GrantRecord>((ctx) => consent.GetConsent(ctx, 'grant-1'), {
        at: '2025-07-01T00:00:00.000Z',
      });
      expect(before.result.status).toBe('ACTIVE');
      expect(at.result.status).toBe('EXPIRED');
    });

    it('reads a revoked grant as REVOKED even after its validUntil', async () => {
      await grant(terms());
      await revoke('grant-1');
      const { result } = await ledger.invoke<GrantRecord>(
        (ctx) => consent.GetConsent(ctx, 'grant-1'),
        {
          at: '2026-01-01T00:00:00Z',
        },
      );
      expect(result.status).toBe('REVOKED');
    });

    it('rejects reading a grant that does not exist', async () => {
      const message = await rejection((ctx) => consent.GetConsent(ctx, 'grant-404'));
      expect(message).toBe('[NOT_FOUND] grant grant-404 does not exist');
    });
  });

  describe('ListConsentsByPatient and ListConsentsByGrantee', () => {
    beforeEach(async () => {
      await grant(terms({ id: 'g-b' }));
      await grant(terms({ id: 'g-a', grantee: { type: 'ORGANIZATION', id: 'dr-1' } }));
      await grant(terms({ id: 'g-c', patientId: 'pat-10' }));
      await grant(
        terms({ id: 'g-d', patientId: 'pat-2', grantee: { type: 'CLINICIAN', id: 'dr-10' } }),
      );
      await grant(studyTerms({ id: 'g-e', patientId: 'pat-2' }));
    });

    const ids = (grants: GrantRecord[]) => grants.map((g) => g.id);

    it("lists exactly the patient's grants, in id order", async () => {
      const one = await ledger.invoke<GrantRecord[]>((ctx) =>
        consent.ListConsentsByPatient(ctx, 'pat-1'),
      );
      const two = await ledger.invoke<GrantRecord[]>((ctx) =>
        consent.ListConsentsByPatient(ctx, 'pat-2'),
      );
      expect(ids(one.result)).toEqual(['g-a', 'g-b']);
      expect(ids(two.result)).toEqual(['g-d', 'g-e']);
    });

    it('lists nothing for a patient without grants', async () => {
      const { result } = await ledger.invoke<GrantRecord[]>((ctx) =>
        consent.ListConsentsByPatient(ctx, 'pat-3'),
      );
      expect(result).toEqual([]);
    });

    it("lists exactly the grantee's grants, telling grantee types apart", async () => {
      const clinician = await ledger.invoke<GrantRecord[]>((ctx) =>
        consent.ListConsentsByGrantee(ctx, 'CLINICIAN', 'dr-1'),
      );
      const organization = await ledger.invoke<GrantRecord[]>((ctx) =>
        consent.ListConsentsByGrantee(ctx, 'ORGANIZATION', 'dr-1'),
      );
      const study = await ledger.invoke<GrantRecord[]>((ctx) =>
        consent.ListConsentsByGrantee(ctx, 'STUDY', 'study-1'),
      );
      expect(ids(clinician.result)).toEqual(['g-b', 'g-c']);
      expect(ids(organization.result)).toEqual(['g-a']);
      expect(ids(study.result)).toEqual(['g-e']);
    });

    it('lists grants with the status they have at the transaction time', async () => {
      await revoke('g-b');
      const { result } = await ledger.invoke<GrantRecord[]>(
        (ctx) => consent.ListConsentsByPatient(ctx, 'pat-1'),
        { at: '2025-08-01T00:00:00Z' },
      );
      expect(result.map((g) => [g.id, g.status])).toEqual([
        ['g-a', 'EXPIRED'],
        ['g-b', 'REVOKED'],
      ]);
    });

    it("names a grantee by whatever subject its identity provider issues ('auth0|…', e-mail)", async () => {
      for (const id of ['auth0|5f7c8ec7c33c6c004bbafe82', 'dr.house@example.org']) {
        const stored = await grant(
          terms({ id: `g-${id.length}`, grantee: { type: 'CLINICIAN', id } }),
        );
        expect(stored.grantee).toEqual({ type: 'CLINICIAN', id });
        const listed = await ledger.invoke<GrantRecord[]>((ctx) =>
          consent.ListConsentsByGrantee(ctx, 'CLINICIAN', id),
        );
        expect(listed.result.map((g) => g.id)).toEqual([`g-${id.length}`]);
      }
    });

    it('rejects an unknown grantee type or a malformed id', async () => {
      const type = await rejection((ctx) => consent.ListConsentsByGrantee(ctx, 'NURSE', 'n-1'));
      const grantee = await rejection((ctx) =>
        consent.ListConsentsByGrantee(ctx, 'CLINICIAN', 'dr\u0000who'),
      );
      const patient = await rejection((ctx) => consent.ListConsentsByPatient(ctx, 'Jane Doe'));
      expect(type.startsWith('[INVALID_ARGUMENT] granteeType ')).toBe(true);
      expect(grantee.startsWith('[INVALID_ARGUMENT] granteeId ')).toBe(true);
      expect(patient.startsWith('[INVALID_ARGUMENT] patientId ')).toBe(true);
    });
  });

  describe('ListConsents', () => {
    async function listAll(pageSize: number): Promise<{ pages: number; ids: string[] }> {
      const ids: string[] = [];
      let bookmark = '';
      let pages = 0;
      do {
        const { result, tx } = await ledger.invoke<{ grants: GrantRecord[]; bookmark: string }>(
          (ctx) => consent.ListConsents(ctx, String(pageSize), bookmark),
        );
        sinon.assert.notCalled(tx.stub.putState);
        ids.push(...result.grants.map((g) => g.id));
        bookmark = result.bookmark;
        pages++;
      } while (bookmark);
      return { pages, ids };
    }

    it('pages through every grant exactly once, in key order, whatever the page size', async () => {
      const ids = ['g-a', 'g-b', 'g-c', 'g-d', 'g-e'];
      for (const id of ids) await grant(terms({ id, patientId: `pat-${id}` }));
      for (const size of [1, 2, 5, 6]) {
        const listed = await listAll(size);
        expect(listed.ids).toEqual(ids);
        expect(listed.pages).toBeGreaterThanOrEqual(Math.ceil(ids.length / size));
      }
    });

    it('lists grants as stored: revoked ones too, and expired ones still ACTIVE', async () => {
      await grant(terms({ id: 'g-live' }));
      await grant(terms({ id: 'g-gone' }));
      await revoke('g-gone');
      const { result } = await ledger.invoke<{ grants: GrantRecord[] }>(
        (ctx) => consent.ListConsents(ctx, '10', ''),
        { at: '2026-01-01T00:00:00Z' },
      );
      expect(result.grants.map((g) => [g.id, g.status])).toEqual([
        ['g-gone', 'REVOKED'],
        ['g-live', 'ACTIVE'],
      ]);
    });

    it('lists no index entries and nothing for an empty ledger', async () => {
      expect((await listAll(3)).ids).toEqual([]);
    });

    it('rejects a page size that is not a positive whole number or is over 1000', async () => {
      for (const size of ['0', '-1', 'x', '1001']) {
        expect(await rejection((ctx) => consent.ListConsents(ctx, size, ''))).toMatch(
          /^\[INVALID_ARGUMENT\] pageSize/,
        );
      }
    });
  });

  describe('DeclareEmergency and GetEmergency', () => {
    const declaration = { id: 'em-1', patientId: 'pat-1', clinicianId: 'dr-1' };

    it('records a 60-minute emergency from the transaction time and emits one event', async () => {
      const { result, tx } = await ledger.invoke<EmergencyRecord>((ctx) =>
        consent.DeclareEmergency(ctx, JSON.stringify(declaration)),
      );
      const expected: EmergencyRecord = {
        ...declaration,
        declaredAt: '2025-01-15T09:30:00.000Z',
        expiresAt: '2025-01-15T10:30:00.000Z',
        txId: tx.txId,
        writtenBy: 'Org1MSP',
      };
      expect(result).toEqual(expected);
      expect(eventsOf(tx)).toEqual([{ name: CONSENT_EVENTS.emergency, payload: expected }]);
      const read = await ledger.invoke<EmergencyRecord>((ctx) => consent.GetEmergency(ctx, 'em-1'));
      expect(read.result).toEqual(expected);
    });

    it('takes no reason or window from the caller', async () => {
      for (const extra of [{ reason: 'x' }, { expiresAt: '2030-01-01T00:00:00Z' }]) {
        expect(
          await rejection((ctx) =>
            consent.DeclareEmergency(ctx, JSON.stringify({ ...declaration, ...extra })),
          ),
        ).toMatch(/^\[INVALID_ARGUMENT\]/);
      }
    });

    it('rejects a second declaration with the same id', async () => {
      await ledger.invoke((ctx) => consent.DeclareEmergency(ctx, JSON.stringify(declaration)));
      expect(
        await rejection((ctx) => consent.DeclareEmergency(ctx, JSON.stringify(declaration))),
      ).toMatch(/^\[CONFLICT\]/);
    });

    it('answers NOT_FOUND for an emergency that was never declared', async () => {
      expect(await rejection((ctx) => consent.GetEmergency(ctx, 'em-none'))).toMatch(
        /^\[NOT_FOUND\]/,
      );
    });

    it('refuses every declaration once the patient turned emergency access off, until it is on again', async () => {
      const set = (allow: boolean) =>
        ledger.invoke<EmergencyAccessSetting>((ctx) =>
          consent.SetEmergencyAccess(ctx, JSON.stringify({ patientId: 'pat-1', allow })),
        );
      const get = async () =>
        (
          await ledger.invoke<EmergencyAccessSetting>((ctx) =>
            consent.GetEmergencyAccess(ctx, 'pat-1'),
          )
        ).result;
      expect(await get()).toEqual({ patientId: 'pat-1', allow: true, txId: null, setAt: null });
      const off = await set(false);
      expect(eventsOf(off.tx)).toEqual([
        { name: CONSENT_EVENTS.emergencySetting, payload: off.result },
      ]);
      expect(await get()).toMatchObject({ allow: false, txId: off.tx.txId });
      expect(
        await rejection((ctx) => consent.DeclareEmergency(ctx, JSON.stringify(declaration))),
      ).toBe('[FORBIDDEN] patient pat-1 has turned emergency access off');
      // Another patient is not concerned.
      await ledger.invoke((ctx) =>
        consent.DeclareEmergency(
          ctx,
          JSON.stringify({ ...declaration, id: 'em-2', patientId: 'pat-2' }),
        ),
      );
      await set(true);
      await ledger.invoke((ctx) => consent.DeclareEmergency(ctx, JSON.stringify(declaration)));
      for (const bad of [
        { patientId: 'pat-1', allow: 'no' },
        { patientId: 'pat-1' },
        { patientId: 'pat-1', allow: true, x: 1 },
        { patientId: 'pat-1', allow: false, offPeriods: [] },
      ]) {
        expect(
          await rejection((ctx) => consent.SetEmergencyAccess(ctx, JSON.stringify(bad))),
        ).toMatch(/^\[INVALID_ARGUMENT\]/);
      }
    });
  });

  it('keeps when emergency access was off, by the transactions that turned it off and on', async () => {
    const set = async (allow: boolean) =>
      (
        await ledger.invoke<EmergencyAccessSetting>((ctx) =>
          consent.SetEmergencyAccess(ctx, JSON.stringify({ patientId: 'pat-1', allow })),
        )
      ).result;
    expect((await set(true)).offPeriods).toEqual([]);
    const off = await set(false);
    expect(off.offPeriods).toEqual([{ from: off.setAt, until: null }]);
    // Saying no again neither opens another period nor moves the first.
    expect((await set(false)).offPeriods).toEqual([{ from: off.setAt, until: null }]);
    const on = await set(true);
    expect(on.offPeriods).toEqual([{ from: off.setAt, until: on.setAt }]);
    const offAgain = await set(false);
    expect(offAgain.offPeriods).toEqual([
      { from: off.setAt, until: on.setAt },
      { from: offAgain.setAt, until: null },
    ]);
    const read = await ledger.invoke<EmergencyAccessSetting>((ctx) =>
      consent.GetEmergencyAccess(ctx, 'pat-1'),
    );
    expect(read.result.offPeriods).toHaveLength(2);
  });

  describe('CheckAccess', () => {
    it('permits a request that a grant covers, naming the grant and the decision time', async () => {
      await grant(terms());
      expect(await check(request())).toEqual({
        decision: 'PERMIT',
        grantId: 'grant-1',
        at: '2025-01-15T09:30:00.000Z',
      });
    });

    it('names the first permitting grant by id when several permit', async () => {
      await grant(terms({ id: 'grant-b' }));
      await grant(terms({ id: 'grant-a' }));
      expect((await check(request())).grantId).toBe('grant-a');
    });

    it('denies when the patient has no grants at all', async () => {
      expect(await check(request())).toEqual({ decision: 'DENY', at: '2025-01-15T09:30:00.000Z' });
    });

    it('denies a clinician whose grant was revoked, from the revoking transaction on', async () => {
      await grant(terms());
      expect((await check(request())).decision).toBe('PERMIT');
      await revoke('grant-1');
      expect((await check(request())).decision).toBe('DENY');
    });

    it('denies once the grant has expired, and from the instant of its validUntil', async () => {
      await grant(terms());
      expect((await check(request(), '2025-06-30T23:59:59.999Z')).decision).toBe('PERMIT');
      expect((await check(request(), '2025-07-01T00:00:00.000Z')).decision).toBe('DENY');
      expect((await check(request(), '2026-01-01T00:00:00Z')).decision).toBe('DENY');
    });

    it('denies before the grant becomes valid, and permits from validFrom itself', async () => {
      await grant(terms({ validFrom: '2025-03-01T00:00:00Z' }));
      expect((await check(request(), '2025-02-28T23:59:59.999Z')).decision).toBe('DENY');
      expect((await check(request(), '2025-03-01T00:00:00Z')).decision).toBe('PERMIT');
    });

    it.each<[string, Record<string, unknown>]>([
      ['another clinician', { actor: { id: 'dr-2' } }],
      ['another patient', { patientId: 'pat-2' }],
      ['another action', { action: 'WRITE' }],
      ['another purpose', { purpose: 'RESEARCH' }],
    ])('denies %s than the grant names', async (_case, overrides) => {
      await grant(terms());
      expect((await check(request(overrides))).decision).toBe('DENY');
    });

    it('permits only the resource types a grant lists', async () => {
      await grant(terms({ resourceTypes: ['Observation', 'Condition'] }));
      const record = (resourceType: string) => ({ resourceType, sensitivity: 'NORMAL' });
      expect((await check(request({ record: record('Observation') }))).decision).toBe('PERMIT');
      expect((await check(request({ record: record('MedicationRequest') }))).decision).toBe('DENY');
    });

    it('permits only the categories a grant lists, and no record without a category', async () => {
      await grant(terms({ categories: ['laboratory'] }));
      const record = (category?: string) => ({
        resourceType: 'Observation',
        category,
        sensitivity: 'NORMAL',
      });
      expect((await check(request({ record: record('laboratory') }))).decision).toBe('PERMIT');
      expect((await check(request({ record: record('vital-signs') }))).decision).toBe('DENY');
      expect((await check(request({ record: record() }))).decision).toBe('DENY');
    });

    it('denies a RESTRICTED record unless the grant includes restricted records', async () => {
      const restricted = { resourceType: 'Condition', sensitivity: 'RESTRICTED' };
      await grant(terms());
      expect((await check(request({ record: restricted }))).decision).toBe('DENY');
      await grant(terms({ id: 'grant-2', includeRestricted: true }));
      expect(await check(request({ record: restricted }))).toMatchObject({
        decision: 'PERMIT',
        grantId: 'grant-2',
      });
    });

    it('admits any record under a grant without filters', async () => {
      await grant(terms());
      const record = { resourceType: 'Encounter', category: 'anything', sensitivity: 'NORMAL' };
      expect((await check(request({ record }))).decision).toBe('PERMIT');
    });

    it("matches an ORGANIZATION grantee against the actor's organisation", async () => {
      await grant(terms({ grantee: { type: 'ORGANIZATION', id: 'org-1' } }));
      const member = { actor: { id: 'dr-9', organizationId: 'org-1' } };
      expect(await check(request(member))).toMatchObject({
        decision: 'PERMIT',
        grantId: 'grant-1',
      });
      expect(
        (await check(request({ actor: { id: 'dr-9', organizationId: 'org-2' } }))).decision,
      ).toBe('DENY');
      expect((await check(request({ actor: { id: 'org-1' } }))).decision).toBe('DENY');
    });

    it('matches a STUDY grantee against the study the actor acts for', async () => {
      await grant(studyTerms());
      const train = { action: 'TRAIN', purpose: 'RESEARCH' };
      expect(
        await check(request({ ...train, actor: { id: 'node-1', studyId: 'study-1' } })),
      ).toMatchObject({ decision: 'PERMIT', grantId: 'grant-study' });
      expect(
        (await check(request({ ...train, actor: { id: 'node-1', studyId: 'study-2' } }))).decision,
      ).toBe('DENY');
      expect((await check(request({ ...train, actor: { id: 'study-1' } }))).decision).toBe('DENY');
    });

    it('does not let a study grant stand in for a clinician or an organisation', async () => {
      await grant(studyTerms());
      const train = { action: 'TRAIN', purpose: 'RESEARCH' };
      expect(
        (await check(request({ ...train, actor: { id: 'study-1', organizationId: 'study-1' } })))
          .decision,
      ).toBe('DENY');
    });

    it.each<[string, unknown, string]>([
      ['input that is not JSON', 'nope', 'request'],
      ['an unknown field', { ...JSON.parse(request()), reason: 'x' }, 'request.reason'],
      ['a missing actor', { ...JSON.parse(request()), actor: undefined }, 'request.actor'],
      [
        'an unknown actor field',
        JSON.parse(request({ actor: { id: 'dr-1', role: 'x' } })),
        'request.actor.role',
      ],
      [
        'an actor id with a control character',
        JSON.parse(request({ actor: { id: 'dr\u0001who' } })),
        'request.actor.id',
      ],
      [
        'a malformed organisation id',
        JSON.parse(request({ actor: { id: 'dr-1', organizationId: '' } })),
        'request.actor.organizationId',
      ],
      ['a patient name', JSON.parse(request({ patientId: 'Jane Doe' })), 'request.patientId'],
      ['an unknown action', JSON.parse(request({ action: 'DELETE' })), 'request.action'],
      ['an unknown purpose', JSON.parse(request({ purpose: 'FUN' })), 'request.purpose'],
      [
        'an unknown sensitivity',
        JSON.parse(request({ record: { resourceType: 'Observation', sensitivity: 'SECRET' } })),
        'request.record.sensitivity',
      ],
      [
        'a record without a resource type',
        JSON.parse(request({ record: { sensitivity: 'NORMAL' } })),
        'request.record.resourceType',
      ],
      ['a record that is not an object', JSON.parse(request({ record: 'x' })), 'request.record'],
      ['an actor that is a list', JSON.parse(request({ actor: ['d'] })), 'request.actor'],
    ])('rejects a request with %s, naming the field', async (_case, body, field) => {
      await grant(terms());
      const json = typeof body === 'string' ? body : JSON.stringify(body);
      const message = await rejection((ctx) => consent.CheckAccess(ctx, json));
      expect(message.startsWith(`[INVALID_ARGUMENT] ${field} `)).toBe(true);
    });
  });
});
