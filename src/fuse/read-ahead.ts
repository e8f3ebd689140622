/**
 * Read-ahead for read-only handles: a handle that reads a file from its
 * start, or on from where its last window ended, in requests of at least
 * `minRequest` bytes (the kernel's streaming reads are 128 KiB) gets the
 * next `windowBytes` in one fetch, and its following requests inside that
 * window are served from it. A sequential reader then pays one filesystem
 * read — on a cluster, one transaction and one ReadIndex round — per window
 * instead of one per request. The kernel sends its read-ahead requests
 * concurrently; those that fall into a window still being fetched wait for
 * it instead of fetching on their own. Once the reader is past the middle
 * of a window, the next one is fetched while it reads the rest.
 *
 * What a reader sees: the file as of the fetch of the window, which began
 * after the read that opened the window did — the same as the kernel's
 * page cache gives a read-only open (walkenfs does not set keep_cache, so a
 * new open starts from fresh data: close-to-open). Changes made through this
 * mount (`changed(ino)`: writes, truncates) drop the windows of that inode
 * at once, so a reader always sees what was written here before its read.
 * A window is dropped when its handle closes (`drop(fh)`).
 *
 * Bounds: two windows per handle, at most `maxBytes` in all windows; past
 * that, requests are fetched one by one. Small or random reads never open a window.
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
  data: Promise<Buffer>
}

export class ReadAhead {
  private readonly windows = new Map<number, Window>()
  /** the window after `windows`' one, fetched while the reader is still in that one */
  private readonly ahead = new Map<number, Window>()
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
    // A change here dropped this inode's windows at once (changed), so those left are current.
    let w = this.windows.get(fh)
    // The window fetched ahead takes over once the reader gets there.
    const n = this.ahead.get(fh)
    if (n !== undefined && offset >= n.offset && offset + length <= n.offset + n.length) {
      if (w !== undefined) this.dropWindow(fh, w)
      this.ahead.delete(fh)
      this.windows.set(fh, w = n)
    }
    if (w !== undefined && offset >= w.offset && offset + length <= w.offset + w.length) {
      this.served++
      return await this.serve(fh, w, offset, length)
    }
    const sequential = offset === 0 || (w !== undefined && offset === w.offset + w.length)
    if (!sequential || length < this.minRequest || length >= this.windowBytes) return await this.fetch(ino, offset, length)
    this.drop(fh)
    if (this.inWindows + this.windowBytes > this.maxBytes) return await this.fetch(ino, offset, length)
    const next = this.start(ino, offset)
    this.windows.set(fh, next)
    return await this.serve(fh, next, offset, length)
  }

  /** The request's bytes from window `w` of `fh`, once fetched; a failed fetch takes the window with it. */
  private async serve (fh: number, w: Window, offset: number, length: number): Promise<Buffer> {
    let data: Buffer
    try {
      data = await w.data
    } catch (e) {
      if (this.windows.get(fh) === w) this.dropWindow(fh, w)
      throw e
    }
    this.fetchAhead(fh, w, data, offset + length)
    const from = Math.min(offset - w.offset, data.length)
    return data.subarray(from, Math.min(from + length, data.length))
  }

  /** The content of `ino` changed through this mount: no window of it is served again. */
  changed (ino: number): void {
    for (const [fh, w] of this.windows) if (w.ino === ino) this.dropWindow(fh, w)
    for (const [fh, w] of this.ahead) if (w.ino === ino) this.dropAhead(fh, w)
  }

  /** Handle `fh` closed (or starts over): its windows go. */
  drop (fh: number): void {
    const w = this.windows.get(fh)
    if (w !== undefined) this.dropWindow(fh, w)
    const n = this.ahead.get(fh)
    if (n !== undefined) this.dropAhead(fh, n)
  }

  private start (ino: number, offset: number): Window {
    const w: Window = { ino, offset, length: this.windowBytes, data: this.fetch(ino, offset, this.windowBytes) }
    // A failed fetch nobody waits for (dropped, or fetched ahead and never reached) must not become an unhandled rejection.
    w.data.catch(() => {})
    this.inWindows += w.length
    this.fetched++
    return w
  }

  /**
   * Once the reader is past the middle of a full window, the next one is
   * fetched while it reads the rest: the transaction overlaps the serving.
   */
  private fetchAhead (fh: number, w: Window, data: Buffer, end: number): void {
    // A window dropped while its fetch ran (a change here, a new start) starts nothing.
    if (this.windows.get(fh) !== w || data.length < w.length || end < w.offset + w.length / 2 || this.ahead.has(fh)) return
    if (this.inWindows + this.windowBytes > this.maxBytes) return
    const n = this.start(w.ino, w.offset + w.length)
    this.ahead.set(fh, n)
    // A failed fetch ahead is forgotten: the request that reaches it fetches again.
    n.data.catch(() => { if (this.ahead.get(fh) === n) this.dropAhead(fh, n) })
  }

  private dropWindow (fh: number, w: Window): void {
    this.windows.delete(fh)
    this.inWindows -= w.length
  }

  private dropAhead (fh: number, w: Window): void {
    this.ahead.delete(fh)
    this.inWindows -= w.length
  }
}
