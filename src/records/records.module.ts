import { Module, OnModuleInit } from '@nestjs/common';
import { PatientsModule } from '../patients';
import { RecordCryptoModule } from './crypto';
import { loadFhirDefinitions } from './fhir';
import { RecordsResolver } from './records.resolver';
import { RecordsService } from './records.service';

@Module({
  imports: [PatientsModule, RecordCryptoModule],
  providers: [RecordsService, RecordsResolver],
  exports: [RecordsService],
})
export class RecordsModule implements OnModuleInit {
  /** Index the FHIR definitions at start-up rather than on the first write. */
  onModuleInit(): void {
    loadFhirDefinitions();
  }
}
