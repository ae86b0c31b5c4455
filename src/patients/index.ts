export { OrganizationEntity, PatientEntity, UserEntity } from './patient.entity';
export { PatientsModule } from './patients.module';
export { PatientsService } from './patients.service';
export { PatientModel } from './patient.model';
