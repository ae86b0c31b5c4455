// The model code of federated learning: examples from FHIR resources, the model presets as
// flat parameter vectors, local (FedAvg / FedProx) and centralised training, and evaluation.
// Everything but features, architecture and metrics loads TensorFlow.js; code that must not
// (the coordinator) imports './architecture' or './features' directly.
export {
  initialWeights,
  layerShapes,
  layerSlices,
  MAX_FEATURES,
  MLP_HIDDEN_UNITS,
  MODEL_PRESETS,
  parameterCount,
  type DenseLayerShape,
  type LayerSlices,
  type ModelPreset,
} from './architecture';
export { initTensorFlow, type TensorFlowBackend, type TensorFlowRuntime } from './backend';
export {
  AGE_LOINC,
  buildExample,
  buildExamples,
  checkExampleDefinition,
  FEATURE_SCALES,
  featureValues,
  standardise,
  SUPPORTED_FEATURES,
  type ExampleDefinition,
  type ExampleSet,
  type FeatureScale,
  type FeatureValue,
  type PatientExample,
} from './features';
export { accuracy, meanLogLoss, rocAuc } from './metrics';
export {
  createNetwork,
  disposeNetwork,
  flatten,
  load,
  logits,
  type DenseLayer,
  type DenseNetwork,
} from './model';
export { loadPredictiveModel, type PredictiveModel } from './predict';
export {
  evaluate,
  trainCentralised,
  trainLocal,
  type Evaluation,
  type Examples,
  type LocalTrainingInput,
  type TrainingResult,
  type TrainingSettings,
} from './train';
