/**
 * N in-process hosts for the replicated tables tests: each has a real Store
 * in a temp directory, a RaftHost on the store's lmdb root talking over a
 * LocalNetwork, a FragmentMachine per fragment `fs/0..F-1` (all hosts are
 * voters of every group), a FragmentRouter whose RouterEnv sends RPCs over a
 * simulated network that can be partitioned, and ReplicatedTables.
 * Ticks are real (10 ms), as in test/raft/cluster.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pack, unpack } from 'msgpackr'
import { fragmentId } from '../../src/cluster/placement.js'
import { RaftHost } from '../../src/raft/host.js'
import { LocalNetwork } from '../../src/raft/transport.js'
import { Store } from '../../src/store/store.js'
import { FragmentMachine } from '../../src/tables/fragment-machine.js'
import { ChangeMarks } from '../../src/tables/change-marks.js'
import { ChangeFeeds } from '../../src/tables/change-feed.js'
import { FragmentRouter, type RouterEnv } from '../../src/tables/router.js'
import { ReplicatedTables, type ReplicatedOptions } from '../../src/tables/replicated.js'
import type { Tables, Tx, TxnOptions, TableName } from '../../src/tables/types.js'
import { pollUntil } from '../raft/poll.js'

export interface ReplHost {
  node: number
  name: string
  store: Store
  raft: RaftHost
  machines: Map<number, FragmentMachine>
  router: FragmentRouter
  tables: ReplicatedTables
  handlers: Map<string, (payload: unknown, from: string) => Promise<unknown>>
  /** the change feeds of this host's replicas (walkenfs watch) */
  feeds: ChangeFeeds
  /** the change marks of this host's replicas (router.recheck) */
  marks: ChangeMarks
  up: boolean
}

export interface ReplClusterOptions {
  hosts?: number
  /** hosts h1..hR hold every fragment (default: all hosts); the others hold none */
  replicas?: number
  fragments?: number
  quorumWaitMs?: number
  tables?: ReplicatedOptions
  /** per-host table options (e.g. a test hook on one coordinator) */
  tablesFor?: (name: string) => ReplicatedOptions
}

export class ReplCluster {
  readonly net = new LocalNetwork()
  readonly hosts = new Map<string, ReplHost>()
  readonly base = mkdtempSync(join(tmpdir(), 'walkenfs-repl-'))
  readonly fragments: number
  private readonly cut = new Set<string>()
  rpcCalls = 0

  constructor (readonly opts: ReplClusterOptions = {}) {
    this.fragments = opts.fragments ?? 4
  }

  static async start (opts: ReplClusterOptions = {}): Promise<ReplCluster> {
    const c = new ReplCluster(opts)
    const n = opts.hosts ?? 3
    const voters = Array.from({ length: opts.replicas ?? n }, (_, i) => i + 1)
    for (let node = 1; node <= n; node++) {
      const h = c.openHost(node)
      if (!voters.includes(node)) continue
      for (let f = 0; f < c.fragments; f++) {
        const sm = new FragmentMachine(h.store, f, c.fragments, h.feeds.of(f), h.marks)
        h.machines.set(f, sm)
        await h.raft.createGroup(fragmentId('fs', f), { voters, learners: [] }, sm)
      }
    }
    for (const h of c.hosts.values()) h.raft.start()
    await c.waitLeaders()
    return c
  }

  private openHost (node: number): ReplHost {
    const name = `h${node}`
    const store = Store.open(join(this.base, name), { autoFlushMs: 0 })
    const raft = new RaftHost({ id: node, root: store.lmdbRoot, transport: this.net.endpoint(node), tickMs: 10, electionTicks: 30 })
    const handlers = new Map<string, (payload: unknown, from: string) => Promise<unknown>>()
    const env: RouterEnv = {
      self: name,
      raft,
      hasGroup: (g) => raft.groupIds().includes(g),
      hostOfNode: (n) => n > 0 ? `h${n}` : undefined,
      replicas: () => Array.from({ length: this.opts.replicas ?? this.opts.hosts ?? 3 }, (_, i) => `h${i + 1}`),
      leaderHint: () => null,
      call: async (host, method, payload, deadlineMs) => await this.call(name, host, method, payload, deadlineMs),
      handle: (method, fn) => { handlers.set(method, fn) },
      quorumWaitMs: () => this.opts.quorumWaitMs ?? 3000
    }
    const marks = new ChangeMarks()
    const router = new FragmentRouter(env, store, {}, marks)
    const tables = new ReplicatedTables(router, this.fragments, { ...this.opts.tables, ...this.opts.tablesFor?.(name) })
    const h: ReplHost = { node, name, store, raft, machines: new Map(), router, tables, handlers, feeds: new ChangeFeeds(), marks, up: true }
    this.hosts.set(name, h)
    return h
  }

  /** An RPC over the simulated network: msgpack both ways, lost when the link is cut. */
  private async call (from: string, to: string, method: string, payload: unknown, deadlineMs: number): Promise<unknown> {
    this.rpcCalls++
    const target = this.hosts.get(to)
    const lost = (): boolean => this.cut.has(`${from}>${to}`) || !target?.up
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(Object.assign(new Error(`LINK: no answer from ${to} within ${deadlineMs} ms`), { code: 'ETIMEDOUT' })), deadlineMs)
      if (lost()) return // the request vanishes; the caller's deadline fires
      const bytes = pack(payload)
      setImmediate(() => {
        const fn = target!.handlers.get(method)
        if (!fn || lost()) return
        fn(unpack(bytes), from).then((res) => {
          const out = pack(res)
          setImmediate(() => {
            if (lost()) return
            clearTimeout(timer)
            resolve(unpack(out))
          })
        }, (e: unknown) => {
          clearTimeout(timer)
          reject(e as Error)
        })
      })
    })
  }

  host (name: string): ReplHost {
    const h = this.hosts.get(name)
    if (!h) throw new Error(`no host ${name}`)
    return h
  }

  /** Cuts (or restores) every link, Raft and RPC, between `name` and the others. */
  isolate (name: string, isolated: boolean): void {
    const h = this.host(name)
    for (const o of this.hosts.values()) {
      if (o === h) continue
      this.net.setLink(h.node, o.node, !isolated)
      for (const k of [`${h.name}>${o.name}`, `${o.name}>${h.name}`]) {
        if (isolated) this.cut.add(k)
        else this.cut.delete(k)
      }
    }
  }

  /** Stops a host for good (its stores stay in the temp dir until cleanup). */
  async stopHost (name: string): Promise<void> {
    const h = this.host(name)
    if (!h.up) return
    h.up = false
    this.isolate(name, true)
    h.router.close()
    await h.raft.close()
    await h.store.close()
  }

  leaderOf (fragment: number): ReplHost | undefined {
    const g = fragmentId('fs', fragment)
    let best: ReplHost | undefined
    for (const h of this.hosts.values()) {
      if (!h.up || !h.raft.groupIds().includes(g)) continue
      const s = h.raft.status(g)
      if (s.role === 'leader' && (!best || s.term > best.raft.status(g).term)) best = h
    }
    return best
  }

  async waitLeaders (): Promise<void> {
    await pollUntil(() => Array.from({ length: this.fragments }, (_, f) => this.leaderOf(f)).every((l) => l !== undefined), 'a leader in every fragment', 2000)
  }

  /** A Tables that sends each transaction to the next live host in turn. */
  roundRobin (): Tables {
    let i = 0
    const live = (): ReplHost[] => [...this.hosts.values()].filter((h) => h.up)
    const next = (): ReplicatedTables => { const l = live(); return l[i++ % l.length].tables }
    return {
      fragments: this.fragments,
      txn: async <T>(body: (tx: Tx) => Promise<T>, opts?: TxnOptions) => await next().txn(body, opts),
      flush: async () => {},
      countRows: async (table: TableName, fragment: number) => await next().countRows(table, fragment),
      close: async () => {}
    }
  }

  async cleanup (): Promise<void> {
    for (const h of this.hosts.values()) {
      if (!h.up) continue
      h.up = false
      await h.tables.close()
      await h.raft.close()
      await h.store.close()
    }
    rmSync(this.base, { recursive: true, force: true })
  }
}
