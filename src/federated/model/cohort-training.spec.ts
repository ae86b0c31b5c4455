// The whole local story on the synthetic diabetes cohort: FHIR resources → examples → training,
// centralised and federated (FedAvg and FedProx over the strategies the coordinator uses).
import * as tf from '@tensorflow/tfjs';
import { createStrategy, type AggregationStrategy } from '../strategies';
// The cohort module itself: the synthetic package's index also loads the server-side seeding.
import { COHORT_EPOCH, generateCohort, toFhir, TYPE_2_DIABETES } from '../synthetic/cohort';
import {
  AGE_LOINC,
  buildExamples,
  evaluate,
  initialWeights,
  initTensorFlow,
  trainCentralised,
  trainLocal,
  type Evaluation,
  type ExampleDefinition,
  type Examples,
  type ModelPreset,
} from '.';

const SITES = 3;
const ROUNDS = 5;
const LOCAL_EPOCHS = 3;
/** The study defaults: learning rate 0.1, batches of 32. */
const TRAINING = { batchSize: 32, learningRate: 0.1 };
const SEED = 42;
const definition: ExampleDefinition = {
  // Glucose, HbA1c, BMI, systolic pressure, HDL, age.
  features: ['2345-7', '4548-4', '39156-5', '8480-6', '2085-9', AGE_LOINC],
  label: TYPE_2_DIABETES.code,
  asOf: new Date(COHORT_EPOCH).toISOString(),
};

const patientId = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;

/** Each site's examples, built from its patients' FHIR resources, every fifth one held out. */
function siteData(): { train: Examples; test: Examples; skipped: number }[] {
  const cohort = generateCohort({ patients: 900, sites: SITES, seed: SEED, alpha: 0.5 });
  return Array.from({ length: SITES }, (_, site) => {
    const patients = cohort.patients.filter((p) => p.site === site);
    const all = buildExamples(
      patients.map((p) => toFhir(p, patientId(p.index))),
      definition,
    );
    const train: Examples = { x: [], y: [] };
    const test: Examples = { x: [], y: [] };
    all.x.forEach((x, i) => {
      const part = i % 5 === 0 ? test : train;
      part.x.push(x);
      part.y.push(all.y[i]);
    });
    return { train, test, skipped: all.skipped };
  });
}

const pool = (parts: Examples[]): Examples => ({
  x: parts.flatMap((p) => p.x),
  y: parts.flatMap((p) => p.y),
});

interface FederatedRun {
  model: Float32Array;
  /** Held-out evaluation after each round. */
  rounds: Evaluation[];
  stepNorms: number[];
}

/** The coordinator's loop in miniature: every site trains on every round's global model. */
async function federate(
  preset: ModelPreset,
  strategy: AggregationStrategy,
  sites: Examples[],
  test: Examples,
): Promise<FederatedRun> {
  let model = initialWeights(preset, definition.features.length, SEED);
  const run: FederatedRun = { model, rounds: [], stepNorms: [] };
  for (let round = 1; round <= ROUNDS; round++) {
    const aggregator = strategy.begin(model, round);
    for (const [site, examples] of sites.entries()) {
      const update = await trainLocal({
        preset,
        features: definition.features,
        globalWeights: model,
        examples,
        epochs: LOCAL_EPOCHS,
        ...TRAINING,
        mu: strategy.clientConfig().mu,
        seed: round * SITES + site,
      });
      aggregator.fold(update.weights, update.numExamples);
    }
    const result = aggregator.finish();
    model = result.model;
    run.rounds.push(await evaluate(preset, model, test));
    run.stepNorms.push(result.metrics.stepNorm);
  }
  run.model = model;
  return run;
}

describe('training on the synthetic diabetes cohort (900 patients, 3 sites, α = 0.5)', () => {
  const sites = siteData();
  const trainingSets = sites.map((s) => s.train);
  const test = pool(sites.map((s) => s.test));
  const centralised = new Map<ModelPreset, Evaluation>();

  beforeAll(async () => {
    await initTensorFlow();
    for (const preset of ['LOGISTIC', 'MLP'] as const) {
      const { weights } = await trainCentralised({
        preset,
        features: definition.features,
        examples: pool(trainingSets),
        // As many passes over each example as the federation makes.
        epochs: ROUNDS * LOCAL_EPOCHS,
        ...TRAINING,
        seed: SEED,
      });
      centralised.set(preset, await evaluate(preset, weights, test));
    }
  });

  afterAll(() => {
    expect(tf.memory().numTensors).toBe(0);
  });

  it('builds an example for every patient from their FHIR resources, 20% per site held out', () => {
    expect(sites.map((s) => s.skipped)).toEqual([0, 0, 0]);
    const sizes = sites.map((s) => s.train.y.length + s.test.y.length);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(900);
    sites.forEach((s, i) => expect(s.test.y.length).toBe(Math.ceil(sizes[i] / 5)));
    // Non-IID: the sites' prevalences differ widely.
    const prevalence = sites.map((s) => s.train.y.filter((y) => y === 1).length / s.train.y.length);
    expect(Math.max(...prevalence) - Math.min(...prevalence)).toBeGreaterThan(0.2);
    expect(test.y).toContain(1);
  });

  it.each(['LOGISTIC', 'MLP'] as const)(
    'trains %s centrally to an AUC of at least 0.8 on the held-out patients',
    (preset) => {
      expect(centralised.get(preset)!.auc).toBeGreaterThanOrEqual(0.8);
    },
  );

  it.each(['LOGISTIC', 'MLP'] as const)(
    'federates %s with FedAvg over 3 sites × 5 rounds to an AUC within 0.03 of centralised',
    async (preset) => {
      const run = await federate(preset, createStrategy('FEDAVG'), trainingSets, test);
      const auc = run.rounds[ROUNDS - 1].auc;
      expect(Math.abs(auc - centralised.get(preset)!.auc)).toBeLessThanOrEqual(0.03);
      // Converging: the global model moves less in the last round than in the first.
      expect(run.stepNorms[ROUNDS - 1]).toBeLessThan(run.stepNorms[0]);
    },
  );

  it('converges with FedProx (μ = 0.1) too, to an AUC within 0.03 of centralised', async () => {
    const run = await federate(
      'LOGISTIC',
      createStrategy('FEDPROX', { mu: 0.1 }),
      trainingSets,
      test,
    );
    expect(run.rounds[ROUNDS - 1].loss).toBeLessThan(run.rounds[0].loss);
    expect(run.stepNorms[ROUNDS - 1]).toBeLessThan(run.stepNorms[0]);
    expect(
      Math.abs(run.rounds[ROUNDS - 1].auc - centralised.get('LOGISTIC')!.auc),
    ).toBeLessThanOrEqual(0.03);
  });

  it('reproduces a federated run bit for bit from the same seed', async () => {
    const a = await federate('LOGISTIC', createStrategy('FEDAVG'), trainingSets, test);
    const b = await federate('LOGISTIC', createStrategy('FEDAVG'), trainingSets, test);
    expect(b.model).toEqual(a.model);
  });
});
