/**
 * The typed, promise-based face of walkenfs's own low-level FUSE binding
 * (native/fuse-ll: libfuse 2.9's inode API; answers are written to
 * /dev/fuse from the JS thread, kernel caches can be invalidated).
 *
 * Owns: the inode-based handler signatures, the dispatch of each kernel
 * request to its handler and of the handler's result (or error) to exactly
 * one answer, directory listings of open directory handles (a snapshot
 * taken at offset 0, served by offset afterwards, as libfuse's path API
 * does), the xattr size protocol, mounting and unmounting as promises, and
 * the invalidation calls.
 *
 * Promises:
 * - Every request is answered exactly once; a handler that throws something
 *   that is not an errno answers EIO and is reported to `onInternalError`.
 * - Node numbers are the filesystem's inode numbers (1 is the root); the
 *   kernel keeps an entry and attributes for the timeouts each answer gives
 *   (seconds; 0: not at all).
 * - invalEntry/invalInode never block the JS thread: they are queued for a
 *   thread of their own (the kernel takes the parent's lock for an entry
 *   invalidation, which a request waiting for this thread may hold).
 * - Options are checked before mounting (libfuse fails on an unknown option
 *   only after the kernel mount exists); the path API's options (use_ino,
 *   hard_remove, attr_timeout, …) do not exist here and are refused.
 */
import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { resolve as resolvePath } from 'node:path'
import { errno, toErrno, type FuseContext, type FuseDirEntry, type OpenResult, type Stat, type StatFs, type TimeUpdate } from './binding.js'
import { checkMountOptions, isPathApiOption } from './mount-options.js'
import { isMountPoint, watchUnmounted } from './mount-table.js'

/**
 * A name's answer: its attributes, and how long the kernel may keep the name
 * and the attributes (s). The timeouts are read when the answer is written,
 * so they may be getters (a cluster mount's leases, kernel-cache.ts).
 */
export interface Entry {
  stat: Stat
  attrTimeout: number
  entryTimeout: number
}

/** An inode's attributes and how long the kernel may keep them (s; read when the answer is written, as for Entry). */
export interface AttrAnswer {
  stat: Stat
  attrTimeout: number
}

/** setattr(2) family: only the fields present change. */
export interface AttrChange {
  mode?: number
  uid?: number
  gid?: number
  size?: number
  atime?: TimeUpdate
  mtime?: TimeUpdate
}

/**
 * What a filesystem implements, by inode. Omitted handlers answer ENOSYS
 * (for access: the kernel stops asking and allows).
 */
export interface LowLevelOps {
  lookup (ctx: FuseContext, parent: number, name: string): Promise<Entry>
  getattr (ctx: FuseContext, ino: number, fh: number | undefined): Promise<AttrAnswer>
  setattr? (ctx: FuseContext, ino: number, change: AttrChange, fh: number | undefined): Promise<AttrAnswer>
  readlink? (ctx: FuseContext, ino: number): Promise<string>
  mknod? (ctx: FuseContext, parent: number, name: string, mode: number, rdev: number): Promise<Entry>
  mkdir? (ctx: FuseContext, parent: number, name: string, mode: number): Promise<Entry>
  unlink? (ctx: FuseContext, parent: number, name: string): Promise<void>
  rmdir? (ctx: FuseContext, parent: number, name: string): Promise<void>
  symlink? (ctx: FuseContext, parent: number, name: string, target: string): Promise<Entry>
  rename? (ctx: FuseContext, parent: number, name: string, newParent: number, newName: string): Promise<void>
  link? (ctx: FuseContext, ino: number, newParent: number, newName: string): Promise<Entry>
  open? (ctx: FuseContext, ino: number, flags: number): Promise<OpenResult>
  create? (ctx: FuseContext, parent: number, name: string, mode: number, flags: number): Promise<Entry & OpenResult>
  /** Up to `size` bytes from `offset` (fewer only at EOF). */
  read? (ctx: FuseContext, ino: number, fh: number, size: number, offset: number): Promise<Buffer>
  /** `data` is this call's own copy. Resolves the bytes written. */
  write? (ctx: FuseContext, ino: number, fh: number, data: Buffer, offset: number): Promise<number>
  flush? (ctx: FuseContext, ino: number, fh: number): Promise<void>
  release? (ctx: FuseContext, ino: number, fh: number): Promise<void>
  fsync? (ctx: FuseContext, ino: number, fh: number, datasync: boolean): Promise<void>
  opendir? (ctx: FuseContext, ino: number, flags: number): Promise<OpenResult>
  /** Every entry of the directory, '.' and '..' included if wanted (taken once per open handle). */
  readdir? (ctx: FuseContext, ino: number, fh: number): Promise<FuseDirEntry[]>
  releasedir? (ctx: FuseContext, ino: number, fh: number): Promise<void>
  fsyncdir? (ctx: FuseContext, ino: number, fh: number, datasync: boolean): Promise<void>
  statfs? (ctx: FuseContext, ino: number): Promise<StatFs>
  setxattr? (ctx: FuseContext, ino: number, name: string, value: Buffer, flags: number): Promise<void>
  /** The value; throw ENODATA when there is none. */
  getxattr? (ctx: FuseContext, ino: number, name: string): Promise<Buffer>
  listxattr? (ctx: FuseContext, ino: number): Promise<string[]>
  removexattr? (ctx: FuseContext, ino: number, name: string): Promise<void>
  access? (ctx: FuseContext, ino: number, mask: number): Promise<void>
}

export interface LowLevelSettings {
  /** libfuse options (fuse_mount's and the low-level ones), checked before mounting. */
  options?: readonly string[]
  /** A request whose handler has not settled after this long is answered ETIMEDOUT; default none. */
  timeoutMs?: number
  onInternalError?: (op: string, err: unknown) => void
}

/** Throws a clear error for an option the low-level API would refuse after mounting. */
export function checkLowLevelOptions (options: readonly string[]): void {
  checkMountOptions(options)
  for (const opt of options) {
    if (isPathApiOption(opt)) {
      throw new Error(`FUSE option "${opt}" belongs to libfuse's path API (fuse_api=path); the low-level binding takes cache timeouts per answer instead`)
    }
  }
}

// ---- the addon ----

type Req = number
/** Sends one request's reply (exactly one fuse_reply_*, as its last step). */
type Answer = () => void
interface Addon {
  mount (mountpoint: string, options: string, dispatch: (...args: unknown[]) => void): object
  close (h: object): void
  exit (h: object): void
  unref (h: object): void
  fd (h: object): number
  replyErr (req: Req, errno: number): number
  replyEntry (req: Req, stat: Float64Array, attrTimeout: number, entryTimeout: number): number
  replyCreate (req: Req, stat: Float64Array, attrTimeout: number, entryTimeout: number, fh: number, flags: number): number
  replyAttr (req: Req, stat: Float64Array, attrTimeout: number): number
  replyOpen (req: Req, fh: number, flags: number): number
  replyWrite (req: Req, count: number): number
  replyBuf (req: Req, buf: Buffer): number
  replyReadlink (req: Req, target: string): number
  replyStatfs (req: Req, s: Float64Array): number
  replyXattrSize (req: Req, size: number): number
  replyDir (req: Req, size: number, first: number, names: string[], inos: number[], modes: number[]): number
  invalInode (h: object, ino: number, off: number, len: number): void
  invalEntry (h: object, parent: number, name: string): void
  barrier (h: object, n: number): void
}

let addon: Addon | undefined
function loadAddon (): Addon {
  if (addon) return addon
  try {
    addon = createRequire(import.meta.url)('../../../native/fuse-ll/build/Release/fuse_ll.node') as Addon
  } catch (e) {
    throw new Error(`the low-level FUSE binding is not built (native/fuse-ll): run \`npm install\` (postinstall builds it): ${(e as Error).message}`)
  }
  return addon
}

const enum Op {
  ENDED = 0, LOOKUP, GETATTR, SETATTR, READLINK, MKNOD, MKDIR, UNLINK, RMDIR, SYMLINK, RENAME, LINK, OPEN, READ, WRITE,
  FLUSH, RELEASE, FSYNC, OPENDIR, READDIR, RELEASEDIR, FSYNCDIR, STATFS, SETXATTR, GETXATTR, LISTXATTR, REMOVEXATTR,
  CREATE, ACCESS, NOTICED
}
const OP_NAMES = ['ended', 'lookup', 'getattr', 'setattr', 'readlink', 'mknod', 'mkdir', 'unlink', 'rmdir', 'symlink',
  'rename', 'link', 'open', 'read', 'write', 'flush', 'release', 'fsync', 'opendir', 'readdir', 'releasedir', 'fsyncdir',
  'statfs', 'setxattr', 'getxattr', 'listxattr', 'removexattr', 'create', 'access', 'noticed']

// FUSE_SET_ATTR_* (fuse_lowlevel.h)
const SET_MODE = 1 << 0
const SET_UID = 1 << 1
const SET_GID = 1 << 2
const SET_SIZE = 1 << 3
const SET_ATIME = 1 << 4
const SET_MTIME = 1 << 5
const SET_ATIME_NOW = 1 << 7
const SET_MTIME_NOW = 1 << 8

const NS = 1_000_000_000n

/** One reusable stat block: the addon copies it into the answer at once. */
const statBlock = new Float64Array(15)
function fillStat (s: Stat): Float64Array {
  const b = statBlock
  b[0] = s.ino; b[1] = s.mode; b[2] = s.nlink; b[3] = s.uid; b[4] = s.gid; b[5] = s.rdev ?? 0; b[6] = s.size
  b[7] = s.blocks ?? Math.ceil(s.size / 512); b[8] = s.blksize ?? 4096
  b[9] = Number(s.atimeNs / NS); b[10] = Number(s.atimeNs % NS)
  b[11] = Number(s.mtimeNs / NS); b[12] = Number(s.mtimeNs % NS)
  b[13] = Number(s.ctimeNs / NS); b[14] = Number(s.ctimeNs % NS)
  return b
}

function timeOf (bits: number, setBit: number, nowBit: number, sec: number, nsec: number): TimeUpdate | undefined {
  if ((bits & nowBit) !== 0) return 'now'
  if ((bits & setBit) !== 0) return BigInt(sec) * NS + BigInt(nsec)
  return undefined
}

function openFlags (r: OpenResult): number {
  return (r.directIo ? 1 : 0) | (r.keepCache ? 2 : 0) | (r.nonSeekable ? 4 : 0)
}

function xattrNames (names: string[]): Buffer {
  return Buffer.from(names.map((n) => n + '\0').join(''))
}

/**
 * One FUSE mount served by `ops` through the low-level binding. Handlers
 * run on this process's main thread.
 */
export class LowLevelMount {
  readonly mountpoint: string
  readonly options: readonly string[]
  private handle: object | null = null
  /** mount() succeeded and unmount() was not called (the session may have ended already) */
  private mounted = false
  private readonly listings = new Map<number, FuseDirEntry[]>()
  private nextDirFh = 1
  private readonly watchers = new Set<() => void>()
  private endedResolve: (() => void) | null = null
  /** resolves once the kernel connection is gone and the session is closed */
  readonly ended: Promise<void>

  constructor (mountpoint: string, private readonly ops: LowLevelOps, settings: LowLevelSettings = {}) {
    this.mountpoint = resolvePath(mountpoint)
    this.options = [...(settings.options ?? [])]
    checkLowLevelOptions(this.options)
    this.report = settings.onInternalError ?? ((op: string, err: unknown) => {
      process.stderr.write(`walkenfs fuse: ${op} failed internally, answered EIO: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    })
    this.ended = new Promise((resolve) => { this.endedResolve = resolve })
    this.timeoutMs = settings.timeoutMs
  }

  private readonly timeoutMs: number | undefined
  /** barrier numbers asked for, and who waits for them (invalidated()) */
  private barriers = 0
  private barrierWaiters: Array<{ n: number, resolve: () => void }> = []

  private readonly report: (op: string, err: unknown) => void

  /** Mounts; the kernel sends requests as soon as this returns. Rejections name the mountpoint, options and cause. */
  async mount (): Promise<void> {
    if (this.handle !== null) throw new Error(`${this.mountpoint} is already mounted by this LowLevelMount`)
    const a = loadAddon()
    try {
      this.handle = a.mount(this.mountpoint, this.options.join(','), (...args: unknown[]) => { this.dispatch(a, args) })
      this.mounted = true
    } catch (e) {
      throw new Error(`cannot mount FUSE at ${this.mountpoint} (options ${this.options.join(',') || 'none'}): ${(e as Error).message}`)
    }
  }

  /** Drops the kernel's cached name `name` in `parent` (after another host changed it). */
  invalEntry (parent: number, name: string): void {
    if (this.handle !== null) loadAddon().invalEntry(this.handle, parent, name)
  }

  /**
   * Drops the kernel's cached attributes of `ino` and, for off >= 0, its
   * cached pages in [off, off+len) (len 0: all). By default attributes only:
   * dropping pages waits, uninterruptibly, for page locks that a read
   * waiting for this daemon may hold (see kernel-cache.ts).
   */
  invalInode (ino: number, off = -1, len = 0): void {
    if (this.handle !== null) loadAddon().invalInode(this.handle, ino, off, len)
  }

  /**
   * Resolves once every invalidation asked for before this call is done in
   * the kernel (the notice thread handles them in order); at once when the
   * mount is gone.
   */
  async invalidated (): Promise<void> {
    if (this.handle === null) return
    const n = ++this.barriers
    const done = new Promise<void>((resolve) => { this.barrierWaiters.push({ n, resolve }) })
    loadAddon().barrier(this.handle, n)
    await done
  }

  private noticed (upTo: number): void {
    const ready = this.barrierWaiters.filter((w) => w.n <= upTo)
    if (ready.length === 0) return
    this.barrierWaiters = this.barrierWaiters.filter((w) => w.n > upTo)
    for (const w of ready) w.resolve()
  }

  /** The /dev/fuse descriptor (tests: no child may inherit it). */
  get fd (): number {
    return this.handle === null ? -1 : loadAddon().fd(this.handle)
  }

  /**
   * Unmounts lazily (open files keep working until closed) and resolves once
   * the mountpoint is detached; from then on the session no longer keeps the
   * process alive. Also succeeds when someone else already unmounted it.
   */
  async unmount (): Promise<void> {
    for (const stop of [...this.watchers]) stop()
    if (!this.mounted) return
    this.mounted = false
    const h = this.handle
    if (isMountPoint(this.mountpoint)) {
      await new Promise<void>((resolve) => {
        // not awaited to its end: fusermount may stay in the kernel after the detach
        execFile('fusermount', ['-uz', this.mountpoint], () => {})
        const poll = setInterval(() => {
          if (isMountPoint(this.mountpoint)) return
          clearInterval(poll)
          resolve()
        }, 20)
      })
    }
    if (h !== null && this.handle !== null) loadAddon().unref(h)
  }

  /** Calls `onGone` once when the mountpoint is unmounted by someone else (polls /proc/self/mountinfo). */
  watchUnmount (onGone: () => void, intervalMs = 500): () => void {
    return watchUnmounted(this.mountpoint, () => this.mounted, onGone, intervalMs, this.watchers)
  }

  private dispatch (a: Addon, args: unknown[]): void {
    const op = args[0] as Op
    const req = args[1] as Req
    if (op === Op.NOTICED) {
      this.noticed(args[6] as number)
      return
    }
    if (op === Op.ENDED) {
      const h = this.handle
      if (h !== null) a.close(h)
      this.handle = null
      this.listings.clear()
      // The kernel connection is gone, and every cache with it.
      this.noticed(Infinity)
      this.endedResolve?.()
      return
    }
    const ctx: FuseContext = { uid: args[3] as number, gid: args[4] as number, pid: args[5] as number, umask: 0 }
    let result: Answer | Promise<Answer>
    try {
      result = this.run(a, op, req, ctx, args[2] as number, args[6], args[7], args[8])
    } catch (err) {
      this.fail(a, op, req, err)
      return
    }
    if (typeof result === 'function') {
      this.answer(a, op, req, result)
      return
    }
    if (this.timeoutMs === undefined) {
      result.then((answer) => { this.answer(a, op, req, answer) }, (err: unknown) => { this.fail(a, op, req, err) })
      return
    }
    // a hung handler must not hang the caller forever: ETIMEDOUT, and its late result is dropped
    let settled = false
    const timer = setTimeout(() => {
      settled = true
      a.replyErr(req, errno.ETIMEDOUT!)
    }, this.timeoutMs)
    result.then((answer) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      this.answer(a, op, req, answer)
    }, (err: unknown) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      this.fail(a, op, req, err)
    })
  }

  /** Sends an answer; one that cannot be encoded (a handler bug) becomes EIO before anything went out. */
  private answer (a: Addon, op: Op, req: Req, answer: Answer): void {
    try {
      answer()
    } catch (err) {
      this.fail(a, op, req, err)
    }
  }

  private fail (a: Addon, op: Op, req: Req, err: unknown): void {
    const n = toErrno(err)
    if (n === undefined) this.report(OP_NAMES[op] ?? String(op), err)
    a.replyErr(req, n ?? errno.EIO!)
  }

  /**
   * Runs one request's handler; the result is the answer to send (each one
   * sends exactly one reply, last, so a throw inside it means none went out).
   */
  private run (a: Addon, op: Op, req: Req, ctx: FuseContext, ino: number, x: unknown, y: unknown, z: unknown): Answer | Promise<Answer> {
    const o = this.ops
    const err = (n: number): Answer => () => { a.replyErr(req, n) }
    const nosys = err(errno.ENOSYS!)
    const ok = err(0)
    const done = (): Answer => ok
    const entry = (e: Entry): Answer => () => { a.replyEntry(req, fillStat(e.stat), e.attrTimeout, e.entryTimeout) }
    const attr = (r: AttrAnswer): Answer => () => { a.replyAttr(req, fillStat(r.stat), r.attrTimeout) }
    switch (op) {
      case Op.LOOKUP: return o.lookup(ctx, ino, x as string).then(entry)
      case Op.GETATTR: return o.getattr(ctx, ino, (x as number) || undefined).then(attr)
      case Op.SETATTR: {
        if (!o.setattr) return nosys
        const bits = x as number
        const v = y as number[]
        const change: AttrChange = {}
        if ((bits & SET_MODE) !== 0) change.mode = v[0]!
        if ((bits & SET_UID) !== 0) change.uid = v[1]!
        if ((bits & SET_GID) !== 0) change.gid = v[2]!
        if ((bits & SET_SIZE) !== 0) change.size = v[3]!
        const at = timeOf(bits, SET_ATIME, SET_ATIME_NOW, v[4]!, v[5]!)
        const mt = timeOf(bits, SET_MTIME, SET_MTIME_NOW, v[6]!, v[7]!)
        if (at !== undefined) change.atime = at
        if (mt !== undefined) change.mtime = mt
        return o.setattr(ctx, ino, change, (z as number) || undefined).then(attr)
      }
      case Op.READLINK: return o.readlink ? o.readlink(ctx, ino).then((t) => () => { a.replyReadlink(req, t) }) : nosys
      case Op.MKNOD: return o.mknod ? o.mknod(ctx, ino, x as string, y as number, z as number).then(entry) : nosys
      case Op.MKDIR: return o.mkdir ? o.mkdir(ctx, ino, x as string, y as number).then(entry) : nosys
      case Op.UNLINK: return o.unlink ? o.unlink(ctx, ino, x as string).then(done) : nosys
      case Op.RMDIR: return o.rmdir ? o.rmdir(ctx, ino, x as string).then(done) : nosys
      case Op.SYMLINK: return o.symlink ? o.symlink(ctx, ino, x as string, y as string).then(entry) : nosys
      case Op.RENAME: return o.rename ? o.rename(ctx, ino, x as string, y as number, z as string).then(done) : nosys
      case Op.LINK: return o.link ? o.link(ctx, ino, x as number, y as string).then(entry) : nosys
      case Op.OPEN:
        if (!o.open) return () => { a.replyOpen(req, 0, 0) }
        return o.open(ctx, ino, x as number).then((r) => () => { a.replyOpen(req, r.fh, openFlags(r)) })
      case Op.CREATE:
        if (!o.create) return nosys
        return o.create(ctx, ino, x as string, y as number, z as number).then((r) => () => {
          a.replyCreate(req, fillStat(r.stat), r.attrTimeout, r.entryTimeout, r.fh, openFlags(r))
        })
      case Op.READ: {
        if (!o.read) return nosys
        const size = y as number
        return o.read(ctx, ino, x as number, size, z as number).then((b) => () => {
          if (b.length > size) throw new RangeError(`read handler returned ${b.length} bytes for a read of ${size}`)
          a.replyBuf(req, b)
        })
      }
      case Op.WRITE: {
        if (!o.write) return nosys
        const data = y as Buffer
        return o.write(ctx, ino, x as number, data, z as number).then((n) => () => {
          if (!Number.isInteger(n) || n < 0 || n > data.length) throw new RangeError(`write handler returned ${String(n)}, not a byte count in 0..${data.length}`)
          a.replyWrite(req, n)
        })
      }
      case Op.FLUSH: return o.flush ? o.flush(ctx, ino, x as number).then(done) : nosys
      case Op.RELEASE: return o.release ? o.release(ctx, ino, x as number).then(done) : ok
      case Op.FSYNC: return o.fsync ? o.fsync(ctx, ino, x as number, y !== 0).then(done) : nosys
      case Op.OPENDIR: {
        const dirFh = this.nextDirFh++
        // the binding owns directory handles (it keeps their listings); the handler's own fh is not needed
        if (!o.opendir) return () => { a.replyOpen(req, dirFh, 0) }
        return o.opendir(ctx, ino, x as number).then((r) => () => { a.replyOpen(req, dirFh, openFlags(r)) })
      }
      case Op.READDIR: {
        if (!o.readdir) return nosys
        const fh = x as number
        const size = y as number
        const first = z as number
        const send = (list: FuseDirEntry[]): Answer => () => {
          a.replyDir(req, size, first, list.map((e) => e.name), list.map((e) => e.ino), list.map((e) => e.mode))
        }
        const have = this.listings.get(fh)
        if (have !== undefined && first !== 0) return send(have)
        return o.readdir(ctx, ino, fh).then((list) => {
          this.listings.set(fh, list)
          return send(list)
        })
      }
      case Op.RELEASEDIR:
        this.listings.delete(x as number)
        return ok
      case Op.FSYNCDIR: return o.fsyncdir ? o.fsyncdir(ctx, ino, x as number, y !== 0).then(done) : nosys
      case Op.STATFS:
        if (!o.statfs) return nosys
        return o.statfs(ctx, ino).then((s) => () => {
          a.replyStatfs(req, Float64Array.of(s.bsize, s.frsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.favail, s.namemax))
        })
      case Op.SETXATTR: return o.setxattr ? o.setxattr(ctx, ino, x as string, y as Buffer, z as number).then(done) : nosys
      case Op.GETXATTR: {
        if (!o.getxattr) return nosys
        const size = y as number
        return o.getxattr(ctx, ino, x as string).then((v) => () => { sized(a, req, v, size) })
      }
      case Op.LISTXATTR: {
        if (!o.listxattr) return nosys
        const size = x as number
        return o.listxattr(ctx, ino).then((names) => () => { sized(a, req, xattrNames(names), size) })
      }
      case Op.REMOVEXATTR: return o.removexattr ? o.removexattr(ctx, ino, x as string).then(done) : nosys
      case Op.ACCESS: return o.access ? o.access(ctx, ino, x as number).then(done) : nosys
      default: return nosys
    }
  }
}

/** The xattr protocol: size 0 asks for the length; a smaller buffer than the value is ERANGE. */
function sized (a: Addon, req: Req, v: Buffer, size: number): void {
  if (size === 0) a.replyXattrSize(req, v.length)
  else if (v.length > size) a.replyErr(req, errno.ERANGE!)
  else a.replyBuf(req, v)
}
