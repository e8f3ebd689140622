/**
 * The cluster nemesis's choice of fault, from a seed: which kinds there
 * are and how often each is picked. Pure (cluster-torture.ts acts).
 *
 * Kinds: `split` (a majority and a minority), `isolate` (one host),
 * `isolate-leader` (the host leading the most fragments), `one-way` (one
 * host cannot send, or cannot hear), `flap` (short cuts on and off),
 * `kill` (kill -9 and restart), `pause` (SIGSTOP/SIGCONT longer than the
 * election timeout), `full-disk` (a host's data directory full, then
 * freed), `move-address` (kill -9 and restart on another address).
 */
import type { Rng } from '../../src/raft/rng.js'

export const FAULT_KINDS = ['split', 'isolate', 'isolate-leader', 'one-way', 'flap', 'kill', 'pause', 'full-disk', 'move-address'] as const
export type FaultKind = typeof FAULT_KINDS[number]

/** Relative weights; a kind left out is never picked. */
export type NemesisMix = Partial<Record<FaultKind, number>>

/**
 * The default mix: every kind. A full data directory gives writers on that
 * host ENOSPC at once and the harness checks it (cluster-torture.ts
 * fullDisk); ALL_FAULTS (`--all-faults`) is the same mix, kept for the
 * command line.
 */
export const MIXED: NemesisMix = {
  split: 12, isolate: 10, 'isolate-leader': 12, 'one-way': 10, flap: 8, kill: 14, pause: 14, 'full-disk': 10, 'move-address': 6
}

export const ALL_FAULTS: NemesisMix = { ...MIXED }

/** Only network faults, leaders first: what a minority that accepts writes trips over. */
export const PARTITIONS: NemesisMix = { split: 10, isolate: 5, 'isolate-leader': 20, 'one-way': 5, flap: 5 }

/**
 * A seeded sequence of faults: first every kind of the mix once, in an
 * order drawn from rng (so that even a short run injects each kind), then
 * kinds drawn by weight.
 */
export function faultSequence (rng: Rng, mix: NemesisMix = MIXED): () => FaultKind {
  const first = shuffled(rng, FAULT_KINDS.filter((k) => (mix[k] ?? 0) > 0))
  return () => first.shift() ?? pickFault(rng, mix)
}

export function pickFault (rng: Rng, mix: NemesisMix = MIXED): FaultKind {
  const kinds = FAULT_KINDS.filter((k) => (mix[k] ?? 0) > 0)
  if (kinds.length === 0) throw new Error('the nemesis mix has no fault with a weight above 0')
  const total = kinds.reduce((s, k) => s + mix[k]!, 0)
  let x = rng.int(total)
  for (const k of kinds) {
    x -= mix[k]!
    if (x < 0) return k
  }
  return kinds[kinds.length - 1]!
}

/** The hosts in an order drawn from rng (Fisher–Yates). */
export function shuffled<T> (rng: Rng, xs: readonly T[]): T[] {
  const out = [...xs]
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1)
    const x = out[i]!
    out[i] = out[j]!
    out[j] = x
  }
  return out
}
