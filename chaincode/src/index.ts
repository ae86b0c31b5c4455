// The custodia chaincode package: the contracts a Fabric peer runs (as an external service:
// `fabric-chaincode-node server`), and the pure consent rule the API imports.
import { AuditContract } from './audit.contract';
import { ConsentContract } from './consent.contract';
import { KeysContract } from './keys.contract';
import { DecisionsContract } from './decisions.contract';
import { RecordsContract } from './records.contract';
import { TrainingContract } from './training.contract';

export { AuditContract, AuditHead, AUDIT_EVENTS } from './audit.contract';
export {
  ConsentContract,
  CONSENT_EVENTS,
  EmergencyAccessSetting,
  EmergencyRecord,
  GrantRecord,
  parseGrant,
} from './consent.contract';
export {
  AiDecisionsSetting,
  DECISION_EVENTS,
  DecisionRecord,
  DecisionsContract,
  ModelDeployment,
} from './decisions.contract';
export { PatientChoice } from './patient-choice';
export * from './policy';
export {
  KEY_EVENTS,
  KeysContract,
  MAX_KEYS,
  PatientKeyRecord,
  PatientKeyring,
  SignedOnlyPeriod,
} from './keys.contract';
export * from './signed-consent';
export { RecordAnchor, RecordsContract, RECORD_EVENTS } from './records.contract';
export {
  StudyRegistration,
  TrainingContract,
  TrainingRound,
  TRAINING_EVENTS,
} from './training.contract';
export { ChaincodeError, ChaincodeErrorCode, parseChaincodeError } from './errors';

/** Read by fabric-chaincode-node: the contracts of this chaincode. */
export const contracts = [
  ConsentContract,
  RecordsContract,
  TrainingContract,
  AuditContract,
  KeysContract,
  DecisionsContract,
];
