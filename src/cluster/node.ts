/**
 * The cluster node: everything one host runs to be part of a walkenfs
 * cluster, below the tables layer.
 *
 * Owns, for this host: the Wire (links, RPC), discovery (multicast,
 * optional) and static peers, the membership view (failure detector), the
 * RaftHost over a WireTransport whose node ↔ host mapping comes from the
 * catalog, the schema group (CatalogMachine), the hello/bootstrap/join loop,
 * the persisted identity (identity.ts), the group lifecycle (open what the
 * catalog places here, open empty replicas on request, destroy what the
 * catalog removed) and, while this host leads the schema group, the
 * placement actuator (actuator.ts). It implements RouterEnv for the tables
 * layer, `ready()` for the mount, `status()` for `walkenfs status`, and
 * `retire(host)`.
 *
 * Promises (docs/replication.md, "Cluster lifecycle"):
 * - a host with data never bootstraps; an empty host bootstraps only per
 *   decideBootstrap (bootstrap.ts), alone, as node 1, and then proposes
 *   `bootstrap` and `createTable fs` with the settings it was started with;
 * - a host joins only through the schema leader (`cluster.join` →
 *   `addHost`), and stores {clusterId, node} before it runs any group;
 * - a replica is created as a founding voter only when the catalog records
 *   it as the group's only replica at config index 1 (the actuator's
 *   `create`); any other replica starts empty and is filled by its leader;
 * - a replica is destroyed only when the catalog lists the group without
 *   this host at a config index newer than any this replica knows, and the
 *   replica is older than `replicaGraceMs`;
 * - every Raft cycle is synced (`store.noteCommit(); store.flush()`) before
 *   its messages leave;
 * - bounded: hello answers, reports and moves are per known host or group,
 *   the node keeps no queue of its own;
 * - after a forced recovery (src/cli/recover.ts) a host whose cluster id the
 *   recovered cluster lists as a previous one fails `ready()` with a message
 *   saying so, and never teaches this host a node number (so its Raft
 *   messages are dropped); `cluster.dropReplica` (walkenfs repair) deletes a
 *   replica the caller has removed from its group, never the group's leader.
 */
import { randomBytes } from 'node:crypto'
import { statfsSync } from 'node:fs'
import { RaftHost, type GroupStateMachine } from '../raft/host.js'
import { WireTransport } from '../raft/wire-transport.js'
import { Wire } from '../wire/wire.js'
import { Actuator, type GroupReport } from './actuator.js'
import { decideBootstrap, type BootstrapDecision, type PeerView } from './bootstrap.js'
import { emptyCatalog, encodeCommand, findGroup, findHost, type ApplyResult, type Catalog, type CatalogCommand, type CatalogRecovery } from './catalog.js'
import { CatalogMachine } from './catalog-machine.js'
import { Discovery } from './discovery.js'
import { IdentityStore, type Identity } from './identity.js'
import { Membership } from './membership.js'
import { buildStatus, type NodeStatus } from './node-status.js'
import { resolveOptions, type ClusterNodeOptions, type ResolvedOptions } from './node-options.js'
import { SCHEMA_GROUP, fragmentId } from './placement.js'
import { StaticPeers } from './static-peers.js'

export type { ClusterNodeOptions } from './node-options.js'
export type { NodeStatus } from './node-status.js'


const EMPTY_CATALOG: Readonly<Catalog> = Object.freeze(emptyCatalog())

/** The filesystem's catalog table. */
export const FS_TABLE = 'fs'

export type NodePhase = 'starting' | 'waiting' | 'joining' | 'member' | 'error' | 'closed'

interface HelloAnswer { id: string, clusterId: string | null, node: number | null, leaderHint: string | null, sees?: string[], yourState?: string, recovery?: CatalogRecovery }
interface JoinAnswer { clusterId?: string, node?: number, leader?: string | null, nodes?: Record<string, number>, redirect?: string | null, error?: string }

/**
 * It serves the tables layer's RouterEnv (src/tables/router.ts) by shape:
 * the interface belongs to the layer above, which this layer must not
 * import; cluster-serve.ts passes a ClusterNode where a RouterEnv is due,
 * so the compiler checks the fit there.
 */
export class ClusterNode {
  readonly o: ResolvedOptions
  readonly wire: Wire
  private identityStore: IdentityStore
  private ident!: Identity
  private membership: Membership | undefined
  private discovery: Discovery | undefined
  private statics: StaticPeers | undefined
  private host: RaftHost | undefined
  private transport: WireTransport | undefined
  private catalogMachine: CatalogMachine
  private readonly actuator: Actuator
  /** Host id → Raft node learned from hello/join/openGroup before the local catalog has it (a node number is never reused). */
  private readonly learnedNodes = new Map<string, number>()
  /** Replicas opened on request, by group: when (ms) — kept for replicaGraceMs even if the catalog does not list them yet. */
  private readonly openedAt = new Map<string, number>()
  /** Empty peers seen in the last hello round (for `sees`). */
  private emptySeen: string[] = []
  private lastHello: PeerView[] = []
  private lastHelloAt = 0
  private startedAt = 0
  private phaseValue: NodePhase = 'starting'
  private fatal: Error | undefined
  private lastReason = ''
  private helloTimer: NodeJS.Timeout | undefined
  private lifeTimer: NodeJS.Timeout | undefined
  private helloRunning = false
  private lifeRunning = false
  private addressUpdate = false
  private closed = false
  private readonly readyWaiters: Array<{ resolve: () => void, reject: (e: Error) => void }> = []
  private isReady = false

  constructor (options: ClusterNodeOptions) {
    this.o = resolveOptions(options)
    const store = this.o.store
    this.identityStore = new IdentityStore(store.lmdbRoot, () => this.sync())
    this.catalogMachine = new CatalogMachine(store.lmdbRoot, SCHEMA_GROUP)
    // The wire's host id is only known after reading the identity; start() creates it for real.
    this.wire = undefined as unknown as Wire
    this.actuator = new Actuator(this)
  }

  // ---- lifecycle ---------------------------------------------------------------

  /** Opens the identity, starts the wire, discovery and the loops. Resolves once listening; ready() waits for membership. */
  async start (): Promise<void> {
    this.ident = await this.identityStore.open(this.o.hostId, this.o.defaultHostId, this.o.clusterName)
    const o = this.o
    const wire = new Wire({
      hostId: this.ident.hostId, cookie: o.cookie, clusterName: o.clusterName, port: o.port, listenHost: o.listenHost,
      encrypt: o.encrypt, heartbeatMs: o.heartbeatMs, linkTimeoutMs: o.linkTimeoutMs, connectTimeoutMs: o.connectTimeoutMs,
      handshakeTimeoutMs: o.connectTimeoutMs, backoff: { baseMs: Math.max(20, Math.floor(o.heartbeatMs / 10)), maxMs: 2 * o.heartbeatMs },
      advertise: o.advertise, log: o.log
    })
    ;(this as { wire: Wire }).wire = wire
    this.registerHandlers()
    for (const [method, fn] of this.handlers) wire.handle(method, async (payload, ctx) => await fn(payload, ctx.peerId))
    await wire.start()
    this.membership = new Membership(wire, { suspectAfterMs: o.suspectAfterMs, downAfterMs: o.downAfterMs })
    if (o.mcast) {
      const m = o.mcast
      this.discovery = new Discovery({ hostId: this.ident.hostId, incarnation: Date.now(), keys: wire.keys, addrs: () => wire.addresses,
        group: m.group, port: m.port, ttl: m.ttl, ifaces: m.ifaces, intervalMs: m.intervalMs, log: o.log })
      this.discovery.on('peer', (b: { hostId: string, addrs: string[] }) => wire.addPeer(b.hostId, b.addrs))
      await this.discovery.start()
    }
    this.statics = new StaticPeers({ peers: o.peers, cmd: o.peersCmd, add: (a) => wire.addSeed(a), log: o.log })
    this.statics.start()
    this.startedAt = Date.now()
    if (this.ident.clusterId !== null && this.ident.node !== null) {
      // A host with data resumes at once; it never bootstraps (decideBootstrap's rule), hellos still check for foreign clusters.
      this.startRaft(this.ident.node)
      await this.finishBootstrap()
      this.phaseValue = 'member'
    } else {
      this.phaseValue = 'waiting'
    }
    this.helloTimer = setInterval(() => { this.track(this.helloRound()) }, o.helloMs)
    this.lifeTimer = setInterval(() => { this.track(this.lifecycleRound()) }, o.actuatorMs)
    this.track(this.helloRound())
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.phaseValue = 'closed'
    if (this.helloTimer) clearInterval(this.helloTimer)
    if (this.lifeTimer) clearInterval(this.lifeTimer)
    this.failReady(new Error('the cluster node was closed before it was ready'))
    this.statics?.stop()
    this.membership?.stop()
    await this.discovery?.stop()
    // Closing the wire first fails the RPCs that rounds and moves wait on, so they end quickly.
    await this.wire?.close()
    await Promise.allSettled([...this.rounds])
    await this.actuator.idle()
    await this.host?.close()
  }

  /** Rounds running now (close waits for them, so none writes to a store about to close). */
  private readonly rounds = new Set<Promise<void>>()

  private track (p: Promise<void>): void {
    this.rounds.add(p)
    void p.finally(() => this.rounds.delete(p))
  }

  /** Resolves once this host is a member and every `fs/<i>` exists with a leader; rejects on a fatal error (e.g. another cluster id). */
  ready (): Promise<void> {
    if (this.fatal) return Promise.reject(this.fatal)
    if (this.isReady) return Promise.resolve()
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }))
  }

  get phase (): NodePhase { return this.phaseValue }
  get identity (): Identity { return this.ident }
  /** The error that stopped this node from joining, if any. */
  get error (): Error | undefined { return this.fatal }

  // ---- RouterEnv ---------------------------------------------------------------

  get self (): string { return this.ident.hostId }

  get raft (): RaftHost {
    if (!this.host) throw new Error(`host ${this.self} is not a cluster member yet; wait for ready()`)
    return this.host
  }

  hasGroup (g: string): boolean { return this.host?.hasGroup(g) ?? false }

  hostOfNode (node: number): string | undefined {
    const h = this.nodeMaps().byNode.get(node)
    if (h !== undefined) return h
    for (const [id, n] of this.learnedNodes) if (n === node) return id
    return undefined
  }

  nodeOfHost (host: string): number | undefined {
    return this.nodeMaps().byHost.get(host) ?? this.learnedNodes.get(host)
  }

  private maps: { catalog: Readonly<Catalog> | undefined, nextNode: number, hosts: unknown, byNode: Map<number, string>, byHost: Map<string, number> } =
    { catalog: undefined, nextNode: -1, hosts: undefined, byNode: new Map(), byHost: new Map() }

  /**
   * Node ↔ host maps of the catalog, rebuilt when a host is admitted (nextNode
   * grows) or the catalog object is replaced (a snapshot): the transport asks
   * for every message, and a host's node number never changes.
   */
  private nodeMaps (): { byNode: Map<number, string>, byHost: Map<string, number> } {
    const c = this.catalog()
    // A forced recovery replaces the host list without admitting anyone (nextNode unchanged).
    if (c !== this.maps.catalog || c.nextNode !== this.maps.nextNode || c.hosts !== this.maps.hosts) {
      this.maps = { catalog: c, nextNode: c.nextNode, hosts: c.hosts, byNode: new Map(c.hosts.map((h) => [h.node, h.id])), byHost: new Map(c.hosts.map((h) => [h.id, h.node])) }
    }
    return this.maps
  }

  replicas (g: string): string[] {
    return findGroup(this.catalog(), g)?.replicas.map((r) => r.host) ?? []
  }

  leaderHint (g: string): string | null {
    if (this.host?.hasGroup(g)) {
      const lead = this.host.status(g).lead
      if (lead !== 0) return this.hostOfNode(lead) ?? null
    }
    return findGroup(this.catalog(), g)?.leader ?? null
  }

  async call (host: string, method: string, payload: unknown, deadlineMs: number): Promise<unknown> {
    if (host === this.self) {
      const h = this.handlers.get(method)
      if (!h) throw new Error(`no handler for ${method} on host ${this.self}`)
      return await h(payload, this.self)
    }
    return await this.wire.call(host, method, payload, { deadlineMs })
  }

  private readonly handlers = new Map<string, (payload: unknown, from: string) => Promise<unknown>>()

  handle (method: string, fn: (payload: unknown, from: string) => Promise<unknown>): void {
    this.handlers.set(method, fn)
    // Before start() the wire does not exist yet; start() registers every handler.
    this.wire?.handle(method, async (payload, ctx) => await fn(payload, ctx.peerId))
  }

  quorumWaitMs (): number { return this.catalog().settings.quorumWaitMs }

  linked (host: string): boolean { return host === this.self || (this.wire?.hasLink(host) ?? false) }

  private noRoomAnswer: string | null = null
  private noRoomUntil = 0
  private roomOkUntil = 0

  /**
   * Why this host takes no writes now: its data disk has no room for a Raft
   * cycle (the same check that pauses its RaftHost, `room()`), or null.
   * The router then reads from other replicas and refuses writes started
   * here with ENOSPC (router.ts). The router asks on every read and
   * transaction, so answers are kept: "no room" 200 ms, "room" 100 ms
   * while more than 64 MiB are free, so that the first read after the disk
   * filled soon goes elsewhere instead of waiting for the paused replica.
   * A write asks `fresh`: one admitted on a stale "room" would be
   * committed by the fragment's leader and another replica without this
   * host's disk, and answered ok although it was started on a full disk
   * (the torture harness caught one 79 ms after the disk filled).
   */
  noRoom (fresh = false): string | null {
    const now = Date.now()
    if (this.noRoomAnswer !== null && now < this.noRoomUntil) return this.noRoomAnswer
    if (this.noRoomAnswer === null && now < this.roomOkUntil && !fresh) return null
    let answer: string | null = null
    if (this.room()) {
      if (this.o.store.hasRoom(64 << 20, false)) this.roomOkUntil = now + 100
    } else {
      let free = ''
      try {
        const st = statfsSync(this.o.store.dataDir)
        free = `, ${Math.floor(st.bavail * st.bsize / 1024)} KiB free`
      } catch { /* the message does without */ }
      answer = `host ${this.self} has no room on its data disk (data directory ${this.o.store.dataDir}${free}); ` +
        'writes through this host fail until space is freed there (not by deleting files in walkenfs: free or grow that disk); ' +
        'they resume by themselves, and the other hosts keep writing'
      this.noRoomUntil = now + 200
    }
    // The user sees only ENOSPC; the log says why, once per change.
    if ((answer === null) !== (this.noRoomAnswer === null)) {
      this.o.log(answer !== null ? `walkenfs: ${answer}` : `walkenfs: host ${this.self} has room on its data disk again (data directory ${this.o.store.dataDir}); writes through it resume`)
    }
    this.noRoomAnswer = answer
    return answer
  }

  // ---- catalog -----------------------------------------------------------------

  /** The local replica's catalog (empty until this host holds a schema replica). */
  catalog (): Readonly<Catalog> {
    return this.host?.hasGroup(SCHEMA_GROUP) === true ? this.catalogMachine.catalog() : EMPTY_CATALOG
  }

  /** Whether this host leads the schema group now. */
  isSchemaLeader (): boolean {
    return this.host?.hasGroup(SCHEMA_GROUP) === true && this.host.status(SCHEMA_GROUP).role === 'leader'
  }

  /** Proposes a catalog command through this host (which must lead the schema group). */
  async proposeCatalog (cmd: CatalogCommand): Promise<ApplyResult> {
    return await this.raft.propose(SCHEMA_GROUP, encodeCommand(cmd)) as ApplyResult
  }

  /** The schema leader's host as this host believes it. */
  schemaLeader (): string | null {
    return this.leaderHint(SCHEMA_GROUP)
  }

  /** Failure detector view of another host: up (or suspect) vs down. */
  isUp (host: string): boolean {
    if (host === this.self) return true
    const s = this.membership?.view()[host]
    return s === 'up' || s === 'suspect'
  }

  /** Per peer, as the failure detector reports it. */
  peerStates (): Record<string, string> { return this.membership?.view() ?? {} }

  // ---- retire ------------------------------------------------------------------

  /**
   * Retires `host` (alive or dead): startRetire, then the actuator drains
   * its replicas and records finishRetire. Resolves when it is retired.
   */
  async retire (host: string, opts: { timeoutMs?: number } = {}): Promise<void> {
    const deadline = Date.now() + (opts.timeoutMs ?? 10 * 60 * 1000)
    const h = findHost(this.catalog(), host)
    if (!h) throw new Error(`host ${host} is not in this cluster's catalog; nothing to retire (known: ${this.catalog().hosts.map((x) => x.id).join(', ') || 'none yet'})`)
    if (h.state === 'up') {
      const r = await this.viaSchemaLeader({ op: 'startRetire', host }, deadline)
      if (!r.ok && !/already retiring/.test(r.error)) throw new Error(`cannot retire ${host}: ${r.error}`)
    }
    while (findHost(this.catalog(), host)?.state !== 'retired') {
      if (this.closed) throw new Error(`the cluster node closed while ${host} was draining; the schema leader keeps draining it`)
      if (Date.now() > deadline) throw new Error(`host ${host} is still draining (${this.replicaCount(host)} replicas left); it keeps draining in the background — check walkenfs status`)
      await new Promise((r) => setTimeout(r, Math.min(200, this.o.actuatorMs)))
    }
  }

  private replicaCount (host: string): number {
    return this.catalog().groups.filter((g) => g.replicas.some((r) => r.host === host)).length
  }

  /** Proposes `cmd` on the schema leader, here or through `cluster.propose`, retrying until the deadline. */
  private async viaSchemaLeader (cmd: CatalogCommand, deadline: number): Promise<ApplyResult> {
    let last = 'no schema leader known'
    while (Date.now() < deadline && !this.closed) {
      try {
        if (this.isSchemaLeader()) return await this.proposeCatalog(cmd)
        const leader = this.schemaLeader()
        if (leader !== null && leader !== this.self) {
          const r = await this.wire.call(leader, 'cluster.propose', cmd, { deadlineMs: this.o.rpcDeadlineMs }) as ApplyResult | { notLeader: true }
          if (!('notLeader' in r)) return r
          last = `${leader} no longer leads the schema group`
        }
      } catch (e) {
        last = (e as Error).message
      }
      await new Promise((r) => setTimeout(r, 100))
    }
    throw new Error(`could not reach the schema group's leader: ${last}`)
  }

  // ---- status ------------------------------------------------------------------

  status (): NodeStatus {
    return buildStatus(this)
  }

  /**
   * Counters of this host's Raft driver (cycles, flushes, proposals, reads,
   * messages) for `walkenfs status --json`, with the entry bytes its logs
   * hold in memory (`logHeldBytes`) and since their snapshots (`logBytes`);
   * null before it runs.
   */
  raftStats (): (RaftHost['stats'] & { logBytes: number, logHeldBytes: number }) | null {
    if (this.host === undefined) return null
    const { logged, held } = this.host.logBytes()
    return { ...this.host.stats, logBytes: logged, logHeldBytes: held }
  }

  /** Local Raft view of g, or null when this host holds no replica. */
  localGroup (g: string): ReturnType<RaftHost['status']> | null {
    return this.host?.hasGroup(g) === true ? this.host.status(g) : null
  }

  /** The last placement plan's progress (schema leader only). */
  placementProgress (): ReturnType<Actuator['lastProgress']> { return this.isSchemaLeader() ? this.actuator.lastProgress() : null }

  // ---- internals: raft -----------------------------------------------------------

  /**
   * Whether the data disk has room for a Raft cycle (a generous 4 MiB plus
   * the store's reserve: a cycle writes log entries, hard states and the
   * rows they apply in one transaction): on the filesystem itself, or
   * inside data.mdb while the filesystem still has 3 MiB for the file to
   * grow by (large values need runs of pages the free ones inside may not
   * offer; see Store.hasRoom). Asked afresh before every cycle: a statfs
   * costs tens of microseconds, and an answer kept even 100 ms let another
   * process fill the disk unseen before a commit, which stops the daemon
   * (docs/torture.md, "The room-check race").
   */
  private room (): boolean {
    return this.o.store.hasRoom(4 << 20, false) || this.o.store.hasRoom(4 << 20, true, 3 << 20)
  }

  private async sync (): Promise<void> {
    this.o.store.noteCommit()
    await this.o.store.flush()
  }

  private startRaft (node: number): void {
    if (this.host || this.closed) return
    const o = this.o
    this.transport = new WireTransport({
      wire: this.wire,
      id: node,
      // A node the catalog does not know yet gets an impossible host id: the send fails as a lost message.
      peerOf: (n) => this.hostOfNode(n) ?? `unknown-node-${n}`,
      nodeOf: (peer) => this.nodeOfHost(peer),
      log: o.log
    })
    const ready = (): boolean => this.isReady
    this.host = new RaftHost({
      id: node, root: o.store.lmdbRoot, transport: this.transport, tickMs: o.tickMs, electionTicks: o.electionTicks,
      heartbeatTicks: o.heartbeatTicks, compactAfter: o.compactAfter, sync: () => this.sync(), room: () => this.room(),
      // The host ticks itself from a timer (start() below), which lease reads need (raft.ts, host.ts).
      leaseReads: true,
      unsynced: () => { this.o.store.noteCommit() },
      // TEST ONLY, never set in production: WALKENFS_TEST_UNSAFE_COMMIT=1 applies (and so
      // acknowledges) Raft entries before a majority has them, and lets a leader cut off from
      // its majority stay leader: a minority accepts writes. The cluster torture harness must
      // catch it (test/faults/unsafe-commit.test.ts). It starts once this host is ready: broken
      // from the first entry, a new cluster often failed to form, before any fault to catch.
      ...(process.env.WALKENFS_TEST_UNSAFE_COMMIT === '1' ? { faults: { get applyUncommitted () { return ready() } }, checkQuorum: false } : {})
    })
    for (const g of this.host.storage.groups()) this.host.openGroup(g, this.machine(g))
    this.host.start()
  }

  private machine (g: string): GroupStateMachine {
    return g === SCHEMA_GROUP ? this.catalogMachine : this.o.machineFor(g)
  }

  // ---- internals: hello, bootstrap, join -------------------------------------------

  private registerHandlers (): void {
    this.handle('cluster.hello', async (p, from) => {
      const q = p as { clusterId?: string | null, node?: number | null }
      // Only a host of this cluster id teaches a node number: one left behind by a forced recovery must not reach Raft.
      if (typeof q?.node === 'number' && q.node > 0 && q.clusterId === this.ident.clusterId && findHost(this.catalog(), from) === undefined) this.learnedNodes.set(from, q.node)
      const recovery = this.recoveryRecord()
      if (q?.clusterId != null && recovery?.previousIds.includes(q.clusterId) === true) {
        this.logOnce(`stale:${from}`, `walkenfs: host ${from} holds data from before the forced recovery on ${recovery.host} at ${new Date(recovery.at).toISOString()} (cluster id ${q.clusterId}); it is refused — move its data directory away and let it join empty`)
      } else if (q?.clusterId != null && this.ident.clusterId !== null && q.clusterId !== this.ident.clusterId) {
        this.logOnce(`foreign:${from}`, `walkenfs: host ${from} belongs to cluster id ${q.clusterId}, this host to ${this.ident.clusterId} (same name ${this.o.clusterName} and cookie); its messages are ignored — give the clusters different cluster= names`)
      }
      const a: HelloAnswer = { id: this.self, clusterId: this.ident.clusterId, node: this.ident.node, leaderHint: this.ident.clusterId !== null ? this.schemaLeader() : null }
      if (this.ident.clusterId === null && this.lastHello.length > 0) a.sees = [this.self, ...this.emptySeen]
      if (recovery !== undefined) a.recovery = recovery
      // A host retired while it was away has lost its catalog replica; this is how it learns why.
      if (q?.clusterId != null && q.clusterId === this.ident.clusterId) {
        const st = findHost(this.catalog(), from)?.state
        if (st !== undefined) a.yourState = st
      }
      return a
    })
    this.handle('cluster.join', async (p, from) => await this.onJoin(p as { id: string, addresses: string[], clusterName: string }, from))
    this.handle('cluster.propose', async (p, from) => {
      // Only what members may ask of the leader: starting a retirement (`walkenfs retire` anywhere), and a
      // host's own new addresses (after a restart on another address; only for the host at the other end of the link).
      const cmd = p as CatalogCommand
      if (cmd?.op === 'updateAddresses' && cmd.host !== from) return { ok: false, error: `host ${from} may only change its own addresses, not ${String(cmd.host)}'s` }
      if (cmd?.op !== 'startRetire' && cmd?.op !== 'updateAddresses') return { ok: false, error: `cluster.propose only carries startRetire and updateAddresses, not ${String(cmd?.op)}` }
      if (findHost(this.catalog(), from)?.state !== 'up') return { ok: false, error: `host ${from} is not an active member of this cluster` }
      if (!this.isSchemaLeader()) return { notLeader: true }
      return await this.proposeCatalog(cmd)
    })
    this.handle('cluster.openGroup', async (p) => {
      const q = p as { group: string, nodes?: Record<string, number> }
      for (const [h, n] of Object.entries(q.nodes ?? {})) if (findHost(this.catalog(), h) === undefined) this.learnedNodes.set(h, n)
      this.openedAt.set(q.group, Date.now())
      await this.raft.openEmptyGroup(q.group, this.machine(q.group))
      return { ok: true }
    })
    this.handle('cluster.change', async (p) => await this.actuator.onChange(p))
    this.handle('cluster.transfer', async (p) => {
      const q = p as { group: string, to: number }
      // The planner saw an older report: the target leads already (a start's elections often pick it), so there is nothing to move.
      if (this.raft.hasGroup(q.group) && this.raft.status(q.group).lead === q.to) return { ok: true }
      this.raft.transferLeadership(q.group, q.to)
      return { ok: true }
    })
    this.handle('cluster.report', async () => this.report())
    this.handle('cluster.dropReplica', async (p, from) => {
      // `walkenfs repair` (src/tables/replica-repair.ts): the caller removed this replica from its group first.
      const q = p as { group?: unknown }
      if (typeof q?.group !== 'string') throw new Error('dropReplica needs a group')
      if (from !== this.self && findHost(this.catalog(), from)?.state !== 'up') throw new Error(`host ${from} is not an active member of this cluster`)
      if (this.host === undefined || !this.host.storage.has(q.group)) return { ok: true }
      if (this.host.hasGroup(q.group) && this.host.status(q.group).role === 'leader') throw new Error(`this host leads ${q.group}; hand the leadership over first`)
      this.o.log(`walkenfs: repair: deleting this host's replica of ${q.group} (host ${from} removed it from the group); the leader fills a new one`)
      this.openedAt.delete(q.group)
      await this.host.destroyGroup(q.group, this.machine(q.group))
      return { ok: true }
    })
  }

  /** The last forced recovery of this cluster: the catalog's record, else (before the catalog applied it) the identity's. */
  private recoveryRecord (): CatalogRecovery | undefined {
    const c = this.catalog().recovery
    if (c !== undefined) return c
    const r = this.ident?.recovered
    return r !== undefined ? { host: this.ident.hostId, at: r.at, previousIds: [r.previousId] } : undefined
  }

  /** The groups this host leads, for the actuator. */
  report (): GroupReport[] {
    const out: GroupReport[] = []
    if (!this.host) return out
    for (const g of this.host.groupIds()) {
      const s = this.host.status(g)
      if (s.role !== 'leader') continue
      out.push({ group: g, leader: this.self, term: s.term, commit: s.commit, configIndex: s.configIndex, voters: s.config.voters, learners: s.config.learners, caughtUp: this.host.caughtUpLearners(g) })
    }
    return out
  }

  private async onJoin (q: { id: string, addresses: string[], clusterName: string, forwarded?: boolean }, from: string): Promise<JoinAnswer> {
    // A member may forward the join of a host that has no link to the leader yet; anyone else joins only as itself.
    const memberForwards = q?.forwarded === true && findHost(this.catalog(), from)?.state === 'up'
    if (q?.id !== from && !memberForwards) return { error: `a host may only join as itself (link is ${from}, request says ${String(q?.id)})` }
    if (!this.isSchemaLeader()) {
      const leader = this.schemaLeader()
      if (leader === null || leader === this.self || q.forwarded === true) return { redirect: leader }
      return await this.wire.call(leader, 'cluster.join', { ...q, forwarded: true }, { deadlineMs: this.o.rpcDeadlineMs }) as JoinAnswer
    }
    from = q.id
    let h = findHost(this.catalog(), from)
    if (!h) {
      const r = await this.proposeCatalog({ op: 'addHost', host: { id: from, addresses: q.addresses }, at: Date.now() })
      h = findHost(this.catalog(), from)
      if (!r.ok && !h) return { error: r.error }
    }
    if (!h) return { error: `host ${from} was not admitted` }
    if (h.state === 'retired') return { error: `host id ${from} was retired from cluster ${this.ident.clusterId}; ids are never reused — wipe its data directory and start it with another host=` }
    const nodes: Record<string, number> = {}
    for (const x of this.catalog().hosts) nodes[x.id] = x.node
    return { clusterId: this.catalog().clusterId!, node: h.node, leader: this.self, nodes }
  }

  private async helloRound (): Promise<void> {
    if (this.helloRunning || this.closed || this.fatal) return
    // Once ready, hellos only watch for hosts of a foreign cluster: ten times slower keeps their cost low in big clusters.
    const now = Date.now()
    if (this.isReady && now - this.lastHelloAt < 10 * this.o.helloMs) return
    this.lastHelloAt = now
    this.helloRunning = true
    try {
      const peers = this.wire.linkedPeers()
      const answers = await Promise.all(peers.map(async (p) => {
        try {
          return await this.wire.call(p, 'cluster.hello', { clusterId: this.ident.clusterId, node: this.ident.node }, { deadlineMs: Math.max(200, 2 * this.o.helloMs) }) as HelloAnswer
        } catch { return undefined }
      }))
      // Hosts left behind by a forced recovery still answer with the old cluster id: they are not a second cluster.
      const superseded = new Set<string>()
      let newer: { id: string, recovery: CatalogRecovery } | undefined
      for (const a of answers) {
        if (!a || !Array.isArray(a.recovery?.previousIds)) continue
        for (const x of a.recovery.previousIds) superseded.add(x)
        if (this.ident.clusterId !== null && a.recovery.previousIds.includes(this.ident.clusterId)) newer = { id: a.id, recovery: a.recovery }
      }
      if (newer !== undefined) {
        const r = newer.recovery
        await this.decide({ kind: 'error', message: `this host's data is from before a forced recovery on ${r.host} at ${new Date(r.at).toISOString()} (cluster ${this.o.clusterName} was id ${this.ident.clusterId}, host ${newer.id} reports it continues under another id); move this host's data directory away and let it join empty` })
        return
      }
      const seen: PeerView[] = []
      for (const a of answers) {
        if (!a || typeof a.id !== 'string') continue
        if (a.clusterId !== null && superseded.has(a.clusterId)) continue
        const v: PeerView = { id: a.id, clusterId: a.clusterId ?? null, leaderHint: a.leaderHint ?? null }
        if (Array.isArray(a.sees)) v.sees = a.sees
        seen.push(v)
        if (typeof a.node === 'number' && a.node > 0 && (this.ident.clusterId === null || a.clusterId === this.ident.clusterId) && findHost(this.catalog(), a.id) === undefined) this.learnedNodes.set(a.id, a.node)
      }
      if (this.ident.clusterId !== null && answers.some((a) => a?.yourState === 'retired' && a.clusterId === this.ident.clusterId)) {
        await this.decide({ kind: 'error', message: `host ${this.self} was retired from cluster ${this.o.clusterName} (id ${this.ident.clusterId}); a retired host id is never used again — wipe this data directory and start it with another host= to join as a new host` })
        return
      }
      this.lastHello = seen
      this.emptySeen = seen.filter((v) => v.clusterId === null).map((v) => v.id)
      await this.decide(decideBootstrap({ id: this.self, clusterId: this.ident.clusterId }, { cluster: this.o.clusterName, expect: this.o.expect }, seen))
    } catch (e) {
      this.o.log(`walkenfs: cluster start: ${(e as Error).message}`)
    } finally {
      this.helloRunning = false
    }
  }

  private async decide (d: BootstrapDecision): Promise<void> {
    if (this.closed) return
    switch (d.kind) {
      case 'error':
        if (!this.isReady) {
          this.fatal = new Error(d.message)
          this.phaseValue = 'error'
          this.o.log(`walkenfs: ${d.message}`)
          this.failReady(this.fatal)
        } else {
          this.logOnce(`err:${d.message}`, `walkenfs: ${d.message}`)
        }
        return
      case 'resume':
        return
      case 'wait':
        this.progress(`waiting: ${d.reason}`)
        return
      case 'bootstrap': {
        const waited = Date.now() - this.startedAt
        if (waited < this.o.discoverMs) { this.progress(`waiting: looking for members of cluster ${this.o.clusterName} (${Math.ceil((this.o.discoverMs - waited) / 1000)} s left)`); return }
        await this.bootstrap(d.members)
        return
      }
      case 'join':
        await this.join(d)
    }
  }

  private async bootstrap (members: string[]): Promise<void> {
    const clusterId = `${this.o.clusterName}-${randomBytes(6).toString('hex')}`.slice(-64).replace(/^[^A-Za-z0-9]+/, '')
    const node = emptyCatalog().nextNode
    this.progress(`bootstrapping cluster ${this.o.clusterName} (id ${clusterId}) as its first host; ${members.length - 1} other empty host(s) will join`)
    // Identity first: a crash after it resumes and finishes the bootstrap (the actuator proposes it while the catalog is empty).
    this.ident = await this.identityStore.setMember(clusterId, node, true)
    this.startRaft(node)
    await this.finishBootstrap()
    this.phaseValue = 'member'
  }

  /**
   * Creates the founding host's schema group if a crash came between the
   * identity write and its creation. Only a host whose identity is marked
   * `bootstrapping` does this: any other host missing its schema replica
   * waits for the leader to fill an empty one.
   */
  private async finishBootstrap (): Promise<void> {
    if (!this.host || this.ident.bootstrapping !== true) return // closed meanwhile: the next start finishes it
    if (!this.host.storage.has(SCHEMA_GROUP)) await this.host.createGroup(SCHEMA_GROUP, { voters: [this.ident.node!], learners: [] }, this.catalogMachine)
    this.ident = await this.identityStore.finishBootstrap()
  }

  private async join (d: { clusterId: string, via: string[], leaderHint: string | null }): Promise<void> {
    this.phaseValue = 'joining'
    // Linked hosts first (a member forwards to the leader), then the hint.
    const linked = new Set(this.wire.linkedPeers())
    const order = [...new Set([...d.via.filter((x) => linked.has(x)), ...(d.leaderHint !== null ? [d.leaderHint] : []), ...d.via])]
    this.progress(`joining cluster ${this.o.clusterName} (id ${d.clusterId}) via ${order.join(', ')}`)
    for (let i = 0; i < order.length; i++) {
      const target = order[i]
      let a: JoinAnswer
      try {
        a = await this.wire.call(target, 'cluster.join', { id: this.self, addresses: this.wire.addresses, clusterName: this.o.clusterName }, { deadlineMs: this.o.rpcDeadlineMs }) as JoinAnswer
      } catch (e) {
        this.progress(`waiting: join via ${target} failed: ${(e as Error).message}`)
        break
      }
      if (a.redirect != null && !order.includes(a.redirect)) order.splice(i + 1, 0, a.redirect)
      if (a.error !== undefined) {
        this.progress(`waiting: ${target} refused the join: ${a.error}`)
        continue
      }
      if (typeof a.clusterId === 'string' && typeof a.node === 'number') {
        if (a.clusterId !== d.clusterId) continue
        for (const [h, n] of Object.entries(a.nodes ?? {})) this.learnedNodes.set(h, n)
        this.ident = await this.identityStore.setMember(a.clusterId, a.node)
        this.startRaft(a.node)
        this.phaseValue = 'member'
        this.progress(`joined cluster ${this.o.clusterName} (id ${a.clusterId}) as node ${a.node}; waiting for a copy of the catalog`)
        return
      }
    }
  }

  // ---- internals: group lifecycle ---------------------------------------------------

  private async lifecycleRound (): Promise<void> {
    if (this.lifeRunning || this.closed || !this.host || this.host.failure) return
    this.lifeRunning = true
    try {
      this.connectCatalogHosts()
      this.recordOwnAddresses()
      await this.reconcileGroups()
      if (this.isSchemaLeader()) this.actuator.round()
      this.checkReady()
    } catch (e) {
      this.o.log(`walkenfs: group lifecycle: ${(e as Error).message}`)
    } finally {
      this.lifeRunning = false
    }
  }

  /**
   * A member restarted on other addresses (listen=/advertise= changed) has the catalog record them:
   * the others dial catalog addresses, also after their own restarts. One proposal in flight at a
   * time; a failed one is tried again on a later round.
   */
  private recordOwnAddresses (): void {
    const me = findHost(this.catalog(), this.self)
    const mine = this.wire.addresses
    if (me?.state !== 'up' || this.addressUpdate || mine.length === 0 || me.addresses.join(',') === mine.join(',')) return
    this.addressUpdate = true
    void this.viaSchemaLeader({ op: 'updateAddresses', host: this.self, addresses: [...mine] }, Date.now() + this.o.rpcDeadlineMs * 4)
      .then((r) => { if (r.ok) this.o.log(`walkenfs: recorded this host's new addresses ${mine.join(', ')} (were ${me.addresses.join(', ')})`) },
        (e: Error) => { this.o.log(`walkenfs: cannot record this host's new addresses yet: ${e.message}`) })
      .finally(() => { this.addressUpdate = false })
  }

  /** Every catalog host is a wire peer (links form without static peers to all of them); retired hosts are dropped. */
  private connectCatalogHosts (): void {
    for (const h of this.catalog().hosts) {
      if (h.id === this.self) continue
      if (h.state === 'retired') this.wire.removePeer(h.id)
      else this.wire.addPeer(h.id, h.addresses)
    }
  }

  private async reconcileGroups (): Promise<void> {
    const host = this.host!
    const c = this.catalog()
    if (c.clusterId === null) return
    for (const g of c.groups) {
      const mine = g.replicas.find((r) => r.host === this.self)
      if (!mine || host.hasGroup(g.id)) continue
      if (host.storage.has(g.id)) host.openGroup(g.id, this.machine(g.id))
      else if (g.configIndex === 1 && g.replicas.every((r) => r.role === 'voter')) {
        // The actuator's `create`: this host founds its replica with the group's first configuration, the
        // founders as voters (each founds its own, empty; a founder that comes later catches up from the leader).
        const voters = g.replicas.map((r) => this.nodeOfHost(r.host))
        if (voters.some((v) => v === undefined)) continue // a founder's node number is not known here yet
        await host.createGroup(g.id, { voters: voters as number[], learners: [] }, this.machine(g.id))
      } else {
        this.openedAt.set(g.id, Date.now())
        await host.openEmptyGroup(g.id, this.machine(g.id))
      }
    }
    const now = Date.now()
    for (const id of host.groupIds()) {
      const g = findGroup(c, id)
      if (!g || g.replicas.some((r) => r.host === this.self)) continue
      if (now - (this.openedAt.get(id) ?? 0) < this.o.replicaGraceMs) continue
      const local = host.status(id)
      if (local.role === 'leader') continue
      // Only a catalog record newer than every configuration this replica knows proves it was removed: a record that
      // merely lags (the schema leader was away) must not delete a replica that may hold acknowledged writes.
      if (g.configIndex <= local.configIndex) continue
      this.o.log(`walkenfs: the catalog no longer places ${id} on this host; deleting its replica`)
      this.openedAt.delete(id)
      await host.destroyGroup(id)
    }
  }

  // ---- internals: readiness and progress lines ------------------------------------------

  private checkReady (): void {
    if (this.isReady || this.fatal) return
    // Hellos run for discoverMs before the first ready, so a host of a foreign cluster is refused before the mount uses it.
    if (Date.now() - this.startedAt < this.o.discoverMs) return
    const c = this.catalog()
    if (c.clusterId === null) { this.progress('waiting: this host has no copy of the catalog yet'); return }
    const me = findHost(c, this.self)
    if (!me || me.state !== 'up') { this.progress(`waiting: host ${this.self} is not an active member of the catalog yet`); return }
    const fs = c.tables.find((t) => t.name === FS_TABLE)
    if (!fs) { this.progress('waiting: the filesystem table is not created yet'); return }
    let led = 0
    for (let i = 0; i < fs.fragments; i++) if (findGroup(c, fragmentId(FS_TABLE, i))?.leader != null) led++
    if (led < fs.fragments) { this.progress(`waiting: ${led} of ${fs.fragments} fragments have a leader`); return }
    this.isReady = true
    this.progress(`ready: member of cluster ${c.name} (id ${c.clusterId}) as node ${me.node}, ${c.hosts.filter((h) => h.state !== 'retired').length} host(s)`)
    for (const w of this.readyWaiters.splice(0)) w.resolve()
  }

  private failReady (e: Error): void {
    for (const w of this.readyWaiters.splice(0)) w.reject(e)
  }

  /** A progress line, printed when it changes. */
  private progress (line: string): void {
    if (line === this.lastReason) return
    this.lastReason = line
    this.o.log(`walkenfs: ${line}`)
  }

  private readonly logged = new Map<string, number>()
  /** One line per key per minute (bounded: the map is cleared when it grows). */
  logOnce (key: string, line: string): void {
    const now = Date.now()
    if ((this.logged.get(key) ?? -Infinity) > now - 60_000) return
    if (this.logged.size > 1000) this.logged.clear()
    this.logged.set(key, now)
    this.o.log(line)
  }
}

