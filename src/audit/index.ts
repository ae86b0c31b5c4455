export { AccessEventModel, AccessEventPageModel } from './access-event.model';
export { AccessLog, NewAccessEvent } from './access-log';
export { AuditModule } from './audit.module';
export * from './audit-chain';
export { AccessLogCheckOptions, checkAccessLog, poolRows, QueryRows } from './verify';
