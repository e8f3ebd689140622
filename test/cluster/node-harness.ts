/**
 * Cluster nodes for tests: real Wire on 127.0.0.1 (distinct ports, one
 * cookie), real Stores in temp directories, static peers, short timers, and
 * a small state machine standing in for the fragment machine. A node can be
 * closed and started again on the same data directory and port.
 */
import type { Database, RootDatabase } from 'lmdb'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ClusterNode, type ClusterNodeOptions } from '../../src/cluster/node.js'
import { findGroup, type Catalog } from '../../src/cluster/catalog.js'
import type { GroupStateMachine } from '../../src/raft/host.js'
import type { Entry } from '../../src/raft/types.js'
import { Store } from '../../src/store/store.js'
import { pollUntil } from '../raft/poll.js'

export const COOKIE = Buffer.from('cluster-node-test-cookie-0123456789abcdef')

/** Counts applied entries per group in lmdb db `testsm` (a stand-in for the fragment machine). */
export class CountMachine implements GroupStateMachine {
  private readonly db: Database
  constructor (root: RootDatabase, readonly group: string) {
    this.db = root.openDB({ name: 'testsm', encoding: 'msgpack', keyEncoding: 'ordered-binary' })
  }

  apply (_e: Entry): unknown {
    const n = this.count() + 1
    this.db.put(this.group, n)
    return n
  }

  restore (data: Uint8Array): void {
    if (data.length === 0) this.db.remove(this.group)
    else this.db.put(this.group, Number(Buffer.from(data).toString()))
  }

  snapshot (): Uint8Array { return Buffer.from(String(this.count())) }
  drop (): void { this.db.remove(this.group) }
  count (): number { return (this.db.get(this.group) as number | undefined) ?? 0 }
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address() as net.AddressInfo
      s.close(() => resolve(a.port))
    })
  })
}

export interface TestNode { id: string, dir: string, port: number, node: ClusterNode, store: Store, logs: string[] }

export class NodeCluster {
  readonly base = mkdtempSync(join(tmpdir(), 'walkenfs-node-'))
  readonly nodes = new Map<string, TestNode>()
  readonly ports = new Map<string, number>()

  constructor (readonly defaults: Partial<ClusterNodeOptions> = {}) {}

  async port (id: string): Promise<number> {
    let p = this.ports.get(id)
    if (p === undefined) { p = await freePort(); this.ports.set(id, p) }
    return p
  }

  /** The first id inits a cluster, the others join it through it; resolves once every one is ready. Returns the peers= list naming the first. */
  async form (ids: string[]): Promise<string[]> {
    await this.reserve(ids)
    await this.start(ids[0]!, { mode: 'init' })
    await this.get(ids[0]!).ready()
    const peers = await this.peersOf([ids[0]!])
    for (const id of ids.slice(1)) await this.start(id, { peers })
    await Promise.all(ids.map(async (id) => await this.get(id).ready()))
    return peers
  }

  /** Reserves ports for ids, so that peers= lists can name hosts not started yet. */
  async reserve (ids: string[]): Promise<void> { for (const id of ids) await this.port(id) }

  async peersOf (ids: string[]): Promise<string[]> {
    const out: string[] = []
    for (const id of ids) out.push(`127.0.0.1:${await this.port(id)}`)
    return out
  }

  async start (id: string, o: Partial<ClusterNodeOptions> = {}): Promise<TestNode> {
    const dir = join(this.base, id)
    const store = Store.open(dir, { autoFlushMs: 0 })
    const logs: string[] = []
    const port = await this.port(id)
    const node = new ClusterNode({
      store,
      hostId: id,
      defaultHostId: id,
      clusterName: 'nodetest',
      cookie: COOKIE,
      machineFor: (g) => new CountMachine(store.lmdbRoot, g),
      listenHost: '127.0.0.1',
      port,
      encrypt: false,
      heartbeatMs: 100,
      linkTimeoutMs: 300,
      connectTimeoutMs: 200,
      suspectAfterMs: 400,
      downAfterMs: 800,
      tickMs: 20,
      electionTicks: 10,
      heartbeatTicks: 2,
      helloMs: 100,
      actuatorMs: 150,
      discoverMs: 300,
      replicaGraceMs: 3000,
      rpcDeadlineMs: 2000,
      settings: { fragments: 4, copies: 3 },
      log: (l) => { logs.push(`${Date.now()} ${l}`); if (process.env.NODE_TEST_LOG) process.stderr.write(`[${id}] ${l}\n`) },
      ...this.defaults,
      ...o
    })
    const tn: TestNode = { id, dir, port, node, store, logs }
    this.nodes.set(id, tn)
    await node.start()
    return tn
  }

  /** Closes a node as a stop would (wire, raft, store); its files stay. */
  async stop (id: string): Promise<void> {
    const tn = this.nodes.get(id)
    if (!tn) return
    this.nodes.delete(id)
    await tn.node.close()
    await tn.store.close()
  }

  get (id: string): ClusterNode { return this.nodes.get(id)!.node }

  async until (pred: () => boolean, what: string, maxWaits = 3000): Promise<void> {
    try {
      await pollUntil(pred, what, maxWaits)
    } catch (e) {
      for (const tn of this.nodes.values()) process.stderr.write(`--- ${tn.id} ---\n${tn.logs.slice(-15).join('\n')}\n${JSON.stringify(tn.node.status().groups.map((g) => [g.id, g.replicas.map((r) => r.host + ':' + r.role[0]).join(','), g.leader]))}\n`)
      throw e
    }
  }

  /** Every fs fragment in `c` has `n` voters, no learner, none on `not`. */
  static fsSettled (c: Readonly<Catalog>, n: number, not: string[] = []): boolean {
    const fs = c.tables.find((t) => t.name === 'fs')
    if (!fs) return false
    for (let i = 0; i < fs.fragments; i++) {
      const g = findGroup(c, `fs/${i}`)
      if (!g || g.replicas.length !== n || g.replicas.some((r) => r.role !== 'voter' || not.includes(r.host))) return false
      if (g.leader === null) return false
    }
    return true
  }

  async cleanup (): Promise<void> {
    for (const id of [...this.nodes.keys()]) await this.stop(id)
    rmSync(this.base, { recursive: true, force: true })
  }
}
