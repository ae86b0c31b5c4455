import { createStrategy, STRATEGY_NAMES, type StrategyName } from '.';
import { FedAdam } from './fedadam';
import { FedAvg } from './fedavg';
import { FedProx } from './fedprox';
import { TrimmedMean } from './trimmed-mean';

describe('createStrategy', () => {
  it('builds the strategy a study names, with its options', () => {
    expect(createStrategy('FEDAVG')).toBeInstanceOf(FedAvg);
    expect(createStrategy('FEDPROX', { mu: 0.2 }).clientConfig()).toEqual({ mu: 0.2 });
    expect((createStrategy('FEDADAM', { eta: 0.5 }) as FedAdam).eta).toBe(0.5);
    expect(createStrategy('TRIMMED_MEAN', { trimFraction: 0.1 })).toBeInstanceOf(TrimmedMean);
    expect(createStrategy('FEDPROX')).toBeInstanceOf(FedProx);
  });

  it('rejects a name it does not know, and privacy on the trimmed mean', () => {
    expect(() => createStrategy('FEDSGD' as StrategyName)).toThrow(/unknown aggregation strategy/);
    const options = { privacy: { clipNorm: 1, noiseMultiplier: 1, denominator: 1, sampleRate: 1 } };
    expect(() => createStrategy('TRIMMED_MEAN', options as never)).toThrow(/differential privacy/);
  });
});

// The rules of a round hold for every strategy: the coordinator relies on them without
// knowing which one it runs.
describe.each(STRATEGY_NAMES)('%s round life cycle', (name) => {
  const global = Float32Array.of(0, 0);

  it('reports its name, the round and the updates folded', () => {
    const strategy = createStrategy(name);
    const round = strategy.begin(global, 1);
    round.fold(Float32Array.of(1, 2), 3);
    expect(round.count).toBe(1);
    const { model, metrics } = round.finish();
    expect(model).toBeInstanceOf(Float32Array);
    expect(model).toHaveLength(2);
    expect(metrics).toMatchObject({ strategy: name, round: 1, updates: 1, totalExamples: 3 });
    expect(strategy.state().round).toBe(1);
  });

  it('does not finish a round without updates, nor finish or fold after finishing', () => {
    const round = createStrategy(name).begin(global, 1);
    expect(() => round.finish()).toThrow(/at least one update/);
    round.fold(Float32Array.of(1, 1), 1);
    round.finish();
    expect(() => round.finish()).toThrow(/already finished/);
    expect(() => round.fold(Float32Array.of(1, 1), 1)).toThrow(/has finished/);
  });

  it('only goes forward: a round at or before the last applied one is refused', () => {
    const strategy = createStrategy(name);
    const late = strategy.begin(global, 1);
    const r2 = strategy.begin(global, 2);
    r2.fold(Float32Array.of(1, 1), 1);
    r2.finish();
    late.fold(Float32Array.of(1, 1), 1);
    expect(() => late.finish()).toThrow(/not after round 2/);
    expect(() => strategy.begin(global, 2)).toThrow(/not after round 2/);
    expect(() => strategy.begin(global, 0)).toThrow(/whole number ≥ 1/);
  });

  it('resumes from its state and refuses the state of another strategy', () => {
    const strategy = createStrategy(name);
    const round = strategy.begin(global, 1);
    round.fold(Float32Array.of(1, 1), 1);
    round.finish();
    const resumed = createStrategy(name);
    resumed.restore(strategy.state());
    expect(resumed.state()).toEqual(strategy.state());
    const other = STRATEGY_NAMES.find((n) => n !== name)!;
    expect(() => createStrategy(other).restore(strategy.state())).toThrow(/belongs to/);
  });

  it('refuses a global model that is empty or not float32', () => {
    const strategy = createStrategy(name);
    expect(() => strategy.begin(new Float32Array(0), 1)).toThrow(/non-empty Float32Array/);
    expect(() => strategy.begin(new Float64Array(2) as never, 1)).toThrow(/Float32Array/);
  });
});
