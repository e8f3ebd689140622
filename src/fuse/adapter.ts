/**
 * The FUSE adapter's logic: path-based operations, as libfuse's high-level
 * API delivers them, mapped onto the inode-based filesystem model.
 *
 * Owns: path resolution (through `NameCache`), open handles (fh → inode and
 * access mode), the write-back buffers (`WriteBack`) that are committed
 * on fsync, flush (every close), release, and before anything that reads or
 * changes the file's size or content, and the read-ahead windows of
 * read-only handles (`ReadAhead`), dropped by any change made here.
 *
 * Promises:
 * - close() (FUSE flush) returns only after the file's written bytes are
 *   committed, and reports a failed commit (ENOSPC, ...) to the closer;
 * - fsync returns only after everything committed is durable on disk;
 * - a read, stat or truncate always sees every byte written before it.
 *
 * It raises `FsError`s; `fuse-ops.ts` turns them into errnos for the binding.
 */
import { FsError, ROOT_INO, type Attr, type Caller, type DirEntry, type FileSystem, type SetAttr, type StatFs, type TimeChange } from '../fs/types.js'
import { NameCache } from './name-cache.js'
import { ReadAhead } from './read-ahead.js'
import { WriteBack } from './write-back.js'

/** The name libfuse gives an unlinked file that is still open (fuse.c hidden_name). */
const HIDDEN_NAME = /^\.fuse_hidden[0-9a-f]{16}$/
const O_ACCMODE = 3
const O_RDONLY = 0
const O_APPEND = 0o2000

export interface Handle {
  ino: number
  writable: boolean
  /** O_APPEND: each write goes to the end as it commits */
  appendAtEnd: boolean
}

export interface OpenResult {
  fh: number
  /** the kernel must not cache or map this open's data through the page cache */
  directIo: boolean
}

export interface AdapterOptions {
  /** how long a cached name is trusted (ms) */
  nameTtlMs: number
  /**
   * O_APPEND writes go to the end of the file as their commit finds it
   * (default true), not to the kernel's offset. The kernel's offset is its
   * own idea of the size: stale once another host appended (cluster), and
   * too large after bytes it counted failed to commit (ENOSPC), which would
   * leave a run of zeros before the next append.
   */
  appendAtEnd?: boolean
  /** Buffered bytes of `ino` were dropped after a failed commit (WriteBackOptions.onDropped). */
  onDropped?: (ino: number) => void
}

export class Adapter {
  readonly names: NameCache
  readonly writeBack: WriteBack
  readonly readAhead: ReadAhead
  private readonly handles = new Map<number, Handle>()
  /** open handles per inode on this mount */
  private readonly openCount = new Map<number, number>()
  /** libfuse's hidden names of unlinked open files → their inode */
  private readonly hidden = new Map<string, number>()
  private nextFh = 1
  /**
   * TEST ONLY, never set in production: WALKENFS_TEST_UNSAFE_ACK=1 makes
   * fsync and close answer at once, before the written bytes are committed,
   * so that the torture harness can show its checkers catch acknowledged
   * writes that a kill -9 then loses (test/faults/unsafe-ack.test.ts).
   */
  private readonly unsafeAck = process.env.WALKENFS_TEST_UNSAFE_ACK === '1'

  private readonly appendAtEnd: boolean
  /** getattr of a path is one lookupPath transaction (names are not cached, the filesystem walks paths) */
  private readonly pathAttrs: boolean

  constructor (private readonly fs: FileSystem, opts: AdapterOptions) {
    this.appendAtEnd = opts.appendAtEnd ?? true
    const lookupPath = fs.lookupPath?.bind(fs)
    this.names = new NameCache(ROOT_INO, async (parent, name) => (await fs.lookup(parent, name)).ino, opts.nameTtlMs, undefined, undefined,
      lookupPath !== undefined ? async (parent, names) => (await lookupPath(parent, names)).ino : undefined)
    this.pathAttrs = opts.nameTtlMs === 0 && lookupPath !== undefined
    this.writeBack = new WriteBack((ino, offset, data) => fs.write(ino, offset, data), opts.onDropped !== undefined ? { onDropped: opts.onDropped } : {})
    this.readAhead = new ReadAhead(async (ino, offset, length) => await fs.read(ino, offset, length))
  }

  /** Number of open file handles (for status and tests). */
  get openHandles (): number {
    return this.handles.size
  }

  private handle (fh: number): Handle {
    const h = this.handles.get(fh)
    if (h === undefined) throw new FsError('EBADF', `no open handle ${fh}`)
    return h
  }

  /** The inode of a path: a hidden name of an unlinked open file, or a real name. */
  private async resolve (path: string): Promise<number> {
    const h = this.hidden.get(path)
    return h !== undefined ? h : await this.names.resolve(path)
  }

  /** The inode of an open handle if there is one, else of the path. */
  private async inoOf (path: string | null, fh?: number): Promise<number> {
    if (fh !== undefined && fh !== 0 && this.handles.has(fh)) return this.handles.get(fh)!.ino
    if (path === null) throw new FsError('EBADF', 'no path and no handle')
    return await this.resolve(path)
  }

  /**
   * Runs `fn` on the inode that a path (or an open handle) names. Resolving
   * the path and acting on the inode are two transactions, and in a cluster
   * another host may rename over the name or unlink it in between, so the
   * inode is gone by the time `fn` runs. The caller named a path, not an
   * inode: if the path now names another inode, act on that one (a few
   * times at most, since a host renaming in a tight loop could keep winning
   * the race). ENOENT stands only when the name itself is gone.
   */
  private async atPath<T> (path: string | null, fh: number | undefined, fn: (ino: number) => Promise<T>): Promise<T> {
    let ino = await this.inoOf(path, fh)
    const byHandle = fh !== undefined && fh !== 0 && this.handles.has(fh)
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn(ino)
      } catch (e) {
        if (!(e instanceof FsError) || e.code !== 'ENOENT' || byHandle || path === null || this.hidden.has(path) || attempt >= 4) throw e
        if (path !== '/') {
          const { parent, name } = await this.names.resolveParent(path)
          this.names.forget(parent, name)
        }
        const now = await this.resolve(path)
        if (now === ino) throw e
        ino = now
      }
    }
  }

  async getattr (path: string | null, fh?: number): Promise<Attr> {
    if (this.pathAttrs && path !== null && (fh === undefined || fh === 0 || !this.handles.has(fh)) && !this.hidden.has(path)) {
      // The kernel's LOOKUP and GETATTR of a name both arrive here: one transaction, unless this host holds unwritten bytes of it.
      const a = await this.fs.lookupPath!(ROOT_INO, NameCache.split(path))
      if (!this.writeBack.hasDirty(a.ino)) return a
      await this.writeBack.flush(a.ino)
      return await this.fs.getattr(a.ino)
    }
    return await this.atPath(path, fh, async (ino) => await this.getattrIno(ino))
  }

  /** The attributes of an inode, with the bytes this host buffered for it committed first (size, mtime). */
  async getattrIno (ino: number): Promise<Attr> {
    if (this.writeBack.hasDirty(ino)) await this.writeBack.flush(ino)
    return await this.fs.getattr(ino)
  }

  /** `attr` as it is once this host's buffered bytes of it are committed (a lookup's answer). */
  async current (attr: Attr): Promise<Attr> {
    return this.writeBack.hasDirty(attr.ino) ? await this.getattrIno(attr.ino) : attr
  }

  async setattr (path: string | null, change: SetAttr, caller: Caller, fh?: number): Promise<Attr> {
    return await this.atPath(path, fh, async (ino) => await this.setattrIno(ino, change, caller))
  }

  async setattrIno (ino: number, change: SetAttr, caller: Caller): Promise<Attr> {
    if (change.size !== undefined) {
      if (this.writeBack.hasDirty(ino)) await this.writeBack.flush(ino)
      this.readAhead.changed(ino)
    }
    return await this.fs.setattr(ino, change, caller)
  }

  async chmod (path: string, mode: number, caller: Caller): Promise<void> {
    await this.setattr(path, { mode: mode & 0o7777 }, caller)
  }

  async chown (path: string, uid: number, gid: number, caller: Caller): Promise<void> {
    // -1 (or its unsigned form) means "leave unchanged".
    const change: SetAttr = {}
    if (uid !== -1 && uid !== 0xffffffff) change.uid = uid
    if (gid !== -1 && gid !== 0xffffffff) change.gid = gid
    await this.setattr(path, change, caller)
  }

  async truncate (path: string | null, size: number, caller: Caller, fh?: number): Promise<void> {
    if (size < 0) throw new FsError('EINVAL', 'negative size')
    await this.setattr(path, { size }, caller, fh)
  }

  async utimens (path: string, atime: TimeChange | undefined, mtime: TimeChange | undefined, caller: Caller): Promise<void> {
    const change: SetAttr = {}
    if (atime !== undefined) change.atime = atime
    if (mtime !== undefined) change.mtime = mtime
    await this.setattr(path, change, caller)
  }

  async readlink (path: string): Promise<string> {
    return await this.atPath(path, undefined, async (ino) => await this.fs.readlink(ino))
  }

  async mknod (path: string, mode: number, rdev: number, caller: Caller): Promise<Attr> {
    const { parent, name } = await this.names.resolveParent(path)
    const attr = await this.fs.mknod(parent, name, mode, rdev, caller)
    this.names.remember(parent, name, attr.ino)
    return attr
  }

  async mkdir (path: string, mode: number, caller: Caller): Promise<Attr> {
    const { parent, name } = await this.names.resolveParent(path)
    const attr = await this.fs.mkdir(parent, name, mode, caller)
    this.names.remember(parent, name, attr.ino)
    return attr
  }

  async symlink (target: string, path: string, caller: Caller): Promise<Attr> {
    const { parent, name } = await this.names.resolveParent(path)
    const attr = await this.fs.symlink(parent, name, target, caller)
    this.names.remember(parent, name, attr.ino)
    return attr
  }

  async link (existing: string, path: string): Promise<Attr> {
    const ino = await this.resolve(existing)
    const { parent, name } = await this.names.resolveParent(path)
    const attr = await this.fs.link(ino, parent, name)
    this.names.remember(parent, name, ino)
    return attr
  }

  async unlink (path: string): Promise<void> {
    // libfuse removes a hidden name after the last release; the model freed the inode then
    if (this.hidden.delete(path)) return
    const { parent, name } = await this.names.resolveParent(path)
    try {
      await this.fs.unlink(parent, name)
    } finally {
      this.names.forget(parent, name)
    }
  }

  async rmdir (path: string): Promise<void> {
    const { parent, name } = await this.names.resolveParent(path)
    try {
      await this.fs.rmdir(parent, name)
    } finally {
      this.names.forget(parent, name)
    }
  }

  async rename (from: string, to: string): Promise<void> {
    if (HIDDEN_NAME.test(to.slice(to.lastIndexOf('/') + 1)) && !this.hidden.has(from)) {
      const ino = await this.resolve(from)
      if ((this.openCount.get(ino) ?? 0) > 0) {
        // libfuse hides an unlinked open file by renaming it to .fuse_hiddenXXXXXXXXXXXXXXXX
        // (without hard_remove, which would make fstat of it fail): remove the
        // name in the model for real — the inode lives on while open — and
        // answer for the hidden name from memory, so no directory shows it.
        await this.unlink(from)
        this.hidden.set(to, ino)
        return
      }
    }
    const a = await this.names.resolveParent(from)
    const b = await this.names.resolveParent(to)
    try {
      await this.fs.rename(a.parent, a.name, b.parent, b.name)
    } finally {
      this.names.forget(a.parent, a.name)
      this.names.forget(b.parent, b.name)
    }
  }

  async readdir (path: string): Promise<DirEntry[]> {
    const ino = await this.resolve(path)
    const entries = await this.fs.readdir(ino)
    for (const e of entries) this.names.remember(ino, e.name, e.attr.ino)
    return entries
  }

  async open (path: string | null, flags: number): Promise<OpenResult> {
    return await this.atPath(path, undefined, async (ino) => await this.openIno(ino, flags))
  }

  /** Opens an inode: a handle with its access mode, direct I/O for writable opens. */
  async openIno (ino: number, flags: number): Promise<OpenResult> {
    await this.fs.open(ino)
    const writable = (flags & O_ACCMODE) !== O_RDONLY
    const fh = this.nextFh++
    if (this.nextFh > 0x7fffffff) this.nextFh = 1
    this.handles.set(fh, { ino, writable, appendAtEnd: writable && this.appendAtEnd && (flags & O_APPEND) !== 0 })
    this.openCount.set(ino, (this.openCount.get(ino) ?? 0) + 1)
    // Direct I/O for every open with write access: the kernel then refuses
    // shared mappings of it (ENODEV), which no host could keep coherent.
    return { fh, directIo: writable }
  }

  async create (path: string, mode: number, flags: number, caller: Caller): Promise<OpenResult & { attr: Attr }> {
    const { parent, name } = await this.names.resolveParent(path)
    const attr = await this.fs.mknod(parent, name, mode, 0, caller)
    this.names.remember(parent, name, attr.ino)
    // create(2) always opens for writing unless O_RDONLY was asked explicitly.
    const opened = await this.openIno(attr.ino, flags)
    return { ...opened, attr }
  }

  async read (fh: number, offset: number, length: number): Promise<Buffer> {
    const h = this.handle(fh)
    if (this.writeBack.hasDirty(h.ino)) await this.writeBack.flush(h.ino)
    if (h.writable) return await this.fs.read(h.ino, offset, length)
    return await this.readAhead.read(fh, h.ino, offset, length)
  }

  async write (fh: number, offset: number, data: Buffer): Promise<number> {
    const h = this.handle(fh)
    if (!h.writable) throw new FsError('EBADF', 'handle not open for writing')
    this.readAhead.changed(h.ino)
    if (h.appendAtEnd) {
      // Committed at once, not buffered: the end of the file is only known
      // inside the commit. Bytes this host buffered for the file go first.
      if (this.writeBack.hasDirty(h.ino)) await this.writeBack.flush(h.ino, fh)
      await this.fs.append(h.ino, data)
      return data.length
    }
    return await this.writeBack.write(h.ino, offset, data, fh)
  }

  /** close(2) of one descriptor: commit its file's bytes, report errors. */
  async flush (fh: number): Promise<void> {
    const h = this.handle(fh)
    if (this.unsafeAck) return
    await this.writeBack.flush(h.ino, fh)
  }

  async fsync (fh: number | undefined, path: string | null): Promise<void> {
    const ino = await this.inoOf(path, fh)
    if (this.unsafeAck) return
    await this.writeBack.flush(ino, fh)
    await this.fs.fsync()
  }

  async fsyncdir (): Promise<void> {
    await this.fs.fsync()
  }

  async release (fh: number): Promise<void> {
    const h = this.handle(fh)
    this.handles.delete(fh)
    this.readAhead.drop(fh)
    const left = (this.openCount.get(h.ino) ?? 1) - 1
    if (left > 0) this.openCount.set(h.ino, left)
    else this.openCount.delete(h.ino)
    try {
      await this.writeBack.flush(h.ino, fh)
    } finally {
      this.writeBack.forget(h.ino, fh)
      await this.fs.release(h.ino)
    }
  }

  async statfs (): Promise<StatFs> {
    return await this.fs.statfs()
  }

  async getxattr (path: string, name: string): Promise<Buffer> {
    return await this.atPath(path, undefined, async (ino) => await this.fs.getxattr(ino, name))
  }

  async setxattr (path: string, name: string, value: Buffer, flags: number): Promise<void> {
    await this.atPath(path, undefined, async (ino) => { await this.fs.setxattr(ino, name, value, flags) })
  }

  async listxattr (path: string): Promise<string[]> {
    return await this.atPath(path, undefined, async (ino) => await this.fs.listxattr(ino))
  }

  async removexattr (path: string, name: string): Promise<void> {
    await this.atPath(path, undefined, async (ino) => { await this.fs.removexattr(ino, name) })
  }

  /** Commit every buffered byte and make it durable (unmount, shutdown). */
  async sync (): Promise<void> {
    await this.writeBack.flushAll()
    await this.fs.fsync()
  }
}
