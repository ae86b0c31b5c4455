import { parseTrainingUse, trainingUseReason } from './training-use';

describe("a training node's reason", () => {
  it('reads back the study, run and round it was written with', () => {
    const ref = { studyId: 'study-1', runId: '0b6c7a52-9f3e-4b1c-8a51-2f0d3c4e5a6b', round: 12 };
    expect(parseTrainingUse(trainingUseReason(ref))).toEqual(ref);
  });

  it('names no round for any other text, or none', () => {
    for (const other of [
      null,
      '',
      'Emergency: unconscious on arrival',
      'Training run x, round y',
    ]) {
      expect(parseTrainingUse(other)).toBeNull();
    }
  });
});
