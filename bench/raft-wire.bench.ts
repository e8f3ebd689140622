/**
 * Raft over the real peer wire versus the in-process transport, side by
 * side: one 3-voter group, three hosts in one process (one event loop, so
 * the wire's encryption and framing cost is paid three times on the same
 * cores), each on its own lmdb environment with fsync, batching on. The
 * wire rows run over encrypted loopback TCP (ChaCha20-Poly1305 frames).
 * A proposal's latency runs from propose() to its resolution on the leader
 * (committed by a quorum and applied there).
 *
 * A third row per load puts the two followers in their own processes
 * (test/raft/raft-node.ts), so each host has its own event loop, as in a
 * real cluster; the leader stays in the bench process.
 *
 * Options: --raft-n N (proposals per row, default 3000), --raft-size BYTES
 * (payload, default 128).
 */
import { TestCluster } from '../test/raft/cluster.js'
import { KvMachine } from '../test/raft/kv-machine.js'
import { WireCluster } from '../test/raft/wire-cluster.js'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { open } from 'lmdb'
import { RaftHost } from '../src/raft/host.js'
import { WireTransport } from '../src/raft/wire-transport.js'
import { Wire } from '../src/wire/wire.js'
import { CLUSTER_COOKIE } from '../test/raft/wire-cluster.js'
import { proposalLoad } from './proposal-load.js'

async function local (inflight: number, n: number, size: number): Promise<{ rate: number, p50: number, p99: number }> {
  const c = new TestCluster({ batching: true, tickMs: 10 })
  try {
    for (const id of [1, 2, 3]) c.openHost(id)
    await c.createGroup('g', [1, 2, 3])
    c.startAll()
    await c.until(() => c.leaderOf('g') !== undefined, 'a leader')
    return await proposalLoad(c.leaderOf('g')!.host, inflight, n, size)
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
    const dropped = (): number => {
      let d = 0
      for (const wh of c.hosts.values()) d += wh.transport.counters.droppedBusy + wh.transport.counters.droppedError + wh.transport.counters.droppedNoLink
      return d
    }
    const d0 = dropped()
    const r = await proposalLoad(c.leaderOf('g')!.host, inflight, n, size)
    return { ...r, drops: dropped() - d0 }
  } finally {
    await c.cleanup()
  }
}

/** Leader in this process, followers 2 and 3 in child processes, over encrypted loopback TCP. */
async function overWireProcesses (inflight: number, n: number, size: number): Promise<{ rate: number, p50: number, p99: number, drops: number }> {
  const base = mkdtempSync(join(tmpdir(), 'walkenfs-raftwire-bench-'))
  const wire = new Wire({ hostId: '1', cookie: CLUSTER_COOKIE, clusterName: 'raftwire', port: 0, listenHost: '127.0.0.1',
    heartbeatMs: 200, linkTimeoutMs: 1000, backoff: { baseMs: 20, maxMs: 200 }, log: () => {} })
  const children: ChildProcess[] = []
  let root: ReturnType<typeof open> | undefined
  let host: RaftHost | undefined
  try {
    await wire.start()
    root = open({ path: join(base, 'host1') })
    const transport = new WireTransport({ wire, id: 1 })
    host = new RaftHost({ id: 1, root, transport, tickMs: 10, electionTicks: 30, batching: true })
    await host.createGroup('g0', { voters: [1, 2, 3], learners: [] }, new KvMachine(root, 'g0'))
    host.start()
    const nodeJs = join(dirname(fileURLToPath(import.meta.url)), '../test/raft/raft-node.js')
    const ports: Array<[string, string]> = [['1', `127.0.0.1:${wire.port}`]]
    for (const id of [2, 3]) {
      const ch = spawn(process.execPath, [nodeJs, String(id), join(base, `host${id}`), '0', '1', CLUSTER_COOKIE.toString('hex')], { stdio: ['pipe', 'pipe', 'inherit'] })
      children.push(ch)
      const [line] = await once(ch.stdout!, 'data') as [Buffer]
      ports.push([String(id), `127.0.0.1:${line.toString().trim()}`])
      wire.addPeer(String(id), [ports[ports.length - 1]![1]])
    }
    const h = host
    const until = async (pred: () => boolean, what: string): Promise<void> => {
      for (let i = 0; i < 3000 && !pred(); i++) await new Promise((r) => setTimeout(r, 10))
      if (!pred()) throw new Error(`gave up waiting for ${what}`)
    }
    await until(() => wire.linkedPeers().length === 2, 'links to both followers')
    for (const id of ['2', '3']) await wire.call(id, 'ctl.peers', ports, { deadlineMs: 2000 })
    await until(() => h.status('g0').lead !== 0, 'a leader')
    const lead = h.status('g0').lead
    if (lead !== 1) {
      await wire.call(String(lead), 'ctl.transfer', ['g0', 1], { deadlineMs: 2000 })
      await until(() => h.status('g0').role === 'leader', 'the bench process to lead')
    }
    const c = transport.counters
    const d0 = c.droppedBusy + c.droppedError + c.droppedNoLink
    const r = await proposalLoad(h, inflight, n, size, 'g0')
    return { ...r, drops: c.droppedBusy + c.droppedError + c.droppedNoLink - d0 }
  } finally {
    for (const ch of children) { ch.stdin!.end(); if (ch.exitCode === null) await once(ch, 'exit') }
    await host?.close()
    await wire.close()
    await root?.close()
    rmSync(base, { recursive: true, force: true })
  }
}

export async function run (args: string[]): Promise<void> {
  const opt = (k: string, d: number): number => { const i = args.indexOf(k); return i >= 0 ? Number(args[i + 1]) : d }
  const n = opt('--raft-n', 3000)
  const size = opt('--raft-size', 128)
  console.log(`3-voter group, 3 hosts (in one process unless said otherwise), real lmdb with fsync, batching on, ${size}-byte values, ${n} proposals per row`)
  console.log('drops: raft batches dropped by the transport during the measurement (leader only for the process rows)')
  console.log(`${'transport'.padEnd(30)} ${'in flight'.padStart(9)} ${'props/s'.padStart(9)} ${'p50 ms'.padStart(9)} ${'p99 ms'.padStart(9)} ${'drops'.padStart(7)}`)
  for (const inflight of [1, 256]) {
    const rows = inflight === 1 ? Math.min(n, 500) : n
    const l = await local(inflight, rows, size)
    console.log(`${'in-process (LocalNetwork)'.padEnd(30)} ${String(inflight).padStart(9)} ${String(Math.round(l.rate)).padStart(9)} ${l.p50.toFixed(2).padStart(9)} ${l.p99.toFixed(2).padStart(9)} ${'-'.padStart(7)}`)
    const w = await overWire(inflight, rows, size)
    console.log(`${'wire (encrypted loopback TCP)'.padEnd(30)} ${String(inflight).padStart(9)} ${String(Math.round(w.rate)).padStart(9)} ${w.p50.toFixed(2).padStart(9)} ${w.p99.toFixed(2).padStart(9)} ${String(w.drops).padStart(7)}`)
    const p = await overWireProcesses(inflight, rows, size)
    console.log(`${'wire, followers in 2 processes'.padEnd(30)} ${String(inflight).padStart(9)} ${String(Math.round(p.rate)).padStart(9)} ${p.p50.toFixed(2).padStart(9)} ${p.p99.toFixed(2).padStart(9)} ${String(p.drops).padStart(7)}`)
  }
}
