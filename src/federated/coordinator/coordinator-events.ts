// What the coordinator tells the rest of the process (the in-process training nodes, tests,
// benchmarks): typed events instead of strings and loosely shaped payloads.
import { Injectable } from '@nestjs/common';
import { EventEmitter } from 'node:events';

/** A round that nodes may now train: sent when it opens (and again for open ones at start). */
export interface RoundOpened {
  runId: string;
  round: number;
  studyId: string;
  /** What the strategy asks of local training (FedProx's mu). */
  clientConfig: Record<string, number>;
}

/** A round that ended: aggregated and recorded on the ledger, or failed. */
export interface RoundEnded {
  runId: string;
  round: number;
  status: 'CLOSED' | 'FAILED';
}

export interface CoordinatorEventMap {
  open: [RoundOpened];
  /**
   * An open round whose nodes may train again: updates of it were rejected before aggregation
   * (their contributors revoked consent meanwhile), and a node without an accepted update may
   * send another, without those patients.
   */
  reopen: [RoundOpened];
  round: [RoundEnded];
}

@Injectable()
export class CoordinatorEvents extends EventEmitter<CoordinatorEventMap> {}
