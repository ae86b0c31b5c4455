import { Module } from '@nestjs/common';
import { RecordCryptoModule } from '../records/crypto';
import { PatientsResolver } from './patients.resolver';
import { PatientsService } from './patients.service';

@Module({
  imports: [RecordCryptoModule],
  providers: [PatientsService, PatientsResolver],
  exports: [PatientsService],
})
export class PatientsModule {}
