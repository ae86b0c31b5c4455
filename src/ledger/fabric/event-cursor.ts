// Where a consumer of chaincode events stands. Fabric's chaincode event stream gives each
// event its block number and transaction id but not the transaction's position in the block,
// and a transaction carries at most one chaincode event. So an event's `txIndex` here is its
// position among this chaincode's events in its block (0, 1, ...): the stream always yields
// the same events of a block in the same order, so the numbering is stable across reconnects
// and restarts, and a checkpoint {blockNumber, txIndex} names exactly one event.
import { Checkpoint } from '../ledger.port';

export class EventCursor {
  private block = -1;
  private ordinal = -1;

  /** @param after the last event the consumer processed; null for "from the first block". */
  constructor(private after: Checkpoint | null) {}

  /** The block a (re)opened stream starts at: the checkpoint's own, whose rest may be unseen. */
  get startBlock(): number {
    return this.after?.blockNumber ?? 0;
  }

  /** Call when a (re)opened stream starts, so that the numbering within a block restarts. */
  restart(): void {
    this.block = -1;
    this.ordinal = -1;
  }

  /**
   * Numbers the next event of the stream and says whether it lies after the checkpoint; the
   * caller delivers it and then calls `advance` with the returned position.
   */
  next(blockNumber: number): { position: Checkpoint; deliver: boolean } {
    this.ordinal = blockNumber === this.block ? this.ordinal + 1 : 0;
    this.block = blockNumber;
    const position = { blockNumber, txIndex: this.ordinal };
    const a = this.after;
    const deliver =
      a === null ||
      blockNumber > a.blockNumber ||
      (blockNumber === a.blockNumber && this.ordinal > a.txIndex);
    return { position, deliver };
  }

  /** Records that the event at `position` was processed. */
  advance(position: Checkpoint): void {
    this.after = position;
  }

  get checkpoint(): Checkpoint | null {
    return this.after;
  }
}
