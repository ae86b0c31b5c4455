import { Module } from '@nestjs/common';
import { LedgerModule } from '../ledger';
import { PatientsModule } from '../patients';
import { RecordCryptoModule } from '../records/crypto';
import { AccessEventResolver } from './access-event.resolver';
import { AccessLog } from './access-log';
import { AccessLogVerifier } from './access-log-verification';
import { AuditResolver } from './audit.resolver';

@Module({
  imports: [LedgerModule, PatientsModule, RecordCryptoModule],
  providers: [AccessLog, AccessLogVerifier, AuditResolver, AccessEventResolver],
  exports: [AccessLog],
})
export class AuditModule {}
