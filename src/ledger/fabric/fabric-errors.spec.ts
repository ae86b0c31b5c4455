import { status } from '@grpc/grpc-js';
import { GatewayError, StatusCode } from '@hyperledger/fabric-gateway';
import type { ServiceError } from '@grpc/grpc-js';
import {
  chaincodeRejection,
  fabricError,
  isEndorsementMismatch,
  isReadConflict,
  validationCodeName,
} from './fabric-errors';

function gatewayError(code: number, message: string, details: string[] = []): GatewayError {
  return new GatewayError({
    code,
    message,
    details: details.map((m) => ({ address: '127.0.0.1:7151', mspId: 'Org1MSP', message: m })),
    cause: new Error(message) as ServiceError,
  });
}

describe('fabricError', () => {
  it("maps a chaincode rejection found in a peer's detail to the API error of its code", () => {
    const e = gatewayError(status.ABORTED, '10 ABORTED: failed to endorse transaction', [
      'chaincode response 500, [NOT_FOUND] grant g1 does not exist',
    ]);
    expect(chaincodeRejection(e)).toMatch(/\[NOT_FOUND\]/);
    const mapped = fabricError(e, 'endorse', 15_000);
    expect(mapped.code).toBe('NOT_FOUND');
    expect(mapped.message).toMatch(/grant g1 does not exist/);
  });

  it('maps an evaluate rejection carried in the message itself', () => {
    const e = gatewayError(
      status.UNKNOWN,
      '2 UNKNOWN: evaluate call to endorser returned error: chaincode response 500, [INVALID_ARGUMENT] grant.purpose must be one of TREATMENT, RESEARCH',
    );
    expect(fabricError(e, 'evaluate', 5_000).code).toBe('BAD_USER_INPUT');
  });

  it('maps a transaction name the chaincode does not have to BAD_USER_INPUT', () => {
    const e = gatewayError(status.UNKNOWN, '2 UNKNOWN: evaluate call to endorser returned error', [
      "chaincode response 500, You've asked to invoke a function that does not exist: consent:Nope",
    ]);
    const mapped = fabricError(e, 'evaluate', 5_000);
    expect(mapped.code).toBe('BAD_USER_INPUT');
    expect(mapped.message).toMatch(/consent:Nope is not a transaction/);
  });

  it('says how long it waited when the deadline passed', () => {
    const e = gatewayError(status.DEADLINE_EXCEEDED, '4 DEADLINE_EXCEEDED: Deadline exceeded');
    const mapped = fabricError(e, 'evaluate', 5_000);
    expect(mapped.code).toBe('LEDGER_UNAVAILABLE');
    expect(mapped.message).toMatch(/within 5 s/);
  });

  it('never says "nothing was committed" once the orderer has taken the transaction', () => {
    const e = gatewayError(status.DEADLINE_EXCEEDED, '4 DEADLINE_EXCEEDED');
    expect(fabricError(e, 'submit', 5_000).message).toMatch(/nothing was committed/);
    const late = fabricError(e, 'commitStatus', 60_000);
    expect(late.code).toBe('LEDGER_UNAVAILABLE');
    expect(late.message).not.toMatch(/nothing was committed/);
    expect(late.message).toMatch(/may still commit/);
  });

  it('maps an unreachable peer to LEDGER_UNAVAILABLE', () => {
    const e = gatewayError(status.UNAVAILABLE, '14 UNAVAILABLE: No connection established');
    expect(fabricError(e, 'endorse', 15_000).code).toBe('LEDGER_UNAVAILABLE');
    expect(fabricError(new Error('socket hang up'), 'evaluate', 5_000).code).toBe(
      'LEDGER_UNAVAILABLE',
    );
  });
});

describe('retry decisions', () => {
  it('treats endorsements that differ between peers as safe to propose again', () => {
    const e = gatewayError(status.ABORTED, '10 ABORTED: failed to collect enough endorsements', [
      'ProposalResponsePayloads do not match',
    ]);
    expect(isEndorsementMismatch(e)).toBe(true);
    expect(isEndorsementMismatch(gatewayError(status.ABORTED, '10 ABORTED', ['other']))).toBe(
      false,
    );
  });

  it('treats read conflicts, and only those, as proof that a transaction did not commit', () => {
    expect(isReadConflict(StatusCode.MVCC_READ_CONFLICT)).toBe(true);
    expect(isReadConflict(StatusCode.PHANTOM_READ_CONFLICT)).toBe(true);
    expect(isReadConflict(StatusCode.ENDORSEMENT_POLICY_FAILURE)).toBe(false);
    expect(isReadConflict(StatusCode.VALID)).toBe(false);
    expect(validationCodeName(StatusCode.MVCC_READ_CONFLICT)).toBe('MVCC_READ_CONFLICT');
  });
});
