/**
 * Transactions of the Tables API, one host (LocalTables) beside three
 * replicated hosts in one process (ReplicatedTables over RaftHosts on real
 * lmdb, in-process network; test/tables/repl-cluster.ts). The replicated
 * stores are opened with noSync and the hosts here do not fsync (the node's
 * `sync` option is not wired in this harness), so the figures show protocol
 * cost (ReadIndex rounds, proposals, RPC hops), not disk latency.
 *
 * Rows: latency of one transaction at a time (p50/p99 ms) and throughput
 * with 32 in flight on distinct keys (txn/s). Option: --tables-n N
 * (transactions per row, default 300).
 */
import { Store } from '../src/store/store.js'
import { metaKey } from '../src/tables/fragments.js'
import { LocalTables } from '../src/tables/local.js'
import type { Tables } from '../src/tables/types.js'
import { ReplCluster } from '../test/tables/repl-cluster.js'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { percentile } from './stats.js'

type Body = (tables: Tables, i: number) => Promise<unknown>

const F = 4

function u32 (n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}

/** read-modify-write of one row (one fragment) */
const increment: Body = async (tables, i) => await tables.txn(async (tx) => {
  const k = metaKey(1, `c${i % 64}`)
  const cur = await tx.get('meta', k)
  tx.put('meta', k, u32((cur?.readUInt32BE(0) ?? 0) + 1))
}, { maxAttempts: 1000 })

/** move one unit between rows of two fragments (two-phase commit when replicated) */
const transfer: Body = async (tables, i) => await tables.txn(async (tx) => {
  const a = metaKey(0, `a${i % 64}`)
  const b = metaKey(2, `a${i % 64}`)
  const va = (await tx.get('meta', a))?.readUInt32BE(0) ?? 1000
  const vb = (await tx.get('meta', b))?.readUInt32BE(0) ?? 1000
  tx.put('meta', a, u32(va - 1))
  tx.put('meta', b, u32(vb + 1))
}, { maxAttempts: 1000 })

/** read-only, one read */
const getOne: Body = async (tables, i) => await tables.txn(async (tx) => await tx.get('meta', metaKey(1, `c${i % 64}`)))

/** read-only, four reads in four fragments (validation round when replicated) */
const getFour: Body = async (tables, i) => await tables.txn(async (tx) => {
  for (let f = 0; f < F; f++) await tx.get('meta', metaKey(f, `c${i % 64}`))
})

async function measure (tables: Tables, body: Body, n: number): Promise<{ p50: number, p99: number, rate: number }> {
  const lat: number[] = []
  for (let i = 0; i < n; i++) {
    const t0 = performance.now()
    await body(tables, i)
    lat.push(performance.now() - t0)
  }
  const t0 = performance.now()
  let next = 0
  await Promise.all(Array.from({ length: 32 }, async (_, w) => {
    while (next < n) await body(tables, next++ * 32 + w)
  }))
  const rate = n / ((performance.now() - t0) / 1000)
  return { p50: percentile(lat, 0.5), p99: percentile(lat, 0.99), rate }
}

function line (name: string, r: { p50: number, p99: number, rate: number }): string {
  return `${name.padEnd(56)} ${r.p50.toFixed(2).padStart(9)} ${r.p99.toFixed(2).padStart(9)} ${String(Math.round(r.rate)).padStart(9)}`
}

export async function run (args: string[]): Promise<void> {
  const ni = args.indexOf('--tables-n')
  const n = ni >= 0 ? Number(args[ni + 1]) : 300
  const bodies: Array<[string, Body]> = [['increment (1 fragment)', increment], ['transfer (2 fragments)', transfer], ['read-only, 1 read', getOne], ['read-only, 4 reads in 4 fragments', getFour]]
  console.log(`${'transaction'.padEnd(56)} ${'p50 ms'.padStart(9)} ${'p99 ms'.padStart(9)} ${'txn/s@32'.padStart(9)}`)

  const dir = mkdtempSync(join(tmpdir(), 'walkenfs-bench-tables-'))
  const local = LocalTables.open(Store.open(dir), { fragments: F })
  try {
    for (const [name, body] of bodies) console.log(line(`local: ${name}`, await measure(local, body, n)))
  } finally {
    await local.close()
    rmSync(dir, { recursive: true, force: true })
  }

  const c = await ReplCluster.start({ hosts: 3, fragments: F })
  try {
    // Coordinator on the leader of fragment 1, and on a host that leads none of the touched fragments if there is one.
    const leader = c.leaderOf(1)!
    const other = [...c.hosts.values()].find((h) => h !== c.leaderOf(1) && h !== c.leaderOf(0) && h !== c.leaderOf(2)) ??
      [...c.hosts.values()].find((h) => h !== leader)!
    for (const [name, body] of bodies) {
      console.log(line(`repl, leader of f1: ${name}`, await measure(leader.tables, body, n)))
      console.log(line(`repl, ${other === c.leaderOf(0) || other === c.leaderOf(2) ? 'non-leader of f1' : 'leads none'}: ${name}`, await measure(other.tables, body, n)))
    }
  } finally {
    await c.cleanup()
  }
}
