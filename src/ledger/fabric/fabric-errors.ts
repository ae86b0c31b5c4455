// How failures reported by a Fabric Gateway become the API's errors. A chaincode rejection
// keeps its bracketed code through the peer (in the error's details); anything else means the
// ledger could not be reached or did not answer in time, and the message says whether the
// transaction can have committed.
import { status as GrpcStatus } from '@grpc/grpc-js';
import { GatewayError, StatusCode } from '@hyperledger/fabric-gateway';
import { parseChaincodeError } from '@custodia/chaincode/errors';
import { CustodiaError, LedgerUnavailableError } from '../../common/errors';
import { ledgerError } from '../ledger.port';

/** The step of a call that failed: it decides what the caller may assume about a commit. */
export type FabricPhase = 'evaluate' | 'endorse' | 'submit' | 'commitStatus';

const NOTHING_COMMITTED = 'nothing was committed. Try again shortly.';

/** The messages of a gateway error and of each peer's or orderer's detail. */
function messages(e: unknown): string[] {
  if (e instanceof GatewayError) return [e.message, ...e.details.map((d) => d.message)];
  return [e instanceof Error ? e.message : String(e)];
}

/** The chaincode's own rejection (`[CODE] message`), when that is what failed the call. */
export function chaincodeRejection(e: unknown): string | undefined {
  return messages(e).find((m) => parseChaincodeError(m) !== undefined);
}

/**
 * The endorsing peers executed the proposal but disagree on its result (typically one has not
 * yet committed the latest block). The transaction was never ordered, so a new proposal is safe.
 */
export function isEndorsementMismatch(e: unknown): boolean {
  return (
    e instanceof GatewayError &&
    e.code === GrpcStatus.ABORTED &&
    messages(e).some((m) => m.includes('ProposalResponsePayloads do not match'))
  );
}

/** fabric-contract-api's answer to a transaction name that no contract has. */
const UNKNOWN_TRANSACTION = /You've asked to invoke a function that does not exist: (\S+)/;

/** Maps a failed gateway call to the API's error; `deadlineMs` is the call's own limit. */
export function fabricError(e: unknown, phase: FabricPhase, deadlineMs: number): CustodiaError {
  const rejected = chaincodeRejection(e);
  if (rejected !== undefined) return ledgerError(rejected);
  // As the embedded ledger does: calling a transaction that does not exist is a bad request.
  const unknown = messages(e)
    .map((m) => UNKNOWN_TRANSACTION.exec(m))
    .find((m) => m !== null);
  if (unknown) {
    return ledgerError(
      `[INVALID_ARGUMENT] ${unknown[1]} is not a transaction of the custodia chaincode`,
    );
  }
  const code = e instanceof GatewayError ? e.code : undefined;
  const seconds = Math.round(deadlineMs / 100) / 10;
  const late = code === GrpcStatus.DEADLINE_EXCEEDED;
  switch (phase) {
    case 'evaluate':
      return new LedgerUnavailableError(
        late
          ? `The ledger did not answer within ${seconds} s. Try again shortly.`
          : 'The ledger is unavailable: its peer cannot be reached. Try again shortly.',
      );
    case 'endorse':
      return new LedgerUnavailableError(
        late
          ? `The ledger's peers did not endorse the transaction within ${seconds} s; ${NOTHING_COMMITTED}`
          : `The ledger's peers could not endorse the transaction; ${NOTHING_COMMITTED}`,
      );
    case 'submit':
      return new LedgerUnavailableError(
        `The ledger's ordering service did not accept the transaction; ${NOTHING_COMMITTED}`,
      );
    case 'commitStatus':
      // The orderer took the transaction: it may still commit, so this is not "nothing".
      return new LedgerUnavailableError(
        `The ledger accepted the transaction but did not confirm its commit within ${seconds} s; ` +
          'it may still commit. Check its outcome before retrying.',
      );
  }
}

const STATUS_NAMES = new Map<number, string>(
  Object.entries(StatusCode).map(([name, value]) => [value as number, name]),
);

/** The name of a transaction validation code, e.g. MVCC_READ_CONFLICT. */
export function validationCodeName(code: number): string {
  return STATUS_NAMES.get(code) ?? `validation code ${code}`;
}

/**
 * Validation codes that mean "another transaction changed what this one read": the
 * transaction is in a block but did not commit, so it may be proposed again.
 */
export function isReadConflict(code: number): boolean {
  return code === StatusCode.MVCC_READ_CONFLICT || code === StatusCode.PHANTOM_READ_CONFLICT;
}
