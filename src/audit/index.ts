export { AccessEventModel, AccessEventPageModel } from './access-event.model';
export { AccessLog, AUDIT_CHAIN_ID, NewAccessEvent } from './access-log';
export { AuditModule } from './audit.module';
export * from './audit-chain';
export { AccessLogCheckOptions, checkAccessLog, poolRows, QueryRows } from './verify';
