/** Small seeded PRNG (xorshift32) for the fuzz tests: a failing seed is a one-line repro. `rng(seed)(n)` is in 0..n-1. */
export function rng (seed: number): (n: number) => number {
  let x = seed >>> 0 || 1
  return (n) => {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    return x % n
  }
}
