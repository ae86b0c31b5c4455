import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { Ledger, LEDGER } from './ledger.port';

@Injectable()
export class LedgerHealthIndicator {
  constructor(
    @Inject(LEDGER) private readonly ledger: Ledger,
    private readonly health: HealthIndicatorService,
  ) {}

  async check(key = 'ledger') {
    const indicator = this.health.check(key);
    try {
      await this.ledger.ping();
      return indicator.up();
    } catch {
      return indicator.down({ message: 'the ledger does not answer' });
    }
  }
}
