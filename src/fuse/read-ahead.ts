/**
 * Read-ahead for read-only handles: a handle that reads a file from its
 * start, or on from where its last window ended, in requests of at least
 * `minRequest` bytes (the kernel's streaming reads are 128 KiB) gets the
 * next `windowBytes` in one fetch, and its following requests inside that
 * window are served from it. A sequential reader then pays one filesystem
 * read — on a cluster, one transaction and one ReadIndex round — per window
 * instead of one per request. The kernel sends its read-ahead requests
 * concurrently; those that fall into a window still being fetched wait for
 * it instead of fetching on their own.
 *
 * What a reader sees: the file as of the fetch of the window, which began
 * after the read that opened the window did — the same as the kernel's
 * page cache gives a read-only open (walkenfs does not set keep_cache, so a
 * new open starts from fresh data: close-to-open). Changes made through this
 * mount (`changed(ino)`: writes, truncates) drop the windows of that inode
 * at once, so a reader always sees what was written here before its read.
 * A window is dropped when its handle closes (`drop(fh)`).
 *
 * Bounds: at most `maxBytes` in all windows; past that, requests are
 * fetched one by one. Small or random reads never open a window.
 */

export type FetchFn = (ino: number, offset: number, length: number) => Promise<Buffer>

export interface ReadAheadOptions {
  /** bytes fetched per window (default 1 MiB) */
  windowBytes?: number
  /** smallest request that may open a window (default 128 KiB) */
  minRequest?: number
  /** all windows together (default 64 MiB) */
  maxBytes?: number
}

interface Window {
  ino: number
  offset: number
  length: number
  /** the inode's change generation when the fetch began */
  gen: number
  data: Promise<Buffer>
}

export class ReadAhead {
  private readonly windows = new Map<number, Window>()
  private readonly gens = new Map<number, number>()
  private readonly windowBytes: number
  private readonly minRequest: number
  private readonly maxBytes: number
  private inWindows = 0
  /** requests served from a window (for tests and counters) */
  served = 0
  /** windows fetched */
  fetched = 0

  constructor (private readonly fetch: FetchFn, opts: ReadAheadOptions = {}) {
    this.windowBytes = opts.windowBytes ?? 1024 * 1024
    this.minRequest = opts.minRequest ?? 128 * 1024
    this.maxBytes = opts.maxBytes ?? 64 * 1024 * 1024
  }

  /** Bytes [offset, offset + length) of `ino` for read-only handle `fh` (short at the end of the file). */
  async read (fh: number, ino: number, offset: number, length: number): Promise<Buffer> {
    const gen = this.gens.get(ino) ?? 0
    let w = this.windows.get(fh)
    if (w !== undefined && (w.ino !== ino || w.gen !== gen)) { this.dropWindow(fh, w); w = undefined }
    if (w !== undefined && offset >= w.offset && offset + length <= w.offset + w.length) {
      const data = await w.data
      this.served++
      const from = Math.min(offset - w.offset, data.length)
      return data.subarray(from, Math.min(from + length, data.length))
    }
    const sequential = offset === 0 || (w !== undefined && offset === w.offset + w.length)
    if (!sequential || length < this.minRequest || length >= this.windowBytes) return await this.fetch(ino, offset, length)
    if (w !== undefined) this.dropWindow(fh, w)
    if (this.inWindows + this.windowBytes > this.maxBytes) return await this.fetch(ino, offset, length)
    const next: Window = { ino, offset, length: this.windowBytes, gen, data: this.fetch(ino, offset, this.windowBytes) }
    this.windows.set(fh, next)
    this.inWindows += next.length
    this.fetched++
    let data: Buffer
    try {
      data = await next.data
    } catch (e) {
      if (this.windows.get(fh) === next) this.dropWindow(fh, next)
      throw e
    }
    return data.subarray(0, Math.min(length, data.length))
  }

  /** The content of `ino` changed through this mount: no window of it is served again. */
  changed (ino: number): void {
    this.gens.set(ino, (this.gens.get(ino) ?? 0) + 1)
    for (const [fh, w] of this.windows) if (w.ino === ino) this.dropWindow(fh, w)
  }

  /** Handle `fh` closed. */
  drop (fh: number): void {
    const w = this.windows.get(fh)
    if (w !== undefined) this.dropWindow(fh, w)
  }

  /** The inode is gone from this mount's handles: its generation need not be kept. */
  forgetInode (ino: number): void {
    this.gens.delete(ino)
  }

  private dropWindow (fh: number, w: Window): void {
    this.windows.delete(fh)
    this.inWindows -= w.length
    // A failed fetch nobody waits for any more must not become an unhandled rejection.
    w.data.catch(() => {})
  }
}
