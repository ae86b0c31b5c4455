export { ErasureModule } from './erasure.module';
export { erasePatientRows, type Sql } from './erasure.service';
