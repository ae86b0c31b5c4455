import { PostgresConnectionOptions } from 'typeorm/driver/postgres/PostgresConnectionOptions';
import { MIGRATIONS } from '../../migrations';
import { ConsentGrantEntity, EmergencyAccessEntity } from '../consent/consent-grant.entity';
import { StudyEntity, TrainingNodeEntity } from '../federated/studies/study.entity';
import { OrganizationEntity, PatientEntity, UserEntity } from '../patients/patient.entity';
import { DataKeyEntity } from '../records/crypto/data-key.entity';
import { RecordEntity } from '../records/record.entity';

export const ENTITIES = [
  OrganizationEntity,
  PatientEntity,
  UserEntity,
  DataKeyEntity,
  RecordEntity,
  ConsentGrantEntity,
  EmergencyAccessEntity,
  StudyEntity,
  TrainingNodeEntity,
];

export function dataSourceOptions(url: string): PostgresConnectionOptions {
  return {
    type: 'postgres',
    url,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTransactionMode: 'each',
    synchronize: false,
    logging: false,
    // A database that does not answer (an outage, a network partition) fails a request within
    // seconds instead of holding it; TCP keep-alive finds connections that died silently.
    connectTimeoutMS: 5_000,
    extra: { max: 10, application_name: 'custodia', keepAlive: true },
  };
}
