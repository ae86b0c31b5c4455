import { Inject, Module, OnApplicationShutdown } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { Pool } from 'pg';
import { DataSource } from 'typeorm';
import { AppConfig, APP_CONFIG } from '../config';
// The file, not the module's index: the observability controller imports this module.
import { IntegrityMonitor } from '../observability/integrity';
import { RecordCryptoModule, RowAuthenticator } from '../records/crypto';
import { EmbeddedLedger } from './embedded/embedded-ledger';
import { embeddedHeadFile } from './embedded/head-file';
import { LedgerSeal } from './embedded/seal';
import { fabricConfigFromEnv, FabricLedger } from './fabric';
import { Ledger, LEDGER } from './ledger.port';
import { LedgerHealthIndicator } from './ledger.health';

@Module({
  imports: [TerminusModule, RecordCryptoModule],
  providers: [
    {
      provide: LEDGER,
      inject: [APP_CONFIG, DataSource, IntegrityMonitor, RowAuthenticator],
      useFactory: async (
        config: AppConfig,
        db: DataSource,
        integrity: IntegrityMonitor,
        rows: RowAuthenticator,
      ): Promise<Ledger> => {
        if (config.ledger === 'fabric')
          return new FabricLedger(fabricConfigFromEnv(config.fabricEnv));
        // The embedded ledger shares the API's connection pool and database.
        const pool = (db.driver as unknown as { master: Pool }).master;
        const seal = new LedgerSeal(rows);
        const ledger = new EmbeddedLedger(pool, {
          organization: config.orgId,
          seal,
          onTamper: (what, ids) => integrity.report('ledger_chain', what, ids),
          headFile: embeddedHeadFile(config, seal),
        });
        // Before anything can be committed: a broken, unsealed or rolled-back chain is never
        // extended, and world-state rows that are not what the blocks wrote are put back.
        const broken = await ledger.open();
        if (broken) {
          integrity.report(
            'ledger_chain',
            `embedded ledger chain broken (${broken}); writes refused, run verify-ledger`,
          );
        }
        return ledger;
      },
    },
    LedgerHealthIndicator,
  ],
  exports: [LEDGER, LedgerHealthIndicator],
})
export class LedgerModule implements OnApplicationShutdown {
  constructor(@Inject(LEDGER) private readonly ledger: Ledger) {}

  async onApplicationShutdown(): Promise<void> {
    if (this.ledger instanceof EmbeddedLedger || this.ledger instanceof FabricLedger) {
      await this.ledger.close();
    }
  }
}
