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
 *
 * The writers here only stage changes; they must run inside a write
 * transaction the caller opens (the host driver opens one per cycle for all
 * of its groups and awaits the flush before it sends anything). A restart
 * reads back exactly what the last flushed transaction wrote: lmdb commits
 * are atomic, so a crash mid-write leaves the previous state.
 */
import type { Database, RootDatabase } from 'lmdb'
import type { RaftInit } from '../raft/raft.js'
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

  /** Reads a group back for a restart. */
  load (g: GroupId): RaftInit {
    const snapshot = this.db.get([g, 's']) as Snapshot | undefined
    if (!snapshot) throw new Error(`raft group ${g} has no state on this host`)
    const hardState = (this.db.get([g, 'h']) as HardState | undefined) ?? { term: 0, vote: 0, commit: 0 }
    const applied = (this.db.get([g, 'a']) as number | undefined) ?? snapshot.meta.index
    const entries = this.entries(g, snapshot.meta.index + 1, Number.MAX_SAFE_INTEGER - 1)
    entries.forEach((e, k) => {
      if (e.index !== snapshot.meta.index + k + 1) throw new Error(`raft group ${g}: log gap before entry ${e.index}`)
    })
    this.last.set(g, snapshot.meta.index + entries.length)
    return { hardState, snapshot, entries, applied: Math.max(applied, snapshot.meta.index) }
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
      for (const { key } of this.db.getRange({ start: [g, 'e', 0], end: [g, 'e', upTo + 1] })) this.db.remove(key)
      if (rd.snapshot) last = snap.meta.index
    }
    if (rd.entries.length > 0) {
      const from = rd.entries[0].index
      for (let i = from; i <= last; i++) this.db.remove([g, 'e', i])
      for (const e of rd.entries) this.db.put([g, 'e', e.index], e)
      last = rd.entries[rd.entries.length - 1].index
    }
    if (rd.hardState) this.db.put([g, 'h'], rd.hardState)
    this.last.set(g, last)
  }

  /** Stages the applied index; call in the transaction that writes the state changes it covers. */
  setApplied (g: GroupId, index: number): void {
    this.db.put([g, 'a'], index)
  }

  /** Stages removal of everything the group stored. */
  drop (g: GroupId): void {
    for (const { key } of this.db.getRange({ start: [g, 'e', 0], end: [g, 'e', Number.MAX_SAFE_INTEGER] })) this.db.remove(key)
    for (const k of ['h', 's', 'a']) this.db.remove([g, k])
    this.last.delete(g)
  }
}
