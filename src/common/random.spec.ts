import { randomBytesPooled } from './random';

describe('randomBytesPooled', () => {
  it('returns buffers of the asked size, each its own copy, never repeating across refills', () => {
    const seen = new Set<string>();
    const kept: [Buffer, string][] = [];
    // 12-byte draws across many refills of the 4 KiB pool.
    for (let i = 0; i < 5000; i++) {
      const b = randomBytesPooled(12);
      expect(b.length).toBe(12);
      const hex = b.toString('hex');
      expect(seen.has(hex)).toBe(false);
      seen.add(hex);
      if (i % 500 === 0) kept.push([b, hex]);
    }
    // Later refills did not change bytes already handed out.
    for (const [b, hex] of kept) expect(b.toString('hex')).toBe(hex);
  });

  it('serves sizes from 0 to beyond the pooled limit', () => {
    for (const size of [0, 1, 32, 256, 257, 4096, 10_000]) {
      expect(randomBytesPooled(size).length).toBe(size);
    }
    // Large draws are random too (not left zeroed or repeated).
    expect(randomBytesPooled(10_000).equals(Buffer.alloc(10_000))).toBe(false);
    expect(randomBytesPooled(64).equals(randomBytesPooled(64))).toBe(false);
  });

  it('refuses a size that is not a byte count', () => {
    for (const size of [-1, 1.5, NaN, Infinity]) {
      expect(() => randomBytesPooled(size)).toThrow(RangeError);
    }
  });

  it('has bytes that look uniform (each value of a byte about equally often)', () => {
    const counts = new Array<number>(256).fill(0);
    const draws = 4000;
    for (let i = 0; i < draws; i++) for (const byte of randomBytesPooled(16)) counts[byte]++;
    const expected = (draws * 16) / 256;
    // Chi-squared with 255 degrees of freedom: above 400 has probability < 1e-8.
    const chi2 = counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
    expect(chi2).toBeLessThan(400);
  });
});
