import { EventCursor } from './event-cursor';

/** Feeds a stream of block numbers through a cursor and returns the positions delivered. */
function deliver(cursor: EventCursor, blocks: number[]) {
  cursor.restart();
  const out: { blockNumber: number; txIndex: number }[] = [];
  for (const b of blocks) {
    const { position, deliver } = cursor.next(b);
    if (!deliver) continue;
    out.push(position);
    cursor.advance(position);
  }
  return out;
}

describe('EventCursor', () => {
  it('numbers the events of a block 0, 1, 2 and delivers them all without a checkpoint', () => {
    const cursor = new EventCursor(null);
    expect(cursor.startBlock).toBe(0);
    expect(deliver(cursor, [3, 3, 3, 5])).toEqual([
      { blockNumber: 3, txIndex: 0 },
      { blockNumber: 3, txIndex: 1 },
      { blockNumber: 3, txIndex: 2 },
      { blockNumber: 5, txIndex: 0 },
    ]);
    expect(cursor.checkpoint).toEqual({ blockNumber: 5, txIndex: 0 });
  });

  it('starts at the checkpoint block and delivers only what follows the checkpoint in it', () => {
    const cursor = new EventCursor({ blockNumber: 3, txIndex: 1 });
    expect(cursor.startBlock).toBe(3);
    expect(deliver(cursor, [3, 3, 3, 4])).toEqual([
      { blockNumber: 3, txIndex: 2 },
      { blockNumber: 4, txIndex: 0 },
    ]);
  });

  it('repeats nothing when a stream is reopened from the last processed event', () => {
    const cursor = new EventCursor(null);
    expect(deliver(cursor, [1, 2, 2])).toHaveLength(3);
    expect(cursor.startBlock).toBe(2);
    // The reopened stream replays block 2 from its first event.
    expect(deliver(cursor, [2, 2, 2, 7])).toEqual([
      { blockNumber: 2, txIndex: 2 },
      { blockNumber: 7, txIndex: 0 },
    ]);
  });

  it('delivers again an event whose handler failed, since the checkpoint did not advance', () => {
    const cursor = new EventCursor({ blockNumber: 4, txIndex: 0 });
    cursor.restart();
    expect(cursor.next(4).deliver).toBe(false);
    const { position } = cursor.next(4); // the handler fails: no advance
    expect(position).toEqual({ blockNumber: 4, txIndex: 1 });
    expect(deliver(cursor, [4, 4])).toEqual([{ blockNumber: 4, txIndex: 1 }]);
  });
});
