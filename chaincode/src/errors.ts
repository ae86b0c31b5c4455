// Chaincode rejections carry a bracketed code at the start of their message, which survives
// the trip through a Fabric peer, so that clients can map it to their own errors. No Fabric
// import here: the API imports this module.

export type ChaincodeErrorCode = 'INVALID_ARGUMENT' | 'NOT_FOUND' | 'CONFLICT' | 'FORBIDDEN';

export class ChaincodeError extends Error {
  constructor(
    readonly code: ChaincodeErrorCode,
    message: string,
  ) {
    super(`[${code}] ${message}`);
    this.name = 'ChaincodeError';
  }
}

/** The code and plain message of an error raised by the chaincode (e.g. relayed by a peer). */
export function parseChaincodeError(
  message: string,
): { code: ChaincodeErrorCode; message: string } | undefined {
  const m = /\[(INVALID_ARGUMENT|NOT_FOUND|CONFLICT|FORBIDDEN)\] (.*)$/s.exec(message);
  return m ? { code: m[1] as ChaincodeErrorCode, message: m[2] } : undefined;
}
