// What the coordinator tells the rest of the process (the in-process training nodes, tests,
// benchmarks): typed events instead of strings and loosely shaped payloads.
import { Injectable } from '@nestjs/common';
import { EventEmitter } from 'node:events';
import { createStrategy } from '../strategies';
import type { StudyEntity } from '../studies/study.entity';

/** A round that nodes may now train: sent when it opens (and again for open ones at start). */
export interface RoundOpened {
  runId: string;
  round: number;
  studyId: string;
  /** What the strategy asks of local training (FedProx's mu). */
  clientConfig: Record<string, number>;
}

/** The event for a round of a run of `study` that nodes may (again) train. */
export function roundOpened(
  runId: string,
  round: number,
  study: Pick<StudyEntity, 'id' | 'strategy'>,
): RoundOpened {
  return {
    runId,
    round,
    studyId: study.id,
    clientConfig: createStrategy(study.strategy).clientConfig(),
  };
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
