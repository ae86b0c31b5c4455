// The Ledger port: how the API reaches the custodia chaincode, whether it runs in-process
// over PostgreSQL (embedded) or on a Fabric channel. Callers never know which.
import { parseChaincodeError } from '@custodia/chaincode/errors';
import {
  BadUserInputError,
  ConflictError,
  CustodiaError,
  ForbiddenError,
  LedgerUnavailableError,
  NotFoundError,
} from '../common/errors';

export type ContractName = 'consent' | 'records' | 'training' | 'audit' | 'keys' | 'decisions';

export interface SubmitResult<T> {
  txId: string;
  blockNumber: number;
  result: T;
}

/** One committed chaincode event (Fabric keeps at most one per transaction). */
export interface LedgerEvent {
  blockNumber: number;
  txIndex: number;
  txId: string;
  name: string;
  payload: unknown;
}

/** The last event a consumer has processed; events after it are delivered next. */
export interface Checkpoint {
  blockNumber: number;
  txIndex: number;
}

export interface EventSubscription {
  close(): Promise<void>;
}

export interface Ledger {
  /** Executes a transaction and resolves once it is committed. */
  submit<T = unknown>(contract: ContractName, fn: string, args: string[]): Promise<SubmitResult<T>>;
  /** Runs a read-only transaction against committed state. */
  evaluate<T = unknown>(contract: ContractName, fn: string, args: string[]): Promise<T>;
  /**
   * Delivers committed events after `after` (all of them when null), in order, one at a time:
   * the next is delivered when the handler's promise resolves.
   */
  subscribe(
    after: Checkpoint | null,
    handler: (event: LedgerEvent) => Promise<void>,
  ): EventSubscription;
  /** Throws when the ledger does not answer. */
  ping(): Promise<void>;
}

/** The injection token of the Ledger port. */
export const LEDGER = Symbol('LEDGER');

/**
 * Maps a chaincode rejection (its message starts with a bracketed code) to the API's
 * errors; anything else means the ledger could not be reached or failed.
 */
export function ledgerError(message: string): CustodiaError {
  const rejected = parseChaincodeError(message);
  switch (rejected?.code) {
    case 'INVALID_ARGUMENT':
      return new BadUserInputError(`The ledger rejected the request: ${rejected.message}`);
    case 'NOT_FOUND':
      return new NotFoundError(`Not on the ledger: ${rejected.message}`);
    case 'CONFLICT':
      return new ConflictError(`The ledger refused a conflicting change: ${rejected.message}`);
    case 'FORBIDDEN':
      return new ForbiddenError(`The ledger refused: ${rejected.message}`);
    default:
      return new LedgerUnavailableError(
        'The ledger is unavailable; nothing was committed. Try again shortly.',
      );
  }
}
