export { RecordEntity } from './record.entity';
export { IntegrityStatus } from './record.model';
export { RecordsModule } from './records.module';
export { RecordsService, type DecisionSourceRecord } from './records.service';
export { RecordAnchoring } from './record-anchoring';
export { RecordAccess } from './record-access';
export { RecordResealing } from './record-resealing';
export { type TrainingRoundRef, trainingUseReason } from './training-use';
