/**
 * The in-memory view of one group's log: the last snapshot's position, every
 * entry after it, the commit and apply points, and which entries have not
 * been handed to the driver for persisting yet. It also remembers where each
 * configuration entry sits, because membership takes effect when an entry is
 * appended and must roll back when a conflicting suffix is truncated.
 *
 * The whole post-snapshot log lives in memory: compaction is what bounds it.
 */
import { applyChange, cloneConfig } from './config.js'
import type { Config, Entry, SnapshotMeta } from './types.js'

export class RaftLog {
  /** Index and term of the last entry covered by the snapshot. */
  snapIndex: number
  snapTerm: number
  private entries: Entry[] = []
  committed: number
  /** Highest index handed to the driver for applying. */
  applied: number
  /** First index not yet handed out for persisting. */
  unstableFrom: number
  /** Bytes of entry data in memory (compaction by size reads it). */
  private dataBytes = 0
  /** Configuration entries in the log, oldest first; [0] is the snapshot's. */
  private confs: Array<{ index: number, config: Config }>

  constructor (snap: SnapshotMeta, entries: Entry[], committed: number, applied: number) {
    this.snapIndex = snap.index
    this.snapTerm = snap.term
    this.confs = [{ index: snap.index, config: cloneConfig(snap.config) }]
    this.committed = Math.max(committed, snap.index)
    this.applied = Math.max(applied, snap.index)
    for (const e of entries) {
      if (e.index <= snap.index) continue
      if (e.index !== this.lastIndex() + 1) throw new Error(`log gap at ${e.index} after ${this.lastIndex()}`)
      this.pushEntry(e)
    }
    if (this.committed > this.lastIndex()) throw new Error(`commit ${this.committed} beyond last index ${this.lastIndex()}`)
    if (this.applied > this.committed) this.applied = this.committed
    this.unstableFrom = this.lastIndex() + 1
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
    return this.entries[i - this.snapIndex - 1]
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

  /** Bytes of entry data held after the snapshot. */
  bytes (): number { return this.dataBytes }

  private pushEntry (e: Entry): void {
    // Entries stay here until compaction (thousands per group), so one must
    // not pin a larger buffer it was cut from: a decoded network frame, or
    // msgpackr's and Node's shared pools of small buffers. Pinned, those took
    // about 50 MiB per bench round on a host (docs/performance.md, finding 27).
    const d = e.data
    if (d !== undefined && d.buffer.byteLength >= 2 * d.length + 64) e = { ...e, data: Uint8Array.prototype.slice.call(d) }
    this.entries.push(e)
    this.dataBytes += e.data?.length ?? 0
    if (e.kind === 'conf' && e.conf) this.confs.push({ index: e.index, config: applyChange(this.config(), e.conf) })
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
      for (let i = from - this.snapIndex - 1; i < this.entries.length; i++) this.dataBytes -= this.entries[i].data?.length ?? 0
      this.entries.length = from - this.snapIndex - 1
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
    for (let i = Math.max(lo, this.firstIndex()); i <= Math.min(hi, this.lastIndex()); i++) {
      const e = this.entries[i - this.snapIndex - 1]
      if (sizeOf) bytes += sizeOf(e)
      if (out.length > 0 && bytes > maxBytes) break
      out.push(e)
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
    for (let i = 0; i < index - this.snapIndex; i++) this.dataBytes -= this.entries[i].data?.length ?? 0
    this.entries = this.entries.slice(index - this.snapIndex)
    const later = this.confs.filter((c) => c.index > index)
    this.confs = [{ index, config: meta.config }, ...later]
    this.snapIndex = index
    this.snapTerm = meta.term
    return meta
  }
}
