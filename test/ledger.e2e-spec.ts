import fc from 'fast-check';
import { ConflictError, BadUserInputError, NotFoundError } from '../src/common/errors';
import { EmbeddedLedger, LedgerEvent } from '../src/ledger';
import { verifyEmbeddedLedger } from '../src/ledger/embedded/verify';
import { Collector } from './helpers/collector';
import { freshDatabase, TestDatabase } from './helpers/database';

const grant = (id: string, patientId = 'patient-1') =>
  JSON.stringify({
    id,
    patientId,
    grantee: { type: 'CLINICIAN', id: 'dr-1' },
    purpose: 'TREATMENT',
    actions: ['READ'],
  });

const counts = async (db: TestDatabase) => {
  const q = async (t: string) =>
    Number((await db.pool.query(`SELECT count(*) FROM ${t}`)).rows[0].count);
  return {
    blocks: await q('ledger_blocks'),
    state: await q('ledger_world_state'),
    history: await q('ledger_history'),
  };
};

describe('the embedded ledger', () => {
  let db: TestDatabase;
  let ledger: EmbeddedLedger;

  beforeAll(async () => {
    db = await freshDatabase({ migrate: true });
    ledger = new EmbeddedLedger(db.pool, { organization: 'org1' });
  });
  afterAll(async () => {
    await ledger?.close();
    await db?.drop();
  });

  it('commits 200 concurrent submits into a valid chain of batched blocks', async () => {
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        ledger.submit('consent', 'GrantConsent', [grant(`g-${i}`)]),
      ),
    );
    expect(new Set(results.map((r) => r.txId)).size).toBe(200);
    for (const r of results) expect(r.result).toMatchObject({ status: 'ACTIVE', txId: r.txId });
    const { blocks } = await counts(db);
    expect(blocks).toBeLessThan(200);
    const report = await verifyEmbeddedLedger(db.pool);
    expect(report).toMatchObject({ problems: [], transactions: 200, blocks });
    // Each grant wrote itself and two index entries.
    expect(report.stateKeys).toBe(600);
  });

  it('answers a read with the committed state', async () => {
    await expect(ledger.evaluate('consent', 'GetConsent', ['g-7'])).resolves.toMatchObject({
      id: 'g-7',
      status: 'ACTIVE',
    });
    const listed = await ledger.evaluate<unknown[]>('consent', 'ListConsentsByPatient', [
      'patient-1',
    ]);
    expect(listed).toHaveLength(200);
  });

  it('leaves no trace of a transaction that throws, while its block-mates commit', async () => {
    const before = await counts(db);
    const [bad, good] = await Promise.allSettled([
      ledger.submit('consent', 'GrantConsent', [JSON.stringify({ id: 'x y' })]),
      ledger.submit('consent', 'GrantConsent', [grant('g-after-bad')]),
    ]);
    expect(bad.status).toBe('rejected');
    expect((bad as PromiseRejectedResult).reason).toBeInstanceOf(BadUserInputError);
    expect(good.status).toBe('fulfilled');
    const after = await counts(db);
    expect(after.state - before.state).toBe(3);
    await expect(
      ledger.submit('consent', 'RevokeConsent', ['no-such-grant']),
    ).rejects.toBeInstanceOf(NotFoundError);
    expect(await counts(db)).toEqual(after);
  });

  it('serialises transactions on the same keys: one revocation wins', async () => {
    const outcomes = await Promise.allSettled(
      Array.from({ length: 5 }, () => ledger.submit('consent', 'RevokeConsent', ['g-1'])),
    );
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    for (const o of outcomes.filter((x) => x.status === 'rejected')) {
      expect((o as PromiseRejectedResult).reason).toBeInstanceOf(ConflictError);
    }
  });

  it('gives a block run at once the outcome of running its transactions one by one', async () => {
    // Grants and revocations over a few ids, so most of a block's transactions read what an
    // earlier one in it wrote: each outcome, and each grant's final state, must be the ones a
    // ledger committing one transaction per block gives.
    const sequential = await freshDatabase({ migrate: true });
    const oneByOne = new EmbeddedLedger(sequential.pool, { organization: 'org1' });
    try {
      let run = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.record({ revoke: fc.boolean(), id: fc.integer({ min: 0, max: 3 }) }), {
            minLength: 10,
            maxLength: 60,
          }),
          async (ops) => {
            run++;
            const call = (l: EmbeddedLedger, op: { revoke: boolean; id: number }) =>
              op.revoke
                ? l.submit('consent', 'RevokeConsent', [`seq-${run}-${op.id}`])
                : l.submit('consent', 'GrantConsent', [grant(`seq-${run}-${op.id}`)]);
            const outcome = (r: PromiseSettledResult<unknown>) =>
              r.status === 'fulfilled' ? 'ok' : (r.reason as Error).constructor.name;
            const together = (await Promise.allSettled(ops.map((op) => call(ledger, op)))).map(
              outcome,
            );
            const alone: string[] = [];
            for (const op of ops)
              alone.push(outcome((await Promise.allSettled([call(oneByOne, op)]))[0]));
            expect(together).toEqual(alone);
            for (const id of [0, 1, 2, 3]) {
              const status = async (l: EmbeddedLedger) =>
                l.evaluate<{ status: string }>('consent', 'GetConsent', [`seq-${run}-${id}`]).then(
                  (g) => g.status,
                  (e: Error) => e.constructor.name,
                );
              expect(await status(ledger)).toBe(await status(oneByOne));
            }
          },
        ),
        { numRuns: 8 },
      );
      expect((await verifyEmbeddedLedger(db.pool)).problems).toEqual([]);
    } finally {
      await oneByOne.close();
      await sequential.drop();
    }
  });

  it('refuses writes from a read and calls to unknown transactions', async () => {
    await expect(
      ledger.evaluate('consent', 'GrantConsent', [grant('g-eval')]),
    ).rejects.toBeInstanceOf(BadUserInputError);
    await expect(ledger.submit('consent', 'DropEverything', [])).rejects.toBeInstanceOf(
      BadUserInputError,
    );
    await expect(ledger.evaluate('consent', 'GetConsent', ['g-eval'])).rejects.toBeInstanceOf(
      NotFoundError,
    );
  });

  it('replays committed events from any checkpoint, then delivers new ones live', async () => {
    const all = new Collector<LedgerEvent>();
    const sub = ledger.subscribe(null, async (e) => all.push(e));
    const total = (await verifyEmbeddedLedger(db.pool)).transactions;
    await all.until((items) => items.length === total);
    expect(all.items.slice(0, 3).map((e) => e.name)).toEqual([
      'ConsentGranted',
      'ConsentGranted',
      'ConsentGranted',
    ]);
    const ordered = all.items.every(
      (e, i, xs) =>
        i === 0 ||
        e.blockNumber > xs[i - 1].blockNumber ||
        (e.blockNumber === xs[i - 1].blockNumber && e.txIndex > xs[i - 1].txIndex),
    );
    expect(ordered).toBe(true);

    const mark = all.items[all.items.length - 10];
    const later = new Collector<LedgerEvent>();
    const fromMark = ledger.subscribe(
      { blockNumber: mark.blockNumber, txIndex: mark.txIndex },
      async (e) => later.push(e),
    );
    await later.until((items) => items.length === 9);
    expect(later.items.map((e) => e.txId)).toEqual(all.items.slice(-9).map((e) => e.txId));

    const { txId } = await ledger.submit('consent', 'GrantConsent', [grant('g-live')]);
    await later.until((items) => items.some((e) => e.txId === txId));
    await all.until((items) => items.some((e) => e.txId === txId));
    expect(later.items[later.items.length - 1]).toMatchObject({
      name: 'ConsentGranted',
      payload: { id: 'g-live' },
    });
    await sub.close();
    await fromMark.close();
  });

  it('delivers, in order, blocks another process appended to the same chain between its own', async () => {
    // A second ledger on the same database: another process of the organisation.
    const other = new EmbeddedLedger(db.pool, { organization: 'org1' });
    const seen = new Collector<LedgerEvent>();
    const head = await db.pool.query<{ n: string }>('SELECT max(number) AS n FROM ledger_blocks');
    const sub = ledger.subscribe(
      { blockNumber: Number(head.rows[0].n), txIndex: Number.MAX_SAFE_INTEGER },
      async (e) => seen.push(e),
    );
    try {
      const own1 = await ledger.submit('consent', 'GrantConsent', [grant('g-own-1')]);
      await seen.until((items) => items.some((e) => e.txId === own1.txId));
      const foreign = await other.submit('consent', 'GrantConsent', [grant('g-foreign')]);
      const own2 = await ledger.submit('consent', 'GrantConsent', [grant('g-own-2')]);
      await seen.until((items) => items.some((e) => e.txId === own2.txId));
      expect(seen.items.map((e) => e.txId)).toEqual([own1.txId, foreign.txId, own2.txId]);
      expect(seen.items.map((e) => e.blockNumber)).toEqual([
        own1.blockNumber,
        own1.blockNumber + 1,
        own1.blockNumber + 2,
      ]);
    } finally {
      await sub.close();
      await other.close();
    }
  });

  describe('tamper detection', () => {
    beforeAll(async () => {
      // At least three blocks, whichever tests ran before.
      for (const i of [1, 2, 3]) await ledger.submit('consent', 'GrantConsent', [grant(`t-${i}`)]);
    });

    async function expectBroken(change: string, restore: string, message: RegExp) {
      expect((await verifyEmbeddedLedger(db.pool)).problems).toEqual([]);
      await db.pool.query(change);
      try {
        const report = await verifyEmbeddedLedger(db.pool);
        expect(report.problems.join('\n')).toMatch(message);
      } finally {
        await db.pool.query(restore);
      }
      expect((await verifyEmbeddedLedger(db.pool)).problems).toEqual([]);
    }

    it('catches a changed byte in a block', () =>
      expectBroken(
        `UPDATE ledger_blocks SET body = replace(body, '"GrantConsent"', '"GrantConsEnt"') WHERE number = 1`,
        `UPDATE ledger_blocks SET body = replace(body, '"GrantConsEnt"', '"GrantConsent"') WHERE number = 1`,
        /block 1: its content does not match its hash/,
      ));

    it('catches a block re-hashed after a change, by the broken link', async () => {
      const { rows } = await db.pool.query('SELECT hash FROM ledger_blocks WHERE number = 2');
      await expectBroken(
        `UPDATE ledger_blocks SET hash = repeat('a', 64) WHERE number = 2`,
        `UPDATE ledger_blocks SET hash = '${rows[0].hash}' WHERE number = 2`,
        /block 2/,
      );
    });

    it('catches a changed byte in a world-state row', () =>
      expectBroken(
        `UPDATE ledger_world_state SET value = set_byte(value, 2, get_byte(value, 2) # 1)
         WHERE key = (SELECT key FROM ledger_world_state WHERE length(value) > 10 ORDER BY key LIMIT 1)`,
        `UPDATE ledger_world_state SET value = set_byte(value, 2, get_byte(value, 2) # 1)
         WHERE key = (SELECT key FROM ledger_world_state WHERE length(value) > 10 ORDER BY key LIMIT 1)`,
        /world state of key [0-9a-f]+ differs/,
      ));

    it('catches a changed byte in a history row', () =>
      expectBroken(
        `UPDATE ledger_history SET value = set_byte(value, 5, get_byte(value, 5) # 4)
         WHERE block_number = 0 AND tx_index = 0 AND is_delete = false
           AND key = (SELECT key FROM ledger_history
                      WHERE block_number = 0 AND tx_index = 0 AND length(value) > 10
                      ORDER BY key LIMIT 1)`,
        `UPDATE ledger_history SET value = set_byte(value, 5, get_byte(value, 5) # 4)
         WHERE block_number = 0 AND tx_index = 0 AND is_delete = false
           AND key = (SELECT key FROM ledger_history
                      WHERE block_number = 0 AND tx_index = 0 AND length(value) > 10
                      ORDER BY key LIMIT 1)`,
        /history row [0-9a-f]+\/0\/0 differs/,
      ));

    it('catches a deleted block', async () => {
      const last = await db.pool.query('SELECT * FROM ledger_blocks ORDER BY number DESC LIMIT 1');
      const row = last.rows[0];
      await db.pool.query('DELETE FROM ledger_blocks WHERE number = $1', [row.number]);
      try {
        const report = await verifyEmbeddedLedger(db.pool);
        expect(report.problems.join('\n')).toMatch(/no block wrote|history lacks|world state/);
      } finally {
        await db.pool.query(
          'INSERT INTO ledger_blocks (number, prev_hash, hash, body, committed_at) VALUES ($1, $2, $3, $4, $5)',
          [row.number, row.prev_hash, row.hash, row.body, row.committed_at],
        );
      }
      expect((await verifyEmbeddedLedger(db.pool)).problems).toEqual([]);
    });
  });

  it('verifies clean while blocks are being committed beside it', async () => {
    let writing = true;
    const writes = (async () => {
      for (let i = 0; writing && i < 400; i++) {
        await Promise.all(
          Array.from({ length: 8 }, (_, j) =>
            ledger.submit('consent', 'GrantConsent', [grant(`busy-${i}-${j}`)]),
          ),
        );
      }
    })();
    try {
      for (let k = 0; k < 40; k++) {
        expect((await verifyEmbeddedLedger(db.pool)).problems).toEqual([]);
      }
    } finally {
      writing = false;
      await writes;
    }
  });
});
