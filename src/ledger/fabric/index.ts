// The Fabric adapter of the Ledger port (the only module that imports fabric-gateway).
export { EventCursor } from './event-cursor';
export { fabricConfigFromEnv, type FabricLedgerConfig } from './fabric-config';
export {
  DEFAULT_DEADLINES,
  type FabricDeadlines,
  FabricLedger,
  type FabricLedgerOptions,
} from './fabric-ledger';
