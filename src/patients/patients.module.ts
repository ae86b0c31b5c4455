import { Module } from '@nestjs/common';
import { LedgerModule } from '../ledger/ledger.module';
import { RecordCryptoModule } from '../records/crypto';
import { PatientsResolver } from './patients.resolver';
import { PatientsService } from './patients.service';

@Module({
  imports: [LedgerModule, RecordCryptoModule],
  providers: [PatientsService, PatientsResolver],
  exports: [PatientsService],
})
export class PatientsModule {}
