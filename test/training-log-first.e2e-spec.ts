// A node trains while its patients' uses are being logged, but nothing learnt from them leaves
// the node before the log holds them: when the access log cannot take a node's TRAIN events,
// the node submits nothing for the round.
import { Logger } from '@nestjs/common';
import { ConsentService } from '../src/consent';
import { Coordinator } from '../src/federated/coordinator/coordinator.service';
import { LocalTrainingNodes } from '../src/federated/node/local-nodes';
import { seedCohort } from '../src/federated/synthetic/seed';
import { RecordsService } from '../src/records';
import { TestApi } from './helpers/test-api';

const FEATURES = ['2345-7', '4548-4', '39156-5', '8480-6', '2085-9'];

describe('a training node and its access log', () => {
  let api: TestApi;
  afterAll(() => api?.stop());

  it('submits no update whose patients’ uses the access log did not take', async () => {
    api = await TestApi.start({ TRAINING_NODES: 'on' });
    const app = api.server.app;
    const summary = await seedCohort(app, { patients: 45, sites: 3, seed: 5, alpha: 5 });
    const researcher = await api.token('log-researcher', 'RESEARCHER');
    const studyId = (
      await api.ok<{ createStudy: { id: string } }>(
        `mutation($f: [String!]!) { createStudy(input: { title: "Log first", features: $f,
         label: "44054006", minNodes: 3, localEpochs: 1 }) { id } }`,
        { f: FEATURES },
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
    let submitted!: () => void;
    const anySubmitted = new Promise<void>((resolve) => (submitted = resolve));
    const submit = jest.spyOn(coordinator, 'submit').mockImplementation((...args) => {
      submitted();
      return Coordinator.prototype.submit.apply(coordinator, args);
    });
    const gaveUp = new Promise<void>((resolve) =>
      jest.spyOn(Logger.prototype, 'warn').mockImplementation(function (this: Logger, ...args) {
        if (String(args[1]).includes('could not train this round')) resolve();
      }),
    );

    const runId = (
      await api.ok<{ startTraining: { id: string } }>(
        'mutation($s: ID!) { startTraining(studyId: $s, rounds: 2) { id } }',
        { s: studyId },
        researcher,
      )
    ).startTraining.id;
    await Promise.race([gaveUp, anySubmitted]);

    // A site had examples to train on, and the log refused their use.
    expect(Math.max(...trainedOn)).toBeGreaterThan(0);
    expect(logging.mock.calls.some(([, , uses]) => uses.length > 0)).toBe(true);
    expect(submit).not.toHaveBeenCalled();
    const { rows } = await api.db.query('SELECT 1 FROM model_updates WHERE run_id = $1', [runId]);
    expect(rows).toHaveLength(0);
    jest.restoreAllMocks();
  });
});
