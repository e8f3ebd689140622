/**
 * Binds the filesystem model to the low-level FUSE binding (ll-binding.ts):
 * the kernel names inodes by the model's own numbers, so names are resolved
 * by the kernel one lookup at a time and no path is ever rebuilt here.
 *
 * Owns: the mapping of each inode request onto the model and the adapter's
 * open handles (write-back, read-ahead, direct I/O for writable opens), and
 * the cache timeouts every answer carries.
 *
 * Promises:
 * - The kernel keeps names and attributes as long as the CachePolicy says
 *   (kernel-cache.ts): fixed on one host; on a cluster, only under a lease
 *   whose fragment drops them here before any change of them commits. The
 *   timeouts are worked out when the answer is written (getters read by
 *   ll-binding then), so no drop can fall between the two.
 * - Answers carry this host's buffered bytes: a lookup or getattr of a file
 *   with unwritten bytes commits them first (size and mtime are current).
 * - An unlinked file that is still open keeps working (the model keeps its
 *   inode while a handle is open; no hidden names are needed here).
 * - A request for an inode that is gone (another host renamed over or
 *   unlinked its name after this kernel looked it up) fails with ESTALE,
 *   not ENOENT: the kernel then walks the path again, once, and the open
 *   or stat acts on what the name names now (as NFS clients do).
 */
import { FsError, ROOT_INO, type Attr, type FileSystem, type SetAttr } from '../fs/types.js'
import type { Adapter } from './adapter.js'
import { caller, counted, listing, stat, timeChange } from './fuse-ops.js'
import type { CachePolicy } from './kernel-cache.js'
import type { OpenResult } from './binding.js'
import type { AttrAnswer, AttrChange, Entry, LowLevelOps } from './ll-binding.js'

/** `fn` on an inode the kernel named: its absence means the kernel's name was stale. */
async function onInode<T> (fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (e) {
    if (e instanceof FsError && e.code === 'ENOENT') throw new FsError('ESTALE', e.message)
    throw e
  }
}

export function inodeOps (a: Adapter, fs: FileSystem, cache: CachePolicy): LowLevelOps {
  // getters: read when the answer is written (see the module doc)
  const entry = (s: number, parent: number, name: string, attr: Attr): Entry => ({
    stat: stat(attr),
    get attrTimeout () { return cache.attr(s, attr.ino) },
    get entryTimeout () { return cache.entry(s, parent, name) }
  })
  const answer = (s: number, attr: Attr): AttrAnswer => ({ stat: stat(attr), get attrTimeout () { return cache.attr(s, attr.ino) } })
  return counted<LowLevelOps>({
    lookup: async (_ctx, parent, name) => {
      const s = cache.start()
      return entry(s, parent, name, await a.current(await fs.lookup(parent, name)))
    },
    getattr: async (_ctx, ino) => {
      const s = cache.start()
      return answer(s, await onInode(async () => await a.getattrIno(ino)))
    },
    setattr: async (ctx, ino, change) => {
      const s = cache.start()
      return answer(s, await onInode(async () => await a.setattrIno(ino, setAttr(change), caller(ctx))))
    },
    readlink: async (_ctx, ino) => await onInode(async () => await fs.readlink(ino)),
    mknod: async (ctx, parent, name, mode, rdev) => {
      const s = cache.start()
      return entry(s, parent, name, await fs.mknod(parent, name, mode, rdev, caller(ctx)))
    },
    mkdir: async (ctx, parent, name, mode) => {
      const s = cache.start()
      return entry(s, parent, name, await fs.mkdir(parent, name, mode, caller(ctx)))
    },
    symlink: async (ctx, parent, name, target) => {
      const s = cache.start()
      return entry(s, parent, name, await fs.symlink(parent, name, target, caller(ctx)))
    },
    link: async (_ctx, ino, newParent, newName) => {
      const s = cache.start()
      return entry(s, newParent, newName, await onInode(async () => await fs.link(ino, newParent, newName)))
    },
    unlink: async (_ctx, parent, name) => { await fs.unlink(parent, name) },
    rmdir: async (_ctx, parent, name) => { await fs.rmdir(parent, name) },
    rename: async (_ctx, parent, name, newParent, newName) => { await fs.rename(parent, name, newParent, newName) },
    open: async (_ctx, ino, flags) => await onInode(async () => await a.openIno(ino, flags)),
    create: async (ctx, parent, name, mode, flags) => {
      const s = cache.start()
      const attr = await fs.mknod(parent, name, mode, 0, caller(ctx))
      const opened: OpenResult = await a.openIno(attr.ino, flags)
      // not spread: that would read the timeouts now
      return Object.assign(entry(s, parent, name, attr), opened)
    },
    read: async (_ctx, _ino, fh, size, offset) => await a.read(fh, offset, size),
    write: async (_ctx, _ino, fh, data, offset) => await a.write(fh, offset, data),
    flush: async (_ctx, _ino, fh) => { await a.flush(fh) },
    release: async (_ctx, _ino, fh) => { await a.release(fh) },
    fsync: async (_ctx, _ino, fh) => { await a.fsync(fh, null) },
    opendir: async () => ({ fh: 0 }),
    readdir: async (_ctx, ino) => {
      // three independent reads, at once; ".." needs its real inode (ls -ai, find)
      const [entries, dir, up] = await onInode(async () => await Promise.all([fs.readdir(ino), fs.getattr(ino), ino === ROOT_INO ? undefined : fs.lookup(ino, '..')]))
      return listing(entries, dir, up ?? dir)
    },
    fsyncdir: async () => { await fs.fsync() },
    statfs: async () => await fs.statfs(),
    setxattr: async (_ctx, ino, name, value, flags) => { await onInode(async () => { await fs.setxattr(ino, name, value, flags) }) },
    getxattr: async (_ctx, ino, name) => await onInode(async () => await fs.getxattr(ino, name)),
    listxattr: async (_ctx, ino) => await onInode(async () => await fs.listxattr(ino)),
    removexattr: async (_ctx, ino, name) => { await onInode(async () => { await fs.removexattr(ino, name) }) }
  })
}

function setAttr (c: AttrChange): SetAttr {
  const out: SetAttr = {}
  // the kernel sends the whole st_mode; the type bits are not the caller's to change
  if (c.mode !== undefined) out.mode = c.mode & 0o7777
  if (c.uid !== undefined) out.uid = c.uid
  if (c.gid !== undefined) out.gid = c.gid
  if (c.size !== undefined) {
    if (c.size < 0) throw new FsError('EINVAL', 'negative size')
    out.size = c.size
  }
  const at = c.atime !== undefined ? timeChange(c.atime) : undefined
  const mt = c.mtime !== undefined ? timeChange(c.mtime) : undefined
  if (at !== undefined) out.atime = at
  if (mt !== undefined) out.mtime = mt
  return out
}
