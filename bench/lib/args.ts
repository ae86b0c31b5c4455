// Command-line number parsing shared by the benchmarks, so every bench rejects a bad
// setting with the same message naming the flag.

/** Parses `--name`'s value as an integer no smaller than `min` (default 1). */
export function integerOption(name: string, value: string, min = 1): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    throw new Error(
      min === 1 ? `--${name} must be a positive integer` : `--${name} must be an integer ≥ ${min}`,
    );
  }
  return n;
}
