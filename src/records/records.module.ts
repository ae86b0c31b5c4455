import { Module, OnModuleInit } from '@nestjs/common';
import { AuditModule } from '../audit';
import { ConsentModule } from '../consent';
import { LedgerModule } from '../ledger';
import { PatientsModule } from '../patients';
import { RecordCryptoModule } from './crypto';
import { loadFhirDefinitions } from './fhir';
import { LedgerAnchors } from './ledger-anchors';
import { RecordAnchoring } from './record-anchoring';
import { RecordOpener } from './record-opener';
import { RecordResealing } from './record-resealing';
import { RecordsResolver } from './records.resolver';
import { RecordsService } from './records.service';
import { RecordAccess } from './record-access';
import { RecordAmendments } from './history/record-amendments';
import { RecordHistory } from './history/record-history';
import { RecordHistoryResolver } from './history/record-history.resolver';
import { LatestObservationsQuery } from './search/latest-observations';
import { RecordIndex } from './search/record-index';
import { RecordIndexing } from './search/record-indexing';
import { RecordSearchResolver } from './search/record-search.resolver';

@Module({
  imports: [PatientsModule, RecordCryptoModule, LedgerModule, ConsentModule, AuditModule],
  providers: [
    RecordsService,
    RecordsResolver,
    RecordAnchoring,
    LedgerAnchors,
    RecordOpener,
    RecordResealing,
    RecordAccess,
    RecordIndex,
    RecordIndexing,
    RecordAmendments,
    RecordHistory,
    RecordHistoryResolver,
    LatestObservationsQuery,
    RecordSearchResolver,
  ],
  exports: [RecordsService, RecordAnchoring, RecordResealing],
})
export class RecordsModule implements OnModuleInit {
  /** Index the FHIR definitions at start-up rather than on the first write. */
  onModuleInit(): void {
    loadFhirDefinitions();
  }
}
