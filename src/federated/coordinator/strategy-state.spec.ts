import { createStrategy } from '../strategies';
import { parseStrategyState, serialiseStrategyState } from './strategy-state';

describe('persisted strategy state', () => {
  it("round-trips FedAdam's moments and the privacy accountant through JSON", () => {
    const privacy = { clipNorm: 1, noiseMultiplier: 1.1, denominator: 2, sampleRate: 1 };
    const adam = createStrategy('FEDADAM', { privacy });
    const global = new Float32Array([0.5, -0.25, 1]);
    const round = adam.begin(global, 1);
    round.fold(new Float32Array([0.6, -0.2, 0.9]), 10);
    round.fold(new Float32Array([0.4, -0.3, 1.1]), 30);
    const first = round.finish().model;
    const stored = JSON.parse(JSON.stringify(serialiseStrategyState(adam.state())));

    const resumed = createStrategy('FEDADAM', { privacy });
    resumed.restore(parseStrategyState(stored));
    expect(resumed.state()).toEqual(adam.state());
    // Both continue identically (the noise aside, which is random): same moments, same round.
    expect(resumed.state().round).toBe(1);
    expect(first).toHaveLength(3);
  });
});
