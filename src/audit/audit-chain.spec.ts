import canonicalize from 'canonicalize';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
// The chaincode's own id check, so that the two cannot drift apart.
import { id as chaincodeId } from '../../chaincode/src/validation';
import {
  AccessEventContent,
  AUDIT_GENESIS,
  auditChainId,
  ChainedEvent,
  canonicalEvent,
  ChainWalk,
  eventHash,
  findBreak,
} from './audit-chain';

const PATIENT = '11111111-1111-4111-8111-111111111111';
const OTHER = '22222222-2222-4222-8222-222222222222';

function content(seq: number, patientId = PATIENT): AccessEventContent {
  return {
    seq,
    id: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`,
    actorId: 'dr-a',
    patientId,
    recordIds: [],
    action: 'READ',
    purpose: 'TREATMENT',
    decision: 'PERMIT',
    consentId: null,
    breakGlass: false,
    reason: null,
    at: '2025-01-01T00:00:00.000Z',
  };
}

/** A chain of `n` events; every third belongs to another patient. */
function chain(n: number): ChainedEvent[] {
  const events: ChainedEvent[] = [];
  let prev = AUDIT_GENESIS;
  for (let seq = 1; seq <= n; seq++) {
    const c = content(seq, seq % 3 === 0 ? OTHER : PATIENT);
    const hash = eventHash(prev, c);
    events.push({ ...c, prevHash: prev, hash });
    prev = hash;
  }
  return events;
}

const headOf = (events: ChainedEvent[], seq: number) => ({
  seq,
  headHash: events[seq - 1].hash,
});

function walk(events: ChainedEvent[], head: { seq: number; headHash: string } | null, page = 4) {
  const w = new ChainWalk(head);
  for (let i = 0; i < events.length; i += page) w.feed(events.slice(i, i + page));
  return w.result();
}

describe('access event hash', () => {
  it('keeps the v1 form for events without a sealed reason', () => {
    const c = { ...content(1), reason: 'legacy plaintext' };
    const expected = createHash('sha256')
      .update('custodia/access-event/v1')
      .update(AUDIT_GENESIS)
      .update(
        '{"action":"READ","actorId":"dr-a","at":"2025-01-01T00:00:00.000Z","breakGlass":false,' +
          '"consentId":null,"decision":"PERMIT","id":"00000000-0000-4000-8000-000000000001",' +
          `"patientId":"${PATIENT}","purpose":"TREATMENT","reason":"legacy plaintext",` +
          '"recordIds":[],"seq":1}',
      )
      .digest('hex');
    expect(eventHash(AUDIT_GENESIS, c)).toBe(expected);
  });

  it('writes every event exactly as canonicalize does (JCS), whatever its members hold', () => {
    // Any text (escapes, astral characters, lone surrogates), numbers, lists, and members the
    // log does not know or values of other kinds, which take canonicalize's own path.
    const text = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.uuid());
    const anything = fc.oneof(
      text,
      fc.boolean(),
      fc.constant(null),
      fc.constant(undefined),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.array(text),
      fc.array(fc.oneof(text, fc.integer(), fc.constant(null))),
      fc.dictionary(fc.string(), text),
    );
    const event = fc.record(
      {
        seq: fc.oneof(fc.nat(), fc.double({ noNaN: true, noDefaultInfinity: true })),
        id: fc.uuid(),
        actorId: text,
        patientId: fc.uuid(),
        recordIds: fc.array(fc.uuid()),
        action: fc.constantFrom('READ', 'WRITE', 'TRAIN', 'DECIDE'),
        purpose: text,
        decision: fc.constantFrom('PERMIT' as const, 'DENY' as const),
        consentId: fc.option(fc.uuid()),
        breakGlass: fc.boolean(),
        reason: fc.option(text),
        reasonSealed: fc.base64String(),
        reasonKeyId: fc.uuid(),
        at: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
        emergencyId: fc.uuid(),
        actorOrganizationId: text,
      },
      { requiredKeys: ['seq', 'id', 'actorId', 'patientId', 'recordIds', 'at'] },
    );
    const odd = fc.tuple(
      event,
      fc.constantFrom(...Object.keys(content(1)), 'extra', 'zz', 'A'),
      anything,
    );
    fc.assert(
      fc.property(
        fc.oneof(
          event,
          odd.map(([e, k, v]) => ({ ...e, [k]: v })),
        ),
        (e) => {
          const c = e as unknown as AccessEventContent;
          expect(canonicalEvent(c)).toBe(canonicalize(c));
          const v1 = createHash('sha256')
            .update('custodia/access-event/v1')
            .update(AUDIT_GENESIS)
            .update(canonicalize(c)!)
            .digest('hex');
          expect(eventHash(AUDIT_GENESIS, c)).toBe(v1);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('covers the sealed reason and its key id', () => {
    const sealed = { ...content(1), reasonSealed: 'AAAA', reasonKeyId: 'k-1' };
    const base = eventHash(AUDIT_GENESIS, sealed);
    expect(eventHash(AUDIT_GENESIS, { ...sealed, reasonSealed: 'AAAB' })).not.toBe(base);
    expect(eventHash(AUDIT_GENESIS, { ...sealed, reasonKeyId: 'k-2' })).not.toBe(base);
    expect(eventHash(AUDIT_GENESIS, content(1))).not.toBe(base);
  });
});

describe('walking the access log against the ledger', () => {
  it('proves a whole log through the anchored head and counts what follows it', () => {
    const events = chain(10);
    expect(walk(events, headOf(events, 7))).toEqual({
      eventsChecked: 10,
      anchoredThrough: 7,
      unanchoredEvents: 3,
      problems: [],
    });
  });

  it('counts only one patient when asked, while walking the whole chain', () => {
    const events = chain(10);
    const w = new ChainWalk(headOf(events, 7), PATIENT);
    w.feed(events);
    // Events 3, 6 and 9 belong to the other patient.
    expect(w.result()).toMatchObject({ eventsChecked: 7, unanchoredEvents: 2, problems: [] });
  });

  it('counts every event as unanchored when the ledger holds no head', () => {
    expect(walk(chain(5), null)).toEqual({
      eventsChecked: 5,
      anchoredThrough: null,
      unanchoredEvents: 5,
      problems: [],
    });
  });

  it('names the anchored event when the whole log is gone', () => {
    const events = chain(6);
    expect(walk([], headOf(events, 6)).problems).toEqual([
      'access event 6 was anchored on the ledger but is gone from the log (events 1–6 are missing)',
    ]);
  });

  it('names the anchored event when the log was cut short before it', () => {
    const events = chain(8);
    const result = walk(events.slice(0, 5), headOf(events, 8));
    expect(result.problems).toEqual([
      'access event 8 was anchored on the ledger but is gone from the log (events 6–8 are missing)',
    ]);
    expect(result.eventsChecked).toBe(5);
  });

  it('names the anchored event alone when only it is gone', () => {
    const events = chain(4);
    expect(walk(events.slice(0, 3), headOf(events, 4)).problems).toEqual([
      'access event 4 was anchored on the ledger but is gone from the log',
    ]);
  });

  it('does not see events cut after the anchored head: they were never provable', () => {
    const events = chain(9);
    expect(walk(events.slice(0, 6), headOf(events, 6))).toMatchObject({
      unanchoredEvents: 0,
      problems: [],
    });
  });

  it('reports a gap before the head as a break, and still finds the head', () => {
    const events = chain(10);
    const result = walk([...events.slice(0, 3), ...events.slice(5)], headOf(events, 9));
    expect(result.problems).toEqual([
      'access event 4 is missing (found 6 next); the access log cannot be trusted from there on',
    ]);
    expect(result.eventsChecked).toBe(3);
  });

  it('reports a log rebuilt from genesis that the ledger did not anchor', () => {
    const original = chain(5);
    const rebuilt = chain(5).map((e) => ({ ...e }));
    // Same length, re-hashed after a change: internally whole, but not the anchored log.
    let prev = AUDIT_GENESIS;
    for (const e of rebuilt) {
      const { prevHash: _p, hash: _h, ...c } = { ...e, actorId: 'someone-else' };
      e.actorId = 'someone-else';
      e.prevHash = prev;
      e.hash = eventHash(prev, c);
      prev = e.hash;
    }
    expect(walk(rebuilt, headOf(original, 5)).problems).toEqual([
      'access event 5 differs from the head anchored on the ledger',
    ]);
  });

  it('reports the first changed event', () => {
    const events = chain(6);
    events[2] = { ...events[2], decision: 'DENY' };
    expect(walk(events, headOf(chain(6), 6)).problems).toEqual([
      'access event 3: its content does not match its hash; the access log cannot be trusted from there on',
    ]);
  });

  it('agrees with findBreak on a whole run', () => {
    expect(findBreak(AUDIT_GENESIS, chain(7))).toBeNull();
  });
});

describe('the chain id an instance anchors under', () => {
  it('is access-log for an instance without INSTANCE_ID, as before instances had ids', () => {
    expect(auditChainId()).toBe('access-log');
    expect(auditChainId('')).toBe('access-log');
  });

  it('differs between instances of one organisation', () => {
    expect(auditChainId('site-a')).toBe('access-log.site-a');
    expect(auditChainId('site-a')).not.toBe(auditChainId('site-b'));
  });

  it('is an id the chaincode accepts for every INSTANCE_ID the configuration accepts', () => {
    for (const instance of ['a', '_', '.', '-x', 'x'.repeat(64), 'Site_A.2-b']) {
      expect(chaincodeId(auditChainId(instance), 'chainId')).toBe(auditChainId(instance));
    }
  });
});
