// How the API signs what it sends to Fabric (proposals, transactions, commit-status requests):
// with OpenSSL through node:crypto, rather than the gateway's own signer, which is pure
// JavaScript (@noble/curves) and took a fifth of the API's CPU per grant on Fabric. Fabric
// accepts only low-S ECDSA signatures (peers and orderers refuse the other half of each pair,
// so a signature cannot be malleated into a second valid one), which OpenSSL does not enforce:
// S is normalised here, as the gateway's signer does, and the signature DER-encoded.
import { Hash, hash, Signer, signers } from '@hyperledger/fabric-gateway';
import { KeyObject, sign } from 'node:crypto';

/** The order n of each curve Fabric identities use. */
const CURVE_ORDER: Record<string, bigint> = {
  prime256v1: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  secp384r1:
    0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
};

/** A signer, and the hash the gateway applies to a message before handing it to the signer. */
export interface GatewaySigning {
  signer: Signer;
  hash: Hash;
}

/**
 * The gateway's signing for `key`: OpenSSL's ECDSA over SHA-256 of the whole message (so the
 * gateway hashes nothing, `hash.none`), low-S, DER — for an EC key on P-256 or P-384; the
 * gateway's own signer over its SHA-256 digest for any other key it supports (Ed25519).
 */
export function gatewaySigning(key: KeyObject): GatewaySigning {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const order = key.asymmetricKeyType === 'ec' && curve ? CURVE_ORDER[curve] : undefined;
  if (order === undefined) {
    return { signer: signers.newPrivateKeySigner(key), hash: hash.sha256 };
  }
  const width = (order.toString(16).length + 1) >> 1;
  return {
    signer: (message) =>
      Promise.resolve(
        ecdsaDer(sign('sha256', message, { key, dsaEncoding: 'ieee-p1363' }), order, width),
      ),
    hash: hash.none,
  };
}

/** r ‖ s (each `width` bytes) as a DER ECDSA-Sig-Value, with s replaced by n − s when high. */
export function ecdsaDer(p1363: Uint8Array, order: bigint, width: number): Uint8Array {
  if (p1363.length !== 2 * width) throw new RangeError('not an r ‖ s signature of this curve');
  const r = p1363.subarray(0, width);
  let s = toBigInt(p1363.subarray(width));
  if (s > order >> 1n) s = order - s;
  const rDer = derInteger(r);
  const sDer = derInteger(fromBigInt(s, width));
  return Uint8Array.from([0x30, ...derLength(rDer.length + sDer.length), ...rDer, ...sDer]);
}

function toBigInt(bytes: Uint8Array): bigint {
  return BigInt(`0x${Buffer.from(bytes).toString('hex') || '0'}`);
}

function fromBigInt(value: bigint, width: number): Uint8Array {
  return Buffer.from(value.toString(16).padStart(2 * width, '0'), 'hex');
}

/** A DER INTEGER of an unsigned big-endian number: minimal, with a 0 byte before a high bit. */
function derInteger(unsigned: Uint8Array): number[] {
  let start = 0;
  while (start < unsigned.length - 1 && unsigned[start] === 0) start++;
  const body = [...unsigned.subarray(start)];
  if (body[0] & 0x80) body.unshift(0);
  return [0x02, ...derLength(body.length), ...body];
}

function derLength(length: number): number[] {
  return length < 0x80 ? [length] : [0x81, length];
}
