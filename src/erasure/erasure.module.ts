import { Module } from '@nestjs/common';
import { ConsentModule } from '../consent';
import { LedgerModule } from '../ledger';
import { PatientsModule } from '../patients';
import { RecordCryptoModule } from '../records/crypto';
import { ErasureResolver } from './erasure.resolver';
import { ErasureService } from './erasure.service';

@Module({
  imports: [ConsentModule, LedgerModule, PatientsModule, RecordCryptoModule],
  providers: [ErasureService, ErasureResolver],
})
export class ErasureModule {}
