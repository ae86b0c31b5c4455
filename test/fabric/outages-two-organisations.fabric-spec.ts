// An outage across instances: Org2's peer stops while grants go through Org1, and Org2's API
// stops with it; once both are back, Org2's projector resumes from its checkpoint and its
// projection holds every committed grant once, and no grant that was refused.
//
// The network's endorsement policy is MAJORITY of two organisations, i.e. both: while Org2's
// peer is down no grant can commit (Org1's API answers LEDGER_UNAVAILABLE and writes nothing),
// so what Org2 has to catch up on is what was in flight when its peer stopped and what commits
// after it is back while its API is still down.
import { ConsentReconciliation } from '../../src/consent';
import type { Checkpoint, LedgerEvent } from '../../src/ledger';
import { ConsentProjector } from '../../src/consent';
import { GraphQLResponse, TestApi } from '../helpers/test-api';
import { networkSh } from './network';
import { applied, startOrganisations } from './organisations';

const GRANT = `mutation($input: GrantConsentInput!) { grantConsent(input: $input) { id } }`;
const BURST = 16;
const AFTER = 4;

const order = (a: Checkpoint, b: Checkpoint) =>
  a.blockNumber - b.blockNumber || a.txIndex - b.txIndex;

describe("two organisations through an outage of Org2's peer", () => {
  let org1: TestApi;
  let org2: TestApi;
  let alice: string;
  let patientId: string;

  beforeAll(async () => {
    [org1, org2] = await startOrganisations();
    alice = await org1.token('alice', 'PATIENT');
    patientId = (
      await org1.ok<{ registerPatient: { id: string } }>(
        'mutation { registerPatient { id } }',
        {},
        alice,
      )
    ).registerPatient.id;
  });

  afterAll(async () => {
    await Promise.all([org1?.stop(), org2?.stop()]);
  });

  const grant = (clinician: string) =>
    org1.gql<{ grantConsent: { id: string } }>(
      GRANT,
      {
        input: {
          granteeType: 'CLINICIAN',
          granteeId: clinician,
          purpose: 'TREATMENT',
          actions: ['READ'],
        },
      },
      alice,
    );

  /** Retries a grant refused as LEDGER_UNAVAILABLE, as a client does, until it commits. */
  async function grantEventually(clinician: string): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      const res = await grant(clinician);
      if (res.data) return res.data.grantConsent.id;
      const code = res.errors?.[0]?.extensions.code;
      if (code !== 'LEDGER_UNAVAILABLE' || attempt >= 40) {
        throw new Error(`grant failed: ${JSON.stringify(res.errors)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  const ours = (e: LedgerEvent) =>
    e.name === 'ConsentGranted' && (e.payload as { patientId?: string }).patientId === patientId;

  /** Records, per grant id, where a projector applied ours (every time it did). */
  function recordApplied(api: TestApi, seen: Map<string, Checkpoint[]>): void {
    api.server.app.get(ConsentProjector).events.on('applied', (e: LedgerEvent) => {
      if (!ours(e)) return;
      const id = (e.payload as { id: string }).id;
      seen.set(id, [...(seen.get(id) ?? []), { blockNumber: e.blockNumber, txIndex: e.txIndex }]);
    });
  }

  async function checkpoint(api: TestApi): Promise<Checkpoint> {
    const { rows } = await api.db.query(
      `SELECT block_number, tx_index FROM ledger_checkpoints WHERE consumer = 'consent-projection'`,
    );
    return { blockNumber: Number(rows[0].block_number), txIndex: rows[0].tx_index };
  }

  /** Resolves once `api`'s projector has applied everything up to `target`. */
  async function caughtUp(api: TestApi, target: Checkpoint): Promise<void> {
    const events = api.server.app.get(ConsentProjector).events;
    let reached!: () => void;
    const done = new Promise<void>((resolve) => (reached = resolve));
    // Listening before reading the checkpoint, so that no event goes unnoticed in between.
    const listener = (e: LedgerEvent) => {
      if (order(e, target) >= 0) reached();
    };
    events.on('applied', listener);
    if (order(await checkpoint(api), target) >= 0) reached();
    await done;
    events.off('applied', listener);
  }

  it('catches up from its checkpoint with every committed grant once, and none that was refused', async () => {
    // Org1's projector runs throughout: it witnesses where each of our grants committed.
    const atOrg1 = new Map<string, Checkpoint[]>();
    const atOrg2 = new Map<string, Checkpoint[]>();
    recordApplied(org1, atOrg1);
    recordApplied(org2, atOrg2);

    // A burst of grants through Org1; Org2's peer stops once Org2 has applied the first, so
    // those still in flight either commit in blocks Org2 has yet to see or are refused.
    const first = applied(org2, ours);
    const burst = Array.from({ length: BURST }, (_, i) => grant(`dr-burst-${i}`));
    await first;
    networkSh('stop', 'peer0.org2');
    let outcomes: GraphQLResponse<{ grantConsent: { id: string } }>[] = [];
    const committed: string[] = [];
    const refused: number[] = [];
    let checkpointWhileDown: Checkpoint = { blockNumber: 0, txIndex: 0 };
    try {
      outcomes = await Promise.all(burst);
      outcomes.forEach((res, i) => {
        if (res.data) committed.push(res.data.grantConsent.id);
        else {
          expect(res.errors?.map((e) => e.extensions.code)).toEqual(['LEDGER_UNAVAILABLE']);
          refused.push(i);
        }
      });
      // Nothing commits while Org2's peer cannot endorse.
      const during = await grant('dr-during');
      expect(during.errors?.map((e) => e.extensions.code)).toEqual(['LEDGER_UNAVAILABLE']);

      await org2.restart(async () => {
        checkpointWhileDown = await checkpoint(org2);
        networkSh('start', 'peer0.org2');
        // Refused grants go through once Org2's peer is back, and more follow, while Org2's
        // API is still down.
        for (const i of refused) committed.push(await grantEventually(`dr-burst-${i}`));
        for (let i = 0; i < AFTER; i++) committed.push(await grantEventually(`dr-after-${i}`));
      });
    } finally {
      networkSh('start', 'peer0.org2'); // no-op when it is already running
    }
    expect(committed).toHaveLength(BURST + AFTER);

    // Before its peer stopped, Org2 applied each grant it saw once.
    expect([...atOrg2.values()].filter((at) => at.length !== 1)).toEqual([]);
    // The new projector resumes after its checkpoint, never before it, and catches up.
    const resumed = new Map<string, Checkpoint[]>();
    recordApplied(org2, resumed);
    const pending = committed.filter((id) => !atOrg1.has(id));
    await Promise.all(
      pending.map((id) => applied(org1, (e) => ours(e) && (e.payload as { id: string }).id === id)),
    );
    const last = committed
      .map((id) => atOrg1.get(id)![0])
      .reduce((a, b) => (order(a, b) >= 0 ? a : b));
    await caughtUp(org2, last);
    for (const at of [...resumed.values()].flat()) {
      expect(order(at, checkpointWhileDown)).toBeGreaterThan(0);
    }

    for (const api of [org1, org2]) {
      const { rows } = await api.db.query(
        `SELECT id, status FROM consent_grants WHERE patient_id = $1`,
        [patientId],
      );
      expect(rows.map((r) => r.id).sort()).toEqual([...committed].sort());
      expect(rows.every((r) => r.status === 'ACTIVE')).toBe(true);
    }
    expect([...atOrg1.keys()].sort()).toEqual([...committed].sort());
    for (const api of [org1, org2]) {
      const report = await api.server.app.get(ConsentReconciliation).reconcile();
      expect(report).toMatchObject({ missing: [], extra: [], changed: [] });
    }
  }, 240_000);
});
