/**
 * Write-back buffers: the bytes of write(2) calls that the FUSE adapter has
 * answered but not yet handed to the filesystem model.
 *
 * Why: with direct I/O on writable opens every write(2) is one FUSE round
 * trip; answering it from memory and committing large coalesced runs in the
 * background takes the store's commit latency off the writer's path.
 *
 * Promises:
 * - bytes are handed to the model in the order they were written, so a later
 *   write over an earlier one wins;
 * - `flush(ino)` resolves once every byte written to `ino` before the call is
 *   committed in the model; a failure of any background commit of `ino`
 *   (ENOSPC, EROFS, ...) is reported by the next `write` or `flush` of that
 *   inode, once, and the failed bytes are dropped — like a kernel's
 *   write-back error, never silently;
 * - a handle (`fh`) that wrote to the inode also hears of every failure
 *   after its first write, once, at its next `flush(ino, fh)` — even when
 *   another handle's flush committed (and lost) its bytes and took the
 *   inode's error first (Linux's errseq rule: each open file learns of the
 *   error; otherwise an fsync would acknowledge bytes that were dropped);
 * - memory is bounded: past `maxDirtyBytes` in all, writers wait for commits.
 */

export type CommitFn = (ino: number, offset: number, data: Buffer) => Promise<unknown>

interface Extent {
  offset: number
  chunks: Buffer[]
  length: number
}

interface FileState {
  extents: Extent[]
  dirty: number
  /** the commit running now, if any */
  running: Promise<void> | null
  error: unknown
  /** failures so far and the last one, for handles that wrote */
  failures: number
  lastError: unknown
  /** handle → failures already reported to it (or present at its first write) */
  seen: Map<number, number>
}

export interface WriteBackOptions {
  /** start committing an inode's bytes in the background past this many */
  flushThreshold?: number
  /** writers wait while this many bytes are buffered in all */
  maxDirtyBytes?: number
  /** largest single commit handed to the model */
  maxCommitBytes?: number
  /**
   * Bytes of `ino` were dropped after a failed commit: the file is shorter
   * than the writes already answered made it look (the kernel counted them
   * into the size it keeps).
   */
  onDropped?: (ino: number) => void
}

export class WriteBack {
  private readonly files = new Map<number, FileState>()
  private totalDirty = 0
  private readonly flushThreshold: number
  private readonly maxDirtyBytes: number
  private readonly maxCommitBytes: number
  private waiters: Array<() => void> = []

  constructor (private readonly commit: CommitFn, opts: WriteBackOptions = {}) {
    this.flushThreshold = opts.flushThreshold ?? 4 * 1024 * 1024
    this.maxDirtyBytes = opts.maxDirtyBytes ?? 64 * 1024 * 1024
    this.maxCommitBytes = opts.maxCommitBytes ?? 1024 * 1024
    this.onDropped = opts.onDropped
  }

  private readonly onDropped: ((ino: number) => void) | undefined

  /** Bytes buffered for `ino` and not yet committed. */
  dirtyBytes (ino: number): number {
    return this.files.get(ino)?.dirty ?? 0
  }

  hasDirty (ino: number): boolean {
    const f = this.files.get(ino)
    return f !== undefined && (f.dirty > 0 || f.running !== null || f.error !== undefined || f.seen.size > 0)
  }

  /** Buffer a copy of `data` (the caller may reuse its buffer). */
  async write (ino: number, offset: number, data: Buffer, fh?: number): Promise<number> {
    const f = this.state(ino)
    this.throwPending(f)
    if (fh !== undefined && !f.seen.has(fh)) f.seen.set(fh, f.failures)
    while (this.totalDirty >= this.maxDirtyBytes) {
      this.kickAll()
      await new Promise<void>((resolve) => this.waiters.push(resolve))
      this.throwPending(f)
    }
    const copy = Buffer.from(data)
    const last = f.extents[f.extents.length - 1]
    if (last !== undefined && last.offset + last.length === offset && last.length < this.maxCommitBytes) {
      last.chunks.push(copy)
      last.length += copy.length
    } else {
      f.extents.push({ offset, chunks: [copy], length: copy.length })
    }
    f.dirty += copy.length
    this.totalDirty += copy.length
    if (f.dirty >= this.flushThreshold && f.running === null) this.startCommit(ino, f)
    return data.length
  }

  /** Commit everything buffered for `ino`; throws a pending write-back error, or one `fh` has not heard of. */
  async flush (ino: number, fh?: number): Promise<void> {
    const f = this.files.get(ino)
    if (f === undefined) return
    while (f.running !== null || f.extents.length > 0) {
      if (f.running === null) this.startCommit(ino, f)
      await f.running
    }
    const heard = fh === undefined ? undefined : f.seen.get(fh)
    if (heard !== undefined) f.seen.set(fh!, f.failures)
    try {
      this.throwPending(f)
      if (heard !== undefined && heard < f.failures) throw f.lastError
    } finally {
      this.dropIfIdle(ino, f)
    }
  }

  /** The handle `fh` is closed: stop tracking failures for it. */
  forget (ino: number, fh: number): void {
    const f = this.files.get(ino)
    if (f === undefined) return
    f.seen.delete(fh)
    this.dropIfIdle(ino, f)
  }

  private dropIfIdle (ino: number, f: FileState): void {
    if (f.dirty === 0 && f.running === null && f.extents.length === 0 && f.error === undefined && f.seen.size === 0) this.files.delete(ino)
  }

  /** Commit every inode's bytes; the first error is thrown after all ran. */
  async flushAll (): Promise<void> {
    let first: unknown
    for (const ino of [...this.files.keys()]) {
      try { await this.flush(ino) } catch (e) { first ??= e }
    }
    if (first !== undefined) throw first
  }

  /** Forget buffered bytes of an inode (its file was truncated to below them or freed). */
  discard (ino: number, fromOffset = 0): void {
    const f = this.files.get(ino)
    if (f === undefined) return
    const keep: Extent[] = []
    for (const e of f.extents) {
      if (e.offset >= fromOffset) {
        this.release(f, e.length)
      } else if (e.offset + e.length > fromOffset) {
        const buf = Buffer.concat(e.chunks).subarray(0, fromOffset - e.offset)
        this.release(f, e.length - buf.length)
        keep.push({ offset: e.offset, chunks: [buf], length: buf.length })
      } else {
        keep.push(e)
      }
    }
    f.extents = keep
  }

  /** End of the highest buffered byte of `ino` (0 if none). */
  bufferedEnd (ino: number): number {
    const f = this.files.get(ino)
    if (f === undefined) return 0
    let end = 0
    for (const e of f.extents) end = Math.max(end, e.offset + e.length)
    return end
  }

  private state (ino: number): FileState {
    let f = this.files.get(ino)
    if (f === undefined) {
      f = { extents: [], dirty: 0, running: null, error: undefined, failures: 0, lastError: undefined, seen: new Map() }
      this.files.set(ino, f)
    }
    return f
  }

  private throwPending (f: FileState): void {
    if (f.error !== undefined) {
      const e = f.error
      f.error = undefined
      throw e
    }
  }

  private kickAll (): void {
    for (const [ino, f] of this.files) if (f.running === null && f.extents.length > 0) this.startCommit(ino, f)
  }

  private release (f: FileState, n: number): void {
    f.dirty -= n
    this.totalDirty -= n
    if (this.totalDirty < this.maxDirtyBytes && this.waiters.length > 0) {
      const w = this.waiters
      this.waiters = []
      for (const resolve of w) resolve()
    }
  }

  /** Commits the extents present now, one after another, in write order. */
  private startCommit (ino: number, f: FileState): void {
    const batch = f.extents
    f.extents = []
    f.running = (async () => {
      for (let i = 0; i < batch.length; i++) {
        const e = batch[i]!
        try {
          await this.commit(ino, e.offset, e.chunks.length === 1 ? e.chunks[0]! : Buffer.concat(e.chunks, e.length))
        } catch (err) {
          f.error ??= err
          f.failures++
          f.lastError = err
          // The failed extent and the ones after it are dropped (reported once).
          for (let j = i; j < batch.length; j++) this.release(f, batch[j]!.length)
          this.onDropped?.(ino)
          return
        }
        this.release(f, e.length)
      }
    })().finally(() => {
      f.running = null
      if (f.extents.length > 0 && (f.dirty >= this.flushThreshold || this.totalDirty >= this.maxDirtyBytes)) this.startCommit(ino, f)
    })
  }
}
