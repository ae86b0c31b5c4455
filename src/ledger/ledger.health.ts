import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { LedgerUnavailableError } from '../common/errors';
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
    } catch (e) {
      // The ledger's own errors say what is wrong without PHI (e.g. a broken chain).
      const message =
        e instanceof LedgerUnavailableError ? e.message : 'the ledger does not answer';
      return indicator.down({ message });
    }
  }
}
