// Every migration, in order. Listed explicitly so that compiled and test runs load the same set.
import { Foundation1764388800000 } from './1764388800000-foundation';
import { EmbeddedLedger1764392400000 } from './1764392400000-embedded-ledger';
import { ConsentAndAudit1764396000000 } from './1764396000000-consent-and-audit';
import { FederatedStudies1764399600000 } from './1764399600000-federated-studies';
import { FederatedRounds1764403200000 } from './1764403200000-federated-rounds';
import { AuthenticatedConsent1764406800000 } from './1764406800000-authenticated-consent';
import { RecordLabelBinding1764410400000 } from './1764410400000-record-label-binding';
import { SealedReasons1764414000000 } from './1764414000000-sealed-reasons';
import { AuthenticatedIdentityLinks1764417600000 } from './1764417600000-authenticated-identity-links';
import { SealedLedger1764421200000 } from './1764421200000-sealed-ledger';
import { ClosingRounds1764424800000 } from './1764424800000-closing-rounds';
import { RecordSearchAndHistory1764530000000 } from './1764530000000-record-search-and-history';
import { SignedConsent1764550000000 } from './1764550000000-signed-consent';
import { AiDecisions1764560000000 } from './1764560000000-ai-decisions';
import { LeanAccessLog1764570000000 } from './1764570000000-lean-access-log';
import { PatientRecordsVersion1764580000000 } from './1764580000000-patient-records-version';
import { ClinicalDatesV21764590000000 } from './1764590000000-clinical-dates-v2';
import { EmergencySettingOrder1764600000000 } from './1764600000000-emergency-setting-order';
import { SearchIndexV31764610000000 } from './1764610000000-search-index-v3';
import { PendingRecords1764620000000 } from './1764620000000-pending-records';

export const MIGRATIONS = [
  Foundation1764388800000,
  EmbeddedLedger1764392400000,
  ConsentAndAudit1764396000000,
  FederatedStudies1764399600000,
  FederatedRounds1764403200000,
  AuthenticatedConsent1764406800000,
  RecordLabelBinding1764410400000,
  SealedReasons1764414000000,
  AuthenticatedIdentityLinks1764417600000,
  SealedLedger1764421200000,
  ClosingRounds1764424800000,
  RecordSearchAndHistory1764530000000,
  SignedConsent1764550000000,
  AiDecisions1764560000000,
  LeanAccessLog1764570000000,
  PatientRecordsVersion1764580000000,
  ClinicalDatesV21764590000000,
  EmergencySettingOrder1764600000000,
  SearchIndexV31764610000000,
  PendingRecords1764620000000,
];
