/**
 * FUSE mount options: the typed choices walkenfs makes (MountOptions), the
 * list libfuse 2.9.9 accepts, and the check that refuses anything else with
 * a clear message before a mount is attempted (libfuse itself only fails
 * after the kernel mount exists). Pure: no I/O.
 */

/** Options of one mount, turned into libfuse `-o` options by buildMountOptions. */
export interface MountOptions {
  /** /proc/mounts source column. */
  fsname?: string
  /** /proc/mounts type becomes fuse.<subtype>. */
  subtype?: string
  allowOther?: boolean
  allowRoot?: boolean
  /** Let the kernel check permissions from mode/uid/gid. */
  defaultPermissions?: boolean
  /** A fusermount watchdog unmounts if this process dies. */
  autoUnmount?: boolean
  /** st_ino and d_ino come from the handlers (default true). */
  useIno?: boolean
  /** unlink of an open file really unlinks (no .fuse_hidden rename); default true. */
  hardRemove?: boolean
  /** Writes up to maxWrite bytes per request instead of 4 KiB (default true). */
  bigWrites?: boolean
  /** Bytes per write request (default 131072 with bigWrites). */
  maxWrite?: number
  maxRead?: number
  /** Seconds the kernel caches attributes / names / negative lookups (default 1 / 1 / 0 as libfuse). */
  attrTimeout?: number
  entryTimeout?: number
  negativeTimeout?: number
  kernelCache?: boolean
  autoCache?: boolean
  readOnly?: boolean
  debug?: boolean
  /** Further raw options ("name" or "name=value"), validated like the others. */
  extra?: string[]
}

/**
 * The libfuse 2.9.9 options a walkenfs mount may use (each one checked by
 * mounting with it: test/fuse/mount-options.test.ts). Anything else fails:
 * libfuse 3 names (writeback_cache, readdirplus=, time_gran=, async_dio,
 * auto_inval_data, no_big_writes), mount(8)-only names (relatime, nofail),
 * and fuseblk/obsolete ones (blkdev, blksize=, large_read) which the kernel
 * refuses; modules= is left out (stacking libfuse modules is not for us).
 * Entries ending in '=' take a value.
 */
export const ALLOWED_MOUNT_OPTIONS: ReadonlySet<string> = new Set([
  // fuse_mount (kernel mount options)
  'allow_other', 'allow_root', 'auto_unmount', 'nonempty', 'default_permissions', 'fsname=',
  'subtype=', 'max_read=', 'ro', 'rw', 'suid', 'nosuid', 'dev', 'nodev', 'exec', 'noexec', 'async',
  'sync', 'dirsync', 'atime', 'noatime', 'user=',
  // fuse_new, low level
  'debug', 'max_write=', 'max_readahead=', 'max_background=', 'congestion_threshold=', 'async_read',
  'sync_read', 'atomic_o_trunc', 'no_remote_lock', 'no_remote_flock', 'no_remote_posix_lock',
  'big_writes', 'splice_write', 'no_splice_write', 'splice_move', 'no_splice_move', 'splice_read',
  'no_splice_read',
  // fuse_new, high level
  'hard_remove', 'use_ino', 'readdir_ino', 'direct_io', 'kernel_cache', 'auto_cache', 'noauto_cache',
  'umask=', 'uid=', 'gid=', 'entry_timeout=', 'negative_timeout=', 'attr_timeout=',
  'ac_attr_timeout=', 'noforget', 'remember=', 'nopath', 'intr', 'intr_signal='
])

/** The options of libfuse's path API (fuse_new), which the low-level API does not know. */
const PATH_API_OPTIONS: ReadonlySet<string> = new Set(['hard_remove', 'use_ino', 'readdir_ino', 'direct_io',
  'kernel_cache', 'auto_cache', 'noauto_cache', 'umask=', 'uid=', 'gid=', 'entry_timeout=', 'negative_timeout=',
  'attr_timeout=', 'ac_attr_timeout=', 'noforget', 'remember=', 'nopath', 'intr', 'intr_signal='])

export function isPathApiOption (opt: string): boolean {
  const eq = opt.indexOf('=')
  return PATH_API_OPTIONS.has(eq < 0 ? opt : opt.slice(0, eq + 1))
}

/**
 * Options mount(8) or fstab may hand to a FUSE program that libfuse does not
 * know (`nofail` is passed on by mount.fuse). A caller drops these before
 * checkMountOptions.
 */
export const MOUNT_ONLY_OPTIONS: ReadonlySet<string> = new Set([
  'defaults', 'nofail', 'noauto', 'auto', '_netdev', 'user', 'users', 'nouser', 'owner', 'group',
  'nodiratime', 'diratime', 'strictatime', 'lazytime', 'loud', 'silent'
])

/** Throws a clear error for the first option libfuse 2.9 would refuse. */
export function checkMountOptions (options: readonly string[]): void {
  for (const opt of options) {
    const eq = opt.indexOf('=')
    const key = eq < 0 ? opt : opt.slice(0, eq + 1)
    if (!ALLOWED_MOUNT_OPTIONS.has(key)) {
      const hint = MOUNT_ONLY_OPTIONS.has(opt) || opt.startsWith('x-') ? ' (a mount(8)/fstab option: drop it before mounting)' : ''
      const known = ALLOWED_MOUNT_OPTIONS.has(opt + '=') ? ` (it needs a value: ${opt}=…)` : ''
      throw new Error(`unknown FUSE mount option "${opt}"${hint}${known}`)
    }
    if (eq >= 0 && eq === opt.length - 1) throw new Error(`FUSE mount option "${opt}" has an empty value`)
    if (opt.includes(',') || opt.includes('\\')) throw new Error(`FUSE mount option "${opt}" must not contain ',' or '\\'`)
  }
}

/** The libfuse options of `o` (defaults: use_ino, hard_remove, big_writes, max_write=131072). */
export function buildMountOptions (o: MountOptions = {}): string[] {
  const out: string[] = []
  const flag = (on: boolean | undefined, name: string): void => { if (on) out.push(name) }
  const value = (v: string | number | undefined, name: string): void => { if (v !== undefined) out.push(`${name}=${v}`) }
  value(o.fsname, 'fsname')
  value(o.subtype, 'subtype')
  flag(o.allowOther, 'allow_other')
  flag(o.allowRoot, 'allow_root')
  flag(o.defaultPermissions, 'default_permissions')
  flag(o.autoUnmount, 'auto_unmount')
  flag(o.useIno ?? true, 'use_ino')
  flag(o.hardRemove ?? true, 'hard_remove')
  const big = o.bigWrites ?? true
  flag(big, 'big_writes')
  value(o.maxWrite ?? (big ? 131072 : undefined), 'max_write')
  value(o.maxRead, 'max_read')
  value(o.attrTimeout, 'attr_timeout')
  value(o.entryTimeout, 'entry_timeout')
  value(o.negativeTimeout, 'negative_timeout')
  flag(o.kernelCache, 'kernel_cache')
  flag(o.autoCache, 'auto_cache')
  flag(o.readOnly, 'ro')
  flag(o.debug, 'debug')
  out.push(...(o.extra ?? []))
  checkMountOptions(out)
  return out
}
