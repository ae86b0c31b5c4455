// Group commit in the access log: groups of events logged at the same time are written by one
// INSERT where they can be, and one group that cannot be sealed fails alone.
import { AccessLog, type NewAccessEvent } from '../src/audit';
import { TestApi } from './helpers/test-api';

describe('access-log groups logged at once', () => {
  let api: TestApi;
  let log: AccessLog;
  let patientId: string;
  let token: string;

  beforeAll(async () => {
    api = await TestApi.start({ AUDIT_ANCHOR_INTERVAL_MS: '3600000' });
    log = api.server.app.get(AccessLog);
    ({ patientId, token } = await api.patientWithRecord('group-commit-patient'));
  });
  afterAll(() => api?.stop());

  const use = (actorId: string, reason: string | null, patient = patientId): NewAccessEvent => ({
    actorId,
    patientId: patient,
    recordIds: [],
    action: 'TRAIN',
    purpose: 'RESEARCH',
    decision: 'DENY',
    consentId: null,
    breakGlass: false,
    reason,
  });

  async function expectChainIntact() {
    const { verifyAccessLog } = await api.ok<{ verifyAccessLog: { ok: boolean } }>(
      'query($p: ID!) { verifyAccessLog(patientId: $p) { ok problems } }',
      { p: patientId },
      token,
    );
    expect(verifyAccessLog).toEqual({ ok: true, problems: [] });
  }

  async function written(actors: string[]) {
    const { rows } = await api.db.query(
      `SELECT actor_id, at, seq FROM access_events WHERE actor_id = ANY($1) ORDER BY seq`,
      [actors],
    );
    return rows as { actor_id: string; at: Date; seq: string }[];
  }

  it('writes a group whose keys were still being read in the same INSERT as the one before it', async () => {
    // The first group has no reason to seal and is queued at once; the others read their
    // patients' data keys first. All are chained at one instant: one INSERT.
    await Promise.all([
      log.recordGroup([use('node-a', null)]),
      log.recordGroup([use('node-b', 'study s, run r, round 1'), use('node-b', 'again')]),
      log.recordGroup([use('node-c', 'study s, run r, round 1')]),
    ]);
    const rows = await written(['node-a', 'node-b', 'node-c']);
    // Queued as their keys arrive: b's and c's reads race, so either may come first, but a
    // group's events stay together.
    expect([
      ['node-a', 'node-b', 'node-b', 'node-c'],
      ['node-a', 'node-c', 'node-b', 'node-b'],
    ]).toContainEqual(rows.map((r) => r.actor_id));
    expect(new Set(rows.map((r) => r.at.toISOString())).size).toBe(1);
    const seqs = rows.map((r) => Number(r.seq));
    expect(seqs).toEqual([seqs[0], seqs[0] + 1, seqs[0] + 2, seqs[0] + 3]);
    await expectChainIntact();
  });

  it('fails only the group that cannot be sealed; the others are written', async () => {
    // A reason for a patient with no data key cannot be sealed.
    const unknown = '00000000-0000-4000-8000-000000000000';
    const results = await Promise.allSettled([
      log.recordGroup([use('node-d', null)]),
      log.recordGroup([use('node-e', 'a reason', unknown)]),
      log.recordGroup([use('node-f', 'a reason')]),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const rows = await written(['node-d', 'node-e', 'node-f']);
    expect(rows.map((r) => r.actor_id)).toEqual(['node-d', 'node-f']);
    await expectChainIntact();
  });
});
