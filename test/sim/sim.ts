/**
 * The deterministic Raft simulator: one seed fixes one schedule. It runs the
 * real core (src/raft/raft.ts) on several simulated hosts and simulates only
 * what the issue allows: the network (drop, delay, reorder, duplication,
 * symmetric / asymmetric / leader-isolating / flapping partitions) and time
 * (per-host tick skew, disk latency with slow disks, crash and restart that
 * lose whatever was not flushed yet, including power loss of every host at
 * once). A key-value register workload runs through propose and ReadIndex
 * (clients talk to any host, so follower reads are forwarded); membership
 * steps, leadership transfers and batched proposals run in some schedules;
 * nodes compact their logs, so snapshots travel.
 *
 * Debug aids: SIM_DEBUG=1 dumps every host and the failing key's history on
 * a violation; SIM_TRACE=<client.seq> follows one write.
 *
 * A schedule has a chaos phase, then heals (network reliable, every host up)
 * and must make progress — commit a marker entry and have every voter apply
 * it — within a bounded time. The checkers (checkers.ts, linearizability.ts)
 * turn any broken promise into a violation string.
 *
 * Durable-state model: a host's "disk" holds hard state, entries and the
 * snapshot (written when a flush completes) plus the state machine with its
 * applied index (written atomically at apply time, as the lmdb driver does).
 */
import { Raft, type RaftFaults } from '../../src/raft/raft.js'
import { seededRng, type Rng } from '../../src/raft/rng.js'
import {
  RaftError, type Entry, type HardState, type Message, type Ready, type Role, type Snapshot
} from '../../src/raft/types.js'
import { quorum } from '../../src/raft/config.js'
import { Checkers, entryKey } from './checkers.js'
import { EventHeap } from './heap.js'
import { checkRegisters, type RegisterOp } from './linearizability.js'

export interface SimConfig {
  seed: number
  faults?: RaftFaults
  /** Test-only fault: send a Ready's messages before its writes are flushed. */
  replyBeforeFlush?: boolean
  /** Test-only fault: answer reads from the local state machine, skipping ReadIndex. */
  localReads?: boolean
  /**
   * Lease reads on (raft.ts): the lease is 80 % of (electionTicks - 2) ticks
   * of the fastest host's tick, as the RaftHost chooses it from its own tick;
   * followers take read leases too, as on a RaftHost.
   */
  lease?: boolean
  /**
   * Live snapshots (raft.ts): the core reads a host's state machine when it
   * sends a snapshot, compaction stores no data (at the compaction point or
   * at the applied index, by the schedule's dice), and an installed
   * snapshot is kept on disk without its data.
   */
  live?: boolean
  /**
   * Cache leases (raft.ts cacheLeaseUntil, host.ts CacheGate; needs
   * lease): a host keeps the value a read answered until its lease ends,
   * if nothing that writes was in flight on it from the read's start to
   * its answer, and clients are sometimes answered from that cache alone.
   * A host drops the keys of an entry before it acknowledges it (a
   * follower, before the messages of that flush) or proposes it (a
   * leader), and everything on a snapshot or a restart: the model of a
   * cluster mount's kernel caches.
   */
  cache?: boolean
  /** Test-only fault (cache): hosts acknowledge entries without dropping what their caches keep of them. */
  cacheNoDrop?: boolean
  /** Test-only fault (cache): a read is cached even when a write was in flight on its host meanwhile. */
  cacheInFlight?: boolean
  /** Length of the chaos phase, in simulated milliseconds. */
  chaosTime?: number
  /** Bound on reaching progress after the network heals. */
  healBound?: number
}

export interface SimResult {
  seed: number
  violation?: string
  stats: { events: number, ops: number, elections: number, snapshotsSent: number, crashes: number, confChanges: number, endTime: number, cacheReads: number }
}

interface Disk {
  hard: HardState
  snapshot: Snapshot
  entries: Entry[]
  sm: Map<string, string>
  applied: number
}

interface PendingWrite { op: RegisterOp, client: number, tag: string }
interface PendingRead { op: RegisterOp, client: number, index: number | undefined, stamp: number }

interface Host {
  id: number
  up: boolean
  epoch: number
  raft: Raft | undefined
  disk: Disk
  sm: Map<string, string>
  flushing: Ready | undefined
  tickEvery: number
  /** ticks so far; hosts with an even tickEvery pass it as the heartbeat phase, as RaftHost does */
  ticks: number
  diskLatency: number
  compactAfter: number
  /** releases applied entries from memory and reads them back from its disk */
  releases: boolean
  prevRole: Role
  prevTerm: number
  checkedCommit: number
  touched: Set<number>
  writes: Map<number, PendingWrite>
  reads: Map<string, PendingRead>
  /** cache model (SimConfig.cache): key → value and until when it may be shown */
  cache: Map<string, { value: string | null, until: number }>
  /** newest index whose entry writes, appended or proposed here */
  touchedUpTo: number
  wasDirty: boolean
  cleanAt: number
}

interface Client { id: number, target: number, seq: number, opSeq: number, busy: boolean }

type Event =
  | { time: number, seq: number, kind: 'tick', host: number }
  | { time: number, seq: number, kind: 'deliver', msg: Message }
  | { time: number, seq: number, kind: 'flush', host: number, epoch: number }
  | { time: number, seq: number, kind: 'client', client: number }
  | { time: number, seq: number, kind: 'timeout', client: number, opSeq: number }
  | { time: number, seq: number, kind: 'partition' }
  | { time: number, seq: number, kind: 'healLinks' }
  | { time: number, seq: number, kind: 'flap' }
  | { time: number, seq: number, kind: 'crash' }
  | { time: number, seq: number, kind: 'restart', host: number }
  | { time: number, seq: number, kind: 'conf' }
  | { time: number, seq: number, kind: 'transfer' }
  | { time: number, seq: number, kind: 'noise' }
  | { time: number, seq: number, kind: 'heal' }
  | { time: number, seq: number, kind: 'probe' }

type EventBody = Event extends infer E ? E extends Event ? Omit<E, 'time' | 'seq'> : never : never

const enc = new TextEncoder()
const dec = new TextDecoder()

/** The key an entry writes (a client write), or undefined (noise, markers, noops, configuration). */
function writtenKey (e: Entry): string | undefined {
  if (e.kind !== 'normal' || e.data === undefined) return undefined
  const txt = dec.decode(e.data)
  if (!txt.startsWith('{')) return undefined
  return (JSON.parse(txt) as { k: string }).k
}
const ELECTION_TICKS = 10
const HEARTBEAT_TICKS = 2
/** the shortest tick of any host, in simulated milliseconds */
const MIN_TICK = 8
/** Bound on events per schedule: a runaway schedule is a bug, reported as one. */
const MAX_EVENTS = 2_000_000

export function runSchedule (cfg: SimConfig): SimResult {
  return new Simulation(cfg).run()
}

class Simulation {
  private rng: Rng
  private now = 0
  private seqNo = 0
  private q = new EventHeap<Event>()
  private hosts: Host[] = []
  private clients: Client[] = []
  private links: boolean[][] = []
  private checkers = new Checkers()
  private history: RegisterOp[] = []
  private stats = { events: 0, ops: 0, elections: 0, snapshotsSent: 0, crashes: 0, confChanges: 0, endTime: 0, cacheReads: 0 }
  /** cache model: counts the hosts' cacheability changes (as RaftHost.cacheStamp) */
  private cacheStampN = 0

  // schedule parameters
  private readonly n: number
  private readonly initialVoters: number[]
  private readonly membership: boolean
  private dropRate: number
  private dupRate: number
  private readonly maxDelay: number
  private readonly keys: string[]
  private readonly chaosTime: number
  private readonly healBound: number
  private healed = false
  private flapLink: [number, number] | undefined
  private flapUntil = 0
  private markerIndex = 0
  private markerTag = ''
  private done = false

  constructor (private readonly cfg: SimConfig) {
    this.rng = seededRng(cfg.seed * 2654435761 + 12345)
    const r = this.rng
    this.n = r.next() < 0.5 ? 3 : 5
    this.membership = this.n === 5 && r.next() < 0.5
    this.initialVoters = this.membership ? [1, 2, 3] : Array.from({ length: this.n }, (_, i) => i + 1)
    this.dropRate = [0, 0.01, 0.05, 0.15][r.int(4)]
    this.dupRate = [0, 0.02, 0.1][r.int(3)]
    this.maxDelay = [3, 10, 40][r.int(3)]
    this.keys = ['a', 'b', 'c', 'd'].slice(0, 2 + r.int(3))
    this.chaosTime = cfg.chaosTime ?? 3000
    this.healBound = cfg.healBound ?? 3000
    const slow = r.next() < 0.3 ? 1 + r.int(this.n) : 0
    for (let id = 1; id <= this.n; id++) {
      const snapshot: Snapshot = { meta: { index: 0, term: 0, config: { voters: [...this.initialVoters], learners: [] } }, data: enc.encode('[]') }
      this.hosts.push({
        id,
        up: true,
        epoch: 0,
        raft: undefined,
        disk: { hard: { term: 0, vote: 0, commit: 0 }, snapshot, entries: [], sm: new Map(), applied: 0 },
        sm: new Map(),
        flushing: undefined,
        tickEvery: MIN_TICK + r.int(5),
        ticks: 0,
        diskLatency: id === slow ? 20 + r.int(40) : 1 + r.int(3),
        compactAfter: 10 + r.int(60),
        // Half of the hosts release applied entries (RaftLog.release); chosen without drawing, so seeds replay as before.
        releases: (this.cfg.seed + id) % 2 === 0,
        prevRole: 'follower',
        prevTerm: 0,
        checkedCommit: 0,
        touched: new Set(),
        writes: new Map(),
        reads: new Map(),
        cache: new Map(),
        touchedUpTo: 0,
        wasDirty: false,
        cleanAt: 0
      })
    }
    this.links = Array.from({ length: this.n + 1 }, () => Array<boolean>(this.n + 1).fill(true))
  }

  run (): SimResult {
    for (const h of this.hosts) {
      this.boot(h)
      this.at(this.rng.int(h.tickEvery) + 1, { kind: 'tick', host: h.id })
    }
    for (let c = 0; c < 3; c++) {
      this.clients.push({ id: c, target: 1 + this.rng.int(this.n), seq: 0, opSeq: 0, busy: false })
      this.at(10 + this.rng.int(50), { kind: 'client', client: c })
    }
    this.at(200 + this.rng.int(400), { kind: 'partition' })
    this.at(300 + this.rng.int(600), { kind: 'crash' })
    if (this.membership) this.at(300 + this.rng.int(400), { kind: 'conf' })
    if (this.rng.next() < 0.5) this.at(300 + this.rng.int(600), { kind: 'transfer' })
    if (this.rng.next() < 0.5) this.at(50 + this.rng.int(200), { kind: 'noise' })
    this.at(this.chaosTime, { kind: 'heal' })

    while (!this.done && this.checkers.violation === undefined) {
      const ev = this.q.pop()
      if (!ev) break
      this.now = ev.time
      if (++this.stats.events > MAX_EVENTS) {
        this.checkers.fail(`schedule exceeded ${MAX_EVENTS} events`)
        break
      }
      try {
        this.handle(ev)
      } catch (e) {
        // The core's own assertions (e.g. a conflict below the commit point) count as violations.
        this.checkers.fail(`exception at ${this.now}: ${(e as Error).message}`)
        if (process.env.SIM_DEBUG) console.log((e as Error).stack)
        break
      }
      if (this.healed && this.now > this.chaosTime + this.healBound && !this.done) {
        this.checkers.fail(`no progress within ${this.healBound} ms after the network healed (marker ${this.markerIndex > 0 ? 'committed at ' + this.markerIndex + ' but not applied by every voter' : 'not committed'})`)
      }
    }
    // Writes still waiting when the run stops may yet commit: their outcome is unknown.
    for (const h of this.hosts) for (const w of h.writes.values()) { w.op.response = Infinity; this.history.push(w.op) }
    if (this.checkers.violation === undefined) {
      const lin = checkRegisters(this.history)
      if (lin.ok === false) {
        this.checkers.fail(`history of key ${lin.key} is not linearizable (${lin.ops.length} operations)`)
        if (process.env.SIM_DEBUG) for (const op of [...lin.ops].sort((a, b) => a.invoke - b.invoke)) console.log(JSON.stringify(op))
      }
      else if (lin.ok === 'unknown') this.checkers.fail(`linearizability search of key ${lin.key} exceeded its bound`)
    }
    this.stats.endTime = this.now
    if (process.env.SIM_DEBUG && this.checkers.violation !== undefined) this.dump()
    const out: SimResult = { seed: this.cfg.seed, stats: this.stats }
    if (this.checkers.violation !== undefined) out.violation = this.checkers.violation
    return out
  }

  private dump (): void {
    for (const h of this.hosts) {
      const r = h.raft
      console.log(`host ${h.id} up=${h.up} flushing=${h.flushing !== undefined} applied=${h.disk.applied}` + (r ? ` role=${r.role} term=${r.term} lead=${r.lead} commit=${r.log.committed} last=${r.log.lastIndex()} snap=${r.log.snapIndex} conf=${JSON.stringify(r.log.config())} ${JSON.stringify((r as any).progress ? [...(r as any).progress].map(([k, p]: [number, any]) => [k, p.state, p.match, p.next, p.probeSent, p.inflight?.length]) : [])}` : ''))
    }
  }

  private at (delay: number, body: EventBody): void {
    this.q.push({ ...body, time: this.now + delay, seq: this.seqNo++ } as Event)
  }

  // ---- hosts ----------------------------------------------------------------

  private boot (h: Host): void {
    const d = h.disk
    h.raft = new Raft({
      id: h.id,
      electionTicks: ELECTION_TICKS,
      heartbeatTicks: HEARTBEAT_TICKS,
      preVote: true,
      checkQuorum: true,
      rng: seededRng(this.rng.int(2 ** 31)),
      maxInflight: 4,
      maxMsgBytes: 512,
      maxUncommittedBytes: 4096,
      leaseMs: this.cfg.lease === true ? Math.floor((ELECTION_TICKS - 2) * MIN_TICK * 0.8) : 0,
      followerLeases: this.cfg.lease === true,
      // Quiet groups beat slower, as on real hosts; idle after one election timeout so schedules reach it often.
      idleHeartbeatTicks: 2 * HEARTBEAT_TICKS,
      idleAfterTicks: ELECTION_TICKS,
      liveSnapshot: this.cfg.live === true ? () => ({ index: h.disk.applied, data: enc.encode(JSON.stringify([...h.sm])) }) : undefined,
      // Released entries are read back from this host's disk: one missing there is the bug a release rule would have.
      loadEntries: h.releases ? (lo, hi) => h.disk.entries.filter((e) => e.index >= lo && e.index <= hi) : undefined,
      faults: this.cfg.faults ?? {}
    }, { hardState: { ...d.hard }, snapshot: d.snapshot, entries: d.entries.slice(), applied: d.applied })
    h.sm = new Map(d.sm)
    h.flushing = undefined
    h.prevRole = 'follower'
    h.prevTerm = d.hard.term
    h.checkedCommit = d.snapshot.meta.index
    h.writes.clear()
    h.reads.clear()
    h.cache.clear()
    h.wasDirty = true
  }

  private handle (ev: Event): void {
    switch (ev.kind) {
      case 'tick': {
        const h = this.host(ev.host)
        this.at(h.tickEvery, { kind: 'tick', host: h.id })
        if (!h.up) return
        h.ticks++
        h.raft!.tick(this.now, h.tickEvery % 2 === 0 ? h.ticks : undefined)
        this.afterStep(h)
        return
      }
      case 'deliver': {
        const m = ev.msg
        const h = this.host(m.to)
        if (!h.up || !this.links[m.from][m.to]) return
        if (m.type === 'snap') this.stats.snapshotsSent++
        h.raft!.step(m, this.now)
        this.afterStep(h)
        return
      }
      case 'flush': {
        const h = this.host(ev.host)
        if (!h.up || h.epoch !== ev.epoch) return
        this.finishFlush(h)
        return
      }
      case 'client': this.clientOp(this.clients[ev.client]); return
      case 'timeout': this.clientTimeout(this.clients[ev.client], ev.opSeq); return
      case 'partition': this.partition(); return
      case 'healLinks':
        this.setAllLinks(true)
        this.flapUntil = 0
        if (!this.healed) this.at(200 + this.rng.int(500), { kind: 'partition' })
        return
      case 'flap':
        if (this.healed || this.flapLink === undefined || this.now > this.flapUntil) return
        {
          const [a, b] = this.flapLink
          const up = !this.links[a][b]
          this.links[a][b] = up
          this.links[b][a] = up
          this.topologyChanged()
          this.at(5 + this.rng.int(40), { kind: 'flap' })
        }
        return
      case 'crash': this.crash(); return
      case 'restart': this.restart(this.host(ev.host)); return
      case 'conf': this.confStep(); return
      case 'transfer': this.transfer(); return
      case 'noise': this.noise(); return
      case 'heal': this.heal(); return
      case 'probe': this.probe(); return
    }
  }

  private host (id: number): Host { return this.hosts[id - 1] }

  private afterStep (h: Host): void {
    this.observe(h)
    if (!h.flushing && h.raft!.hasReady()) {
      const rd = h.raft!.ready()
      h.flushing = rd
      if (this.cfg.cache === true) {
        for (const e of rd.entries) if (writtenKey(e) !== undefined) this.touch(h, e.index)
        if (rd.snapshot) this.touch(h, rd.snapshot.meta.index)
      }
      const early = this.cfg.replyBeforeFlush ? rd.messages.length : rd.early
      this.sendAll(rd.messages.slice(0, early))
      rd.messages = rd.messages.slice(early)
      this.at(h.diskLatency + this.rng.int(2), { kind: 'flush', host: h.id, epoch: h.epoch })
    }
  }

  private finishFlush (h: Host): void {
    const rd = h.flushing!
    h.flushing = undefined
    const d = h.disk
    // 1. persist (one atomic write)
    if (rd.snapshot) {
      d.snapshot = this.cfg.live === true ? { meta: rd.snapshot.meta, data: new Uint8Array(0) } : rd.snapshot
      d.entries = []
    }
    if (rd.compacted) {
      d.snapshot = rd.compacted
      d.entries = d.entries.filter((e) => e.index > rd.compacted!.meta.index)
    }
    if (rd.entries.length > 0) {
      const from = rd.entries[0].index
      d.entries = d.entries.filter((e) => e.index < from).concat(rd.entries)
    }
    if (rd.hardState) d.hard = { ...rd.hardState }
    // 2. send, having dropped what the cache keeps of the entries they acknowledge
    if (this.cfg.cache === true && this.cfg.cacheNoDrop !== true) {
      if (rd.snapshot) h.cache.clear()
      for (const e of rd.entries) {
        const k = writtenKey(e)
        if (k !== undefined) h.cache.delete(k)
      }
    }
    this.sendAll(rd.messages)
    // 3. apply (state machine and applied index move together)
    if (rd.snapshot) {
      h.sm = new Map(JSON.parse(dec.decode(rd.snapshot.data)) as Array<[string, string]>)
      d.applied = rd.snapshot.meta.index
    }
    for (const e of rd.committed) this.apply(h, e)
    d.sm = new Map(h.sm)
    for (const rs of rd.readStates) {
      const r = h.reads.get(rs.context)
      if (r) r.index = rs.index
    }
    this.serveReads(h)
    h.raft!.advance()
    if (h.releases) h.raft!.releaseEntries()
    // Compaction keeps the in-memory log bounded and makes snapshots travel.
    const raft = h.raft!
    if (raft.log.applied - raft.log.snapIndex > h.compactAfter) {
      if (this.cfg.live !== true) raft.compact(raft.log.applied, enc.encode(JSON.stringify([...h.sm])))
      else {
        const at = this.rng.int(2) === 0 ? raft.compactionPoint() : raft.log.applied
        if (at > raft.log.snapIndex) raft.compact(at)
      }
    }
    this.afterStep(h)
  }

  private apply (h: Host, e: Entry): void {
    this.checkers.appliedEntry(h.id, h.disk.applied, e)
    h.disk.applied = e.index
    if (e.kind === 'normal' && e.data) {
      const txt = dec.decode(e.data)
      if (txt.startsWith('noise:')) {
        // filler: no state change
      } else if (txt.startsWith('marker:')) {
        if (this.healed && this.markerIndex === 0) this.markerIndex = e.index
      } else {
        const w = JSON.parse(txt) as { t: string, k: string, v: string }
        h.sm.set(w.k, w.v)
      }
    }
    if (process.env.SIM_TRACE && e.data && dec.decode(e.data).includes(`"t":"${process.env.SIM_TRACE}"`)) console.log(`t=${this.now} host ${h.id} applies ${process.env.SIM_TRACE} at ${e.index} term ${e.term}; waiting there: ${h.writes.get(e.index)?.tag}`)
    const p = h.writes.get(e.index)
    if (p) {
      h.writes.delete(e.index)
      const cl = this.clients[p.client]
      const mine = e.kind === 'normal' && e.data !== undefined && dec.decode(e.data).includes(`"t":"${p.tag}"`)
      if (mine) {
        p.op.response = this.now
        this.history.push(p.op)
      }
      // Another entry at our index: ours was truncated and can never commit.
      this.finishOp(cl, p.op)
    }
  }

  private serveReads (h: Host): void {
    for (const [ctx, r] of h.reads) {
      if (r.index !== undefined && h.disk.applied >= r.index) {
        h.reads.delete(ctx)
        r.op.value = h.sm.get(r.op.key) ?? null
        r.op.response = this.now
        this.history.push(r.op)
        if (this.cfg.cache === true) {
          const until = this.cacheUntil(h, r.stamp)
          if (until !== undefined && until > this.now) h.cache.set(r.op.key, { value: r.op.value, until })
        }
        this.finishOp(this.clients[r.client], r.op)
      }
    }
  }

  /** An entry that writes (or a snapshot) at `index` is appended or proposed on h: no caching until h applied it. */
  private touch (h: Host, index: number): void {
    if (index > h.touchedUpTo) h.touchedUpTo = index
    h.wasDirty = true
  }

  /** As RaftHost.cacheUntil: until when h may keep what a read that began at `stamp` answered. */
  private cacheUntil (h: Host, stamp: number): number | undefined {
    const raft = h.raft!
    if (this.cfg.cacheInFlight === true) return raft.cacheLeaseUntil(this.now)
    if (h.disk.applied < Math.min(h.touchedUpTo, raft.log.lastIndex())) {
      h.wasDirty = true
      return undefined
    }
    if (h.wasDirty) {
      h.wasDirty = false
      h.cleanAt = ++this.cacheStampN
    }
    if (h.cleanAt > stamp) return undefined
    return raft.cacheLeaseUntil(this.now)
  }

  private sendAll (ms: Message[]): void {
    for (const m of ms) {
      if (!this.links[m.from][m.to]) continue
      if (this.rng.next() < this.dropRate) continue
      this.at(1 + this.rng.int(this.maxDelay), { kind: 'deliver', msg: m })
      if (this.rng.next() < this.dupRate) this.at(1 + this.rng.int(this.maxDelay * 3), { kind: 'deliver', msg: m })
    }
  }

  private observe (h: Host): void {
    const raft = h.raft!
    const role = raft.role
    const term = raft.term
    const changed = role !== h.prevRole || term !== h.prevTerm
    if (role === 'leader') {
      this.checkers.leader(term, h.id)
      if (changed) {
        this.stats.elections++
        this.checkers.newLeader(h.id, raft.log.snapIndex, raft.log.lastIndex(), (i) => {
          const e = raft.log.entry(i)
          return e ? entryKey(e) : undefined
        })
      }
    } else if (role === 'preCandidate' && changed) {
      h.touched = this.linkedVoters(h)
    } else if (role === 'candidate' && changed && raft.lastCampaign === 'election') {
      const reach = h.prevRole === 'preCandidate' ? h.touched : this.linkedVoters(h)
      const c = raft.log.config()
      const self = c.voters.includes(h.id) ? 1 : 0
      if (self + reach.size < quorum(c)) {
        this.checkers.fail(`node ${h.id} started an election for term ${term} while cut off from a quorum`)
      }
    }
    h.prevRole = role
    h.prevTerm = term
    for (let i = h.checkedCommit + 1; i <= raft.log.committed; i++) {
      const e = raft.log.entry(i)
      if (e) this.checkers.committedEntry(h.id, e)
    }
    h.checkedCommit = Math.max(h.checkedCommit, raft.log.committed)
  }

  /** Voters (other than h) that h can exchange at least one direction of messages with. */
  private linkedVoters (h: Host): Set<number> {
    const out = new Set<number>()
    for (const v of h.raft!.log.config().voters) {
      if (v !== h.id && v <= this.n && (this.links[h.id][v] || this.links[v][h.id])) out.add(v)
    }
    return out
  }

  private topologyChanged (): void {
    for (const h of this.hosts) {
      if (h.up && h.raft!.role === 'preCandidate') for (const v of this.linkedVoters(h)) h.touched.add(v)
    }
  }

  // ---- faults -----------------------------------------------------------------

  private setAllLinks (up: boolean): void {
    for (let a = 1; a <= this.n; a++) for (let b = 1; b <= this.n; b++) this.links[a][b] = up || a === b
    this.topologyChanged()
  }

  private currentLeader (): Host | undefined {
    let best: Host | undefined
    for (const h of this.hosts) {
      if (h.up && h.raft!.role === 'leader' && (!best || h.raft!.term > best.raft!.term)) best = h
    }
    return best
  }

  private partition (): void {
    if (this.healed) return
    const r = this.rng
    const kind = r.int(6)
    this.setAllLinks(true)
    const ids = this.hosts.map((h) => h.id)
    const cut = (a: number, b: number, bothWays: boolean): void => {
      this.links[a][b] = false
      if (bothWays) this.links[b][a] = false
    }
    switch (kind) {
      case 0: { // symmetric split into two random sides
        const side = new Set(ids.filter(() => r.next() < 0.5))
        for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) cut(a, b, true)
        break
      }
      case 1: { // isolate the leader
        const l = this.currentLeader()?.id ?? ids[r.int(ids.length)]
        for (const b of ids) if (b !== l) cut(l, b, true)
        break
      }
      case 2: { // asymmetric: one node cannot send (or cannot receive)
        const x = ids[r.int(ids.length)]
        const outbound = r.next() < 0.5
        for (const b of ids) if (b !== x) { if (outbound) cut(x, b, false); else cut(b, x, false) }
        break
      }
      case 3: { // minority / majority split
        const shuffled = [...ids].sort(() => r.next() - 0.5)
        const minority = new Set(shuffled.slice(0, Math.floor(ids.length / 2)))
        for (const a of ids) for (const b of ids) if (minority.has(a) !== minority.has(b)) cut(a, b, true)
        break
      }
      case 4: { // flapping link
        const a = ids[r.int(ids.length)]
        let b = ids[r.int(ids.length)]
        if (a === b) b = a === 1 ? 2 : 1
        this.flapLink = [a, b]
        this.flapUntil = this.now + 300 + r.int(500)
        this.at(1, { kind: 'flap' })
        break
      }
      default: // a quiet period
        break
    }
    this.topologyChanged()
    this.at(100 + r.int(700), { kind: 'healLinks' })
  }

  private crash (): void {
    if (this.healed) return
    const up = this.hosts.filter((h) => h.up)
    if (up.length > 1 && this.rng.next() < 0.08) {
      // Power loss: every host goes down at once; only flushed state survives anywhere.
      for (const h of up) this.crashHost(h)
    } else if (up.length > 0) {
      // Bias toward leaders and toward hosts in the middle of a write: those crashes are the interesting ones.
      const l = this.currentLeader()
      const writing = up.filter((x) => x.flushing !== undefined)
      const dice = this.rng.next()
      const h = l && dice < 0.4 ? l : writing.length > 0 && dice < 0.8 ? writing[this.rng.int(writing.length)] : up[this.rng.int(up.length)]
      this.crashHost(h)
    }
    this.at(200 + this.rng.int(800), { kind: 'crash' })
  }

  private crashHost (h: Host): void {
    h.up = false
    h.epoch++
    h.flushing = undefined
    h.raft = undefined
    h.cache.clear()
    for (const w of h.writes.values()) this.giveUp(this.clients[w.client], w.op)
    for (const rd of h.reads.values()) this.finishOp(this.clients[rd.client], rd.op)
    h.writes.clear()
    h.reads.clear()
    this.stats.crashes++
    this.at(50 + this.rng.int(600), { kind: 'restart', host: h.id })
  }

  private restart (h: Host): void {
    if (h.up) return
    h.up = true
    h.epoch++
    this.boot(h)
    this.afterStep(h)
  }

  private confStep (): void {
    if (this.healed) return
    this.at(200 + this.rng.int(500), { kind: 'conf' })
    const l = this.currentLeader()
    if (!l) return
    const c = l.raft!.log.config()
    const spare = this.hosts.map((h) => h.id).filter((id) => !c.voters.includes(id) && !c.learners.includes(id))
    const options: Array<() => void> = []
    if (spare.length > 0) options.push(() => l.raft!.proposeConfChange({ type: 'addLearner', node: spare[this.rng.int(spare.length)] }))
    if (c.learners.length > 0 && c.voters.length < 5) options.push(() => l.raft!.proposeConfChange({ type: 'promote', node: c.learners[this.rng.int(c.learners.length)] }))
    if (c.voters.length > 3) options.push(() => l.raft!.proposeConfChange({ type: 'remove', node: c.voters[this.rng.int(c.voters.length)] }))
    if (c.learners.length > 0) options.push(() => l.raft!.proposeConfChange({ type: 'remove', node: c.learners[this.rng.int(c.learners.length)] }))
    if (options.length === 0) return
    try {
      options[this.rng.int(options.length)]()
      this.stats.confChanges++
    } catch (e) {
      if (!(e instanceof RaftError)) throw e
    }
    this.afterStep(l)
  }

  /** Hands leadership to a random voter now and then. */
  private transfer (): void {
    if (this.healed) return
    this.at(300 + this.rng.int(700), { kind: 'transfer' })
    const l = this.currentLeader()
    if (!l) return
    const voters = l.raft!.log.config().voters
    try {
      l.raft!.transferLeadership(voters[this.rng.int(voters.length)])
    } catch (e) {
      if (!(e instanceof RaftError)) throw e
    }
    this.afterStep(l)
  }

  /** Batched proposals of filler entries of random sizes: exercises batching and the per-message byte bound. */
  private noise (): void {
    if (this.healed) return
    this.at(50 + this.rng.int(300), { kind: 'noise' })
    const l = this.currentLeader()
    if (!l) return
    const batch = Array.from({ length: 1 + this.rng.int(8) }, (_, i) => enc.encode(`noise:${this.now}.${i}:${'z'.repeat(this.rng.int(300))}`))
    try {
      l.raft!.propose(batch)
    } catch (e) {
      if (!(e instanceof RaftError)) throw e
    }
    this.afterStep(l)
  }

  private heal (): void {
    this.healed = true
    this.dropRate = 0
    this.dupRate = 0
    this.setAllLinks(true)
    for (const h of this.hosts) if (!h.up) this.restart(h)
    this.at(1, { kind: 'probe' })
  }

  /** After healing: propose one marker entry, then wait for every voter to apply it. */
  private probe (): void {
    if (this.markerIndex > 0) {
      const l = this.currentLeader()
      const voters = l ? l.raft!.log.config().voters : []
      if (l && voters.every((v) => this.host(v).disk.applied >= this.markerIndex)) {
        this.done = true
        return
      }
    } else {
      const l = this.currentLeader()
      if (l) {
        try {
          this.markerTag = `marker:${this.now}`
          l.raft!.propose([enc.encode(this.markerTag)])
          this.afterStep(l)
        } catch (e) {
          if (!(e instanceof RaftError)) throw e
        }
      }
    }
    this.at(20, { kind: 'probe' })
  }

  // ---- clients ----------------------------------------------------------------

  private clientOp (cl: Client): void {
    if (this.done) return
    const h = this.host(cl.target)
    const key = this.keys[this.rng.int(this.keys.length)]
    const retry = (hint: number): void => {
      cl.target = hint > 0 && hint <= this.n ? hint : 1 + this.rng.int(this.n)
      this.at(5 + this.rng.int(20), { kind: 'client', client: cl.id })
    }
    if (!h.up) {
      retry(0)
      return
    }
    const opSeq = ++cl.opSeq
    // with caches, more reads: a cache is only worth testing where values stay put a while
    if (this.rng.next() < (this.cfg.cache === true ? 0.25 : 0.5)) {
      const tag = `${cl.id}.${++cl.seq}`
      const op: RegisterOp = { client: cl.id, kind: 'write', key, value: tag, invoke: this.now, response: Infinity }
      try {
        if (this.cfg.cache === true && this.cfg.cacheNoDrop !== true) h.cache.delete(key)
        const index = h.raft!.propose([enc.encode(JSON.stringify({ t: tag, k: key, v: tag }))])
        if (this.cfg.cache === true) this.touch(h, index)
        // An older write waiting at the same index was truncated here, but another
        // node may still hold it and commit it later: its outcome is unknown.
        if (process.env.SIM_TRACE === tag) console.log(`t=${this.now} propose ${tag} at host ${h.id} index ${index} term ${h.raft!.term}`)
        const older = h.writes.get(index)
        if (older) this.giveUp(this.clients[older.client], older.op)
        h.writes.set(index, { op, client: cl.id, tag })
      } catch (e) {
        if (!(e instanceof RaftError)) throw e
        retry(e.leader)
        return
      }
    } else {
      const op: RegisterOp = { client: cl.id, kind: 'read', key, value: null, invoke: this.now, response: Infinity }
      const ctx = `${cl.id}.${opSeq}`
      const cached = this.cfg.cache === true && this.rng.next() < 0.8 ? h.cache.get(key) : undefined
      if (cached !== undefined && cached.until > this.now) {
        // the kernel's answer: no Raft at all
        op.value = cached.value
        op.response = this.now
        this.history.push(op)
        this.stats.ops++
        this.stats.cacheReads++
        this.at(5 + this.rng.int(40), { kind: 'client', client: cl.id })
        return
      }
      if (this.cfg.localReads) {
        op.value = h.sm.get(key) ?? null
        op.response = this.now
        this.history.push(op)
        this.stats.ops++
        this.at(5 + this.rng.int(40), { kind: 'client', client: cl.id })
        return
      }
      try {
        h.raft!.readIndex(ctx, this.now)
        h.reads.set(ctx, { op, client: cl.id, index: undefined, stamp: this.cacheStampN })
      } catch (e) {
        if (!(e instanceof RaftError)) throw e
        retry(e.leader)
        return
      }
    }
    cl.busy = true
    this.stats.ops++
    this.at(400, { kind: 'timeout', client: cl.id, opSeq })
    this.afterStep(h)
  }

  private clientTimeout (cl: Client, opSeq: number): void {
    if (cl.opSeq !== opSeq || !cl.busy) return
    // Forget the op wherever it waits; a write's fate stays unknown.
    for (const h of this.hosts) {
      for (const [i, w] of h.writes) if (w.client === cl.id) { h.writes.delete(i); this.giveUp(cl, w.op) }
      for (const [c, r] of h.reads) if (r.client === cl.id) { h.reads.delete(c); this.finishOp(cl, r.op) }
    }
    if (cl.busy) this.finishOp(cl, undefined)
    cl.target = 1 + this.rng.int(this.n)
  }

  private giveUp (cl: Client, op: RegisterOp): void {
    if (process.env.SIM_TRACE === op.value) console.log(`t=${this.now} give up ${op.value}`)
    op.response = Infinity
    this.history.push(op)
    this.finishOp(cl, op)
  }

  private finishOp (cl: Client, _op: RegisterOp | undefined): void {
    if (!cl.busy) return
    cl.busy = false
    cl.opSeq++
    this.at(5 + this.rng.int(40), { kind: 'client', client: cl.id })
  }
}
