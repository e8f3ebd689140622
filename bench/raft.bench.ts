/**
 * Raft throughput and commit latency: one 3-voter group, three hosts in one
 * process, each on its own lmdb environment (real fsyncs), talking over the
 * in-process transport. A proposal's latency runs from propose() to its
 * resolution on the leader (committed by a quorum and applied).
 *
 * Rows: one proposal at a time; 256 in flight with driver batching off (one
 * core proposal per call, still one flush per cycle); 256 in flight with
 * batching on (one core proposal per cycle). Options: --raft-n N (proposals
 * per row, default 3000), --raft-size BYTES (payload, default 128).
 */
import { TestCluster } from '../test/raft/cluster.js'
import { KvMachine } from '../test/raft/kv-machine.js'

function pct (xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]
}

async function row (name: string, batching: boolean, inflight: number, n: number, size: number): Promise<string> {
  const c = new TestCluster({ batching, tickMs: 10 })
  try {
    for (const id of [1, 2, 3]) c.openHost(id)
    await c.createGroup('g', [1, 2, 3])
    c.startAll()
    await c.until(() => c.leaderOf('g') !== undefined, 'a leader')
    const leader = c.leaderOf('g')!.host
    // Let the leader commit its first entry before measuring.
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
    const st = leader.stats
    return `${name.padEnd(34)} ${String(Math.round(n / secs)).padStart(9)} ${pct(lat, 0.5).toFixed(2).padStart(9)} ${pct(lat, 0.99).toFixed(2).padStart(9)} ${(n / Math.max(1, st.transactions)).toFixed(1).padStart(12)}`
  } finally {
    await c.cleanup()
  }
}

export async function run (args: string[]): Promise<void> {
  const opt = (k: string, d: number): number => { const i = args.indexOf(k); return i >= 0 ? Number(args[i + 1]) : d }
  const n = opt('--raft-n', 3000)
  const size = opt('--raft-size', 128)
  console.log(`3-voter group, 3 hosts in one process, real lmdb with fsync, ${size}-byte values, ${n} proposals per row`)
  console.log(`${'mode'.padEnd(34)} ${'props/s'.padStart(9)} ${'p50 ms'.padStart(9)} ${'p99 ms'.padStart(9)} ${'props/leader tx'.padStart(12)}`)
  console.log(await row('1 in flight (no batching)', false, 1, Math.min(n, 500), size))
  console.log(await row('256 in flight, batching off', false, 256, n, size))
  console.log(await row('256 in flight, batching on', true, 256, n, size))
}
