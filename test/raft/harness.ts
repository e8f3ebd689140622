/**
 * A small synchronous cluster of Raft cores for readable scenario tests:
 * memory stands in for the disk (persisted before messages leave, as the
 * driver does), the network is a list of cut links, and time is explicit
 * ticks (each `TICK_MS` of the harness clock `now`, which the cores get
 * with every tick and message, for lease reads). Everything runs until
 * quiet, with a bound on rounds.
 */
import { Raft, type RaftFaults, type RaftOptions } from '../../src/raft/raft.js'
import { seededRng } from '../../src/raft/rng.js'
import type { Config, Entry, HardState, Message, ReadState, Snapshot } from '../../src/raft/types.js'

export interface MemNode {
  raft: Raft
  hard: HardState
  snapshot: Snapshot
  entries: Entry[]
  applied: Entry[]
  reads: ReadState[]
  installed: Snapshot[]
}

/** Harness milliseconds per tick. */
export const TICK_MS = 100

export class Harness {
  nodes = new Map<number, MemNode>()
  /** the harness clock: TICK_MS per tick */
  now = 0
  private cut = new Set<string>()
  /** every message delivered (tests that count them) */
  onDeliver: ((m: Message) => void) | undefined

  /**
   * `extra.live`: every node has a live snapshot source (RaftOptions.liveSnapshot)
   * whose data names the index it was read at: `state@<index>`.
   * `extra.release`: every node reads entries back from its memory disk
   * (RaftOptions.loadEntries), releases what it may after each persisted
   * Ready, and counts the entries it read back in `loads`.
   */
  constructor (ids: number[], voters: number[], readonly faults: RaftFaults = {}, seed = 1, readonly extra: Pick<RaftOptions, 'leaseMs' | 'followerLeases' | 'idleHeartbeatTicks' | 'idleAfterTicks'> & { live?: boolean, release?: boolean } = {}) {
    for (const id of ids) {
      const snapshot: Snapshot = { meta: { index: 0, term: 0, config: { voters, learners: [] } }, data: new Uint8Array() }
      const n: MemNode = { raft: undefined as unknown as Raft, hard: { term: 0, vote: 0, commit: 0 }, snapshot, entries: [], applied: [], reads: [], installed: [] }
      n.raft = this.make(id, n, seed)
      this.nodes.set(id, n)
    }
  }

  /** entries read back from the memory disks (extra.release) */
  loads = 0

  private make (id: number, n: MemNode, seed: number): Raft {
    const { live, release, ...extra } = this.extra
    const loadEntries = release === true
      ? (lo: number, hi: number) => {
          const out = n.entries.filter((e) => e.index >= lo && e.index <= hi)
          this.loads += out.length
          return out
        }
      : undefined
    const liveSnapshot = live === true
      ? () => {
          const index = Math.max(n.snapshot.meta.index, n.applied[n.applied.length - 1]?.index ?? 0)
          return { index, data: new TextEncoder().encode(`state@${index}`) }
        }
      : undefined
    return new Raft({ id, electionTicks: 10, heartbeatTicks: 1, preVote: true, checkQuorum: true, rng: seededRng(seed * 100 + id), faults: this.faults, liveSnapshot, loadEntries, ...extra },
      { hardState: { ...n.hard }, snapshot: n.snapshot, entries: [...n.entries], applied: n.snapshot.meta.index })
  }

  node (id: number): Raft { return this.nodes.get(id)!.raft }

  isolate (id: number): void {
    for (const other of this.nodes.keys()) if (other !== id) { this.cut.add(`${id}>${other}`); this.cut.add(`${other}>${id}`) }
  }

  healAll (): void { this.cut.clear() }

  /** Runs until no node has work, delivering messages over uncut links. */
  settle (maxRounds = 1000): void {
    for (let round = 0; round < maxRounds; round++) {
      const out: Message[] = []
      for (const n of this.nodes.values()) {
        if (!n.raft.hasReady()) continue
        const rd = n.raft.ready()
        if (rd.snapshot) { n.snapshot = rd.snapshot; n.entries = []; n.installed.push(rd.snapshot) }
        if (rd.compacted) { n.snapshot = rd.compacted; n.entries = n.entries.filter((e) => e.index > rd.compacted!.meta.index) }
        if (rd.entries.length) n.entries = n.entries.filter((e) => e.index < rd.entries[0].index).concat(rd.entries)
        if (rd.hardState) n.hard = rd.hardState
        n.applied.push(...rd.committed)
        n.reads.push(...rd.readStates)
        out.push(...rd.messages)
        n.raft.advance()
        if (this.extra.release === true) n.raft.releaseEntries()
      }
      if (out.length === 0) return
      for (const m of out) {
        if (this.cut.has(`${m.from}>${m.to}`)) continue
        this.onDeliver?.(m)
        this.nodes.get(m.to)?.raft.step(m, this.now)
      }
    }
    throw new Error(`cluster did not settle within ${maxRounds} rounds`)
  }

  tick (times = 1, only?: number[]): void {
    for (let i = 0; i < times; i++) {
      this.now += TICK_MS
      for (const [id, n] of this.nodes) if (!only || only.includes(id)) n.raft.tick(this.now)
      this.settle()
    }
  }

  /** Ticks until some node leads (bounded). */
  electLeader (maxTicks = 200): number {
    for (let i = 0; i < maxTicks; i++) {
      const l = this.leader()
      if (l) return l
      this.tick()
    }
    throw new Error('no leader elected')
  }

  leader (): number | undefined {
    let best: number | undefined
    for (const [id, n] of this.nodes) {
      if (n.raft.role === 'leader' && (best === undefined || n.raft.term > this.node(best).term)) best = id
    }
    return best
  }

  /** Restarts a node from what it persisted. */
  restart (id: number): void {
    const n = this.nodes.get(id)!
    n.raft = this.make(id, n, 7)
    n.applied = []
  }

  config (id: number): Config { return this.node(id).config() }
}
