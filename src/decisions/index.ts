export { DecisionsModule } from './decisions.module';
export { inputCommitment, type DecisionInputs, type ModelMetadata } from './decision-inputs';
