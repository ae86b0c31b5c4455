import { MiddlewareConsumer, Module, NestModule } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { LedgerModule } from '../ledger';
import { HttpMetricsMiddleware, Metrics } from './metrics';
import { ObservabilityController } from './observability.controller';

@Module({
  imports: [TerminusModule.forRoot({ logger: false }), LedgerModule],
  controllers: [ObservabilityController],
  providers: [Metrics],
  exports: [Metrics],
})
export class ObservabilityModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(HttpMetricsMiddleware).forRoutes('*path');
  }
}
