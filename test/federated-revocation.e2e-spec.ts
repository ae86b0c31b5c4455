// A patient who revokes while their node's update waits for the round's quorum: the round
// closer rejects that update before aggregation, and the in-process node trains the round
// again without them, so that the run goes on instead of failing at the round's deadline.
import { decodeJwt } from 'jose';
import { ConsentService } from '../src/consent';
import type { RoundEnded } from '../src/federated/coordinator/coordinator-events';
import { Coordinator } from '../src/federated/coordinator/coordinator.service';
import { seedCohort } from '../src/federated/synthetic/seed';
import { TestApi } from './helpers/test-api';

const FEATURES = ['2345-7', '4548-4', '39156-5', '8480-6', '2085-9'];

describe('a revocation while a round waits for its quorum', () => {
  let api: TestApi | undefined;
  afterEach(async () => {
    jest.restoreAllMocks();
    await api?.stop();
    api = undefined;
  });

  it('leaves the patient out of a retrained update, and the round closes', async () => {
    api = await TestApi.start({ TRAINING_NODES: 'on' });
    const app = api.server.app;
    const summary = await seedCohort(app, { patients: 36, sites: 3, seed: 11, alpha: 5 });
    const researcher = await api.token('revocation-researcher', 'RESEARCHER');
    const { createStudy } = await api.ok<{ createStudy: { id: string } }>(
      `mutation($f: [String!]!) { createStudy(input: { title: "Revoked meanwhile",
       features: $f, label: "44054006", minNodes: 3, localEpochs: 1 }) { id } }`,
      { f: FEATURES },
      researcher,
    );
    const consents = app.get(ConsentService);
    const granted = new Map<
      string,
      { actor: Parameters<ConsentService['grant']>[0]; grant: string }
    >();
    for (const p of summary.patients) {
      const actor = { id: p.userId, roles: ['PATIENT' as const], organizationId: p.organizationId };
      const { id } = await consents.grant(actor, {
        granteeType: 'STUDY',
        granteeId: createStudy.id,
        purpose: 'RESEARCH',
        actions: ['TRAIN'],
      });
      granted.set(p.id, { actor, grant: id });
    }

    // The first update of round 1 is stored; then one of its contributors revokes, and only
    // then do the other nodes' updates (which complete the quorum) go on.
    const coordinator = app.get(Coordinator);
    const submit = coordinator.submit.bind(coordinator);
    let first: { node: string; revoked: string } | undefined;
    let revocation!: () => void;
    const revokedNow = new Promise<void>((resolve) => (revocation = resolve));
    jest
      .spyOn(coordinator, 'submit')
      .mockImplementation(async (runId, round, manifest, body, o) => {
        const { nodeId, contributors } = decodeJwt(manifest!) as {
          nodeId: string;
          contributors: string[];
        };
        if (round !== 1 || first?.node === nodeId) return submit(runId, round, manifest, body, o);
        if (first) {
          await revokedNow;
          return submit(runId, round, manifest, body, o);
        }
        first = { node: nodeId, revoked: contributors[0] };
        const stored = await submit(runId, round, manifest, body, o);
        const { actor, grant } = granted.get(first.revoked)!;
        await consents.revoke(actor, grant);
        revocation();
        return stored;
      });
    const ended = new Promise<RoundEnded>((resolve) =>
      coordinator.events.on('round', (e) => e.round === 1 && resolve(e)),
    );
    const { startTraining } = await api.ok<{ startTraining: { id: string } }>(
      'mutation($s: ID!) { startTraining(studyId: $s, rounds: 1) { id } }',
      { s: createStudy.id },
      researcher,
    );

    expect(await ended).toMatchObject({ status: 'CLOSED' });
    const { rows } = await api.db.query<{
      node_id: string;
      status: string;
      reason: string | null;
      contributors: string[];
    }>(
      `SELECT node_id, status, reason, contributors FROM model_updates
       WHERE run_id = $1 ORDER BY received_at`,
      [startTraining.id],
    );
    const own = rows.filter((r) => r.node_id === first!.node);
    expect(own.map((r) => r.status)).toEqual(['REJECTED', 'ACCEPTED']);
    expect(own[0].reason).toMatch(/TRAIN consent ended \(revoked or expired\) before aggregation/);
    const accepted = rows.filter((r) => r.status === 'ACCEPTED');
    expect(accepted).toHaveLength(3);
    for (const r of accepted) expect(r.contributors).not.toContain(first!.revoked);
  });
});
