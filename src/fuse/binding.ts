/**
 * The typed, promise-based face of walkenfs's patched fuse-native 2.2.6
 * (native/patches/fuse-native+2.2.6.patch; libfuse 2.9 high-level path API).
 *
 * Owns: the handler signatures the FUSE adapter implements, the stat/statfs/
 * time/open-flag types, errno mapping of handler failures, and mounting/
 * unmounting as promises. Re-exports the option builder and check
 * (mount-options.ts) and the mount-table helpers (mount-table.ts) so the
 * adapter needs one import. It knows nothing about the filesystem model;
 * FUSE types stay inside src/fuse.
 *
 * Promises:
 * - 64 bits end to end for inode numbers, offsets, sizes, block and statfs
 *   counts (JS numbers, exact up to 2^53).
 * - Times are bigint nanoseconds since the epoch, in both directions; a
 *   utimens update is a time, 'now' or 'omit', atime and mtime separately.
 * - Every handler receives the caller (uid, gid, pid, umask) as its first
 *   argument, taken from fuse_get_context() in the FUSE thread.
 * - open/create/opendir return per-open flags (direct I/O, keep cache); the
 *   kernel refuses MAP_SHARED on a direct-I/O file with ENODEV.
 * - A handler fails by throwing a FuseError (or any error with a Node errno
 *   `code` such as 'ENOENT'); anything else becomes EIO and is reported to
 *   `onInternalError`, so a bug never reaches the kernel as success.
 * - Options are checked against libfuse 2.9's list before mounting: libfuse
 *   itself fails on an unknown option only after the kernel mount exists.
 * - No hidden per-operation timeout (fuse-native's default 15 s ETIMEDOUT is
 *   off unless `timeoutMs` is given): bounded waits are the adapter's job.
 */
import { createRequire } from 'node:module'
import { constants as osConstants } from 'node:os'
import { resolve as resolvePath } from 'node:path'
import { buildMountOptions, checkMountOptions } from './mount-options.js'
import { forceUnmount, isMountPoint, watchUnmounted } from './mount-table.js'

export { ALLOWED_MOUNT_OPTIONS, MOUNT_ONLY_OPTIONS, buildMountOptions, checkMountOptions, type MountOptions } from './mount-options.js'
export { forceUnmount, isMountPoint } from './mount-table.js'

const require = createRequire(import.meta.url)

/** Positive errno values by name (Linux), e.g. `errno.ENOENT === 2`. */
export const errno: Readonly<Record<string, number>> = osConstants.errno

/** The process that made the request. Valid for the whole handler call. */
export interface FuseContext {
  readonly uid: number
  readonly gid: number
  /** The calling thread's id (the process id for a single-threaded caller). */
  readonly pid: number
  /** The caller's umask (already applied by the kernel to create/mkdir modes). */
  readonly umask: number
}

/** File attributes returned by getattr/fgetattr. Times: ns since the epoch. */
export interface Stat {
  mode: number
  uid: number
  gid: number
  size: number
  ino: number
  nlink: number
  atimeNs: bigint
  mtimeNs: bigint
  ctimeNs: bigint
  /** 512-byte blocks allocated; defaults to ceil(size / 512). */
  blocks?: number
  blksize?: number
  rdev?: number
}

export interface StatFs {
  bsize: number
  frsize: number
  blocks: number
  bfree: number
  bavail: number
  files: number
  ffree: number
  favail: number
  namemax: number
  fsid?: number
  flag?: number
}

/** A utimens change: a new time in ns since the epoch, the current time, or no change. */
export type TimeUpdate = bigint | 'now' | 'omit'

/** What open/create/opendir return: the handle and per-open kernel flags. */
export interface OpenResult {
  /** Handle passed back to read/write/release…; 0 means "no handle". Up to 2^53. */
  fh: number
  /** Bypass the page cache for this open: I/O goes to the handlers as issued; MAP_SHARED fails with ENODEV. */
  directIo?: boolean
  /** Keep cached pages of this file from before the open (default: they are dropped). */
  keepCache?: boolean
  nonSeekable?: boolean
}

/** One readdir entry. libfuse 2.9 uses only st_ino (as d_ino, with use_ino) and the file type bits of mode. */
export interface FuseDirEntry {
  name: string
  ino: number
  /** At least the S_IFMT bits. */
  mode: number
}

/** Thrown by a handler to answer the kernel with an errno. */
export class FuseError extends Error {
  /** Positive errno. */
  readonly errno: number
  constructor (code: keyof typeof osConstants.errno | number, message?: string) {
    const n = typeof code === 'number' ? Math.abs(code) : errno[code]
    if (n === undefined || n === 0) throw new TypeError(`FuseError: unknown errno ${String(code)}`)
    super(message ?? (typeof code === 'string' ? code : `errno ${n}`))
    this.name = 'FuseError'
    this.errno = n
  }
}

/**
 * The operations a filesystem implements. Every handler gets the caller's
 * context first; paths are absolute within the mount ('/' is the root).
 * Omitted handlers answer ENOSYS (getattr: only '/' exists).
 */
export interface FuseOps {
  /** Called once when the kernel connection is up, before any other op; mount() waits for it and fails if it fails. */
  init? (): Promise<void>
  /** lstat(2) of a path. */
  getattr? (ctx: FuseContext, path: string): Promise<Stat>
  /** fstat(2) of an open file (also used right after create). */
  fgetattr? (ctx: FuseContext, path: string, fh: number): Promise<Stat>
  statfs? (ctx: FuseContext, path: string): Promise<StatFs>
  /** access(2); mask is R_OK|W_OK|X_OK or F_OK (0). */
  access? (ctx: FuseContext, path: string, mask: number): Promise<void>
  readlink? (ctx: FuseContext, path: string): Promise<string>
  /** All entries of a directory ('.' and '..' included if you want them listed). */
  readdir? (ctx: FuseContext, path: string): Promise<FuseDirEntry[]>
  /** open(2) of an existing file; flags are the O_* flags (O_ACCMODE, O_APPEND, …; O_CREAT/O_EXCL/O_TRUNC handled by the kernel). */
  open? (ctx: FuseContext, path: string, flags: number): Promise<OpenResult>
  /** open(2) with O_CREAT of a missing file: create it owned by ctx.uid/ctx.gid with `mode` (type bits included, umask applied) and open it with `flags`. */
  create? (ctx: FuseContext, path: string, mode: number, flags: number): Promise<OpenResult>
  opendir? (ctx: FuseContext, path: string, flags: number): Promise<OpenResult>
  /**
   * Fill `buf` (length = bytes requested) from `position`; resolve the byte
   * count (less only at EOF). `buf` is the kernel's memory: valid only until
   * the promise settles.
   */
  read? (ctx: FuseContext, path: string, fh: number, buf: Buffer, position: number): Promise<number>
  /**
   * Write `data` at `position`; resolve data.length. `data` is the kernel's
   * memory: valid only until the promise settles — copy it to keep it.
   */
  write? (ctx: FuseContext, path: string, fh: number, data: Buffer, position: number): Promise<number>
  /** close(2) of one file descriptor of the open file (may come several times). */
  flush? (ctx: FuseContext, path: string, fh: number): Promise<void>
  /** fsync(2)/fdatasync(2). */
  fsync? (ctx: FuseContext, path: string, fh: number, datasync: boolean): Promise<void>
  fsyncdir? (ctx: FuseContext, path: string, fh: number, datasync: boolean): Promise<void>
  /** Last close of the open file; errors are ignored by the kernel. */
  release? (ctx: FuseContext, path: string, fh: number): Promise<void>
  releasedir? (ctx: FuseContext, path: string, fh: number): Promise<void>
  truncate? (ctx: FuseContext, path: string, size: number): Promise<void>
  ftruncate? (ctx: FuseContext, path: string, fh: number, size: number): Promise<void>
  /** Change atime and/or mtime (each independently: time, 'now' or 'omit'). */
  utimens? (ctx: FuseContext, path: string, atime: TimeUpdate, mtime: TimeUpdate): Promise<void>
  /** mode: permission bits (07777). */
  chmod? (ctx: FuseContext, path: string, mode: number): Promise<void>
  /** uid/gid of -1 mean "leave unchanged". */
  chown? (ctx: FuseContext, path: string, uid: number, gid: number): Promise<void>
  mknod? (ctx: FuseContext, path: string, mode: number, rdev: number): Promise<void>
  /** mode: permission bits (umask applied); create owned by ctx.uid/ctx.gid. */
  mkdir? (ctx: FuseContext, path: string, mode: number): Promise<void>
  unlink? (ctx: FuseContext, path: string): Promise<void>
  rmdir? (ctx: FuseContext, path: string): Promise<void>
  /** rename(2); replaces an existing `dest`. */
  rename? (ctx: FuseContext, src: string, dest: string): Promise<void>
  /** Hard link: new name `newPath` for `existingPath`. */
  link? (ctx: FuseContext, existingPath: string, newPath: string): Promise<void>
  /** Symlink at `linkPath` pointing to `target` (stored verbatim). */
  symlink? (ctx: FuseContext, target: string, linkPath: string): Promise<void>
  /** flags: XATTR_CREATE (1) / XATTR_REPLACE (2). `value` is valid only until the promise settles. */
  setxattr? (ctx: FuseContext, path: string, name: string, value: Buffer, flags: number): Promise<void>
  /**
   * The value, or null when the attribute does not exist (ENODATA).
   * Implementing it costs one `security.capability` lookup per buffered
   * write(2) (none with direct I/O): keep that path cheap.
   */
  getxattr? (ctx: FuseContext, path: string, name: string): Promise<Buffer | null>
  listxattr? (ctx: FuseContext, path: string): Promise<string[]>
  removexattr? (ctx: FuseContext, path: string, name: string): Promise<void>
}

/** How a FuseMount behaves beyond the kernel options. */
export interface MountSettings {
  /** Kernel options, e.g. from buildMountOptions (checked again here). */
  options?: readonly string[]
  /** Per-operation deadline after which the kernel gets ETIMEDOUT; default none. */
  timeoutMs?: number
  /** Create the mountpoint if missing (default false). */
  mkdir?: boolean
  /** A handler failed with something that is not an errno: the kernel got EIO. */
  onInternalError?: (op: string, err: unknown) => void
}

// ---- the patched fuse-native, as far as this module uses it ----

type Cb = (...args: unknown[]) => void
interface NativeFuse {
  context (): FuseContext
  mount (cb: (err: Error | null) => void): void
  unmount (cb: (err: Error | null) => void): void
}
interface NativeFuseClass {
  new (mnt: string, ops: Record<string, (...args: never[]) => void>, opts: Record<string, unknown>): NativeFuse
  prototype: NativeFuse & { _fuseOptions (): string }
  DIRECT_IO: number
  KEEP_CACHE: number
  NONSEEKABLE: number
  UTIME_NOW: number
  UTIME_OMIT: number
}

let nativeClass: NativeFuseClass | undefined
function loadNative (): NativeFuseClass {
  if (nativeClass) return nativeClass
  const Fuse = require('fuse-native') as NativeFuseClass
  if (typeof Fuse.DIRECT_IO !== 'number' || typeof Fuse.prototype.context !== 'function') {
    throw new Error('fuse-native is not the walkenfs-patched build: run `npm install` (postinstall applies native/patches and rebuilds it)')
  }
  nativeClass = Fuse
  return Fuse
}

export function toErrno (err: unknown): number | undefined {
  if (err instanceof FuseError) return err.errno
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string' && errno[code] !== undefined) return errno[code]
  return undefined
}

function timeUpdate (sec: number, nsec: number, now: number, omit: number): TimeUpdate {
  if (nsec === now) return 'now'
  if (nsec === omit) return 'omit'
  return BigInt(sec) * 1_000_000_000n + BigInt(nsec)
}

/** The shape fuse-native's getStatArray reads (times as bigint ns). */
function nativeStat (s: Stat): Record<string, number | bigint> {
  return {
    mode: s.mode, uid: s.uid, gid: s.gid, size: s.size, ino: s.ino, nlink: s.nlink,
    rdev: s.rdev ?? 0, blksize: s.blksize ?? 4096, blocks: s.blocks ?? Math.ceil(s.size / 512),
    atime: s.atimeNs, mtime: s.mtimeNs, ctime: s.ctimeNs
  }
}

/** A read/write result must be a byte count within the request; anything else would corrupt the reply. */
function byteCount (op: string, n: number, max: number): number {
  if (!Number.isInteger(n) || n < 0 || n > max) throw new RangeError(`${op} handler returned ${String(n)}, not a byte count in 0..${max}`)
  return n
}

function openFlags (F: NativeFuseClass, r: OpenResult): number {
  return (r.directIo ? F.DIRECT_IO : 0) | (r.keepCache ? F.KEEP_CACHE : 0) | (r.nonSeekable ? F.NONSEEKABLE : 0)
}

/**
 * One FUSE mount served by `ops`. The handlers run on this process's main
 * thread: never block it with synchronous I/O on the mount itself.
 */
export class FuseMount {
  readonly mountpoint: string
  readonly options: readonly string[]
  private readonly fuse: NativeFuse
  private mounted = false
  private readonly watchers = new Set<() => void>()
  private initDone: Promise<void> = Promise.resolve()

  constructor (mountpoint: string, ops: FuseOps, settings: MountSettings = {}) {
    const F = loadNative()
    this.mountpoint = resolvePath(mountpoint)
    this.options = [...(settings.options ?? buildMountOptions())]
    checkMountOptions(this.options)
    const optString = this.options.length ? '-o' + this.options.join(',') : ''
    const report = settings.onInternalError ?? ((op: string, err: unknown) => {
      process.stderr.write(`walkenfs fuse: ${op} failed internally, answered EIO: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    })

    // fuse-native takes mount options only from _fuseOptions(): a subclass per mount.
    class Mount extends (F as unknown as new (...a: unknown[]) => NativeFuse) {
      _fuseOptions (): string { return optString }
    }

    // Each native op: read the caller synchronously, run the handler, answer
    // fuse-native's callback with (negative errno | result…).
    const native: Record<string, (...args: never[]) => void> = {}
    const fail = (op: string, cb: Cb, err: unknown): void => {
      const n = toErrno(err)
      if (n === undefined) report(op, err)
      cb(-(n ?? errno.EIO!))
    }
    const bind = <A extends unknown[], R>(op: string, run: (ctx: FuseContext, ...a: A) => Promise<R>, answer: (cb: Cb, r: R) => void) =>
      (...args: [...A, Cb]): void => {
        const cb = args[args.length - 1] as Cb
        const ctx = this.fuse.context()
        let p: Promise<R>
        try {
          p = run(ctx, ...(args.slice(0, -1) as A))
        } catch (err) {
          fail(op, cb, err)
          return
        }
        // an answer that cannot be encoded (a bad Stat, a bad count) is a handler bug: EIO, reported
        p.then((r) => {
          try {
            answer(cb, r)
          } catch (err) {
            fail(op, cb, err)
          }
        }, (err: unknown) => fail(op, cb, err))
      }
    const ok = (cb: Cb): void => cb(0)

    if (ops.init) {
      const init = ops.init.bind(ops)
      // libfuse ignores init's result; mount() awaits it and undoes the mount on failure
      native.init = (cb: Cb) => {
        let p: Promise<void>
        try {
          p = init()
        } catch (err) {
          p = Promise.reject(err)
        }
        this.initDone = p
        p.then(() => cb(0), () => cb(-errno.EIO!))
      }
    }
    if (ops.getattr) native.getattr = bind('getattr', ops.getattr.bind(ops), (cb, s: Stat) => cb(0, nativeStat(s)))
    if (ops.fgetattr) native.fgetattr = bind('fgetattr', ops.fgetattr.bind(ops), (cb, s: Stat) => cb(0, nativeStat(s)))
    if (ops.statfs) native.statfs = bind('statfs', ops.statfs.bind(ops), (cb, s: StatFs) => cb(0, s))
    if (ops.access) native.access = bind('access', ops.access.bind(ops), ok)
    if (ops.readlink) native.readlink = bind('readlink', ops.readlink.bind(ops), (cb, target: string) => cb(0, target))
    if (ops.readdir) {
      native.readdir = bind('readdir', ops.readdir.bind(ops), (cb, entries: FuseDirEntry[]) => {
        const names = entries.map((e) => e.name)
        // a stat per entry: libfuse takes d_ino and d_type from it
        const stats = entries.map((e) => ({ ino: e.ino, mode: e.mode, atime: 0n, mtime: 0n, ctime: 0n }))
        cb(0, names, stats)
      })
    }
    const opened = (cb: Cb, r: OpenResult): void => cb(0, r.fh, openFlags(F, r))
    if (ops.open) native.open = bind('open', ops.open.bind(ops), opened)
    if (ops.create) native.create = bind('create', ops.create.bind(ops), opened)
    if (ops.opendir) native.opendir = bind('opendir', ops.opendir.bind(ops), opened)
    if (ops.read) {
      const read = ops.read.bind(ops)
      // fuse-native's read/write callbacks take the byte count (or -errno) first
      native.read = bind('read', (ctx, path: string, fh: number, buf: Buffer, len: number, pos: number) =>
        read(ctx, path, fh, len === buf.length ? buf : buf.subarray(0, len), pos).then((n) => byteCount('read', n, len)), (cb, n: number) => cb(n))
    }
    if (ops.write) {
      const write = ops.write.bind(ops)
      native.write = bind('write', (ctx, path: string, fh: number, buf: Buffer, len: number, pos: number) =>
        write(ctx, path, fh, len === buf.length ? buf : buf.subarray(0, len), pos).then((n) => byteCount('write', n, len)), (cb, n: number) => cb(n))
    }
    if (ops.flush) native.flush = bind('flush', ops.flush.bind(ops), ok)
    if (ops.fsync) {
      const fsync = ops.fsync.bind(ops)
      native.fsync = bind('fsync', (ctx, path: string, fh: number, ds: number) => fsync(ctx, path, fh, ds !== 0), ok)
    }
    if (ops.fsyncdir) {
      const fsyncdir = ops.fsyncdir.bind(ops)
      native.fsyncdir = bind('fsyncdir', (ctx, path: string, fh: number, ds: number) => fsyncdir(ctx, path, fh, ds !== 0), ok)
    }
    if (ops.release) native.release = bind('release', ops.release.bind(ops), ok)
    if (ops.releasedir) native.releasedir = bind('releasedir', ops.releasedir.bind(ops), ok)
    if (ops.truncate) native.truncate = bind('truncate', ops.truncate.bind(ops), ok)
    if (ops.ftruncate) native.ftruncate = bind('ftruncate', ops.ftruncate.bind(ops), ok)
    if (ops.utimens) {
      const utimens = ops.utimens.bind(ops)
      native.utimens = bind('utimens', (ctx, path: string, a: { sec: number, nsec: number }, m: { sec: number, nsec: number }) =>
        utimens(ctx, path, timeUpdate(a.sec, a.nsec, F.UTIME_NOW, F.UTIME_OMIT), timeUpdate(m.sec, m.nsec, F.UTIME_NOW, F.UTIME_OMIT)), ok)
    }
    if (ops.chmod) native.chmod = bind('chmod', ops.chmod.bind(ops), ok)
    if (ops.chown) native.chown = bind('chown', ops.chown.bind(ops), ok)
    if (ops.mknod) native.mknod = bind('mknod', ops.mknod.bind(ops), ok)
    if (ops.mkdir) native.mkdir = bind('mkdir', ops.mkdir.bind(ops), ok)
    if (ops.unlink) native.unlink = bind('unlink', ops.unlink.bind(ops), ok)
    if (ops.rmdir) native.rmdir = bind('rmdir', ops.rmdir.bind(ops), ok)
    if (ops.rename) native.rename = bind('rename', ops.rename.bind(ops), ok)
    if (ops.link) native.link = bind('link', ops.link.bind(ops), ok)
    if (ops.symlink) native.symlink = bind('symlink', ops.symlink.bind(ops), ok)
    if (ops.setxattr) {
      const setxattr = ops.setxattr.bind(ops)
      native.setxattr = bind('setxattr', (ctx, path: string, name: string, value: Buffer, _pos: number, flags: number) =>
        setxattr(ctx, path, name, value, flags), ok)
    }
    if (ops.getxattr) {
      const getxattr = ops.getxattr.bind(ops)
      native.getxattr = bind('getxattr', (ctx, path: string, name: string, _pos: number) => getxattr(ctx, path, name),
        (cb, v: Buffer | null) => cb(0, v))
    }
    if (ops.listxattr) native.listxattr = bind('listxattr', ops.listxattr.bind(ops), (cb, names: string[]) => cb(0, names))
    if (ops.removexattr) native.removexattr = bind('removexattr', ops.removexattr.bind(ops), ok)

    this.fuse = new Mount(this.mountpoint, native, {
      timeout: settings.timeoutMs ?? false,
      mkdir: settings.mkdir ?? false
    })
  }

  /**
   * Mounts; resolves once the kernel has connected and ops.init (if given)
   * has succeeded (the kernel sends no other operation before). If init
   * fails, the mount is undone and this rejects. Rejections name the
   * mountpoint, the options and the cause. While mounted, the process stays
   * alive (until unmount()).
   */
  async mount (): Promise<void> {
    if (this.mounted) throw new Error(`${this.mountpoint} is already mounted by this FuseMount`)
    await new Promise<void>((resolve, reject) => {
      this.fuse.mount((err) => {
        if (err) {
          reject(new Error(`cannot mount FUSE at ${this.mountpoint} (options ${this.options.join(',') || 'none'}): ${err.message}`))
          return
        }
        this.mounted = true
        resolve()
      })
    })
    try {
      await this.initDone
    } catch (err) {
      await this.unmount().catch(() => forceUnmount(this.mountpoint))
      throw new Error(`FUSE init failed at ${this.mountpoint}, unmounted again: ${err instanceof Error ? err.message : String(err)}`)
    }
  }

  /**
   * Unmounts (lazily: open files keep working until closed) and releases
   * the native loop handles. Also succeeds when someone else already
   * unmounted the mountpoint.
   */
  unmount (): Promise<void> {
    for (const stop of [...this.watchers]) stop()
    if (!this.mounted) return Promise.resolve()
    return new Promise((resolve, reject) => {
      this.fuse.unmount((err) => {
        if (err && isMountPoint(this.mountpoint)) {
          reject(new Error(`cannot unmount FUSE at ${this.mountpoint}: ${err.message}`))
          return
        }
        this.mounted = false
        resolve()
      })
    })
  }

  /**
   * Calls `onGone` once when the mountpoint stops being mounted without
   * unmount() (an external umount or fusermount -u): libfuse does not tell
   * JS. Polls /proc/self/mountinfo every `intervalMs`; the timer does not
   * keep the process alive. The caller then calls unmount() to release the
   * native handles. Returns a function that stops watching.
   */
  watchUnmount (onGone: () => void, intervalMs = 500): () => void {
    return watchUnmounted(this.mountpoint, () => this.mounted, onGone, intervalMs, this.watchers)
  }
}

/** Creates a FuseMount and mounts it. */
export async function mount (mountpoint: string, ops: FuseOps, settings: MountSettings = {}): Promise<FuseMount> {
  const m = new FuseMount(mountpoint, ops, settings)
  await m.mount()
  return m
}
