import { Global, MiddlewareConsumer, Module, NestModule } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { LedgerModule } from '../ledger';
import { IntegrityMonitor } from './integrity';
import { HttpMetricsMiddleware, Metrics } from './metrics';
import { ObservabilityController } from './observability.controller';

/** Global: metrics and the integrity monitor are reported to from every module. */
@Global()
@Module({
  imports: [TerminusModule.forRoot({ logger: false }), LedgerModule],
  controllers: [ObservabilityController],
  providers: [Metrics, IntegrityMonitor],
  exports: [Metrics, IntegrityMonitor],
})
export class ObservabilityModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(HttpMetricsMiddleware).forRoutes('*path');
  }
}
