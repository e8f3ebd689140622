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
import { proposalLoad } from './proposal-load.js'

async function row (name: string, batching: boolean, inflight: number, n: number, size: number): Promise<string> {
  const c = new TestCluster({ batching, tickMs: 10 })
  try {
    for (const id of [1, 2, 3]) c.openHost(id)
    await c.createGroup('g', [1, 2, 3])
    c.startAll()
    await c.until(() => c.leaderOf('g') !== undefined, 'a leader')
    const leader = c.leaderOf('g')!.host
    const r = await proposalLoad(leader, inflight, n, size)
    const st = leader.stats
    return `${name.padEnd(34)} ${String(Math.round(r.rate)).padStart(9)} ${r.p50.toFixed(2).padStart(9)} ${r.p99.toFixed(2).padStart(9)} ${(n / Math.max(1, st.transactions)).toFixed(1).padStart(12)}`
  } finally {
    await c.cleanup()
  }
}

/** CPU and network cost of idle groups: elected, then left alone. */
async function idle (groups: number, seconds: number): Promise<string> {
  const c = new TestCluster({ tickMs: 100 })
  try {
    for (const id of [1, 2, 3]) c.openHost(id)
    const names = Array.from({ length: groups }, (_, i) => `idle${i}`)
    for (const g of names) await c.createGroup(g, [1, 2, 3])
    c.startAll()
    await c.until(() => names.every((g) => c.leaderOf(g) !== undefined), 'leaders', 6000)
    // past the election timeout after which quiet groups beat slower (raft.ts, "Idle groups")
    await new Promise((r) => setTimeout(r, 1500))
    const b0 = c.net.batches
    const m0 = c.net.messages
    const cpu0 = process.cpuUsage()
    await new Promise((r) => setTimeout(r, seconds * 1000))
    const cpu = process.cpuUsage(cpu0)
    const cpuPct = (cpu.user + cpu.system) / 1e4 / seconds
    return `${String(groups).padStart(6)} ${(cpuPct).toFixed(1).padStart(12)} ${((c.net.batches - b0) / seconds).toFixed(0).padStart(14)} ${((c.net.messages - m0) / seconds).toFixed(0).padStart(16)}`
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
  console.log('\nidle groups on 3 hosts (100 ms ticks, heartbeat every 2 ticks, every 4 once idle), measured over 5 s')
  console.log(`${'groups'.padStart(6)} ${'CPU % (all)'.padStart(12)} ${'batches/s'.padStart(14)} ${'raft msgs/s'.padStart(16)}`)
  for (const g of [10, 300]) console.log(await idle(g, 5))
}
