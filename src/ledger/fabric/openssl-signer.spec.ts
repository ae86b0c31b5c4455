import { hash } from '@hyperledger/fabric-gateway';
import fc from 'fast-check';
import { generateKeyPairSync, KeyObject, sign, verify } from 'node:crypto';
import { ecdsaDer, gatewaySigning } from './openssl-signer';

const CURVES = [
  {
    name: 'P-256',
    order: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
    width: 32,
  },
  {
    name: 'P-384',
    order:
      0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
    width: 48,
  },
];

/** r and s of a DER ECDSA-Sig-Value, checking that it is strict DER (minimal integers). */
function parseDer(der: Uint8Array): { r: bigint; s: bigint } {
  expect(der[0]).toBe(0x30);
  const long = der[1] === 0x81;
  const total = long ? der[2] : der[1];
  let at = long ? 3 : 2;
  expect(der.length).toBe(at + total);
  const ints: bigint[] = [];
  for (let i = 0; i < 2; i++) {
    expect(der[at]).toBe(0x02);
    const len = der[at + 1];
    const body = der.subarray(at + 2, at + 2 + len);
    // Minimal: no leading zero unless the next byte has its high bit set; never negative.
    expect(body[0] & 0x80).toBe(0);
    if (body.length > 1 && body[0] === 0) expect(body[1] & 0x80).toBe(0x80);
    ints.push(BigInt(`0x${Buffer.from(body).toString('hex')}`));
    at += 2 + len;
  }
  return { r: ints[0], s: ints[1] };
}

function p1363(r: bigint, s: bigint, width: number): Buffer {
  return Buffer.from(
    r.toString(16).padStart(2 * width, '0') + s.toString(16).padStart(2 * width, '0'),
    'hex',
  );
}

describe.each(CURVES)('signing for Fabric with OpenSSL on $name', ({ name, order, width }) => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', {
    namedCurve: name === 'P-256' ? 'prime256v1' : 'secp384r1',
  });
  const signing = gatewaySigning(privateKey);

  it('signs the whole message (the gateway hashes nothing): ECDSA over SHA-256, low S, strict DER', async () => {
    expect(signing.hash).toBe(hash.none);
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), async (message) => {
        const der = await signing.signer(signing.hash(message));
        const { s } = parseDer(der);
        expect(s <= order >> 1n).toBe(true);
        expect(verify('sha256', message, { key: publicKey, dsaEncoding: 'der' }, der)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('turns a high S into n − S, which still verifies, and leaves a low S alone', () => {
    const message = Buffer.from('custodia');
    const raw = sign('sha256', message, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    const r = BigInt(`0x${raw.subarray(0, width).toString('hex')}`);
    let s = BigInt(`0x${raw.subarray(width).toString('hex')}`);
    if (s > order >> 1n) s = order - s;
    const high = order - s;
    for (const given of [s, high]) {
      const der = ecdsaDer(p1363(r, given, width), order, width);
      expect(parseDer(der)).toEqual({ r, s });
      expect(verify('sha256', message, { key: publicKey, dsaEncoding: 'der' }, der)).toBe(true);
    }
  });

  it('writes short integers minimally (r and s with leading zero bytes)', () => {
    const der = ecdsaDer(p1363(1n, 0x80n, width), order, width);
    expect(parseDer(der)).toEqual({ r: 1n, s: 0x80n });
    expect([...der]).toEqual([0x30, 7, 0x02, 1, 1, 0x02, 2, 0, 0x80]);
  });

  it('refuses a signature of another length', () => {
    expect(() => ecdsaDer(new Uint8Array(2 * width - 1), order, width)).toThrow(RangeError);
  });
});

describe('signing for Fabric with a key OpenSSL ECDSA does not cover', () => {
  it("keeps the gateway's own signer over its SHA-256 digest for Ed25519", async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const signing = gatewaySigning(privateKey as KeyObject);
    expect(signing.hash).toBe(hash.sha256);
    expect((await signing.signer(signing.hash(Buffer.from('x')))).length).toBe(64);
  });
});
