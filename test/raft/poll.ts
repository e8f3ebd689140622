import { RaftError } from '../../src/raft/types.js'
import type { RaftHost } from '../../src/raft/host.js'

/** Polls until `pred` holds; gives up after `maxWaits` polls of 10 ms (a bound, not a timing assertion). */
export async function pollUntil (pred: () => boolean, what: string, maxWaits: number): Promise<void> {
  for (let i = 0; i < maxWaits; i++) {
    if (pred()) return
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error(`gave up waiting for ${what}`)
}

interface HasHost { host: RaftHost }

/** The host leading group `g` with the highest term among `hosts`, if any. */
export function leaderAmong<T extends HasHost> (hosts: Iterable<T>, g: string): T | undefined {
  let best: T | undefined
  for (const h of hosts) {
    if (!h.host.groupIds().includes(g)) continue
    const s = h.host.status(g)
    if (s.role === 'leader' && (!best || s.term > best.host.status(g).term)) best = h
  }
  return best
}

/**
 * Proposes through whichever host leads (`leader()`), retrying (bounded)
 * across leader changes on the RaftError codes in `retryOn`.
 */
export async function proposeRetrying (leader: () => HasHost | undefined, g: string, data: Uint8Array, attempts: number, retryOn: readonly string[]): Promise<unknown> {
  let last: unknown
  for (let i = 0; i < attempts; i++) {
    const l = leader()
    if (l) {
      try {
        return await l.host.propose(g, data)
      } catch (e) {
        if (!(e instanceof RaftError) || !retryOn.includes(e.code)) throw e
        last = e
      }
    }
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`no leader accepted the proposal in group ${g}: ${String(last)}`)
}
