/**
 * Raft over the real peer wire versus the in-process transport, side by
 * side: one 3-voter group, three hosts in one process (one event loop, so
 * the wire's encryption and framing cost is paid three times on the same
 * cores), each on its own lmdb environment with fsync, batching on. The
 * wire rows run over encrypted loopback TCP (ChaCha20-Poly1305 frames).
 * A proposal's latency runs from propose() to its resolution on the leader
 * (committed by a quorum and applied there).
 *
 * Options: --raft-n N (proposals per row, default 3000), --raft-size BYTES
 * (payload, default 128).
 */
import { TestCluster } from '../test/raft/cluster.js'
import { KvMachine } from '../test/raft/kv-machine.js'
import { WireCluster } from '../test/raft/wire-cluster.js'
import type { RaftHost } from '../src/raft/host.js'

function pct (xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]
}

async function measure (leader: RaftHost, inflight: number, n: number, size: number): Promise<{ rate: number, p50: number, p99: number }> {
  await leader.propose('g', KvMachine.encode('warm', 'up'))
  const value = 'x'.repeat(size)
  const lat: number[] = []
  let next = 0
  const t0 = process.hrtime.bigint()
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++
      const s = process.hrtime.bigint()
      await leader.propose('g', KvMachine.encode(`k${i % 1000}`, value))
      lat.push(Number(process.hrtime.bigint() - s) / 1e6)
    }
  }
  await Promise.all(Array.from({ length: inflight }, worker))
  const secs = Number(process.hrtime.bigint() - t0) / 1e9
  return { rate: n / secs, p50: pct(lat, 0.5), p99: pct(lat, 0.99) }
}

async function local (inflight: number, n: number, size: number): Promise<{ rate: number, p50: number, p99: number }> {
  const c = new TestCluster({ batching: true, tickMs: 10 })
  try {
    for (const id of [1, 2, 3]) c.openHost(id)
    await c.createGroup('g', [1, 2, 3])
    c.startAll()
    await c.until(() => c.leaderOf('g') !== undefined, 'a leader')
    return await measure(c.leaderOf('g')!.host, inflight, n, size)
  } finally {
    await c.cleanup()
  }
}

async function overWire (inflight: number, n: number, size: number): Promise<{ rate: number, p50: number, p99: number, drops: number }> {
  const c = new WireCluster({ host: { batching: true, tickMs: 10 } })
  try {
    for (const id of [1, 2, 3]) await c.startHost(id)
    await c.createGroup('g', [1, 2, 3])
    c.startAll()
    await c.until(() => c.leaderOf('g') !== undefined, 'a leader')
    const r = await measure(c.leaderOf('g')!.host, inflight, n, size)
    let drops = 0
    for (const wh of c.hosts.values()) drops += wh.transport.counters.droppedBusy + wh.transport.counters.droppedError + wh.transport.counters.droppedNoLink
    return { ...r, drops }
  } finally {
    await c.cleanup()
  }
}

export async function run (args: string[]): Promise<void> {
  const opt = (k: string, d: number): number => { const i = args.indexOf(k); return i >= 0 ? Number(args[i + 1]) : d }
  const n = opt('--raft-n', 3000)
  const size = opt('--raft-size', 128)
  console.log(`3-voter group, 3 hosts in one process, real lmdb with fsync, batching on, ${size}-byte values, ${n} proposals per row`)
  console.log(`${'transport'.padEnd(30)} ${'in flight'.padStart(9)} ${'props/s'.padStart(9)} ${'p50 ms'.padStart(9)} ${'p99 ms'.padStart(9)} ${'drops'.padStart(7)}`)
  for (const inflight of [1, 256]) {
    const rows = inflight === 1 ? Math.min(n, 500) : n
    const l = await local(inflight, rows, size)
    console.log(`${'in-process (LocalNetwork)'.padEnd(30)} ${String(inflight).padStart(9)} ${String(Math.round(l.rate)).padStart(9)} ${l.p50.toFixed(2).padStart(9)} ${l.p99.toFixed(2).padStart(9)} ${'-'.padStart(7)}`)
    const w = await overWire(inflight, rows, size)
    console.log(`${'wire (encrypted loopback TCP)'.padEnd(30)} ${String(inflight).padStart(9)} ${String(Math.round(w.rate)).padStart(9)} ${w.p50.toFixed(2).padStart(9)} ${w.p99.toFixed(2).padStart(9)} ${String(w.drops).padStart(7)}`)
  }
}
