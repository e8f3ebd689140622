/**
 * The placement actuator: what the schema group's leader does every
 * `actuatorMs` to make the cluster look like the placement planner wants.
 *
 * Owns: one round = finish a pending bootstrap (`bootstrap`, `createTable
 * fs` once the expected hosts are up or TABLE_WAIT_MS passed), collect
 * every live host's report of the groups it leads, record in the catalog
 * what the reports show (committed memberships, leaders), build
 * the planner input (catalog + failure detector + reports), run `plan()`,
 * carry out at most `maxConcurrentMoves` moves (never two for one group),
 * and record `finishRetire` for retiring hosts left without replicas.
 * Creates take no slot of `maxConcurrentMoves`: they only record a group's
 * founders, every one a voter, who found it empty when they see the record.
 *
 * Promises:
 * - the catalog only records configurations a group leader reports as
 *   committed, or that a membership step returned once applied; stale ones
 *   lose (recordMembership's configIndex rule);
 * - `create` is recorded in the catalog first (config index 1, its
 *   founders as voters); each founder founds its replica, empty, when it
 *   sees that record, so a group is never founded twice on one host;
 * - an `addLearner` opens the empty replica on the target before the
 *   leader adds it, so the leader's first messages find it;
 * - failures are logged at most once a minute per group and retried by a
 *   later round (the planner recomputes everything from the reports);
 * - a settled cluster (every host up, every group led and not changing,
 *   nothing planned, deferred, catching up or running, and neither the
 *   catalog nor any host's up/down state changed since) is looked at
 *   every SETTLED_ROUND_MS instead of every round: each round
 *   asks every host for a report of every group it leads, which was most
 *   of an idle catalog leader's cost. Any change brings the next round
 *   back at once.
 */
import { SCHEMA_GROUP, plan, type Move, type Progress } from './placement.js'
import { findGroup, findHost, toPlacementInput, type ApplyResult, type Catalog, type CatalogCommand, type CatalogReplica, type Liveness } from './catalog.js'
import type { ResolvedOptions } from './node-options.js'
import type { Identity } from './identity.js'
import type { RaftHost } from '../raft/host.js'
import type { ConfChange } from '../raft/types.js'

/** What a host reports about one group it leads. */
export interface GroupReport {
  group: string
  leader: string
  term: number
  commit: number
  configIndex: number
  voters: number[]
  learners: number[]
  /** Learner node ids whose log reached the commit index. */
  caughtUp: number[]
}

/** The node as the actuator sees it. */
export interface ActuatorNode {
  readonly o: ResolvedOptions
  readonly self: string
  readonly raft: RaftHost
  readonly identity: Identity
  readonly wire: { addresses: string[] }
  catalog (): Readonly<Catalog>
  isSchemaLeader (): boolean
  proposeCatalog (cmd: CatalogCommand): Promise<ApplyResult>
  call (host: string, method: string, payload: unknown, deadlineMs: number): Promise<unknown>
  hostOfNode (node: number): string | undefined
  nodeOfHost (host: string): number | undefined
  isUp (host: string): boolean
  report (): GroupReport[]
  logOnce (key: string, line: string): void
}

interface ChangeResult { index: number, configIndex: number, voters: number[], learners: number[] }

/** How often a settled cluster is looked at (a host's death or a join is seen at once; replace_after may start up to this late). */
export const SETTLED_ROUND_MS = 5000
/** How long a new cluster's catalog leader waits for its expected hosts (expect=N) before it creates the fs table anyway. */
export const TABLE_WAIT_MS = 15_000

export class Actuator {
  private running = false
  /** moves running, by group; creates take no slot of maxConcurrentMoves */
  private readonly inFlight = new Map<string, { run: Promise<void>, create: boolean }>()
  private readonly downSince = new Map<string, number>()
  private progress: Progress | null = null
  /** Leaders by group from the last round's reports. */
  private leaders = new Map<string, string>()
  /** What the last settled round saw (catalog position and host states), and until when nothing needs a round. */
  private settled: { seen: string, until: number } | null = null
  /** when this host, leading a catalog without the fs table, first wanted to create it */
  private tableWantedAt: number | undefined

  constructor (private readonly node: ActuatorNode) {}

  lastProgress (): Progress | null { return this.progress }

  /** Resolves when no move is running (shutdown). */
  async idle (): Promise<void> {
    await Promise.allSettled([...this.inFlight.values()].map((f) => f.run))
  }

  /** One round; a round still running makes this a no-op. */
  round (): void {
    if (this.running) return
    if (this.settled !== null && Date.now() < this.settled.until && this.settled.seen === this.seen()) return
    this.settled = null
    this.running = true
    void this.roundAsync().catch((e: Error) => this.node.logOnce('actuator', `walkenfs: placement round failed: ${e.message}`))
      .finally(() => { this.running = false })
  }

  /** The catalog's position and every host's up/down state: what a settled cluster must keep for a round to be skipped. */
  private seen (): string {
    const n = this.node
    let out = `${n.raft.hasGroup(SCHEMA_GROUP) ? n.raft.appliedIndex(SCHEMA_GROUP) : -1}`
    for (const h of n.catalog().hosts) out += `|${h.id}:${n.isUp(h.id) ? 1 : 0}`
    return out
  }

  private async roundAsync (): Promise<void> {
    const n = this.node
    const o = n.o
    let c = n.catalog()
    if (c.clusterId === null) {
      // This host bootstrapped (its identity holds the id) and leads the new schema group: write the catalog's first command.
      if (n.identity.clusterId !== null) {
        await this.propose({ op: 'bootstrap', clusterId: n.identity.clusterId, name: o.clusterName, host: { id: n.self, addresses: n.wire.addresses }, at: Date.now(), settings: o.settings }, 'bootstrap')
      }
      return
    }
    if (!c.tables.some((t) => t.name === 'fs')) {
      // The hosts that formed the cluster with this one (expect=N) join within seconds: with them up, every fragment
      // is founded on all its homes at once; without, each would start on this host alone and be copied later.
      this.tableWantedAt ??= Date.now()
      const up = c.hosts.filter((h) => h.state === 'up' && n.isUp(h.id)).length
      if (up < o.expect && Date.now() - this.tableWantedAt < TABLE_WAIT_MS) return
      await this.propose({ op: 'createTable', name: 'fs' }, 'createTable')
      return
    }

    const reports = await this.collectReports(c)
    await this.recordReports(reports)
    c = n.catalog()
    if (!n.isSchemaLeader()) return

    const now = Date.now()
    const liveness: Liveness = { now, hosts: {}, caughtUp: {}, changing: [], leaders: {} }
    for (const h of c.hosts) {
      if (h.state === 'retired') continue
      if (n.isUp(h.id)) { this.downSince.delete(h.id); liveness.hosts[h.id] = { up: true } } else {
        if (!this.downSince.has(h.id)) this.downSince.set(h.id, now)
        liveness.hosts[h.id] = { up: false, downSince: this.downSince.get(h.id)! }
      }
    }
    for (const [g, r] of reports) {
      liveness.caughtUp![g] = r.caughtUp.map((x) => n.hostOfNode(x)).filter((x): x is string => x !== undefined)
      liveness.leaders![g] = r.leader
      if (r.configIndex > r.commit) liveness.changing!.push(g)
    }
    for (const g of this.inFlight.keys()) liveness.changing!.push(g)
    const input = toPlacementInput(c, liveness)
    input.settings = { ...o.placement, ...input.settings }
    const p = plan(input)
    this.progress = p.progress

    for (const h of c.hosts) {
      if (h.state === 'retiring' && !c.groups.some((g) => g.replicas.some((r) => r.host === h.id))) {
        await this.propose({ op: 'finishRetire', host: h.id }, `finishRetire ${h.id}`)
      }
    }
    // Settled needs every host up (a down host comes due for replace_after with no other change) and nothing for the
    // planner to wait for: groups still being founded, electing or changing plan no move either. Not underReplicated:
    // a group may want more copies than there are hosts (the schema group of a small cluster).
    const allUp = Object.values(liveness.hosts).every((h) => h.up)
    const done = p.progress.settled && liveness.changing!.length === 0 && c.groups.every((g) => reports.has(g.id))
    if (allUp && done && p.moves.length === 0 && this.inFlight.size === 0) this.settled = { seen: this.seen(), until: now + SETTLED_ROUND_MS }
    for (const m of p.moves) {
      if (this.inFlight.has(m.group)) continue
      // A create is one catalog record with nothing to copy: it takes no slot, so a new table's fragments
      // are all founded in one round instead of a few per round.
      const create = m.kind === 'create'
      if (!create && [...this.inFlight.values()].filter((f) => !f.create).length >= o.maxConcurrentMoves) continue
      const run = this.execute(m, c).catch((e: Error) => {
        n.logOnce(`move:${m.group}:${m.kind}`, `walkenfs: placement: ${describe(m)} did not happen yet: ${e.message} (retried)`)
      }).finally(() => { this.inFlight.delete(m.group) })
      this.inFlight.set(m.group, { run, create })
    }
  }

  /** Reports from every live host, keeping per group the one of the highest term. */
  private async collectReports (c: Readonly<Catalog>): Promise<Map<string, GroupReport>> {
    const n = this.node
    const hosts = c.hosts.filter((h) => h.state !== 'retired' && n.isUp(h.id)).map((h) => h.id)
    const lists = await Promise.all(hosts.map(async (h) => {
      if (h === n.self) return n.report()
      try {
        return await n.call(h, 'cluster.report', null, Math.min(n.o.rpcDeadlineMs, Math.max(200, n.o.actuatorMs))) as GroupReport[]
      } catch { return [] }
    }))
    const best = new Map<string, GroupReport>()
    for (const list of lists) {
      if (!Array.isArray(list)) continue
      for (const r of list) {
        const prior = best.get(r.group)
        if (!prior || r.term > prior.term) best.set(r.group, r)
      }
    }
    this.leaders = new Map([...best].map(([g, r]) => [g, r.leader]))
    return best
  }

  /** Records committed memberships and leaders that the catalog does not show yet. */
  private async recordReports (reports: Map<string, GroupReport>): Promise<void> {
    const n = this.node
    for (const r of reports.values()) {
      if (!n.isSchemaLeader()) return
      const c = n.catalog()
      const g = findGroup(c, r.group)
      if (r.configIndex <= r.commit) {
        const replicas = this.toReplicas(r.voters, r.learners)
        const index = Math.max(1, r.configIndex)
        if (replicas !== undefined && (g === undefined || (index > g.configIndex && !sameReplicas(g.replicas, replicas)))) {
          await this.propose({ op: 'recordMembership', group: r.group, replicas, configIndex: index }, `record ${r.group}`)
        }
      }
      const g2 = findGroup(n.catalog(), r.group)
      if (g2 && g2.leader !== r.leader && g2.replicas.some((x) => x.host === r.leader && x.role === 'voter')) {
        await this.propose({ op: 'leaderHint', group: r.group, leader: r.leader }, `leader ${r.group}`)
      }
    }
  }

  private toReplicas (voters: number[], learners: number[]): CatalogReplica[] | undefined {
    const out: CatalogReplica[] = []
    for (const [list, role] of [[voters, 'voter'], [learners, 'learner']] as const) {
      for (const x of list) {
        const h = this.node.hostOfNode(x)
        if (h === undefined) return undefined
        out.push({ host: h, role })
      }
    }
    return out.sort((a, b) => a.host < b.host ? -1 : a.host > b.host ? 1 : 0)
  }

  private async propose (cmd: CatalogCommand, what: string): Promise<ApplyResult | undefined> {
    try {
      const r = await this.node.proposeCatalog(cmd)
      // A stale record lost a race with a fresher one (a report and a finished move record the same change): nothing to say.
      if (!r.ok && !/^stale membership/.test(r.error)) this.node.logOnce(`cmd:${what}`, `walkenfs: placement: ${what} refused by the catalog: ${r.error}`)
      return r
    } catch (e) {
      this.node.logOnce(`cmd:${what}`, `walkenfs: placement: ${what} not committed: ${(e as Error).message} (retried)`)
      return undefined
    }
  }

  private async execute (m: Move, c: Readonly<Catalog>): Promise<void> {
    const n = this.node
    const deadline = n.o.rpcDeadlineMs
    if (m.kind === 'create') {
      await this.propose({ op: 'recordMembership', group: m.group, replicas: m.hosts.map((host) => ({ host, role: 'voter' as const })), configIndex: 1 }, `create ${m.group}`)
      return
    }
    if (m.kind === 'transferLeader') {
      const to = n.nodeOfHost(m.to)
      if (to === undefined) throw new Error(`host ${m.to} has no node number`)
      await n.call(m.from, 'cluster.transfer', { group: m.group, to }, deadline)
      return
    }
    const leader = this.leaders.get(m.group) ?? findGroup(c, m.group)?.leader
    if (leader == null) throw new Error(`group ${m.group} has no known leader`)
    const target = n.nodeOfHost(m.host)
    if (target === undefined) throw new Error(`host ${m.host} has no node number`)
    if (m.kind === 'addLearner') {
      const nodes: Record<string, number> = {}
      for (const r of findGroup(c, m.group)?.replicas ?? []) {
        const x = findHost(c, r.host)
        if (x) nodes[x.id] = x.node
      }
      await n.call(m.host, 'cluster.openGroup', { group: m.group, nodes }, deadline)
    }
    const change: ConfChange = { type: m.kind, node: target }
    const r = await n.call(leader, 'cluster.change', { group: m.group, change }, deadline) as ChangeResult
    if (r.configIndex !== r.index) return // a later step came first; the next report records it
    const replicas = this.toReplicas(r.voters, r.learners)
    if (replicas) await this.propose({ op: 'recordMembership', group: m.group, replicas, configIndex: Math.max(1, r.index) }, `record ${m.group}`)
  }

  /** Runs one membership step on this host, which leads the group (the `cluster.change` RPC). */
  async onChange (p: unknown): Promise<ChangeResult> {
    const q = p as { group: string, change: ConfChange }
    const raft = this.node.raft
    const index = await raft.changeMembership(q.group, q.change)
    const s = raft.status(q.group)
    return { index, configIndex: s.configIndex, voters: s.config.voters, learners: s.config.learners }
  }
}

function sameReplicas (a: readonly CatalogReplica[], b: readonly CatalogReplica[]): boolean {
  return a.length === b.length && a.every((x, i) => x.host === b[i].host && x.role === b[i].role)
}

function describe (m: Move): string {
  return m.kind === 'transferLeader' ? `moving the leadership of ${m.group} from ${m.from} to ${m.to}` : `${m.kind} ${m.group} on ${m.kind === 'create' ? m.hosts.join(', ') : m.host}`
}
