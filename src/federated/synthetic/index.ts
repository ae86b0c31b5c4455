// Synthetic cohorts: the pure generator (features, labels from a known risk model, a non-IID
// split, FHIR resources) and the seeding of a cohort into a running Custodia.
export {
  ageInYears,
  COHORT_EPOCH,
  DEFAULT_ALPHA,
  generateCohort,
  MAX_PATIENTS,
  MAX_SITES,
  OBSERVATIONS,
  RISK_MODEL,
  riskLogit,
  riskProbability,
  toFhir,
  TYPE_2_DIABETES,
} from './cohort';
export type {
  CohortOptions,
  FeatureName,
  RiskTerm,
  SyntheticCohort,
  SyntheticFeatures,
  SyntheticPatient,
} from './cohort';
export { dirichletLabelPartition, MIN_PER_SITE_AND_CLASS } from './partition';
export { runSeed, seedCohort, siteId, syntheticPatientId, syntheticUserId } from './seed';
export type { SeedOptions, SeedProgress, SeedSummary } from './seed';
