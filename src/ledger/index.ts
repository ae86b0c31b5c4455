export { EmbeddedLedger } from './embedded/embedded-ledger';
export { LedgerHealthIndicator } from './ledger.health';
export { LedgerModule } from './ledger.module';
export * from './ledger.port';
