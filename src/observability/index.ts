export { loggingParams, REDACT_PATHS } from './logging';
export { Metrics } from './metrics';
export { ObservabilityModule } from './observability.module';
export { IntegrityFailureKind, IntegrityMonitor } from './integrity';
