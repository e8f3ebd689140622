/**
 * Durable Raft state on the host's lmdb environment: for every group its
 * hard state (term, vote, commit), log entries, latest snapshot (metadata
 * with the configuration, and data) and the applied index.
 *
 * Layout, in one named database `raft` (ordered-binary array keys, msgpack
 * values), all keys prefixed by the group id:
 *   [g, 'h']        hard state
 *   [g, 's']        snapshot { meta, data } (data empty for a machine with
 *                   live snapshots: its rows in the store are the state)
 *   [g, 'a']        applied index (written by the state machine's apply, in
 *                   the same transaction as the rows it covers)
 *   [g, 'e', i]     entry i
 *   [g, 'm', i]     entry i's head [term, payload bytes], for a normal entry
 *                   with a payload: a restart reads these for the entries
 *                   it had applied and leaves their payloads on disk
 *                   (stores written before it have none: those entries are
 *                   read whole)
 *
 * The writers here only stage changes; they must run inside a write
 * transaction the caller opens (the host driver opens one per cycle for all
 * of its groups and awaits the flush before it sends anything). A restart
 * reads back exactly what the last flushed transaction wrote: lmdb commits
 * are atomic, so a crash mid-write leaves the previous state.
 */
import type { Database, RootDatabase } from 'lmdb'
import { hasPayload, type EntryHead } from '../raft/log.js'
import type { RaftInit, WholeRaftInit } from '../raft/raft.js'
import type { Config, Entry, HardState, Ready, Snapshot } from '../raft/types.js'

export type GroupId = string

export class RaftStorage {
  readonly db: Database
  /** Last entry index stored per group, so truncation needs no range scan. */
  private last = new Map<GroupId, number>()

  constructor (readonly root: RootDatabase) {
    // Explicit encodings: the Store opens its root with binary values, which a child db would inherit.
    this.db = root.openDB({ name: 'raft', encoding: 'msgpack', keyEncoding: 'ordered-binary' })
  }

  /** Whether the group has any state on this host. */
  has (g: GroupId): boolean {
    return this.db.get([g, 's']) !== undefined
  }

  /** Group ids with state on this host. */
  groups (): GroupId[] {
    // One key per group, not every entry key: after a group's first key, jump past all of its keys
    // (their second part is one of 'a', 'e', 'h', 'm', 's', all below '\uffff').
    const out: GroupId[] = []
    let start: unknown[] | undefined
    for (;;) {
      // Iterated to its end, never left open: an unfinished lmdb range keeps its read snapshot, and
      // lmdb then reuses no page freed after it, so the file grows with every write (a restarted
      // host filled its disk in 30 s that way).
      let k: unknown[] | undefined
      for (const key of this.db.getKeys({ start: start as never, limit: 1 })) k = key as unknown as unknown[]
      if (k === undefined) return out
      if (!Array.isArray(k) || typeof k[0] !== 'string') return this.groupsByScan()
      if (this.db.get([k[0], 's']) !== undefined) out.push(k[0])
      start = [k[0], '\uffff']
    }
  }

  /** groups() the slow way, every key read: for a key this module does not write. */
  private groupsByScan (): GroupId[] {
    const out: GroupId[] = []
    for (const key of this.db.getKeys()) {
      const k = key as unknown as unknown[]
      if (Array.isArray(k) && k.length === 2 && k[1] === 's') out.push(k[0] as GroupId)
    }
    return out
  }

  /** Stages the initial state of a new group: a snapshot at index 0 holding the first configuration. */
  bootstrap (g: GroupId, config: Config): void {
    if (this.has(g)) throw new Error(`raft group ${g} already exists on this host`)
    const snap: Snapshot = { meta: { index: 0, term: 0, config }, data: new Uint8Array() }
    this.db.put([g, 's'], snap)
    this.db.put([g, 'h'], { term: 0, vote: 0, commit: 0 } satisfies HardState)
    this.db.put([g, 'a'], 0)
    this.last.set(g, 0)
  }

  /**
   * Reads a group back for a restart: every entry whole (what recovery
   * and forced repair read), or, with `heads`, the applied normal entries
   * as heads without their payload (what an opening Raft group needs; it
   * reads a payload back when a follower asks, RaftLog `load`). Read whole,
   * a group's log tail can be 64 MiB, and every group of a host opens at
   * start (docs/performance.md, finding 31).
   */
  load (g: GroupId): WholeRaftInit
  load (g: GroupId, heads: true): RaftInit
  load (g: GroupId, heads = false): RaftInit {
    const snapshot = this.db.get([g, 's']) as Snapshot | undefined
    if (!snapshot) throw new Error(`raft group ${g} has no state on this host`)
    const hardState = (this.db.get([g, 'h']) as HardState | undefined) ?? { term: 0, vote: 0, commit: 0 }
    const applied = Math.max((this.db.get([g, 'a']) as number | undefined) ?? snapshot.meta.index, snapshot.meta.index)
    // An entry the Raft log may keep as a head: applied and committed (the log never applies past its commit).
    const headTo = heads ? Math.min(applied, hardState.commit) : snapshot.meta.index
    const first = snapshot.meta.index + 1
    const entries: Array<Entry | EntryHead> = []
    if (headTo >= first) {
      for (const { key, value } of this.db.getRange({ start: [g, 'm', first], end: [g, 'm', headTo + 1] })) {
        const i = (key as unknown as [string, string, number])[2]
        // Entries without a head (configuration changes, empty ones, stores from before heads) are read whole.
        while (first + entries.length < i) entries.push(this.entryAt(g, first + entries.length))
        const [term, released] = value as [number, number]
        entries.push({ index: i, term, released })
      }
    }
    // Everything after the last head, applied or not, whole.
    for (const e of this.entries(g, first + entries.length, Number.MAX_SAFE_INTEGER - 1)) entries.push(e)
    entries.forEach((e, k) => {
      if (e.index !== first + k) throw new Error(`raft group ${g}: log gap before entry ${e.index}`)
    })
    this.last.set(g, snapshot.meta.index + entries.length)
    return { hardState, snapshot, entries, applied }
  }

  private entryAt (g: GroupId, i: number): Entry {
    const e = this.db.get([g, 'e', i]) as Entry | undefined
    if (e === undefined) throw new Error(`raft group ${g}: entry ${i} has a head but is missing`)
    return e
  }

  /**
   * Entries lo..hi of group g as stored (fewer if some are missing: the
   * caller checks). Read from the last committed write transaction, so a
   * cycle's entries can be read back once its transaction has run.
   */
  entries (g: GroupId, lo: number, hi: number): Entry[] {
    const out: Entry[] = []
    for (const { value } of this.db.getRange({ start: [g, 'e', lo], end: [g, 'e', hi + 1] })) out.push(value as Entry)
    return out
  }

  /**
   * Stages one Ready's durable part. Call inside a write transaction. With
   * `live` (the group's state machine keeps its state in the same store,
   * see GroupStateMachine.liveSnapshots) a snapshot is stored without its
   * data: the machine's rows are the snapshot.
   */
  writeReady (g: GroupId, rd: Ready, live = false): void {
    let last = this.last.get(g) ?? 0
    const snap = rd.snapshot ?? rd.compacted
    if (snap) {
      this.db.put([g, 's'], live ? { meta: snap.meta, data: new Uint8Array(0) } : snap)
      // Installing drops the whole log; compacting drops what the snapshot covers.
      const upTo = rd.snapshot ? Math.max(last, snap.meta.index) : snap.meta.index
      this.removeEntries(g, upTo)
      if (rd.snapshot) last = snap.meta.index
    }
    if (rd.entries.length > 0) {
      const from = rd.entries[0].index
      for (let i = from; i <= last; i++) { this.db.remove([g, 'e', i]); this.db.remove([g, 'm', i]) }
      for (const e of rd.entries) {
        this.db.put([g, 'e', e.index], e)
        if (hasPayload(e)) this.db.put([g, 'm', e.index], [e.term, e.data.length])
      }
      last = rd.entries[rd.entries.length - 1].index
    }
    if (rd.hardState) this.db.put([g, 'h'], rd.hardState)
    this.last.set(g, last)
  }

  /** Stages the applied index; call in the transaction that writes the state changes it covers. */
  setApplied (g: GroupId, index: number): void {
    this.db.put([g, 'a'], index)
  }

  /** Stages removal of entries (and their heads) up to `upTo`, by key: their payloads are never read. */
  private removeEntries (g: GroupId, upTo: number): void {
    for (const part of ['e', 'm']) {
      for (const key of this.db.getKeys({ start: [g, part, 0], end: [g, part, upTo + 1] })) this.db.remove(key)
    }
  }

  /** Stages removal of everything the group stored. */
  drop (g: GroupId): void {
    this.removeEntries(g, Number.MAX_SAFE_INTEGER - 1)
    for (const k of ['h', 's', 'a']) this.db.remove([g, k])
    this.last.delete(g)
  }
}
