import { registrationProblem, StudyTerms, studyTermsHash } from './study-terms';

const study: StudyTerms = {
  id: '6f1c1f0e-5b5d-4c1e-9a57-0d3c1d1b2a10',
  title: 'Glucose',
  ownerId: 'res',
  model: 'LOGISTIC',
  features: ['2345-7'],
  label: '44054006',
  strategy: 'FEDAVG',
  localEpochs: 1,
  learningRate: 0.1,
  batchSize: 32,
  minNodes: 2,
  roundDeadlineMs: 60_000,
  clipNorm: null,
  noiseMultiplier: null,
  createdAt: new Date('2025-01-15T09:30:00.123Z'),
};

describe('studyTermsHash', () => {
  it('is a SHA-256 hex digest, the same for the same terms', () => {
    expect(studyTermsHash(study)).toMatch(/^[0-9a-f]{64}$/);
    expect(studyTermsHash({ ...study, features: [...study.features] })).toBe(studyTermsHash(study));
  });

  it.each<[string, Partial<StudyTerms>]>([
    ['a feature added', { features: ['2345-7', '4548-4'] }],
    ['the features reordered', { features: ['4548-4', '2345-7'] }],
    ['another owner', { ownerId: 'res-evil' }],
    ['another label', { label: '38341003' }],
    ['another model', { model: 'MLP' }],
    ['another strategy', { strategy: 'FEDPROX' }],
    ['noise turned off', { clipNorm: 1, noiseMultiplier: 0 }],
    ['a quorum of one', { minNodes: 1 }],
    ['another title', { title: 'Glucose!' }],
    ['another id', { id: '6f1c1f0e-5b5d-4c1e-9a57-0d3c1d1b2a11' }],
    ['another creation instant', { createdAt: new Date('2025-01-15T09:30:00.124Z') }],
  ])('changes with %s', (_case, change) => {
    expect(studyTermsHash({ ...study, ...change })).not.toBe(studyTermsHash(study));
  });
});

describe('registrationProblem', () => {
  const held = { ownerId: 'res', termsHash: studyTermsHash(study) };

  it('finds none in the study the ledger registered', () => {
    expect(registrationProblem(study, held)).toBeNull();
  });

  it('names a study the ledger never registered, another owner, and other terms', () => {
    expect(registrationProblem(study, null)).toMatch(/never registered/);
    expect(registrationProblem({ ...study, ownerId: 'res-evil' }, held)).toMatch(/owner differs/);
    expect(registrationProblem({ ...study, features: ['2345-7', '4548-4'] }, held)).toMatch(
      /terms differ/,
    );
  });
});
