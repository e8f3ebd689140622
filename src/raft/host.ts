/**
 * The host driver: binds every Raft group a host holds to the host's lmdb
 * environment (src/store/raft-storage.ts) and to a Transport, and exposes
 * propose / read / membership change / leadership transfer to the layers
 * above.
 *
 * One cycle serves all groups: it collects every group's Ready, writes them
 * all — log, hard state, snapshots, and the state machines' changes with
 * their applied indexes — in ONE synchronous lmdb write transaction, waits
 * until that transaction is flushed, and only then sends the cycle's messages, one
 * batch per destination host (so heartbeats of many groups to one host are
 * one transport message) — except leaders' appends, which leave just
 * before the transaction (Ready.early: followers write their copies while
 * the leader writes and flushes its own). Cycles never overlap; messages and proposals that
 * arrive during a flush are stepped at once and go out with the next cycle.
 *
 * Idle groups cost one tick call per tick and a heartbeat entry in the
 * per-host batch every heartbeat interval; nothing else. Every group beats
 * on the same ticks (the host's tick count is their phase), so an idle host
 * sends one batch per peer per heartbeat interval, not one per tick. A cycle with
 * nothing to persist (only heartbeats, their answers, ReadIndex rounds)
 * skips the transaction and the flush and only sends.
 *
 * Bounds: proposals waiting per group (`maxPendingProposals`), entries per
 * proposal batch (`maxBatch`), reads waiting per group, and a timeout on
 * every proposal and read (outcome reported as unknown).
 */
import type { RootDatabase } from 'lmdb'
import { randomInt } from 'node:crypto'
import { RaftStorage, type GroupId } from '../store/raft-storage.js'
import { longestIdleHeartbeat, Raft, type RaftFaults } from './raft.js'
import { seededRng } from './rng.js'
import type { Envelope, Transport } from './transport.js'
import { RaftError, type ConfChange, type Config, type Entry, type NodeId, type Ready } from './types.js'

/** A group's replicated state machine. Its methods run inside the host's write transaction and must be synchronous. */
export interface GroupStateMachine {
  /** Applies one committed application entry; the return value resolves the proposal. */
  apply (entry: Entry): unknown
  /** Replaces the whole state by a snapshot's data. */
  restore (data: Uint8Array): void
  /** The state as of the last applied entry, for compaction. */
  snapshot (): Uint8Array
  /** Deletes every row the machine keeps (destroyGroup); runs inside the host's write transaction. */
  drop? (): void
  /**
   * Tells the machine which log index its state now reflects: once when the
   * group opens (the stored applied index), after a snapshot restore (the
   * snapshot's index) and after every committed entry of any kind. Runs
   * inside the write transaction like apply; optional (the change feed of
   * src/tables uses it to know which indexes it has seen).
   */
  position? (index: number): void
  /**
   * The machine keeps its whole state in the host's store, written in the
   * same transaction as the applied index, so `snapshot()` can run at any
   * time between cycles: the host then keeps no copy of the state in its
   * snapshots (compaction writes only a position) and reads the state when
   * a snapshot must be sent (Raft's "Live snapshots").
   */
  readonly liveSnapshots?: boolean
  /**
   * What an entry's data may change, for the host's CacheGate: opaque rows,
   * and whether this host proposed it; undefined when it changes nothing a
   * cache could hold. Optional: without it the machine's rows are never
   * cached.
   */
  cacheKeys? (data: Uint8Array): { local: boolean, rows: unknown } | undefined
}

/**
 * Caches outside Raft that keep rows of this host's groups (a cluster
 * mount's kernel names and attributes): the host drops what they hold of
 * an entry's rows before it acknowledges the entry (follower) or proposes
 * it (leader), and tells them for how long they may keep what they read
 * (cacheUntil). Each method returns a promise when something was held,
 * resolved once it is dropped or can no longer be shown (its time ran out);
 * undefined when nothing was held.
 */
export interface CacheGate {
  drop (rows: unknown): Promise<void> | undefined
  /** Drops everything (a snapshot replaced a group's state). */
  dropAll (): Promise<void> | undefined
}

export interface HostOptions {
  id: NodeId
  root: RootDatabase
  transport: Transport
  /** Milliseconds per tick when started with start(). */
  tickMs?: number
  electionTicks?: number
  heartbeatTicks?: number
  /**
   * Heartbeat period of idle groups (raft.ts, "Idle groups"); by default
   * twice heartbeatTicks where that leaves 4 ticks before an election
   * timeout, else heartbeatTicks (no slower beat).
   */
  idleHeartbeatTicks?: number
  /** Compact a group's log once this many entries are applied past its snapshot. */
  compactAfter?: number
  /**
   * Also compact a group with live snapshots once its log holds this many
   * bytes of entries since its snapshot. This bounds the log on disk; in
   * memory a group keeps only what a follower may still need (Raft.releaseEntries).
   */
  compactAfterBytes?: number
  maxPendingProposals?: number
  maxBatch?: number
  /** Ticks before a proposal or read gives up with an unknown outcome. */
  requestTimeoutTicks?: number
  /** Batch proposals that arrive in the same cycle into one append (on by default). */
  batching?: boolean
  /** Test-only rule breakers passed to every group's core. */
  faults?: RaftFaults
  /** A leader that has not heard from a quorum for an election timeout steps down (default true; false only in tests). */
  checkQuorum?: boolean
  /**
   * Makes a cycle's writes durable before its messages leave; default: wait
   * for lmdb's flush of the transaction. A store opened with noSync passes
   * one that really syncs (e.g. `store.noteCommit(); return store.flush()`).
   */
  sync?: () => Promise<void>
  /**
   * Whether the disk has room for another cycle's writes. While it has not,
   * the host takes nothing from its groups' cores (so it persists, applies
   * and answers nothing: to its peers it looks paused) and refuses new
   * proposals with ENOSPC; it resumes by itself once space is freed. Without
   * this check lmdb would fail the cycle's commit, which stops the host.
   */
  room?: () => boolean
  /**
   * Lease reads (see raft.ts): a leader answers reads without a heartbeat
   * round while a quorum acknowledged it recently, and a follower that
   * serves reads answers them alone while it holds a read lease from the
   * leader (follower leases come with this option). Only sound when ticks
   * never run faster than real time, i.e. when the host ticks itself with
   * start(); off by default, the cluster node turns it on.
   */
  leaseReads?: boolean
  /**
   * Told of a cycle's transaction that was not synced because it only
   * applied committed entries (see mustSync); a store with a periodic
   * flush counts it so that flush covers it (optional).
   */
  unsynced?: () => void
}

interface Waiter {
  term: number
  deadline: number
  resolve: (v: unknown, index: number) => void
  reject: (e: Error) => void
}

interface Queued {
  data: Uint8Array
  deadline: number
  /** the entry changes rows a cache may hold: the group is not cacheable until it is applied */
  touches?: boolean
  /** called with the state machine's result and the entry's log index */
  resolve: (v: unknown, index: number) => void
  reject: (e: Error) => void
}

interface Group {
  id: GroupId
  raft: Raft
  sm: GroupStateMachine
  queue: Queued[]
  waiting: Map<number, Waiter>
  /** ReadIndex requests by context; `waiters` are the reads it serves (several once reads share it) */
  reads: Map<string, { index: number | undefined, deadline: number, waiters: Array<{ resolve: () => void, reject: (e: Error) => void }>, resolve: () => void, reject: (e: Error) => void }>
  /** applied index whose writes are committed to lmdb (raft.log.applied runs ahead during a cycle's transaction) */
  visible: number
  /** the index the state machine's rows in lmdb reflect: set when the cycle's transaction commits, before its flush (a live snapshot reads them) */
  stored: number
  /** the newest ReadIndex request no cycle has taken yet (later reads join it) */
  unsentRead?: string
  /** term and vote as last written (mustSync compares) */
  durable: { term: number, vote: NodeId }
  /** whenApplied() callers (bounded by maxPendingProposals) */
  applyWaiters: Array<{ index: number, done: (ok: boolean) => void }>
  /** Cache gate (CacheGate): the newest entry index whose rows a cache may hold */
  touchedUpTo: number
  /** proposals waiting for their rows to be dropped before they are queued */
  preGate: number
  /** something made the group uncacheable since cleanAt was stamped */
  wasDirty: boolean
  /** cache stamp at which the group was last seen cacheable again */
  cleanAt: number
  /** messages held until the caches dropped the rows of entries they acknowledge, and what they wait for */
  held?: Envelope[]
  holdWait?: Promise<unknown>
}

export interface HostStats {
  cycles: number
  /** cycles that wrote (and flushed) something */
  transactions: number
  /** cycles that only applied committed entries: a transaction without a flush */
  applyCycles: number
  /** cycles with only messages and read states to hand out: no write, no flush (heartbeats, ReadIndex) */
  lightCycles: number
  /** proposals handed to this host's groups, and ReadIndex requests made here */
  proposals: number
  reads: number
  /** reads a leader answered from its lease without any round or cycle */
  leaseReads: number
  /** reads a follower answered from its read lease without any round or cycle */
  followerLeaseReads: number
  /** reads that joined another read's ReadIndex request before it left */
  sharedReads: number
  batchesSent: number
  messagesSent: number
  /** messages that left before their cycle's flush (a leader's appends, Ready.early) */
  earlySent: number
  droppedUnknownGroup: number
}

function noSpace (message: string): Error {
  return Object.assign(new Error(`ENOSPC: ${message}`), { code: 'ENOSPC' })
}

/** Whether a Ready has anything to write before its messages may leave. */
/**
 * Whether a Ready's writes must be on disk before its messages leave and
 * its results are told: new entries, a new term or vote, snapshots and
 * compaction. Applying committed entries (and moving the commit index)
 * need not be: those entries are durable in a majority's logs already, and
 * a host that loses its last applies in a machine crash re-applies them
 * from its log. Such cycles commit their transaction and leave the sync to
 * the next cycle that needs one, or to the store's periodic flush.
 */
function mustSync (rd: Ready, grp: Group): boolean {
  if (rd.entries.length > 0 || rd.snapshot !== undefined || rd.compacted !== undefined) return true
  return rd.hardState !== undefined && (rd.hardState.term !== grp.durable.term || rd.hardState.vote !== grp.durable.vote)
}

function mustPersist (rd: Ready): boolean {
  return rd.hardState !== undefined || rd.entries.length > 0 || rd.snapshot !== undefined || rd.compacted !== undefined || rd.committed.length > 0
}

/** The default idle heartbeat period: twice the normal one where it leaves 4 ticks before an election timeout. */
function idleBeat (heartbeatTicks: number, electionTicks: number): number {
  return 2 * heartbeatTicks <= longestIdleHeartbeat(electionTicks) ? 2 * heartbeatTicks : heartbeatTicks
}

export class RaftHost {
  readonly id: NodeId
  readonly storage: RaftStorage
  readonly stats: HostStats = { cycles: 0, transactions: 0, applyCycles: 0, lightCycles: 0, proposals: 0, reads: 0, leaseReads: 0, followerLeaseReads: 0, sharedReads: 0, batchesSent: 0, messagesSent: 0, earlySent: 0, droppedUnknownGroup: 0 }
  private readonly o: Required<Omit<HostOptions, 'faults' | 'sync' | 'room' | 'unsynced'>> & { faults: RaftFaults, sync: () => Promise<void>, room?: () => boolean, unsynced?: () => void }
  /** lease length in ms: below the (electionTicks - 1) ticks a follower ignores votes for, with room for timer and clock drift */
  private readonly leaseMs: number
  private groups = new Map<GroupId, Group>()
  private dirty = new Set<Group>()
  private ticks = 0
  private readSeq = 0
  private readonly nonce = randomInt(2 ** 47).toString(36)
  private running = false
  private scheduled = false
  /** the data disk had no room at the last cycle (see HostOptions.room) */
  private diskFull = false
  private roomRetry: ReturnType<typeof setTimeout> | undefined
  private closed = false
  private timer: NodeJS.Timeout | undefined
  /** The cycle running now, if any (destroyGroup waits for it so no late write resurrects a dropped group). */
  private current: Promise<void> | undefined
  private idleWaiters: Array<() => void> = []
  /** The first storage failure; the host stops rather than run on with a state it cannot persist. */
  failure: Error | undefined
  private cacheGate: CacheGate | undefined
  /** counts the groups' cacheability changes (cacheStamp / cacheUntil) */
  private cacheStampN = 0

  constructor (options: HostOptions) {
    const o = {
      tickMs: 100,
      electionTicks: 10,
      heartbeatTicks: 2,
      compactAfter: 10_000,
      compactAfterBytes: 64 << 20,
      maxPendingProposals: 10_000,
      maxBatch: 1024,
      requestTimeoutTicks: 100,
      batching: true,
      checkQuorum: true,
      leaseReads: false,
      faults: {},
      ...options,
      sync: options.sync ?? (async () => { await options.root.flushed })
    }
    this.o = { ...o, idleHeartbeatTicks: o.idleHeartbeatTicks ?? idleBeat(o.heartbeatTicks, o.electionTicks) }
    this.id = options.id
    this.leaseMs = this.o.leaseReads && this.o.checkQuorum ? Math.floor((this.o.electionTicks - 2) * this.o.tickMs * 0.8) : 0
    this.storage = new RaftStorage(options.root)
    options.transport.listen((from, batch) => this.receive(from, batch))
  }

  /** Creates a new group on this host with its first configuration (all founding members call this). */
  async createGroup (g: GroupId, config: Config, sm: GroupStateMachine): Promise<void> {
    this.writeSync(() => this.storage.bootstrap(g, config))
    await this.o.sync()
    this.openGroup(g, sm)
  }

  /**
   * Opens a replica of g that a leader will fill (a new learner): created
   * with an empty configuration when the host has no state for g, else
   * opened as stored. Such a replica never campaigns and takes its first
   * configuration from the leader's snapshot (see Raft.uninitialized).
   */
  async openEmptyGroup (g: GroupId, sm: GroupStateMachine): Promise<void> {
    if (this.groups.has(g)) return
    if (this.storage.has(g)) { this.openGroup(g, sm); return }
    await this.createGroup(g, { voters: [], learners: [] }, sm)
  }

  /**
   * Runs `body` in one synchronous lmdb write transaction. Every write of
   * the host goes this way: lmdb-js's asynchronous transaction() hands each
   * one to its write thread and back (0.18 ms against 0.01 ms here, and
   * about a tenth of a busy host's JavaScript time in its write queue), and
   * mixing the two kinds in one process once left a cycle waiting forever
   * (docs/performance.md, finding 9). Durability comes from the sync option
   * afterwards, never from the commit itself (the store is opened noSync).
   */
  private writeSync (body: () => void): void {
    this.o.root.transactionSync(body)
  }

  /** Whether g is open (served) on this host. */
  hasGroup (g: GroupId): boolean { return this.groups.has(g) }

  /** Stops serving g: its waiters fail, messages for it are dropped. Its storage stays (openGroup resumes it). */
  closeGroup (g: GroupId): void {
    const grp = this.groups.get(g)
    if (!grp) return
    this.groups.delete(g)
    this.dirty.delete(grp)
    this.failAll(grp, `raft group ${g} was closed on host ${this.id}`)
  }

  /**
   * Closes g and deletes its raft storage and, through the state machine's
   * `drop` (or `sm` for a group that is not open), its rows, in one write
   * transaction made durable before this resolves.
   */
  async destroyGroup (g: GroupId, sm?: GroupStateMachine): Promise<void> {
    const machine = this.groups.get(g)?.sm ?? sm
    this.closeGroup(g)
    // A cycle that collected g's Ready before the close may still write it; let it finish first.
    if (this.current) await this.current
    this.writeSync(() => {
      this.storage.drop(g)
      machine?.drop?.()
    })
    await this.o.sync()
  }

  /** Learners (node ids) of g whose log reached the commit index; empty unless this host leads g. */
  caughtUpLearners (g: GroupId): NodeId[] {
    const r = this.group(g).raft
    if (r.role !== 'leader') return []
    return r.config().learners.filter((n) => (r.matchOf(n) ?? 0) >= r.log.committed)
  }

  /** Opens a group that has state on this host (after a restart, or after createGroup). */
  openGroup (g: GroupId, sm: GroupStateMachine): void {
    if (this.groups.has(g)) throw new Error(`raft group ${g} is already open on host ${this.id}`)
    const init = this.storage.load(g, true)
    const raft = new Raft({
      id: this.id,
      electionTicks: this.o.electionTicks,
      heartbeatTicks: this.o.heartbeatTicks,
      idleHeartbeatTicks: this.o.idleHeartbeatTicks,
      preVote: true,
      checkQuorum: this.o.checkQuorum,
      leaseMs: this.leaseMs,
      followerLeases: this.leaseMs > 0,
      rng: seededRng(randomInt(2 ** 31)),
      liveSnapshot: sm.liveSnapshots === true ? () => ({ index: grp.stored, data: sm.snapshot() }) : undefined,
      loadEntries: (lo, hi) => this.storage.entries(g, lo, hi),
      faults: this.o.faults
    }, init)
    const grp: Group = { id: g, raft, sm, queue: [], waiting: new Map(), reads: new Map(), visible: raft.log.applied, stored: raft.log.applied, applyWaiters: [], durable: { term: init.hardState.term, vote: init.hardState.vote }, touchedUpTo: 0, preGate: 0, wasDirty: false, cleanAt: 0 }
    this.groups.set(g, grp)
    sm.position?.(raft.log.applied)
  }

  /** Proposes `data` to group g; resolves with the state machine's result once applied on this host. */
  async propose (g: GroupId, data: Uint8Array): Promise<unknown> {
    return (await this.proposeIndexed(g, data)).result
  }

  /** propose(), also telling the entry's log index (readers elsewhere can wait until their replica applied it). */
  proposeIndexed (g: GroupId, data: Uint8Array): Promise<{ result: unknown, index: number }> {
    let grp: Group
    try { grp = this.live(g) } catch (e) { return Promise.reject(e as Error) }
    if (grp.raft.role !== 'leader') return Promise.reject(this.notLeader(grp))
    if (this.diskFull && this.o.room?.() === false) return Promise.reject(noSpace(`host ${this.id} has no room on its data disk; group ${g} takes no proposals until space is freed`))
    if (grp.queue.length + grp.waiting.size >= this.o.maxPendingProposals) {
      return Promise.reject(new RaftError('BUSY', `${this.o.maxPendingProposals} proposals pending in group ${g}`))
    }
    this.stats.proposals++
    const deadline = this.ticks + this.o.requestTimeoutTicks
    const keys = this.cacheGate !== undefined ? grp.sm.cacheKeys?.(data) : undefined
    const enqueue = (resolve: (v: { result: unknown, index: number }) => void, reject: (e: Error) => void): void => {
      grp.queue.push({ data, deadline, touches: keys !== undefined, resolve: (result, index) => resolve({ result, index }), reject })
      if (!this.o.batching) this.flushQueue(grp)
      this.markDirty(grp)
    }
    if (keys === undefined) return new Promise(enqueue)
    grp.wasDirty = true
    // Another host's change: this host's caches drop its rows before it can commit (the
    // proposer's own kernel updates itself from its answer). Only this proposal waits:
    // one queued behind it could be what holds the lock a kernel drop needs.
    const dropped = !keys.local ? this.cacheGate?.drop(keys.rows) : undefined
    if (dropped === undefined) return new Promise(enqueue)
    grp.preGate++
    return new Promise((resolve, reject) => {
      void dropped.then(() => {
        grp.preGate--
        if (this.closed || this.failure) reject(new RaftError('NOT_LEADER', `host ${this.id} closed`))
        else enqueue(resolve, reject)
      })
    })
  }

  /**
   * Installs (or removes) the caches of this host's rows (CacheGate). With
   * none, entries are not looked at and cacheUntil says 0.
   */
  setCacheGate (gate: CacheGate | undefined): void {
    this.cacheGate = gate
    for (const grp of this.groups.values()) grp.wasDirty = true
  }

  /** A stamp an operation takes before it reads rows it may let a cache keep (cacheUntil). */
  cacheStamp (): number {
    return this.cacheStampN
  }

  /**
   * Until when (performance.now() ms) a cache may keep rows of g that an
   * operation which took `stamp` (cacheStamp) before reading them read; 0:
   * not at all. Nonzero only while this host holds a lease of g that makes
   * every later commit of g wait for this host (raft.ts cacheLeaseUntil),
   * and only if g had nothing in flight that changes rows from before the
   * stamp until now: every entry that does was appended or proposed here
   * after its rows were dropped, and is applied here already, so the read
   * cannot predate it.
   */
  cacheUntil (g: GroupId, stamp: number): number {
    const grp = this.groups.get(g)
    if (grp === undefined || this.cacheGate === undefined || this.failure || this.closed || this.leaseMs <= 0) return 0
    // Entries a new leader cut from this log were never committed; the ones that replace them are looked at anew.
    const touched = Math.min(grp.touchedUpTo, grp.raft.log.lastIndex())
    if (grp.preGate > 0 || grp.visible < touched || grp.queue.some((q) => q.touches === true)) {
      grp.wasDirty = true
      return 0
    }
    if (grp.wasDirty) {
      grp.wasDirty = false
      grp.cleanAt = ++this.cacheStampN
    }
    if (grp.cleanAt > stamp) return 0
    return grp.raft.cacheLeaseUntil(performance.now()) ?? 0
  }

  /**
   * Whether this host's state machine of g reflects every write committed
   * before the call already, by a lease (a leader within its lease, or a
   * follower holding a read lease, whose store shows the commit index): the
   * read() that would resolve at once, without a promise. False says
   * nothing; read() then asks.
   */
  readNow (g: GroupId): boolean {
    const grp = this.groups.get(g)
    if (grp === undefined || !this.leaseAnswers(grp)) return false
    this.stats.reads++
    return true
  }

  /** Whether a lease answers a read of grp now (counted as a lease read). */
  private leaseAnswers (grp: Group): boolean {
    if (this.leaseMs <= 0 || this.failure || this.closed || grp.raft.role === 'candidate' || grp.raft.role === 'preCandidate') return false
    const index = grp.raft.leaseRead(performance.now())
    if (index === undefined || grp.visible < index) return false
    if (grp.raft.role === 'leader') this.stats.leaseReads++
    else this.stats.followerLeaseReads++
    return true
  }

  /** Resolves once this host's state machine of g reflects every write committed before the call (ReadIndex). */
  read (g: GroupId): Promise<void> {
    let grp: Group
    try { grp = this.live(g) } catch (e) { return Promise.reject(e as Error) }
    this.stats.reads++
    // A leader within its lease, or a follower holding a read lease, whose store already shows
    // the commit index answers at once: no round, no cycle.
    if (this.leaseAnswers(grp)) return Promise.resolve()
    // A ReadIndex request of this group that has not left yet (no cycle took it) serves this read too:
    // its read point is fixed after this read began. Concurrent reads share one round.
    const open = grp.unsentRead !== undefined ? grp.reads.get(grp.unsentRead) : undefined
    if (open !== undefined) {
      this.stats.sharedReads++
      return new Promise<void>((resolve, reject) => { open.waiters.push({ resolve, reject }) })
    }
    if (grp.reads.size >= this.o.maxPendingProposals) return Promise.reject(new RaftError('BUSY', `too many reads pending in group ${g}`))
    // The nonce keeps a late answer to a read from before a restart from matching a new read.
    const ctx = `${this.id}.${this.nonce}.${++this.readSeq}`
    return new Promise<void>((resolve, reject) => {
      try {
        grp.raft.readIndex(ctx, performance.now())
      } catch (e) {
        reject(e as Error)
        return
      }
      const waiters = [{ resolve, reject }]
      grp.reads.set(ctx, {
        index: undefined,
        deadline: this.ticks + this.o.requestTimeoutTicks,
        waiters,
        resolve: () => { for (const w of waiters) w.resolve() },
        reject: (e) => { for (const w of waiters) w.reject(e) }
      })
      grp.unsentRead = ctx
      this.markDirty(grp)
    })
  }

  /** The log index of g whose writes this host's store shows (0 when g is not open). */
  appliedIndex (g: GroupId): number {
    return this.groups.get(g)?.visible ?? 0
  }

  /** Resolves true once this host's store of g shows log index `index`, false after `ms` (or when g closes). */
  whenApplied (g: GroupId, index: number, ms: number): Promise<boolean> {
    const grp = this.groups.get(g)
    if (!grp) return Promise.resolve(false)
    if (grp.visible >= index) return Promise.resolve(true)
    if (grp.applyWaiters.length >= this.o.maxPendingProposals) return Promise.resolve(false)
    return new Promise<boolean>((resolve) => {
      const w = { index, done: (ok: boolean) => { clearTimeout(timer); resolve(ok) } }
      const timer = setTimeout(() => {
        const i = grp.applyWaiters.indexOf(w)
        if (i >= 0) grp.applyWaiters.splice(i, 1)
        resolve(false)
      }, ms)
      grp.applyWaiters.push(w)
    })
  }

  /** Proposes one membership step; resolves with its log index once applied here. */
  changeMembership (g: GroupId, cc: ConfChange): Promise<number> {
    let grp: Group
    let index: number
    try {
      grp = this.live(g)
      index = grp.raft.proposeConfChange(cc)
    } catch (e) {
      return Promise.reject(e as Error)
    }
    this.markDirty(grp)
    return new Promise<number>((resolve, reject) => {
      this.wait(grp, index, { term: grp.raft.term, deadline: this.ticks + this.o.requestTimeoutTicks, resolve: () => resolve(index), reject })
    })
  }

  /**
   * Registers a proposal at `index`. An older proposal waiting at the same
   * index was truncated from this log, yet another host may still commit it.
   */
  private wait (grp: Group, index: number, w: Waiter): void {
    const older = grp.waiting.get(index)
    if (older) older.reject(new RaftError('UNKNOWN', `entry ${index} of group ${grp.id} was overwritten here after a leader change; its outcome is unknown`))
    grp.waiting.set(index, w)
  }

  transferLeadership (g: GroupId, to: NodeId): void {
    const grp = this.group(g)
    grp.raft.transferLeadership(to)
    this.markDirty(grp)
  }

  status (g: GroupId): { role: string, term: number, lead: NodeId, commit: number, applied: number, config: Config, configIndex: number, logBytes: number, heldBytes: number } {
    const r = this.group(g).raft
    return { role: r.role, term: r.term, lead: r.lead, commit: r.log.committed, applied: r.log.applied, config: r.config(), configIndex: r.log.configIndex(), logBytes: r.log.bytes(), heldBytes: r.log.heldBytes() }
  }

  /** Entry payload bytes of every group's log since its snapshot (`logged`), and of those held in memory (`held`). */
  logBytes (): { logged: number, held: number } {
    let logged = 0
    let held = 0
    for (const grp of this.groups.values()) {
      logged += grp.raft.log.bytes()
      held += grp.raft.log.heldBytes()
    }
    return { logged, held }
  }

  groupIds (): GroupId[] { return [...this.groups.keys()] }

  start (): void {
    if (this.timer) return
    this.timer = setInterval(() => this.tick(), this.o.tickMs)
  }

  /** Advances every group's logical clock by one tick. */
  tick (): void {
    if (this.closed) return
    this.ticks++
    const now = performance.now()
    for (const grp of this.groups.values()) {
      grp.raft.tick(now, this.ticks)
      this.expire(grp)
      if (grp.raft.hasReady() || grp.queue.length > 0) this.markDirty(grp)
    }
  }

  /** Resolves when no cycle is running or pending (tests, shutdown). */
  idle (): Promise<void> {
    if (!this.running && !this.scheduled) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  async close (): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    if (this.roomRetry !== undefined) clearTimeout(this.roomRetry)
    this.roomRetry = undefined
    await this.idle()
    this.closed = true
    this.o.transport.close()
    for (const grp of this.groups.values()) this.failAll(grp, `host ${this.id} is shutting down`)
  }

  // ---- internals ----------------------------------------------------------------

  private group (g: GroupId): Group {
    const grp = this.groups.get(g)
    if (!grp) throw new Error(`raft group ${g} is not open on host ${this.id}`)
    if (this.failure) throw new Error(`host ${this.id} stopped after a storage failure: ${this.failure.message}`)
    return grp
  }

  /**
   * group(), for requests that wait for a cycle: a closed host runs none,
   * so such a request would never settle (close() fails only those made
   * before it).
   */
  private live (g: GroupId): Group {
    const grp = this.group(g)
    if (this.closed) throw new Error(`raft group ${g} is not open on host ${this.id}: the host is shut down`)
    return grp
  }

  private notLeader (grp: Group): RaftError {
    const l = grp.raft.lead
    return new RaftError('NOT_LEADER', l ? `host ${l} leads group ${grp.id}` : `group ${grp.id} has no leader right now`, l)
  }

  private receive (_from: NodeId, batch: Envelope[]): void {
    if (this.closed || this.failure) return
    // Sampled after the batch arrived: a lease decision taken while stepping it is valid at this instant (raft.ts).
    const now = performance.now()
    for (const env of batch) {
      const grp = this.groups.get(env.group)
      if (!grp) {
        this.stats.droppedUnknownGroup++
        continue
      }
      grp.raft.step(env.msg, now)
      this.markDirty(grp)
    }
  }

  private markDirty (grp: Group): void {
    this.dirty.add(grp)
    if (!this.scheduled && !this.running && !this.closed) {
      this.scheduled = true
      setImmediate(() => { this.runCycle() })
    }
  }

  /** Runs a cycle for the groups left dirty (after a wait for disk room). */
  private markAnyDirty (): void {
    if (this.dirty.size > 0 && !this.scheduled && !this.running && !this.closed) {
      this.scheduled = true
      setImmediate(() => { this.runCycle() })
    }
  }

  private runCycle (): void {
    const p = this.cycle()
    this.current = p
    void p.finally(() => { if (this.current === p) this.current = undefined })
  }

  /** Hands queued proposals to the core as one batch (bounded by maxBatch). */
  private flushQueue (grp: Group): void {
    while (grp.queue.length > 0) {
      const batch = grp.queue.splice(0, this.o.maxBatch)
      if (grp.raft.role !== 'leader') {
        const err = this.notLeader(grp)
        for (const q of batch) q.reject(err)
        continue
      }
      let last: number
      try {
        last = grp.raft.propose(batch.map((q) => q.data))
      } catch (e) {
        for (const q of batch) q.reject(e as Error)
        continue
      }
      const first = last - batch.length + 1
      batch.forEach((q, k) => {
        if (q.touches === true && first + k > grp.touchedUpTo) grp.touchedUpTo = first + k
        this.wait(grp, first + k, { term: grp.raft.term, deadline: q.deadline, resolve: q.resolve, reject: q.reject })
      })
    }
  }

  private async cycle (): Promise<void> {
    this.scheduled = false
    if (this.running || this.closed) return
    this.running = true
    try {
      if (this.o.room !== undefined && this.dirty.size > 0 && !this.o.room()) {
        if (!this.diskFull) {
          this.diskFull = true
          for (const grp of this.dirty) {
            const queued = grp.queue.splice(0)
            for (const q of queued) q.reject(noSpace(`host ${this.id} has no room on its data disk for group ${grp.id}`))
          }
        }
        // Try again soon; `finally` must not reschedule at once.
        if (this.roomRetry === undefined && !this.closed) {
          this.roomRetry = setTimeout(() => { this.roomRetry = undefined; this.markAnyDirty() }, 250)
        }
        return
      }
      this.diskFull = false
      const work: Array<[Group, Ready]> = []
      for (const grp of this.dirty) {
        grp.unsentRead = undefined
        this.flushQueue(grp)
        if (grp.raft.hasReady()) work.push([grp, grp.raft.ready()])
      }
      this.dirty.clear()
      if (work.length === 0) return
      this.stats.cycles++
      if (this.cacheGate !== undefined) this.gateEntries(work, this.cacheGate)
      const results: Array<[Group, Entry, unknown]> = []
      // A cycle of only messages and read states (heartbeats and their
      // answers, ReadIndex rounds: the bulk of an idle or read-mostly host)
      // has nothing to persist, so nothing a message could run ahead of:
      // no transaction, no fsync.
      if (work.some(([, rd]) => mustPersist(rd))) {
        // A leader's appends go first: its followers write while it writes (Ready.early).
        this.sendMessages(work, true)
        // One transaction for every group: log, hard state, snapshots, state machines and applied indexes.
        // Synchronous, like every write of the host (see writeSync).
        this.writeSync(() => {
          for (const [grp, rd] of work) {
            this.storage.writeReady(grp.id, rd, grp.sm.liveSnapshots === true)
            if (rd.snapshot) {
              grp.sm.restore(rd.snapshot.data)
              grp.sm.position?.(rd.snapshot.meta.index)
            }
            for (const e of rd.committed) {
              results.push([grp, e, e.kind === 'normal' ? grp.sm.apply(e) : undefined])
              grp.sm.position?.(e.index)
            }
            const applied = rd.committed.length > 0 ? rd.committed[rd.committed.length - 1].index : rd.snapshot?.meta.index
            if (applied !== undefined) {
              this.storage.setApplied(grp.id, applied)
              // Read only between cycles, so only once this transaction has committed (a failed one stops the host).
              grp.stored = applied
            }
          }
        })
        if (work.some(([grp, rd]) => mustSync(rd, grp))) {
          await this.o.sync()
          this.stats.transactions++
        } else {
          this.o.unsynced?.()
          this.stats.applyCycles++
        }
        for (const [grp, rd] of work) if (rd.hardState) grp.durable = { term: rd.hardState.term, vote: rd.hardState.vote }
      } else {
        this.stats.lightCycles++
      }
      // Nothing that depends on this cycle's writes left before the flush; now send the rest.
      this.sendMessages(work, false)
      for (const [grp, rd] of work) {
        if (rd.committed.length > 0) grp.visible = rd.committed[rd.committed.length - 1].index
        else if (rd.snapshot) grp.visible = rd.snapshot.meta.index
        if (grp.applyWaiters.length > 0) {
          const ready = grp.applyWaiters.filter((w) => w.index <= grp.visible)
          if (ready.length > 0) {
            grp.applyWaiters = grp.applyWaiters.filter((w) => w.index > grp.visible)
            for (const w of ready) w.done(true)
          }
        }
      }
      for (const [grp, e, result] of results) this.settle(grp, e, result)
      for (const [grp, rd] of work) {
        if (rd.snapshot) this.settleSkipped(grp, rd.snapshot.meta.index)
        for (const rs of rd.readStates) {
          const r = grp.reads.get(rs.context)
          if (r) r.index = rs.index
        }
        this.serveReads(grp)
        grp.raft.advance()
        const raft = grp.raft
        this.maybeCompact(grp)
        // After this cycle's transaction: what is released can be read back.
        raft.releaseEntries()
        if (raft.hasReady()) this.dirty.add(grp)
      }
    } catch (e) {
      this.failure = e as Error
      for (const grp of this.groups.values()) this.failAll(grp, `host ${this.id} stopped after a storage failure: ${(e as Error).message}`)
      if (this.timer) clearInterval(this.timer)
      this.timer = undefined
    } finally {
      this.running = false
      if (this.dirty.size > 0 && !this.closed && !this.failure && !this.diskFull) {
        this.scheduled = true
        setImmediate(() => { this.runCycle() })
      } else {
        for (const w of this.idleWaiters.splice(0)) w()
      }
    }
  }

  /**
   * Compacts a group's log once it is long enough. A machine without live
   * snapshots is copied whole into the snapshot, so only the entry count
   * triggers it. With live snapshots compaction costs a position, so the
   * log's bytes trigger it too, and it stops short of what a follower that
   * keeps up still needs (a snapshot would send it the whole state) unless
   * the log has grown to four times the bound anyway.
   */
  private maybeCompact (grp: Group): void {
    const log = grp.raft.log
    const entries = log.applied - log.snapIndex
    if (grp.sm.liveSnapshots !== true) {
      if (entries >= this.o.compactAfter) grp.raft.compact(log.applied, grp.sm.snapshot())
      return
    }
    const bytes = log.bytes()
    if (entries < this.o.compactAfter && bytes < this.o.compactAfterBytes) return
    const far = entries >= 4 * this.o.compactAfter || bytes >= 4 * this.o.compactAfterBytes
    const at = far ? log.applied : grp.raft.compactionPoint()
    if (at > log.snapIndex) grp.raft.compact(at)
  }

  /**
   * Entries appended here (by a leader's append, or a snapshot installed)
   * change rows a cache may hold: the group is uncacheable until they are
   * applied, and its messages (the acknowledgements among them, and all
   * later ones, in order) wait until the caches dropped the rows of other
   * hosts' entries. A leader's entries of its own term were dropped before
   * they were proposed, so nothing is held for them.
   */
  private gateEntries (work: Array<[Group, Ready]>, gate: CacheGate): void {
    for (const [grp, rd] of work) {
      const waits: Array<Promise<void>> = []
      if (rd.snapshot !== undefined) {
        grp.touchedUpTo = Math.max(grp.touchedUpTo, rd.snapshot.meta.index)
        grp.wasDirty = true
        const p = gate.dropAll()
        if (p !== undefined) waits.push(p)
      }
      if (grp.sm.cacheKeys !== undefined) {
        for (const e of rd.entries) {
          if (e.kind !== 'normal' || e.data === undefined) continue
          const keys = grp.sm.cacheKeys(e.data)
          if (keys === undefined) continue
          if (e.index > grp.touchedUpTo) grp.touchedUpTo = e.index
          grp.wasDirty = true
          // A leader's entries of its own term are its proposals, dropped before they were proposed.
          if (keys.local || (grp.raft.role === 'leader' && e.term === grp.raft.term)) continue
          const p = gate.drop(keys.rows)
          if (p !== undefined) waits.push(p)
        }
      }
      if (waits.length > 0) this.hold(grp, Promise.all(waits))
    }
  }

  /** Holds grp's messages, from now on, until `until` and every earlier hold have settled. */
  private hold (grp: Group, until: Promise<unknown>): void {
    grp.held ??= []
    const wait = grp.holdWait !== undefined ? Promise.all([grp.holdWait, until]) : until
    grp.holdWait = wait
    void wait.then(() => {
      if (grp.holdWait !== wait) return
      const held = grp.held ?? []
      grp.held = undefined
      grp.holdWait = undefined
      if (this.closed || this.failure || this.groups.get(grp.id) !== grp) return
      const byHost = new Map<NodeId, Envelope[]>()
      for (const env of held) {
        let b = byHost.get(env.msg.to)
        if (!b) byHost.set(env.msg.to, b = [])
        b.push(env)
      }
      for (const [to, batch] of byHost) {
        this.stats.batchesSent++
        this.stats.messagesSent += batch.length
        this.o.transport.send(to, batch)
      }
    })
  }

  /**
   * Sends a cycle's messages, one batch per destination host: the early
   * ones (Ready.early) when `early`, else all those not sent yet (a cycle
   * with nothing to persist has no early pass).
   */
  private sendMessages (work: Array<[Group, Ready]>, early: boolean): void {
    const byHost = new Map<NodeId, Envelope[]>()
    for (const [grp, rd] of work) {
      const to = early ? rd.early : rd.messages.length
      for (let i = 0; i < to; i++) {
        const m = rd.messages[i]
        if (grp.held !== undefined) {
          grp.held.push({ group: grp.id, msg: m })
          continue
        }
        let b = byHost.get(m.to)
        if (!b) byHost.set(m.to, b = [])
        b.push({ group: grp.id, msg: m })
      }
      // Sent: the late pass must not send them again.
      if (early) {
        rd.messages = rd.messages.slice(rd.early)
        rd.early = 0
      }
    }
    for (const [to, batch] of byHost) {
      this.stats.batchesSent++
      this.stats.messagesSent += batch.length
      if (early) this.stats.earlySent += batch.length
      this.o.transport.send(to, batch)
    }
  }

  private settle (grp: Group, e: Entry, result: unknown): void {
    const w = grp.waiting.get(e.index)
    if (!w) return
    grp.waiting.delete(e.index)
    if (e.term === w.term) w.resolve(result, e.index)
    else w.reject(new RaftError('NOT_LEADER', `entry ${e.index} of group ${grp.id} was replaced after a leader change; it was not applied`, grp.raft.lead))
  }

  /** A snapshot jumped over waiting proposals: whether they made it is unknown here. */
  private settleSkipped (grp: Group, upTo: number): void {
    for (const [i, w] of grp.waiting) {
      if (i <= upTo) {
        grp.waiting.delete(i)
        w.reject(new RaftError('UNKNOWN', `outcome of entry ${i} in group ${grp.id} is unknown (a snapshot replaced the log)`))
      }
    }
  }

  private serveReads (grp: Group): void {
    for (const [ctx, r] of grp.reads) {
      if (r.index !== undefined && grp.visible >= r.index) {
        grp.reads.delete(ctx)
        r.resolve()
      }
    }
  }

  private expire (grp: Group): void {
    for (const [i, w] of grp.waiting) {
      if (w.deadline <= this.ticks) {
        grp.waiting.delete(i)
        w.reject(new RaftError('UNKNOWN', `proposal at index ${i} in group ${grp.id} timed out; its outcome is unknown`))
      }
    }
    for (const [ctx, r] of grp.reads) {
      if (r.deadline <= this.ticks) {
        grp.reads.delete(ctx)
        r.reject(new RaftError('BUSY', `read in group ${grp.id} timed out`))
      }
    }
    if (grp.queue.length > 0 && grp.raft.role !== 'leader') {
      const err = this.notLeader(grp)
      for (const q of grp.queue.splice(0)) q.reject(err)
    }
  }

  /** Fails every request of a group: queued ones never reached the log; appended ones may still commit. */
  private failAll (grp: Group, why: string): void {
    for (const q of grp.queue.splice(0)) q.reject(new RaftError('BUSY', `${why}; the proposal was not made`))
    for (const w of grp.waiting.values()) w.reject(new RaftError('UNKNOWN', `${why}; the outcome of the proposal is unknown`))
    grp.waiting.clear()
    for (const r of grp.reads.values()) r.reject(new RaftError('BUSY', `${why}; the read was abandoned`))
    grp.reads.clear()
    for (const w of grp.applyWaiters.splice(0)) w.done(false)
  }
}
