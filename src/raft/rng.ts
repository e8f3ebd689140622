/**
 * A small seeded pseudo-random source (mulberry32). The core draws its
 * election timeouts from one injected instance, so a simulation seed fixes
 * every choice; production drivers seed it from crypto once per group.
 */
export interface Rng {
  /** Uniform integer in [0, n). */
  int (n: number): number
  /** Uniform float in [0, 1). */
  next (): number
}

export function seededRng (seed: number): Rng {
  let a = seed >>> 0
  const next = (): number => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return { next, int: (n: number) => Math.floor(next() * n) }
}
