/**
 * One member of one Raft group as a pure state machine (the shape of etcd's
 * raft): `tick()`, `step(message)`, `propose()`, `readIndex()`,
 * `transferLeadership()`, `proposeConfChange()` and `compact()` go in;
 * `ready()` hands out what to persist, send and apply; `advance()` closes
 * the batch. No timers, clocks, I/O or ambient randomness: the only random
 * source is the injected seeded `rng`.
 *
 * Promises (checked by test/sim):
 * - at most one leader per term; a vote is given once per term and is part
 *   of the hard state the driver persists before sending the reply;
 * - an entry is committed only by a quorum of the current configuration and
 *   only when it belongs to the leader's term (earlier ones follow);
 * - pre-vote: a node that cannot reach a quorum never raises its term;
 *   check-quorum: a leader that has not heard from a quorum for an election
 *   timeout steps down, and followers that hear from a leader ignore votes;
 * - membership takes effect on append, one step at a time, and only once the
 *   leader has committed an entry of its own term;
 * - ReadIndex: a read point is released only after a quorum confirmed the
 *   leadership in the current term, and only once the leader has committed
 *   an entry of its term.
 * - Lease reads (`leaseMs` > 0, needs checkQuorum): a leader that a quorum
 *   acknowledged a heartbeat sent at time s (the driver's monotonic clock,
 *   passed in as `now`) releases read points at once until s + leaseMs,
 *   without a heartbeat round. Safe because each acknowledging follower
 *   ignores (non-transfer) votes for electionTicks ticks after hearing from
 *   the leader, and a freshly started node ignores them for its first
 *   electionTicks ticks; the driver must choose leaseMs below
 *   (electionTicks - 1) ticks of real time with a margin for clock drift, and
 *   sample `now` after the messages it steps were received. A leader that
 *   started a leadership transfer serves no lease read for the rest of its
 *   term (the transferee may be elected at once).
 * - Follower leases (`followerLeases`, with leases on): a follower serves
 *   linearizable reads from its own log without asking the leader while it
 *   holds a lease. The leader grants one for the follower's answer to a
 *   heartbeat round that asks for one (a follower asks while it serves
 *   reads: a lease makes commits wait for its holder) or for its ReadIndex
 *   request, received (or answered) at leader time a while the leader's own
 *   lease runs to E: it promises to commit nothing without that follower's
 *   acknowledgement until a + d, d = min(leaseMs, E - a), and tells the
 *   follower (with its next heartbeat, or with the read's answer) d and its
 *   commit index c at a. The follower's lease runs d from when it answered
 *   that round or sent that request (before a), so it ends before the
 *   promise and before E, and no other leader can commit before E (the
 *   leader-lease argument above). Within it the follower
 *   answers a read with its commit index once that is >= c and its log
 *   holds nothing beyond it (an entry it holds may be committed already;
 *   anything it does not hold cannot be, because of the promise). The
 *   lease dies with the term, the leader and the follower role. Promises
 *   outlive membership changes until they expire, and a leader hands its
 *   leadership over only once all have expired (a transferee is elected
 *   at once). Cost: a promised follower that stops answering holds commits
 *   back for at most leaseMs.
 * - Idle groups (`idleHeartbeatTicks` > heartbeatTicks): a leader whose
 *   group saw no proposal, read or lease request for idleAfterTicks, whose
 *   followers all hold its last entry and which keeps no promise, beats
 *   every idleHeartbeatTicks instead, until the next proposal, read or
 *   lease request. Heartbeats carry no safety (see tick()); a slower beat
 *   only leaves less room for late ones before a follower campaigns (at
 *   most electionTicks - 4 ticks, so a beat may come 4 ticks late), and
 *   lets the leader's lease lapse between beats, so the first read after
 *   a quiet spell may take a heartbeat round.
 * - Parallel append: a leader's appends may leave before its own copy of
 *   their entries is durable (Ready.early), so leader and followers write
 *   at the same time; see Ready.early for why that keeps every promise.
 * - Live snapshots (`liveSnapshot`): a state machine whose state the driver
 *   keeps durably with its applied index can be read whole at any time, so
 *   the core keeps no copy of it. Compaction records only the position, a
 *   leader reads the state when it must send a snapshot (at the index the
 *   state reflects, between its last compaction and its applied index, so
 *   the entries after it are still in the log), and an installed snapshot's
 *   data is dropped once handed to the driver.
 * Bounds: inflight appends per follower, bytes per append, uncommitted bytes
 * at the leader, entries per proposal and pending read requests.
 */
import { checkChange, cloneConfig, isMember, isVoter, members, quorum } from './config.js'
import { RaftLog, type EntryHead, type LoadEntries } from './log.js'
import { Progress } from './progress.js'
import type { Rng } from './rng.js'
import {
  entrySize, NONE, RaftError,
  type ConfChange, type Entry, type HardState, type Message, type NodeId, type ReadState,
  type Ready, type Role, type Snapshot, type SnapshotMeta
} from './types.js'

/** Test-only switches that each break one rule; the simulator must catch every one. */
export interface RaftFaults {
  /** Skip the once-per-term rule: grant a vote to every candidate whose log is up to date. */
  doubleVote?: boolean
  /** Skip the term step on votes: grant an up-to-date candidate of a newer term without adopting that term, so the vote is not bound to it. */
  voteIgnoringTerm?: boolean
  /** Hand entries to the state machine before they are committed. */
  applyUncommitted?: boolean
  /** Campaign without the pre-vote round even when preVote is on. */
  skipPreVote?: boolean
  /** Lease reads without their guards: no vote-ignoring after a start, leases ten times too long, and a leader within such a lease never steps down for lack of a quorum. */
  unsafeLease?: boolean
  /** Follower leases whose promise the leader does not keep (it commits without the lease holders), held ten times too long. */
  unsafeFollowerLease?: boolean
}

/** The longest idle heartbeat period (module doc, "Idle groups"): a beat may come 4 ticks late before the shortest election timeout. */
export function longestIdleHeartbeat (electionTicks: number): number {
  return electionTicks - 4
}

export interface RaftOptions {
  id: NodeId
  /** Ticks without a leader before campaigning (randomized in [n, 2n)). */
  electionTicks: number
  heartbeatTicks: number
  preVote: boolean
  checkQuorum: boolean
  rng: Rng
  /** Appends in flight per follower in replicate state. */
  maxInflight?: number
  /** Bytes of entries per append message (at least one entry is sent). */
  maxMsgBytes?: number
  /** Bytes of entries the leader holds uncommitted before refusing proposals. */
  maxUncommittedBytes?: number
  /** Read requests waiting for confirmation at the leader. */
  maxPendingReads?: number
  /** A learner is promoted only if it lags the leader's commit by at most this many entries. */
  promoteLag?: number
  /** Lease reads: how long (in the unit of `now`) a quorum's heartbeat acknowledgement lets the leader serve reads alone; 0 = off. */
  leaseMs?: number
  /** Follower leases (see the module doc); needs leaseMs > 0. */
  followerLeases?: boolean
  /**
   * Heartbeat period of a leader whose group is idle (see the module doc);
   * from heartbeatTicks (the default: always the same) to electionTicks - 4.
   */
  idleHeartbeatTicks?: number
  /** Ticks without proposals, reads or lagging followers after which a leader's group counts as idle. */
  idleAfterTicks?: number
  /**
   * The state machine's state as of the log index it reflects, read when a
   * snapshot must be sent (see "Live snapshots" in the module doc). With it
   * `compact` takes no data.
   */
  liveSnapshot?: () => { index: number, data: Uint8Array }
  /**
   * Reads entries back from the driver's durable log. With it the log may
   * drop payloads from memory (`releaseEntries`) and read them back when a
   * follower needs them; without it every entry stays in memory until
   * compaction.
   */
  loadEntries?: LoadEntries
  faults?: RaftFaults
}

const NO_DATA = new Uint8Array(0)

/** What the driver recovered from disk. */
export interface RaftInit {
  hardState: HardState
  /** The last snapshot; at bootstrap a snapshot at index 0 holding the initial configuration. */
  snapshot: Snapshot
  /** Entries after the snapshot; applied ones may come as heads (index, term, payload size) when `loadEntries` is given. */
  entries: Array<Entry | EntryHead>
  /** The state machine's applied index (>= snapshot index). */
  applied: number
}

/** A RaftInit read back whole, every payload included (what recovery reads). */
export type WholeRaftInit = RaftInit & { entries: Entry[] }

interface PendingRead {
  seq: number
  context: string
  index: number
  from: NodeId
  acks: Set<NodeId>
}

export class Raft {
  readonly id: NodeId
  term = 0
  vote: NodeId = NONE
  lead: NodeId = NONE
  role: Role = 'follower'
  readonly log: RaftLog
  /** Why this node last became a candidate; the simulator's disruption checker reads it. */
  lastCampaign: 'election' | 'transfer' | 'none' = 'none'

  private readonly opts: Required<Omit<RaftOptions, 'faults' | 'liveSnapshot' | 'loadEntries'>> & { faults: RaftFaults }
  private readonly liveSnapshot: RaftOptions['liveSnapshot']
  private progress = new Map<NodeId, Progress>()
  private votes = new Map<NodeId, boolean>()
  private electionElapsed = 0
  private heartbeatElapsed = 0
  private randomizedTimeout = 0
  private transferee: NodeId = NONE
  private transferElapsed = 0
  private uncommittedBytes = 0
  private reads: PendingRead[] = []
  private readSeq = 0
  /** the driver's clock as last passed in (see the lease rule in the module doc) */
  private clock = 0
  /** ticks since this node started (the lease start guard) */
  private bootTicks = 0
  /** heartbeat rounds of this term still young enough to start a lease: [seq, sent at] */
  private sentRounds: Array<[number, number]> = []
  /** term in which this leader began a leadership transfer: no lease reads in it */
  private transferTerm = -1
  /** leader: follower → until when (leader's clock) nothing commits without its acknowledgement */
  private promises = new Map<NodeId, number>()
  /** follower: heartbeat rounds of this term answered, [seq, own clock when answered], newest last */
  private answered: Array<[number, number]> = []
  /** follower: ReadIndex requests sent to the leader, context → own clock when sent (a grant may come with the answer) */
  private asked = new Map<string, number>()
  /** follower: bootTicks of the last read asked of it (only a follower that serves reads asks for leases) */
  private readTick = -Infinity
  /** leader: bootTicks of the last proposal, read or lease request (idle groups beat slower) */
  private busyTick = 0
  /** leader: until when its own host may keep rows it read under this leadership cached (cacheLeaseUntil) */
  private selfCacheUntil = -Infinity
  /** leader: a transfer waits for selfCacheUntil (tick() starts it then) */
  private selfCacheWait = false
  /** follower: the read lease held, see the module doc */
  private heldLease: { until: number, commit: number, lead: NodeId, term: number } | undefined
  private snapshot: Snapshot

  private msgs: Message[] = []
  private readStates: ReadState[] = []
  private pendingInstall: Snapshot | undefined
  private pendingCompacted: Snapshot | undefined
  private prevHard: HardState
  /**
   * The last index of this node's log known to be durable: what the driver
   * had persisted when it last called advance(). A leader counts its own
   * copy toward a quorum only up to here, so its appends may leave before
   * its own write (Ready.early) without letting anything commit that a
   * quorum of disks does not hold.
   */
  private stableTo: number
  /** the last index of the log as handed out by the latest ready(), until advance() makes it stableTo */
  private handedTo: number | undefined

  constructor (options: RaftOptions, init: RaftInit) {
    this.opts = {
      maxInflight: 64,
      maxMsgBytes: 1 << 20,
      maxUncommittedBytes: 64 << 20,
      maxPendingReads: 4096,
      promoteLag: 0,
      leaseMs: 0,
      followerLeases: false,
      idleHeartbeatTicks: options.heartbeatTicks,
      idleAfterTicks: options.electionTicks,
      faults: {},
      ...options
    }
    const idle = this.opts.idleHeartbeatTicks
    const longest = longestIdleHeartbeat(this.opts.electionTicks)
    if (!Number.isInteger(idle) || idle < this.opts.heartbeatTicks || (idle > this.opts.heartbeatTicks && idle > longest)) {
      throw new Error(`idleHeartbeatTicks ${idle}: expected heartbeatTicks (${this.opts.heartbeatTicks}) up to electionTicks - 4 (${longest})`)
    }
    this.id = options.id
    this.liveSnapshot = options.liveSnapshot
    this.snapshot = init.snapshot
    this.log = new RaftLog(init.snapshot.meta, init.entries, init.hardState.commit, init.applied, options.loadEntries)
    this.term = init.hardState.term
    this.vote = init.hardState.vote
    this.prevHard = this.hardState()
    this.stableTo = this.log.lastIndex()
    this.resetRandomizedTimeout()
  }

  // ---- inputs ---------------------------------------------------------------

  /**
   * One tick; `now` is the driver's monotonic clock (only lease reads use
   * it). A driver of many groups may pass its own tick count as `phase`:
   * leaders then send heartbeats on the ticks where phase is a multiple of
   * heartbeatTicks, so all its groups beat together and their messages
   * share one batch per peer (an idle host wakes its peers once per
   * heartbeat round, not on every tick). Heartbeats only carry liveness and
   * lease acknowledgements, so their timing is free; safety never rests on it.
   */
  tick (now?: number, phase?: number): void {
    this.observe(now)
    this.bootTicks++
    if (this.role === 'leader') this.tickLeader(phase)
    else this.tickElection()
  }

  /** Proposes application entries; all or none are appended. Returns the last index. */
  propose (datas: Uint8Array[]): number {
    this.mustLead()
    if (this.transferee !== NONE) throw new RaftError('TRANSFERRING', `leadership is moving to ${this.transferee}`, this.lead)
    if (datas.length > 10000) throw new RaftError('TOO_MANY', `${datas.length} entries in one proposal (max 10000)`)
    const es: Entry[] = datas.map((data) => ({ index: 0, term: 0, kind: 'normal' as const, data }))
    this.appendAsLeader(es)
    return this.log.lastIndex()
  }

  proposeConfChange (cc: ConfChange): number {
    this.mustLead()
    if (this.transferee !== NONE) throw new RaftError('TRANSFERRING', `leadership is moving to ${this.transferee}`, this.lead)
    if (this.log.configIndex() > this.log.committed) throw new RaftError('CONF_PENDING', 'a membership change is still uncommitted')
    if (this.log.term(this.log.committed) !== this.term) throw new RaftError('CONF_PENDING', 'the leader has not committed an entry of its term yet')
    const bad = checkChange(this.log.config(), cc)
    if (bad) throw new RaftError('BAD_CONF', bad)
    if (cc.type === 'promote') {
      const pr = this.progress.get(cc.node)
      if (!pr || pr.match + this.opts.promoteLag < this.log.committed) {
        throw new RaftError('BUSY', `learner ${cc.node} has not caught up (match ${pr?.match ?? 0}, commit ${this.log.committed})`)
      }
    }
    this.appendAsLeader([{ index: 0, term: 0, kind: 'conf', conf: cc }])
    return this.log.lastIndex()
  }

  /**
   * Asks for a linearizable read point. The answer arrives as a ReadState in
   * a later Ready (on this node, also when it is a follower).
   */
  readIndex (context: string, now?: number): void {
    this.observe(now)
    if (this.role === 'leader') {
      this.leaderRead(context, this.id)
      return
    }
    if (this.lead === NONE) throw new RaftError('NOT_LEADER', 'no leader known')
    this.readTick = this.bootTicks
    const held = this.followerLeaseRead()
    if (held !== undefined) {
      this.readStates.push({ context, index: held })
      return
    }
    if (this.opts.followerLeases) {
      if (this.asked.size >= this.opts.maxPendingReads) this.asked.delete(this.asked.keys().next().value!)
      this.asked.set(context, this.clock)
    }
    this.send({ type: 'readIndex', to: this.lead, term: this.term, context })
  }

  transferLeadership (to: NodeId): void {
    this.mustLead()
    if (to === this.id) return
    if (!isVoter(this.log.config(), to)) throw new RaftError('BAD_CONF', `node ${to} is not a voter`)
    this.transferTerm = this.term
    this.transferee = to
    this.transferElapsed = 0
    const pr = this.progress.get(to)!
    if (pr.match === this.log.lastIndex()) this.maybeTimeoutNow()
    else this.sendAppend(to, true)
  }

  /**
   * Records a snapshot of the state machine at `index` (<= applied) and drops
   * the log up to it. The driver persists it from the next Ready. With a
   * live snapshot source the data is left out (the state is the snapshot).
   */
  compact (index: number, data?: Uint8Array): void {
    if (data === undefined && this.liveSnapshot === undefined) throw new Error('compact without data needs a live snapshot source')
    const meta = this.log.compact(index)
    this.snapshot = { meta, data: data ?? NO_DATA }
    this.pendingCompacted = this.snapshot
  }

  /**
   * Drops from memory the payloads of entries that are applied, persisted
   * (advance() reported them) and, on a leader, held by every follower
   * heard from lately: what only a lagging follower could still need, and
   * it gets them read back from storage. Returns the bytes freed; nothing
   * without `loadEntries`.
   */
  releaseEntries (): number {
    return this.log.release(Math.min(this.compactionPoint(), this.stableTo))
  }

  /**
   * The highest index compaction can drop the log up to without sending a
   * snapshot to a follower that keeps up: the applied index, and on a leader
   * no further than what every follower heard from lately holds.
   */
  compactionPoint (): number {
    let at = this.log.applied
    if (this.role === 'leader') {
      for (const [id, pr] of this.progress) if (id !== this.id && pr.recentActive) at = Math.min(at, pr.match)
    }
    return at
  }

  step (m: Message, now?: number): void {
    this.observe(now)
    if ((m.type === 'vote' || m.type === 'preVote') && m.term === this.term && !m.transfer && this.startGuard()) return
    if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'preVote') {
        if (this.ignoresVotes() && !m.transfer) return
      }
      if (m.type === 'vote' && this.opts.faults.voteIgnoringTerm === true) {
        if (this.log.isUpToDate(m.index ?? 0, m.logTerm ?? 0)) this.send({ type: 'voteResp', to: m.from, term: m.term })
        return
      }
      if (m.type === 'preVote') {
        // Never raise our term for a pre-vote.
      } else if (m.type === 'preVoteResp' && !m.reject) {
        // A grant carries the term we would campaign in.
      } else {
        const lead = (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap') ? m.from : NONE
        this.becomeFollower(m.term, lead)
      }
    } else if (m.term < this.term) {
      if ((this.opts.checkQuorum || this.opts.preVote) && (m.type === 'app' || m.type === 'heartbeat')) {
        // Tell a stale leader about the newer term so it steps down.
        this.send({ type: 'appResp', to: m.from, term: this.term })
      } else if (m.type === 'preVote') {
        this.send({ type: 'preVoteResp', to: m.from, term: this.term, reject: true })
      }
      return
    }

    switch (m.type) {
      case 'preVote':
      case 'vote': {
        const canVote = this.vote === m.from || (this.opts.faults.doubleVote === true && m.type === 'vote') ||
          (this.vote === NONE && this.lead === NONE) ||
          (m.type === 'preVote' && m.term > this.term)
        const respType = m.type === 'vote' ? 'voteResp' : 'preVoteResp'
        if (canVote && this.log.isUpToDate(m.index ?? 0, m.logTerm ?? 0)) {
          this.send({ type: respType, to: m.from, term: m.term })
          if (m.type === 'vote') {
            this.electionElapsed = 0
            this.vote = m.from
          }
        } else {
          this.send({ type: respType, to: m.from, term: this.term, reject: true })
        }
        return
      }
      default:
        break
    }

    switch (this.role) {
      case 'leader': this.stepLeader(m); break
      case 'candidate':
      case 'preCandidate': this.stepCandidate(m); break
      case 'follower': this.stepFollower(m); break
    }
  }

  // ---- outputs --------------------------------------------------------------

  hardState (): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed }
  }

  hasReady (): boolean {
    const hs = this.hardState()
    return this.msgs.length > 0 || this.readStates.length > 0 ||
      this.pendingInstall !== undefined || this.pendingCompacted !== undefined ||
      this.log.unstableFrom <= this.log.lastIndex() ||
      this.applyLimit() > this.log.applied ||
      hs.term !== this.prevHard.term || hs.vote !== this.prevHard.vote || hs.commit !== this.prevHard.commit
  }

  ready (): Ready {
    const hs = this.hardState()
    const rd: Ready = {
      entries: this.log.takeUnstable(),
      messages: this.msgs,
      early: 0,
      committed: [],
      readStates: this.readStates
    }
    // The driver persisted every earlier Ready before asking for this one,
    // so prevHard's term and vote are durable and so is every entry that is
    // not in rd.entries.
    const sameVote = hs.term === this.prevHard.term && hs.vote === this.prevHard.vote
    if (!sameVote || hs.commit !== this.prevHard.commit) {
      rd.hardState = hs
      this.prevHard = hs
    }
    if (this.role === 'leader' && sameVote && this.pendingInstall === undefined) {
      const apps = rd.messages.filter((m) => m.type === 'app')
      if (apps.length > 0) {
        rd.messages = apps.concat(rd.messages.filter((m) => m.type !== 'app'))
        rd.early = apps.length
      }
    }
    if (this.pendingInstall) {
      rd.snapshot = this.pendingInstall
      // The driver writes it into the state machine; keeping it here too would hold the whole state in memory.
      if (this.liveSnapshot) this.snapshot = { meta: this.pendingInstall.meta, data: NO_DATA }
    }
    if (rd.entries.length > 0 || rd.snapshot) this.handedTo = this.log.lastIndex()
    if (this.pendingCompacted && !this.pendingInstall) rd.compacted = this.pendingCompacted
    this.pendingInstall = undefined
    this.pendingCompacted = undefined
    const limit = this.applyLimit()
    if (limit > this.log.applied) {
      rd.committed = this.log.slice(this.log.applied + 1, limit)
      this.log.applied = limit
    }
    this.msgs = []
    this.readStates = []
    return rd
  }

  /**
   * The driver persisted the last Ready (and sent its messages). A leader's
   * own copy of the entries it handed out now counts toward their quorum,
   * which may commit them (one-voter groups commit here).
   */
  advance (): void {
    if (this.handedTo === undefined) return
    this.stableTo = this.handedTo
    this.handedTo = undefined
    if (this.role !== 'leader') return
    const self = this.progress.get(this.id)
    if (self === undefined || !self.maybeUpdate(Math.min(this.stableTo, this.log.lastIndex()))) return
    if (this.maybeCommit() && this.role === 'leader') this.broadcastAppend()
  }

  private applyLimit (): number {
    return this.opts.faults.applyUncommitted ? this.log.lastIndex() : this.log.committed
  }

  /** The leader's knowledge of how far `id`'s log matches its own (undefined when not leading or not a member). */
  matchOf (id: NodeId): number | undefined {
    return this.role === 'leader' ? this.progress.get(id)?.match : undefined
  }

  /** The latest snapshot (for drivers that serve it and for tests). */
  currentSnapshot (): Snapshot { return this.snapshot }

  config () { return cloneConfig(this.log.config()) }

  // ---- roles ----------------------------------------------------------------

  private reset (term: number): void {
    if (term !== this.term) {
      this.term = term
      this.vote = NONE
    }
    this.lead = NONE
    this.electionElapsed = 0
    this.heartbeatElapsed = 0
    this.resetRandomizedTimeout()
    this.transferee = NONE
    this.votes.clear()
    this.reads = []
    this.sentRounds = []
    this.promises.clear()
    this.answered = []
    this.asked.clear()
    this.heldLease = undefined
    this.uncommittedBytes = 0
    this.progress.clear()
  }

  private becomeFollower (term: number, lead: NodeId): void {
    this.reset(term)
    this.lead = lead
    this.role = 'follower'
  }

  private becomePreCandidate (): void {
    // Keeps term and vote: a pre-vote changes nothing durable.
    this.votes.clear()
    this.lead = NONE
    this.resetRandomizedTimeout()
    this.role = 'preCandidate'
  }

  private becomeCandidate (): void {
    this.reset(this.term + 1)
    this.vote = this.id
    this.role = 'candidate'
  }

  private becomeLeader (): void {
    this.reset(this.term)
    this.lead = this.id
    this.role = 'leader'
    const last = this.log.lastIndex()
    for (const id of members(this.log.config())) this.progress.set(id, new Progress(last + 1, this.opts.maxInflight))
    if (!this.progress.has(this.id)) this.progress.set(this.id, new Progress(last + 1, this.opts.maxInflight))
    const self = this.progress.get(this.id)!
    self.match = Math.min(last, this.stableTo)
    self.becomeReplicate()
    // An entry of the new term lets earlier entries commit and opens reads and membership changes.
    this.appendAsLeader([{ index: 0, term: 0, kind: 'noop' }], true)
  }

  private promotable (): boolean {
    return isVoter(this.log.config(), this.id)
  }

  private campaign (reason: 'election' | 'transfer'): void {
    if (!this.promotable()) return
    if (reason === 'election' && this.opts.preVote && !this.opts.faults.skipPreVote) {
      this.becomePreCandidate()
      this.requestVotes('preVote', this.term + 1, false)
    } else {
      this.becomeCandidate()
      this.lastCampaign = reason
      this.requestVotes('vote', this.term, reason === 'transfer')
    }
  }

  private requestVotes (type: 'preVote' | 'vote', term: number, transfer: boolean): void {
    this.votes.set(this.id, true)
    if (this.tally() === 'won') {
      this.winVote()
      return
    }
    for (const id of this.log.config().voters) {
      if (id === this.id) continue
      const m: Message = { type, from: this.id, to: id, term, index: this.log.lastIndex(), logTerm: this.log.lastTerm() }
      if (transfer) m.transfer = true
      this.send(m)
    }
  }

  private tally (): 'won' | 'lost' | 'pending' {
    const c = this.log.config()
    let yes = 0
    let no = 0
    for (const id of c.voters) {
      const v = this.votes.get(id)
      if (v === true) yes++
      else if (v === false) no++
    }
    const q = quorum(c)
    if (yes >= q) return 'won'
    if (no > c.voters.length - q) return 'lost'
    return 'pending'
  }

  private winVote (): void {
    if (this.role === 'preCandidate') {
      this.becomeCandidate()
      this.lastCampaign = 'election'
      this.requestVotes('vote', this.term, false)
    } else {
      this.becomeLeader()
    }
  }

  // ---- ticks ----------------------------------------------------------------

  private resetRandomizedTimeout (): void {
    this.randomizedTimeout = this.opts.electionTicks + this.opts.rng.int(this.opts.electionTicks)
  }

  private tickElection (): void {
    this.electionElapsed++
    if (this.promotable() && this.electionElapsed >= this.randomizedTimeout) {
      this.electionElapsed = 0
      this.campaign('election')
    }
  }

  private tickLeader (phase: number | undefined): void {
    this.heartbeatElapsed++
    this.electionElapsed++
    if (this.transferee !== NONE && ++this.transferElapsed >= this.opts.electionTicks) this.transferee = NONE
    if (this.electionElapsed >= this.opts.electionTicks) {
      this.electionElapsed = 0
      if (this.opts.checkQuorum) {
        const c = this.log.config()
        let active = 0
        for (const id of c.voters) {
          const pr = this.progress.get(id)
          if (id === this.id || pr?.recentActive) active++
          if (pr) pr.recentActive = false
        }
        if (active < quorum(c) && !(this.opts.faults.unsafeLease === true && this.leaseValid())) {
          this.becomeFollower(this.term, NONE)
          return
        }
      }
    }
    if (this.promises.size > 0) {
      // Promises end by time, not by a message: what they held back may commit now.
      if (this.maybeCommit()) {
        if (this.role !== 'leader') return
        this.broadcastAppend()
      }
      if (this.transferee !== NONE && this.progress.get(this.transferee)?.match === this.log.lastIndex()) this.maybeTimeoutNow()
    }
    if (this.selfCacheWait && this.selfCacheUntil <= this.clock) {
      this.selfCacheWait = false
      if (this.transferee !== NONE && this.progress.get(this.transferee)?.match === this.log.lastIndex()) this.maybeTimeoutNow()
    }
    const every = this.idle() ? this.opts.idleHeartbeatTicks : this.opts.heartbeatTicks
    if (phase !== undefined ? phase % every === 0 : this.heartbeatElapsed >= every) {
      this.heartbeatElapsed = 0
      this.broadcastHeartbeat()
    }
  }

  /**
   * Whether this leader's group is idle: nothing proposed, read or asked
   * for a lease for idleAfterTicks, every follower up to date, no promise
   * and no transfer running. Its heartbeats then only keep followers from
   * campaigning, which a slower beat does as well.
   */
  private idle (): boolean {
    if (this.opts.idleHeartbeatTicks === this.opts.heartbeatTicks) return false
    if (this.bootTicks - this.busyTick < this.opts.idleAfterTicks) return false
    if (this.transferee !== NONE || this.reads.length > 0 || this.promised()) return false
    const last = this.log.lastIndex()
    for (const [id, pr] of this.progress) if (id !== this.id && pr.match < last) return false
    return true
  }

  /** Starts the transferee's election once no follower lease, and no cache this host's kernel keeps under this leadership, can outlive it. */
  private maybeTimeoutNow (): void {
    if (this.transferee === NONE || this.promised()) return
    if (this.selfCacheUntil > this.clock) {
      this.selfCacheWait = true
      return
    }
    this.send({ type: 'timeoutNow', to: this.transferee, term: this.term })
  }

  /** Whether some follower may still hold a lease from this leader (expired promises are dropped). */
  private promised (): boolean {
    for (const [id, until] of this.promises) if (until <= this.clock) this.promises.delete(id)
    return this.promises.size > 0
  }

  // ---- leader ---------------------------------------------------------------

  private mustLead (): void {
    if (this.role !== 'leader') throw new RaftError('NOT_LEADER', this.lead !== NONE ? `node ${this.lead} leads` : 'no leader known', this.lead)
  }

  private appendAsLeader (es: Entry[], force = false): void {
    this.busyTick = this.bootTicks
    let bytes = 0
    for (const e of es) bytes += entrySize(e)
    if (!force && this.uncommittedBytes > 0 && this.uncommittedBytes + bytes > this.opts.maxUncommittedBytes) {
      throw new RaftError('BUSY', `${this.uncommittedBytes} uncommitted bytes at the leader (max ${this.opts.maxUncommittedBytes})`)
    }
    this.uncommittedBytes += bytes
    let i = this.log.lastIndex()
    for (const e of es) {
      e.index = ++i
      e.term = this.term
    }
    const before = this.log.config()
    this.log.append(es)
    if (this.log.config() !== before) this.onConfigChanged()
    // Our own copy counts once it is durable (advance()), not now.
    this.broadcastAppend()
  }

  private onConfigChanged (): void {
    if (this.role !== 'leader') return
    const c = this.log.config()
    const last = this.log.lastIndex()
    for (const id of members(c)) {
      if (!this.progress.has(id)) this.progress.set(id, new Progress(last + 1, this.opts.maxInflight))
    }
    for (const id of [...this.progress.keys()]) {
      if (id !== this.id && !isMember(c, id)) this.progress.delete(id)
    }
    if (this.transferee !== NONE && !isVoter(c, this.transferee)) this.transferee = NONE
  }

  private maybeCommit (): boolean {
    const c = this.log.config()
    const matches = c.voters.map((id) => this.progress.get(id)?.match ?? 0).sort((a, b) => b - a)
    let n = matches[quorum(c) - 1] ?? 0
    if (this.promises.size > 0 && this.opts.faults.unsafeFollowerLease !== true && this.promised()) {
      // A lease holder must hold every entry committed while its lease runs.
      for (const id of this.promises.keys()) n = Math.min(n, this.progress.get(id)?.match ?? 0)
    }
    if (n > this.log.committed && this.log.term(n) === this.term) {
      for (let i = this.log.committed + 1; i <= n; i++) {
        const e = this.log.entry(i)
        if (e) this.uncommittedBytes -= entrySize(e)
      }
      if (this.uncommittedBytes < 0) this.uncommittedBytes = 0
      this.log.commitTo(n)
      this.onCommitAdvanced()
      return true
    }
    return false
  }

  private onCommitAdvanced (): void {
    // A leader removed from the configuration leads until the removal commits, then steps down.
    if (this.role === 'leader' && !isVoter(this.log.config(), this.id) && this.log.configIndex() <= this.log.committed) {
      this.broadcastAppend()
      this.becomeFollower(this.term, NONE)
      return
    }
    this.releaseReads()
  }

  private broadcastAppend (): void {
    for (const id of this.progress.keys()) if (id !== this.id) this.sendAppend(id, true)
  }

  private broadcastHeartbeat (): void {
    // Every round has its own number, newer than every read registered
    // before it: an answer to it confirms those reads and, with leases,
    // dates the leadership the follower acknowledged.
    const readSeq = ++this.readSeq
    if (this.opts.leaseMs > 0) {
      this.sentRounds.push([readSeq, this.clock])
      if (this.sentRounds.length > 64) this.sentRounds.shift()
    }
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue
      const m: Message = { type: 'heartbeat', from: this.id, to: id, term: this.term, commit: Math.min(pr.match, this.log.committed), readSeq }
      if (pr.grant !== undefined) {
        m.leaseSeq = pr.grant.seq
        m.leaseFor = pr.grant.ms
        m.leaseCommit = pr.grant.commit
        pr.grant = undefined
      }
      this.send(m)
    }
  }

  /** Sends what `to` needs next; returns true if it sent entries (so the caller may send more). */
  private sendAppend (to: NodeId, allowEmpty: boolean): boolean {
    const pr = this.progress.get(to)
    if (!pr || pr.isPaused()) return false
    const prevIndex = pr.next - 1
    const prevTerm = this.log.term(prevIndex)
    if (prevTerm === undefined || pr.next < this.log.firstIndex()) {
      this.sendSnapshot(to, pr)
      return false
    }
    const entries = this.log.slice(pr.next, this.log.lastIndex(), this.opts.maxMsgBytes, entrySize)
    if (entries.length === 0 && !allowEmpty) return false
    this.send({ type: 'app', to, term: this.term, index: prevIndex, logTerm: prevTerm, entries, commit: this.log.committed })
    pr.sentAppend(prevIndex + entries.length, entries.length)
    return entries.length > 0
  }

  private sendSnapshot (to: NodeId, pr: Progress): void {
    let snap = this.snapshot
    if (this.liveSnapshot) {
      const { index, data } = this.liveSnapshot()
      const term = this.log.term(index)
      // The state lags the log only while an install waits for the driver; the next heartbeat tries again.
      if (term === undefined || index > this.log.applied) return
      snap = { meta: { index, term, config: cloneConfig(this.log.configAt(index)) }, data }
    }
    pr.becomeSnapshot(snap.meta.index)
    this.send({ type: 'snap', to, term: this.term, snapshot: snap })
  }

  private stepLeader (m: Message): void {
    if (m.type === 'readIndex') {
      try {
        this.leaderRead(m.context ?? '', m.from)
      } catch {
        // The follower's client times out and retries; nothing to answer.
      }
      return
    }
    const pr = this.progress.get(m.from)
    if (!pr) return
    switch (m.type) {
      case 'appResp': {
        pr.recentActive = true
        const index = m.index ?? 0
        if (m.reject) {
          // Only an uninitialized replica (see `uninitialized`) refuses index 0: it needs the snapshot that carries the configuration.
          if (index === 0) {
            this.sendSnapshot(m.from, pr)
            return
          }
          if (pr.maybeDecrTo(index, m.rejectHint ?? 0)) {
            if (pr.state === 'replicate') pr.becomeProbe()
            this.sendAppend(m.from, true)
          }
          return
        }
        const wasPaused = pr.isPaused()
        if (!pr.maybeUpdate(index)) {
          if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) pr.becomeProbe()
          return
        }
        if (pr.state === 'probe') pr.becomeReplicate()
        else if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) {
          pr.becomeProbe()
          pr.becomeReplicate()
        } else if (pr.state === 'replicate') pr.freeUpTo(index)
        if (this.maybeCommit()) {
          if (this.role !== 'leader') return
          this.broadcastAppend()
        } else if (wasPaused) {
          this.sendAppend(m.from, true)
        }
        // Stream more while the window allows; bounded by maxInflight.
        for (let n = 0; n < this.opts.maxInflight && this.sendAppend(m.from, false); n++) { /* keep sending */ }
        if (m.from === this.transferee && pr.match === this.log.lastIndex()) this.maybeTimeoutNow()
        return
      }
      case 'heartbeatResp': {
        pr.recentActive = true
        pr.probeSent = false
        // A lost append would otherwise hold its window slot forever: free one per heartbeat.
        if (pr.state === 'replicate' && pr.inflightFull()) pr.freeFirst()
        if (pr.state === 'snapshot' && ++pr.snapshotWait >= 2 * this.opts.electionTicks / Math.max(1, this.opts.heartbeatTicks)) {
          pr.becomeProbe()
        }
        if (pr.match < this.log.lastIndex()) this.sendAppend(m.from, true)
        if (m.readSeq !== undefined) {
          this.ackReads(m.from, m.readSeq)
          const round = this.sentRounds.find(([seq]) => seq === m.readSeq)
          if (round && round[1] > (pr.ackedAt ?? -Infinity)) pr.ackedAt = round[1]
          if (m.wantLease === true) {
            this.busyTick = this.bootTicks
            const g = this.grant(m.from, pr)
            if (g !== undefined) pr.grant = { seq: m.readSeq, ...g }
          }
        }
        return
      }
      default:
        return
    }
  }

  private observe (now: number | undefined): void {
    if (now !== undefined && now > this.clock) this.clock = now
  }

  /** Whether a vote request (not a transfer) must be ignored: a leader was heard from lately, or this node just started. */
  private ignoresVotes (): boolean {
    if (!this.opts.checkQuorum) return false
    if (this.lead !== NONE && this.electionElapsed < this.opts.electionTicks) return true
    return this.startGuard()
  }

  /** With leases, a node that just started may have acknowledged a lease it no longer remembers: it votes for no one yet. */
  private startGuard (): boolean {
    return this.opts.checkQuorum && this.opts.leaseMs > 0 && !this.opts.faults.unsafeLease && this.bootTicks < this.opts.electionTicks
  }

  /**
   * The commit index if this leader may serve a read at `now` without a
   * heartbeat round (see the lease rule in the module doc), else undefined.
   */
  leaseRead (now: number): number | undefined {
    this.observe(now)
    if (this.role === 'follower') {
      this.readTick = this.bootTicks
      return this.followerLeaseRead()
    }
    this.busyTick = this.bootTicks
    return this.leaseValid() ? this.log.committed : undefined
  }

  /**
   * Until when (the driver's clock) this node's host may keep rows of this
   * group cached without asking, or undefined: a leader's lease end, or a
   * follower's read lease. No other node commits an entry this node has
   * not acknowledged before then (the lease rules in the module doc), so a
   * host that drops its cached rows of every entry before acknowledging it
   * (or, as leader, before proposing it) never shows a stale row. A leader
   * that hands out its lease this way starts no transfer before it ends.
   */
  cacheLeaseUntil (now: number): number | undefined {
    this.observe(now)
    if (this.role === 'leader') {
      if (!this.leaseValid()) return undefined
      const end = this.leaseEnd() as number
      if (end > this.selfCacheUntil) this.selfCacheUntil = end
      return end
    }
    const l = this.heldLease
    if (l === undefined || this.role !== 'follower' || l.term !== this.term || l.lead !== this.lead) return undefined
    if (this.clock >= l.until || !isVoter(this.log.config(), this.id)) return undefined
    return l.until
  }

  private leaseValid (): boolean {
    const end = this.leaseEnd()
    return end !== undefined && this.clock < end
  }

  /** When this leader's lease ends (its clock), or undefined if it has none to give. */
  private leaseEnd (): number | undefined {
    if (this.role !== 'leader' || this.opts.leaseMs <= 0 || !this.opts.checkQuorum) return undefined
    if (this.transferee !== NONE || this.transferTerm === this.term) return undefined
    if (this.log.term(this.log.committed) !== this.term) return undefined
    const c = this.log.config()
    const acked: number[] = []
    for (const id of c.voters) acked.push(id === this.id ? Infinity : this.progress.get(id)?.ackedAt ?? -Infinity)
    acked.sort((a, b) => b - a)
    const start = acked[quorum(c) - 1]
    const lease = this.opts.faults.unsafeLease ? this.opts.leaseMs * 10 : this.opts.leaseMs
    return start === undefined || start === -Infinity ? undefined : start + lease
  }

  /**
   * Grants `id` a read lease for a message of it received now (module doc):
   * records the promise and returns what to tell `id`, or undefined. Only a
   * voter that holds everything committed gets one: a lagging follower
   * would hold commits back for the whole lease.
   */
  private grant (id: NodeId, pr: Progress): { ms: number, commit: number } | undefined {
    if (!this.opts.followerLeases || this.opts.leaseMs <= 0) return undefined
    if (!isVoter(this.log.config(), id) || pr.state !== 'replicate' || pr.match < this.log.committed) return undefined
    const end = this.leaseEnd()
    if (end === undefined) return undefined
    const ms = Math.min(this.opts.leaseMs, end - this.clock)
    if (ms <= 0) return undefined
    const until = this.clock + ms
    if (until > (this.promises.get(id) ?? -Infinity)) this.promises.set(id, until)
    return { ms, commit: this.log.committed }
  }

  /** Follower: its commit index if its read lease lets it serve a read now, else undefined (module doc). */
  private followerLeaseRead (): number | undefined {
    const l = this.heldLease
    if (l === undefined || this.role !== 'follower' || l.term !== this.term || l.lead !== this.lead) return undefined
    if (this.clock >= l.until || this.log.committed < l.commit || this.log.lastIndex() !== this.log.committed) return undefined
    if (!isVoter(this.log.config(), this.id)) return undefined
    return this.log.committed
  }

  private leaderRead (context: string, from: NodeId): void {
    this.busyTick = this.bootTicks
    if (this.log.term(this.log.committed) !== this.term) {
      throw new RaftError('READ_NOT_READY', 'the leader has not committed an entry of its term yet', this.id)
    }
    if (this.leaseValid()) {
      if (from === this.id) this.readStates.push({ context, index: this.log.committed })
      else this.answerRead(from, context, this.log.committed)
      return
    }
    if (this.reads.length >= this.opts.maxPendingReads) throw new RaftError('BUSY', `${this.reads.length} reads pending`, this.id)
    const r: PendingRead = { seq: ++this.readSeq, context, index: this.log.committed, from, acks: new Set([this.id]) }
    this.reads.push(r)
    if (!isVoter(this.log.config(), this.id)) r.acks.delete(this.id)
    this.releaseReads()
    if (this.reads.length > 0) this.broadcastHeartbeat()
  }

  private ackReads (from: NodeId, seq: number): void {
    if (!isVoter(this.log.config(), from)) return
    for (const r of this.reads) if (r.seq <= seq) r.acks.add(from)
    this.releaseReads()
  }

  private releaseReads (): void {
    const c = this.log.config()
    const q = quorum(c)
    let n = 0
    while (n < this.reads.length) {
      const r = this.reads[n]
      let acks = 0
      for (const id of r.acks) if (isVoter(c, id)) acks++
      if (acks < q) break
      n++
    }
    if (n === 0) return
    for (const r of this.reads.splice(0, n)) {
      if (r.from === this.id) this.readStates.push({ context: r.context, index: r.index })
      else this.answerRead(r.from, r.context, r.index)
    }
  }

  /** Answers a follower's read; with follower leases it carries a lease for the time the follower asked. */
  private answerRead (to: NodeId, context: string, index: number): void {
    const m: Message = { type: 'readIndexResp', from: this.id, to, term: this.term, index, context }
    const pr = this.progress.get(to)
    const g = pr !== undefined ? this.grant(to, pr) : undefined
    if (g !== undefined) {
      m.leaseFor = g.ms
      m.leaseCommit = g.commit
    }
    this.send(m)
  }

  // ---- candidate and follower -------------------------------------------------

  private stepCandidate (m: Message): void {
    const want = this.role === 'preCandidate' ? 'preVoteResp' : 'voteResp'
    switch (m.type) {
      case 'app':
      case 'heartbeat':
      case 'snap':
        this.becomeFollower(m.term, m.from)
        this.stepFollower(m)
        return
      case 'preVoteResp':
      case 'voteResp': {
        if (m.type !== want) return
        if (!this.votes.has(m.from)) this.votes.set(m.from, !m.reject)
        const r = this.tally()
        if (r === 'won') this.winVote()
        else if (r === 'lost') this.becomeFollower(this.term, NONE)
        return
      }
      default:
        return
    }
  }

  private stepFollower (m: Message): void {
    switch (m.type) {
      case 'app':
        this.electionElapsed = 0
        this.lead = m.from
        this.handleAppend(m)
        return
      case 'heartbeat':
        this.electionElapsed = 0
        this.lead = m.from
        if ((m.commit ?? 0) > this.log.committed) this.log.commitTo(Math.min(m.commit!, this.log.lastIndex()))
        if (this.opts.followerLeases && typeof m.leaseSeq === 'number') {
          const answered = this.answered.find(([seq]) => seq === m.leaseSeq)
          if (answered !== undefined) this.takeGrant(m, answered[1])
        }
        {
          const r: Message = { type: 'heartbeatResp', from: this.id, to: m.from, term: this.term }
          if (m.readSeq !== undefined) {
            r.readSeq = m.readSeq
            // Only a follower that served reads lately asks: a lease makes every commit wait for its holder.
            if (this.opts.followerLeases && this.bootTicks - this.readTick <= 3 * this.opts.electionTicks) {
              r.wantLease = true
              this.answered.push([m.readSeq, this.clock])
              if (this.answered.length > 8) this.answered.shift()
            }
          }
          this.send(r)
        }
        return
      case 'snap':
        this.electionElapsed = 0
        this.lead = m.from
        this.handleSnapshot(m)
        return
      case 'timeoutNow':
        this.campaign('transfer')
        return
      case 'readIndexResp': {
        const asked = this.asked.get(m.context ?? '')
        if (asked !== undefined) {
          this.asked.delete(m.context ?? '')
          this.takeGrant(m, asked)
        }
        this.readStates.push({ context: m.context ?? '', index: m.index ?? 0 })
        return
      }
      default:
        return
    }
  }

  /**
   * Takes the read lease a heartbeat or a read's answer carries: it runs
   * from `asked`, when this follower answered the round or sent the read
   * it was granted for (before the leader's promise began).
   */
  private takeGrant (m: Message, asked: number): void {
    if (typeof m.leaseFor !== 'number' || !(m.leaseFor > 0) || typeof m.leaseCommit !== 'number' || !Number.isFinite(m.leaseCommit)) return
    const until = asked + Math.min(m.leaseFor, this.opts.leaseMs) * (this.opts.faults.unsafeFollowerLease === true ? 10 : 1)
    const l = this.heldLease
    if (l !== undefined && l.term === this.term && l.lead === m.from && l.until >= until) return
    this.heldLease = { until, commit: m.leaseCommit, lead: m.from, term: this.term }
  }

  /**
   * A replica opened empty for a leader to fill (a new learner): no
   * configuration and no log. It never campaigns (it is no voter) and it
   * must not take entries from index 1, because the group's first
   * configuration lives in the leader's snapshot at index 0, not in an
   * entry: replaying the later membership steps onto an empty configuration
   * would give a wrong one. It refuses appends at index 0 instead, and the
   * leader answers with its snapshot (see stepLeader).
   */
  uninitialized (): boolean {
    if (this.log.snapIndex !== 0 || this.log.lastIndex() !== 0) return false
    const c = this.log.config()
    return c.voters.length === 0 && c.learners.length === 0
  }

  private handleAppend (m: Message): void {
    const prev = m.index ?? 0
    if (this.uninitialized()) {
      this.send({ type: 'appResp', to: m.from, term: this.term, index: 0, reject: true, rejectHint: 0 })
      return
    }
    if (prev < this.log.committed) {
      this.send({ type: 'appResp', to: m.from, term: this.term, index: this.log.committed })
      return
    }
    if (this.log.matchTerm(prev, m.logTerm ?? 0)) {
      const es = m.entries ?? []
      const lastNew = this.log.appendAfter(prev, es)
      this.log.commitTo(Math.min(m.commit ?? 0, lastNew))
      this.send({ type: 'appResp', to: m.from, term: this.term, index: lastNew })
      return
    }
    // Hint: the highest index at or below `prev` whose term is <= the leader's term there.
    let hint = Math.min(prev, this.log.lastIndex())
    const lt = m.logTerm ?? 0
    while (hint > this.log.committed && (this.log.term(hint) ?? 0) > lt) hint--
    this.send({ type: 'appResp', to: m.from, term: this.term, index: prev, reject: true, rejectHint: hint })
  }

  private handleSnapshot (m: Message): void {
    const s = m.snapshot!
    const meta: SnapshotMeta = s.meta
    const fresh = this.uninitialized() && meta.config.voters.length > 0
    if (meta.index <= this.log.committed && !fresh) {
      this.send({ type: 'appResp', to: m.from, term: this.term, index: this.log.committed })
      return
    }
    if (!fresh && this.log.matchTerm(meta.index, meta.term)) {
      // We hold the snapshot's last entry: keep our log, just learn the commit.
      this.log.commitTo(meta.index)
      this.send({ type: 'appResp', to: m.from, term: this.term, index: meta.index })
      return
    }
    this.log.restore(meta)
    this.snapshot = s
    this.pendingInstall = s
    this.pendingCompacted = undefined
    this.send({ type: 'appResp', to: m.from, term: this.term, index: this.log.lastIndex() })
  }

  private send (m: Omit<Message, 'from'> & { from?: NodeId }): void {
    const full = m as Message
    full.from = this.id
    this.msgs.push(full)
  }
}
