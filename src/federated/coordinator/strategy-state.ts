// A strategy's state (FedAdam's moments, the privacy accountant) as JSON for PostgreSQL, so
// a restarted coordinator resumes a run exactly where it stopped.
import type { StrategyState } from '../strategies';

export interface StoredStrategyState extends Omit<StrategyState, 'moments'> {
  moments: { m: string; v: string } | null;
}

const toBase64 = (a: Float32Array) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');

function fromBase64(s: string): Float32Array {
  const b = Buffer.from(s, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

export function serialiseStrategyState(state: StrategyState): StoredStrategyState {
  return {
    ...state,
    moments: state.moments ? { m: toBase64(state.moments.m), v: toBase64(state.moments.v) } : null,
  };
}

export function parseStrategyState(stored: unknown): StrategyState {
  const s = stored as StoredStrategyState;
  return {
    ...s,
    moments: s.moments ? { m: fromBase64(s.moments.m), v: fromBase64(s.moments.v) } : null,
  };
}
