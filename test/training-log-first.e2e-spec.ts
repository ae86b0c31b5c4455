// A node trains while its patients' uses are being logged, but nothing learnt from them is
// stored before the log holds them: when the access log cannot take a node's TRAIN events, an
// in-process node's update is checked but never stored, and a remote node (`custodia node`)
// posts nothing to another instance's coordinator. And one node's failure leaves the others
// to train.
import { Logger } from '@nestjs/common';
import { ConsentService } from '../src/consent';
import { Coordinator } from '../src/federated/coordinator/coordinator.service';
import { LocalTrainingNodes } from '../src/federated/node/local-nodes';
import { RemoteNode } from '../src/federated/node/remote-node';
import { seedCohort } from '../src/federated/synthetic/seed';
import { RecordsService } from '../src/records';
import { registerSimulatedNode } from './helpers/simulated-node';
import { TestApi } from './helpers/test-api';

const FEATURES = ['2345-7', '4548-4', '39156-5', '8480-6', '2085-9'];

describe('a training node and its access log', () => {
  let api: TestApi | undefined;
  afterEach(async () => {
    jest.restoreAllMocks();
    await api?.stop();
    api = undefined;
  });

  /**
   * A seeded cohort (three sites, 15 patients each), every patient in a new study that needs
   * `minNodes` updates; by default the API's own nodes train, one per site.
   */
  async function cohortStudy(
    minNodes: number,
    {
      sites = 3,
      env = { TRAINING_NODES: 'on' },
    }: { sites?: number; env?: Record<string, string> } = {},
  ) {
    const started = await TestApi.start(env);
    api = started;
    const app = started.server.app;
    const summary = await seedCohort(app, { patients: 15 * sites, sites, seed: 5, alpha: 5 });
    const researcher = await started.token('log-researcher', 'RESEARCHER');
    const studyId = (
      await started.ok<{ createStudy: { id: string } }>(
        `mutation($f: [String!]!, $n: Int!) { createStudy(input: { title: "Log first",
         features: $f, label: "44054006", minNodes: $n, localEpochs: 1 }) { id } }`,
        { f: FEATURES, n: minNodes },
        researcher,
      )
    ).createStudy.id;
    const consents = app.get(ConsentService);
    for (const p of summary.patients) {
      await consents.grant(
        { id: p.userId, roles: ['PATIENT'], organizationId: p.organizationId },
        { granteeType: 'STUDY', granteeId: studyId, purpose: 'RESEARCH', actions: ['TRAIN'] },
      );
    }
    const start = async (rounds: number) =>
      (
        await started.ok<{ startTraining: { id: string } }>(
          'mutation($s: ID!, $r: Int!) { startTraining(studyId: $s, rounds: $r) { id } }',
          { s: studyId, r: rounds },
          researcher,
        )
      ).startTraining.id;
    return { app, start, db: started.db, api: started };
  }

  it('stores no update whose patients’ uses the access log did not take', async () => {
    const { app, start, db } = await cohortStudy(3);
    const records = app.get(RecordsService);
    const logUse = records.logTrainingUse.bind(records);
    const logging = jest
      .spyOn(records, 'logTrainingUse')
      .mockImplementation((node, round, uses) =>
        uses.length
          ? Promise.reject(new Error('the access log is unavailable'))
          : logUse(node, round, uses),
      );
    const examples = app.get(LocalTrainingNodes).examples;
    const select = examples.select.bind(examples);
    const trainedOn: number[] = [];
    jest.spyOn(examples, 'select').mockImplementation(async (...args) => {
      const selected = await select(...args);
      trainedOn.push(selected.examples.length);
      return selected;
    });
    const coordinator = app.get(Coordinator);
    const submissions: Promise<unknown>[] = [];
    jest.spyOn(coordinator, 'submit').mockImplementation((...args) => {
      const submitted = Coordinator.prototype.submit.apply(coordinator, args);
      submissions.push(submitted.catch((e: Error) => e));
      return submitted;
    });
    const gaveUp = new Promise<void>((resolve) =>
      jest.spyOn(Logger.prototype, 'warn').mockImplementation(function (this: Logger, ...args) {
        if (String(args[1]).includes('could not train this round')) resolve();
      }),
    );

    const runId = await start(2);
    await gaveUp;

    // A site had examples to train on, and the log refused their use: its update reached the
    // coordinator, which failed it rather than store it (accepted or rejected).
    expect(Math.max(...trainedOn)).toBeGreaterThan(0);
    expect(logging.mock.calls.some(([, , uses]) => uses.length > 0)).toBe(true);
    expect(submissions.length).toBeGreaterThan(0);
    const outcomes = await Promise.all(submissions);
    expect(outcomes.every((o) => o instanceof Error)).toBe(true);
    const { rows } = await db.query('SELECT 1 FROM model_updates WHERE run_id = $1', [runId]);
    expect(rows).toHaveLength(0);
  });

  it('reads every site’s examples before it logs any site’s use', async () => {
    // A large site's events held the thread and the database while the small sites waited
    // to read; now the sites read first, train meanwhile, and the uses are logged after.
    const { app, start } = await cohortStudy(3);
    const order: string[] = [];
    const records = app.get(RecordsService);
    const logUse = records.logTrainingUse.bind(records);
    jest.spyOn(records, 'logTrainingUse').mockImplementation((node, round, uses) => {
      order.push(`log ${round.round}`);
      return logUse(node, round, uses);
    });
    const examples = app.get(LocalTrainingNodes).examples;
    const select = examples.select.bind(examples);
    jest.spyOn(examples, 'select').mockImplementation(async (...args) => {
      const selected = await select(...args);
      order.push(`read ${args[3].round}`);
      return selected;
    });
    const closed = new Promise<string>((resolve) =>
      app.get(Coordinator).events.on('round', (e: { round: number; status: string }) => {
        if (e.round === 2) resolve(e.status);
      }),
    );
    await start(2);
    expect(await closed).toBe('CLOSED');
    for (const round of [1, 2]) {
      // One node per organisation (the instance's own included): each reads, then all log.
      const mine = order.filter((o) => o.endsWith(` ${round}`));
      const reads = mine.filter((o) => o.startsWith('read')).length;
      expect(reads).toBeGreaterThanOrEqual(3);
      expect(mine).toEqual([
        ...Array(reads).fill(`read ${round}`),
        ...Array(reads).fill(`log ${round}`),
      ]);
    }
  });

  it('lets the other nodes train and submit when one node cannot read its examples', async () => {
    const { app, start, db } = await cohortStudy(2);
    const nodes = app.get(LocalTrainingNodes);
    const select = nodes.examples.select.bind(nodes.examples);
    // The first site in the nodes' order fails; the sites after it must not wait on it.
    const [failing] = (
      await db.query(
        `SELECT DISTINCT organization_id AS id FROM patients ORDER BY organization_id LIMIT 1`,
      )
    ).rows.map((r) => r.id as string);
    let failedNode: string | undefined;
    jest.spyOn(nodes.examples, 'select').mockImplementation((organizationId, ...rest) => {
      if (organizationId !== failing) return select(organizationId, ...rest);
      failedNode = rest[1];
      return Promise.reject(new Error('the records are unavailable'));
    });
    const outcome = new Promise<string>((resolve) => {
      app.get(Coordinator).events.once('round', (e: { status: string }) => resolve(e.status));
      jest.spyOn(Logger.prototype, 'warn').mockImplementation((...args) => {
        if (String(args[1]).includes('could not train this round')) resolve('a node gave up');
      });
    });
    const runId = await start(1);
    expect(await outcome).toBe('CLOSED');
    const { rows } = await db.query(
      `SELECT node_id FROM model_updates WHERE run_id = $1 AND status = 'ACCEPTED'`,
      [runId],
    );
    expect(rows.length).toBeGreaterThanOrEqual(2);
    expect(failedNode).toBeDefined();
    expect(rows.map((r) => r.node_id)).not.toContain(failedNode);
  });

  it('has a remote node post no update whose patients’ uses the access log did not take', async () => {
    // This instance is the site's, its own nodes off: the remote node trains on its patients.
    const {
      app,
      start,
      db,
      api: started,
    } = await cohortStudy(1, {
      sites: 1,
      env: { TRAINING_NODES: 'off', ORG_ID: 'site-1' },
    });
    const runId = await start(1);
    const { id: nodeId, privateJwk } = await registerSimulatedNode(
      started,
      await started.token('root', 'ADMIN'),
      { name: 'remote' },
    );
    const node = new RemoteNode(app, {
      coordinator: started.url,
      token: await started.token(nodeId, 'NODE', 'site-1'),
      privateJwk,
    });
    const records = app.get(RecordsService);
    const logging = jest
      .spyOn(records, 'logTrainingUse')
      .mockRejectedValue(new Error('the access log is unavailable'));

    await expect(node.pollOnce()).rejects.toThrow('the access log is unavailable');
    expect(logging.mock.calls.some(([, , uses]) => uses.length > 0)).toBe(true);
    const updates = () => db.query('SELECT status FROM model_updates WHERE run_id = $1', [runId]);
    expect((await updates()).rows).toHaveLength(0);

    // Once the log takes them, the same node's update goes.
    logging.mockRestore();
    expect((await node.pollOnce()).submitted).toEqual([
      { runId, round: 1, status: 'ACCEPTED', reason: null },
    ]);
    expect((await updates()).rows).toEqual([{ status: 'ACCEPTED' }]);
  });
});
