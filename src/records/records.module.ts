import { Module, OnModuleInit } from '@nestjs/common';
import { AuditModule } from '../audit';
import { ConsentModule } from '../consent';
import { LedgerModule } from '../ledger';
import { PatientsModule } from '../patients';
import { RecordCryptoModule } from './crypto';
import { ExportResolver } from './export/export.resolver';
import { RecordExportService } from './export/export.service';
import { loadFhirDefinitions } from './fhir';
import { BundleImportService } from './import/bundle-import.service';
import { ImportResolver } from './import/import.resolver';
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
    BundleImportService,
    ImportResolver,
    RecordExportService,
    ExportResolver,
  ],
  exports: [RecordsService, RecordAnchoring, RecordResealing, RecordAccess],
})
export class RecordsModule implements OnModuleInit {
  /** Index the FHIR definitions at start-up rather than on the first write. */
  onModuleInit(): void {
    loadFhirDefinitions();
  }
}
