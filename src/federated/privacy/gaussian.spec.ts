import { addGaussianNoise, type RandomBytes } from './gaussian';

/** A source that repeats the given 32-bit words (little-endian, as the sampler reads them). */
const repeating =
  (...words: number[]): RandomBytes =>
  (buffer) => {
    const view = new Uint32Array(buffer.buffer, buffer.byteOffset, buffer.byteLength / 4);
    for (let i = 0; i < view.length; i++) view[i] = words[i % words.length];
  };

describe('Gaussian noise', () => {
  it('is Box–Muller on 53-bit uniforms: u₁ = ½, u₂ = ¼ give (0, σ·√(2 ln 2))', () => {
    // u₁ = (k + 1)/2⁵³ with k = 2⁵² − 1: high word (2²⁰ − 1) << 11, low word all ones.
    // u₂ = k/2⁵³ with k = 2⁵¹: high word 2¹⁹ << 11 = 2³⁰, low word 0.
    const noise = new Float64Array(2);
    addGaussianNoise(noise, 3, repeating(0x7ffff800, 0xffffffff, 0x40000000, 0));
    expect(noise[0]).toBeCloseTo(0, 12); // r·cos(π/2)
    expect(noise[1]).toBeCloseTo(3 * Math.sqrt(2 * Math.LN2), 12); // r·sin(π/2)
  });

  it('never takes the logarithm of 0: all-zero random bytes still give finite noise', () => {
    const noise = new Float64Array(5);
    addGaussianNoise(noise, 1, repeating(0));
    expect(noise.every(Number.isFinite)).toBe(true);
  });

  it('adds to what is there, and leaves it alone at σ = 0', () => {
    const target = Float32Array.of(10, 20, 30);
    addGaussianNoise(target, 0);
    expect(target).toEqual(Float32Array.of(10, 20, 30));
    // All-ones bytes give u₁ = 1, so r = 0: noise of exactly zero.
    addGaussianNoise(target, 5, repeating(0xffffffff));
    expect(target).toEqual(Float32Array.of(10, 20, 30));
  });

  it('has mean 0, standard deviation σ and Gaussian tails, from the secure source', () => {
    const n = 1 << 17;
    const sigma = 2.5;
    const x = new Float64Array(n);
    addGaussianNoise(x, sigma);
    let sum = 0;
    let sumSq = 0;
    let within1 = 0;
    let beyond3 = 0;
    let fourth = 0;
    for (const v of x) {
      sum += v;
      sumSq += v * v;
      fourth += (v / sigma) ** 4;
      if (Math.abs(v) <= sigma) within1++;
      if (Math.abs(v) > 3 * sigma) beyond3++;
    }
    const mean = sum / n;
    const sd = Math.sqrt(sumSq / n - mean * mean);
    // Tolerances of about 5 standard errors, so a correct sampler fails once in millions.
    expect(Math.abs(mean)).toBeLessThan((5 * sigma) / Math.sqrt(n));
    expect(Math.abs(sd / sigma - 1)).toBeLessThan(5 * Math.sqrt(0.5 / n));
    expect(Math.abs(within1 / n - 0.682689)).toBeLessThan(5 * Math.sqrt((0.68 * 0.32) / n));
    expect(Math.abs(beyond3 / n - 0.0026998)).toBeLessThan(5 * Math.sqrt(0.0027 / n));
    expect(Math.abs(fourth / n - 3)).toBeLessThan(5 * Math.sqrt(96 / n)); // kurtosis of N(0,1)
  });

  it('draws fresh noise every time', () => {
    const a = new Float64Array(4);
    const b = new Float64Array(4);
    addGaussianNoise(a, 1);
    addGaussianNoise(b, 1);
    expect(Array.from(a)).not.toEqual(Array.from(b));
  });

  it('rejects a negative or infinite standard deviation', () => {
    expect(() => addGaussianNoise(new Float64Array(1), -1)).toThrow(/standard deviation/);
    expect(() => addGaussianNoise(new Float64Array(1), Infinity)).toThrow(/standard deviation/);
  });
});
