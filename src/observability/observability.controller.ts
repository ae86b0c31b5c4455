import { Controller, Get, Header, Res } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TypeOrmHealthIndicator } from '@nestjs/terminus';
import type { Response } from 'express';
import { Public } from '../auth';
import { LedgerHealthIndicator } from '../ledger';
import { Metrics } from './metrics';

@Public()
@Controller()
export class ObservabilityController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly database: TypeOrmHealthIndicator,
    private readonly metrics: Metrics,
    private readonly ledger: LedgerHealthIndicator,
  ) {}

  /** 200 `{"status":"ok", ...}` once the database and the ledger answer; 503 otherwise. */
  @Get('health')
  @HealthCheck()
  check() {
    return this.health.check([
      () => this.database.pingCheck('database', { timeout: 2000 }),
      () => this.ledger.check('ledger'),
    ]);
  }

  @Get('metrics')
  @Header('Cache-Control', 'no-store')
  async scrape(@Res() res: Response): Promise<void> {
    res.type(this.metrics.registry.contentType).send(await this.metrics.registry.metrics());
  }
}
