/**
 * The in-memory view of one group's log: the last snapshot's position, every
 * entry after it, the commit and apply points, and which entries have not
 * been handed to the driver for persisting yet. It also remembers where each
 * configuration entry sits, because membership takes effect when an entry is
 * appended and must roll back when a conflicting suffix is truncated.
 *
 * Every post-snapshot entry has a slot here, but with a `load` function an
 * entry's payload need not stay in memory once nobody is expected to need
 * it (`release`: applied, persisted, and, on a leader, held by every
 * follower that keeps up). A released slot keeps the index, term and payload
 * size; `entry` and `slice` read the entry back from the driver's storage,
 * for a follower that fell behind or a new leader's laggards. Without
 * release every payload stayed in memory until compaction, up to 64 MiB per
 * group (docs/performance.md, finding 28).
 */
import { applyChange, cloneConfig } from './config.js'
import type { Config, Entry, SnapshotMeta } from './types.js'

/** Reads entries `lo..hi` (all of them, in order) back from the driver's durable log. */
export type LoadEntries = (lo: number, hi: number) => Entry[]

/**
 * A slot whose entry was released: only what the log needs without its
 * payload. A driver with a `load` function may also hand these in at a
 * restart for entries it had applied (normal entries with a payload), so
 * that reading a group back never holds its applied payloads at all.
 */
export interface EntryHead {
  readonly index: number
  readonly term: number
  /** the payload's length, for the byte counts */
  readonly released: number
}
type Slot = Entry | EntryHead

function isReleased (s: Slot): s is EntryHead {
  return (s as EntryHead).released !== undefined
}

/** Whether an entry's payload may leave memory (and be stored with a head): a normal entry with a payload; configuration entries stay whole. */
export function hasPayload (e: Entry): e is Entry & { data: Uint8Array } {
  return e.kind === 'normal' && e.data !== undefined && e.data.length > 0
}

/** Entries read back in one call to `load`, at most; `slice` also stops a run where its byte bound would. */
const LOAD_RUN = 256

export class RaftLog {
  /** Index and term of the last entry covered by the snapshot. */
  snapIndex: number
  snapTerm: number
  private entries: Slot[] = []
  committed: number
  /** Highest index handed to the driver for applying. */
  applied: number
  /** First index not yet handed out for persisting. */
  unstableFrom: number
  /** Bytes of entry data after the snapshot, held or released (compaction by size reads it). */
  private dataBytes = 0
  /** Bytes of entry data held in memory. */
  private heldData = 0
  /** Highest index `release` has gone through (slots up to it are released or not worth it). */
  private releasedTo: number
  /** Configuration entries in the log, oldest first; [0] is the snapshot's. */
  private confs: Array<{ index: number, config: Config }>

  constructor (snap: SnapshotMeta, entries: Array<Entry | EntryHead>, committed: number, applied: number, private readonly load?: LoadEntries) {
    this.snapIndex = snap.index
    this.releasedTo = snap.index
    this.snapTerm = snap.term
    this.confs = [{ index: snap.index, config: cloneConfig(snap.config) }]
    this.committed = Math.max(committed, snap.index)
    this.applied = Math.max(applied, snap.index)
    if (this.applied > this.committed) this.applied = this.committed
    for (const e of entries) {
      if (e.index <= snap.index) continue
      if (e.index !== this.lastIndex() + 1) throw new Error(`log gap at ${e.index} after ${this.lastIndex()}`)
      if (isReleased(e)) {
        // Only an applied payload may arrive as a head: anything later is still to be applied or sent.
        if (load === undefined || e.index > this.applied) throw new Error(`raft log: entry ${e.index} arrived without its payload (applied ${this.applied}${load === undefined ? ', no load function' : ''})`)
        this.entries.push(e)
        this.dataBytes += e.released
        continue
      }
      this.pushEntry(e)
    }
    if (this.committed > this.lastIndex()) throw new Error(`commit ${this.committed} beyond last index ${this.lastIndex()}`)
    this.unstableFrom = this.lastIndex() + 1
    // What a restart read back and had applied is on disk already.
    this.release(this.applied)
  }

  firstIndex (): number { return this.snapIndex + 1 }
  lastIndex (): number { return this.snapIndex + this.entries.length }
  lastTerm (): number { return this.term(this.lastIndex()) ?? 0 }

  /** Term of `i`, or undefined when it is compacted away or beyond the end. */
  term (i: number): number | undefined {
    if (i === this.snapIndex) return this.snapTerm
    if (i < this.snapIndex || i > this.lastIndex()) return undefined
    return this.entries[i - this.snapIndex - 1].term
  }

  entry (i: number): Entry | undefined {
    if (i <= this.snapIndex || i > this.lastIndex()) return undefined
    const s = this.entries[i - this.snapIndex - 1]
    return isReleased(s) ? this.readBack(i, i)[0] : s
  }

  matchTerm (i: number, t: number): boolean {
    return this.term(i) === t
  }

  isUpToDate (lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm()
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex())
  }

  config (): Config { return this.confs[this.confs.length - 1].config }
  /** Index of the latest configuration entry (snapshot index if none in the log). */
  configIndex (): number { return this.confs[this.confs.length - 1].index }

  configAt (i: number): Config {
    let c = this.confs[0].config
    for (const x of this.confs) if (x.index <= i) c = x.config
    return c
  }

  /** Bytes of entry data after the snapshot, in memory or released. */
  bytes (): number { return this.dataBytes }

  /** Bytes of entry data held in memory. */
  heldBytes (): number { return this.heldData }

  /**
   * Drops from memory the payloads of entries up to `upTo` that are
   * applied and no longer unstable (the caller also vouches that they are
   * durable: the driver persisted what it was handed). Configuration entries
   * stay whole. A no-op without a `load` function. Returns the bytes freed.
   */
  release (upTo: number): number {
    if (this.load === undefined) return 0
    const to = Math.min(upTo, this.applied, this.unstableFrom - 1, this.lastIndex())
    let freed = 0
    for (let i = Math.max(this.releasedTo, this.snapIndex) + 1; i <= to; i++) {
      const k = i - this.snapIndex - 1
      const e = this.entries[k]
      if (isReleased(e) || !hasPayload(e)) continue
      this.entries[k] = { index: i, term: e.term, released: e.data.length }
      freed += e.data.length
    }
    this.heldData -= freed
    if (to > this.releasedTo) this.releasedTo = to
    return freed
  }

  /** Reads released entries back; a mismatch means the stored log is not the one this log describes. */
  private readBack (lo: number, hi: number): Entry[] {
    const out = this.load!(lo, hi)
    if (out.length !== hi - lo + 1) throw new Error(`raft log: storage returned ${out.length} entries for ${lo}..${hi}`)
    for (let i = lo; i <= hi; i++) {
      const e = out[i - lo]
      const s = this.entries[i - this.snapIndex - 1]
      if (e.index !== i || e.term !== s.term) throw new Error(`raft log: stored entry ${e.index} (term ${e.term}) is not entry ${i} (term ${s.term})`)
    }
    return out
  }

  private pushEntry (e: Entry): void {
    // Entries stay here until compaction (thousands per group), so one must
    // not pin a larger buffer it was cut from: a decoded network frame, or
    // msgpackr's and Node's shared pools of small buffers. Pinned, those took
    // about 50 MiB per bench round on a host (docs/performance.md, finding 27).
    const d = e.data
    if (d !== undefined && d.buffer.byteLength >= 2 * d.length + 64) e = { ...e, data: Uint8Array.prototype.slice.call(d) }
    this.entries.push(e)
    this.dataBytes += e.data?.length ?? 0
    this.heldData += e.data?.length ?? 0
    if (e.kind === 'conf' && e.conf) this.confs.push({ index: e.index, config: applyChange(this.config(), e.conf) })
  }

  /** Takes a slot's payload out of the byte counts (it leaves the log). */
  private forget (s: Slot): void {
    if (isReleased(s)) {
      this.dataBytes -= s.released
    } else {
      const n = s.data?.length ?? 0
      this.dataBytes -= n
      this.heldData -= n
    }
  }

  /** Appends at the end (leader). */
  append (es: Entry[]): void {
    for (const e of es) this.pushEntry(e)
  }

  /**
   * Follower append after a matching `prevIndex`: skips entries already
   * present, truncates at the first conflict, appends the rest. Returns the
   * index of the last new entry.
   */
  appendAfter (prevIndex: number, es: Entry[]): number {
    let k = 0
    while (k < es.length && this.matchTerm(es[k].index, es[k].term)) k++
    if (k < es.length) {
      const from = es[k].index
      if (from <= this.committed) throw new Error(`conflict at committed index ${from} (commit ${this.committed})`)
      this.truncateFrom(from)
      for (let j = k; j < es.length; j++) this.pushEntry(es[j])
    }
    return prevIndex + es.length
  }

  private truncateFrom (from: number): void {
    if (from <= this.lastIndex()) {
      for (let i = from - this.snapIndex - 1; i < this.entries.length; i++) this.forget(this.entries[i])
      this.entries.length = from - this.snapIndex - 1
      if (this.releasedTo >= from) this.releasedTo = from - 1
      while (this.confs.length > 1 && this.confs[this.confs.length - 1].index >= from) this.confs.pop()
      if (this.unstableFrom > from) this.unstableFrom = from
    }
  }

  commitTo (i: number): boolean {
    if (i > this.committed) {
      if (i > this.lastIndex()) throw new Error(`commit ${i} beyond last index ${this.lastIndex()}`)
      this.committed = i
      return true
    }
    return false
  }

  /** Entries in [lo, hi], stopping early once `maxBytes` is passed (at least one entry). */
  slice (lo: number, hi: number, maxBytes = Infinity, sizeOf?: (e: Entry) => number): Entry[] {
    const out: Entry[] = []
    let bytes = 0
    const end = Math.min(hi, this.lastIndex())
    for (let i = Math.max(lo, this.firstIndex()); i <= end;) {
      const s = this.entries[i - this.snapIndex - 1]
      let run: Entry[]
      if (isReleased(s)) {
        // Read back no more than the message can take: the kept sizes tell (entrySize's 24 bytes of framing each).
        let j = i
        let sized = bytes + 24 + s.released
        for (;;) {
          if (j >= end || j - i + 1 >= LOAD_RUN) break
          const next = this.entries[j + 1 - this.snapIndex - 1]
          if (!isReleased(next) || sized + 24 + next.released > maxBytes) break
          sized += 24 + next.released
          j++
        }
        run = this.readBack(i, j)
      } else {
        run = [s]
      }
      for (const e of run) {
        if (sizeOf) bytes += sizeOf(e)
        if (out.length > 0 && bytes > maxBytes) return out
        out.push(e)
      }
      i += run.length
    }
    return out
  }

  takeUnstable (): Entry[] {
    const out = this.slice(this.unstableFrom, this.lastIndex())
    this.unstableFrom = this.lastIndex() + 1
    return out
  }

  /** Replaces the whole log by a received snapshot. */
  restore (meta: SnapshotMeta): void {
    this.snapIndex = meta.index
    this.snapTerm = meta.term
    this.entries = []
    this.dataBytes = 0
    this.heldData = 0
    this.releasedTo = meta.index
    this.confs = [{ index: meta.index, config: cloneConfig(meta.config) }]
    this.committed = meta.index
    this.applied = meta.index
    this.unstableFrom = meta.index + 1
  }

  /** Drops entries up to `index` (already applied and captured in a snapshot). */
  compact (index: number): SnapshotMeta {
    if (index <= this.snapIndex) throw new Error(`compact ${index} is not beyond snapshot ${this.snapIndex}`)
    if (index > this.applied) throw new Error(`compact ${index} beyond applied ${this.applied}`)
    const meta: SnapshotMeta = { index, term: this.term(index)!, config: cloneConfig(this.configAt(index)) }
    for (let i = 0; i < index - this.snapIndex; i++) this.forget(this.entries[i])
    this.entries = this.entries.slice(index - this.snapIndex)
    if (this.releasedTo < index) this.releasedTo = index
    const later = this.confs.filter((c) => c.index > index)
    this.confs = [{ index, config: meta.config }, ...later]
    this.snapIndex = index
    this.snapTerm = meta.term
    return meta
  }
}
