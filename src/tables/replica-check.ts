/**
 * `walkenfs check --replicas`: compares the content of every replica of
 * every fragment.
 *
 * A replica's digest is a SHA-256 over every row of its fragment's key
 * range in the store (user rows and transaction bookkeeping alike: all of
 * it is replicated state), taken together with the replica's applied index
 * in one synchronous step, so digest and index describe the same state.
 * Replicas can only be compared at the same applied index; under load they
 * rarely are, so the check asks again (a few times, briefly apart) until
 * every replica reports the same index, and reports the fragment as `busy`
 * (not compared, not a failure) when that never happens.
 *
 * Promise: `mismatch` is reported only for replicas that reported the same
 * applied index and different content — a real divergence.
 */
import { createHash } from 'node:crypto'
import type { Store } from '../store/store.js'
import { fragmentBounds } from './fragment-machine.js'

export interface Digest { applied: number, rows: number, bytes: number, sha256: string }

export interface DigestEnv {
  readonly self: string
  replicas (g: string): string[]
  call (host: string, method: string, payload: unknown, deadlineMs: number): Promise<unknown>
  handle (method: string, fn: (payload: unknown, from: string) => Promise<unknown>): void
}

/** Where a group's replica lives on this host: its fragment number and applied index. */
export interface LocalReplicas {
  fragmentOf (g: string): number | null
  /**
   * Applied index of the local replica of g, or null when this host holds
   * none. Read it from lmdb (the Raft storage's applied row), not from the
   * core: lmdb has it in the same transaction as the rows, so one
   * synchronous read of both sees one state.
   */
  applied (g: string): number | null
}

export const DIGEST_METHOD = 'tables.digest'

/** Digest of fragment `f`'s key range ([u16 f] … [u16 f+1]) in the store. */
export function fragmentDigest (store: Store, fragment: number, applied: number): Digest {
  const [start, end] = fragmentBounds(fragment)
  const h = createHash('sha256')
  let rows = 0
  let bytes = 0
  const len = Buffer.alloc(4)
  for (const { key, value } of store.rowsDb.getRange({ start, end })) {
    const k = key as Buffer
    const v = value as Buffer
    len.writeUInt32BE(k.length); h.update(len); h.update(k)
    len.writeUInt32BE(v.length); h.update(len); h.update(v)
    rows++
    bytes += k.length + v.length
  }
  return { applied, rows, bytes, sha256: h.digest('hex') }
}

/** Serves digests of this host's replicas to checking hosts. */
export function serveDigests (env: DigestEnv, store: Store, local: LocalReplicas): void {
  env.handle(DIGEST_METHOD, async (payload) => {
    const g = (payload as { group?: unknown })?.group
    if (typeof g !== 'string') throw new Error('digest request without a group')
    return localDigest(store, local, g)
  })
}

function localDigest (store: Store, local: LocalReplicas, g: string): Digest | null {
  const f = local.fragmentOf(g)
  const applied = local.applied(g)
  if (f === null || applied === null) return null
  return fragmentDigest(store, f, applied)
}

export interface GroupCheck {
  group: string
  verdict: 'same' | 'mismatch' | 'busy' | 'unreachable'
  replicas: Array<{ host: string, digest: Digest | null, error?: string }>
}

export interface ReplicaReport {
  clean: boolean
  groups: GroupCheck[]
  counts: Record<GroupCheck['verdict'], number>
}

export async function checkReplicas (env: DigestEnv, store: Store, local: LocalReplicas, groups: string[],
  opts: { tries?: number, pauseMs?: number, deadlineMs?: number } = {}): Promise<ReplicaReport> {
  const tries = opts.tries ?? 20
  const pauseMs = opts.pauseMs ?? 250
  const deadlineMs = opts.deadlineMs ?? 5000
  const out: GroupCheck[] = []
  for (const g of groups) {
    let last: GroupCheck | null = null
    for (let i = 0; i < tries; i++) {
      const hosts = env.replicas(g)
      const replicas = await Promise.all(hosts.map(async (host) => {
        try {
          const d = host === env.self ? localDigest(store, local, g) : await env.call(host, DIGEST_METHOD, { group: g }, deadlineMs) as Digest | null
          return d === null ? { host, digest: null, error: 'holds no replica (yet)' } : { host, digest: d }
        } catch (e) {
          return { host, digest: null, error: (e as Error).message }
        }
      }))
      const ok = replicas.filter((r) => r.digest !== null)
      let verdict: GroupCheck['verdict']
      if (ok.length < replicas.length) verdict = 'unreachable'
      else if (new Set(ok.map((r) => r.digest!.applied)).size > 1) verdict = 'busy'
      else verdict = new Set(ok.map((r) => r.digest!.sha256)).size === 1 ? 'same' : 'mismatch'
      last = { group: g, verdict, replicas }
      if (verdict === 'same' || verdict === 'mismatch') break
      await new Promise((r) => setTimeout(r, pauseMs))
    }
    out.push(last!)
  }
  const counts = { same: 0, mismatch: 0, busy: 0, unreachable: 0 }
  for (const c of out) counts[c.verdict]++
  return { clean: counts.mismatch === 0 && counts.busy === 0 && counts.unreachable === 0, groups: out, counts }
}
