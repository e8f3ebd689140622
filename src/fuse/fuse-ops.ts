/**
 * Binds the adapter to the patched fuse-native binding: one FUSE handler per
 * operation, turning the binding's arguments (caller context, paths, O_*
 * flags, utimens updates) into adapter calls and the model's attributes into
 * FUSE stats. Errors pass through: an `FsError`'s code ('ENOENT', ...) is
 * what the binding answers the kernel with.
 */
import type { Attr, Caller, DirEntry, TimeChange } from '../fs/types.js'
import type { Adapter } from './adapter.js'
import type { FuseDirEntry, FuseContext, FuseOps, Stat, TimeUpdate } from './binding.js'

/** The model's attributes as FUSE reports them. */
export function stat (a: Attr): Stat {
  return {
    mode: a.mode,
    uid: a.uid,
    gid: a.gid,
    size: a.size,
    ino: a.ino,
    nlink: a.nlink,
    rdev: a.rdev,
    blocks: a.blocks,
    blksize: 131072,
    atimeNs: a.atimeNs,
    mtimeNs: a.mtimeNs,
    ctimeNs: a.ctimeNs
  }
}

export function caller (ctx: FuseContext): Caller {
  return { uid: ctx.uid, gid: ctx.gid, pid: ctx.pid }
}

export function timeChange (u: TimeUpdate): TimeChange | undefined {
  if (u === 'omit') return undefined
  if (u === 'now') return { now: true }
  return { ns: u }
}

const S_IFDIR = 0o040000

/** A directory's listing as the kernel gets it: ".", ".." (the root is its own parent), then the entries. */
export function listing (entries: DirEntry[], dir: Attr, parent: Attr): FuseDirEntry[] {
  const out: FuseDirEntry[] = [
    { name: '.', ino: dir.ino, mode: S_IFDIR },
    { name: '..', ino: parent.ino, mode: S_IFDIR }
  ]
  for (const e of entries) out.push({ name: e.name, ino: e.attr.ino, mode: e.attr.mode })
  return out
}

/**
 * FUSE calls served by this process, per operation (one mount per daemon
 * process): `walkenfs status --json` shows them as counters.fuse, and the
 * cluster bench divides them by the workload's operations.
 */
export const fuseCalls: Record<string, number> = {}

export function counted<T extends object> (ops: T): T {
  const out: Record<string, unknown> = {}
  for (const [name, fn] of Object.entries(ops) as Array<[string, (...args: unknown[]) => unknown]>) {
    fuseCalls[name] = 0
    out[name] = (...args: unknown[]) => {
      fuseCalls[name]++
      return fn(...args)
    }
  }
  return out as unknown as T
}

export function fuseOps (a: Adapter): FuseOps {
  return counted({
    getattr: async (_ctx, path) => stat(await a.getattr(path)),
    fgetattr: async (_ctx, path, fh) => stat(await a.getattr(path, fh)),
    statfs: async () => {
      const s = await a.statfs()
      return { ...s, fsid: 0, flag: 0 }
    },
    access: async (_ctx, path) => { await a.getattr(path) },
    readlink: async (_ctx, path) => await a.readlink(path),
    readdir: async (_ctx, path) => {
      const slash = path.lastIndexOf('/')
      // readdir(3) skips entries whose d_ino is 0, so ".." needs its real inode; three independent reads, at once
      const [entries, dir, up] = await Promise.all([a.readdir(path), a.getattr(path), path === '/' ? undefined : a.getattr(slash <= 0 ? '/' : path.slice(0, slash))])
      return listing(entries, dir, up ?? dir)
    },
    open: async (_ctx, path, flags) => await a.open(path, flags),
    create: async (ctx, path, mode, flags) => await a.create(path, mode, flags, caller(ctx)),
    read: async (_ctx, _path, fh, buf, position) => {
      const data = await a.read(fh, position, buf.length)
      data.copy(buf)
      return data.length
    },
    write: async (_ctx, _path, fh, data, position) => await a.write(fh, position, data),
    flush: async (_ctx, _path, fh) => { await a.flush(fh) },
    fsync: async (_ctx, path, fh) => { await a.fsync(fh, path) },
    fsyncdir: async () => { await a.fsyncdir() },
    release: async (_ctx, _path, fh) => { await a.release(fh) },
    truncate: async (ctx, path, size) => { await a.truncate(path, size, caller(ctx)) },
    ftruncate: async (ctx, path, fh, size) => { await a.truncate(path, size, caller(ctx), fh) },
    utimens: async (ctx, path, atime, mtime) => { await a.utimens(path, timeChange(atime), timeChange(mtime), caller(ctx)) },
    chmod: async (ctx, path, mode) => { await a.chmod(path, mode, caller(ctx)) },
    chown: async (ctx, path, uid, gid) => { await a.chown(path, uid, gid, caller(ctx)) },
    mknod: async (ctx, path, mode, rdev) => { await a.mknod(path, mode, rdev, caller(ctx)) },
    mkdir: async (ctx, path, mode) => { await a.mkdir(path, mode, caller(ctx)) },
    unlink: async (_ctx, path) => { await a.unlink(path) },
    rmdir: async (_ctx, path) => { await a.rmdir(path) },
    rename: async (_ctx, src, dest) => { await a.rename(src, dest) },
    link: async (_ctx, existing, newPath) => { await a.link(existing, newPath) },
    symlink: async (ctx, target, linkPath) => { await a.symlink(target, linkPath, caller(ctx)) },
    setxattr: async (_ctx, path, name, value, flags) => { await a.setxattr(path, name, Buffer.from(value), flags) },
    getxattr: async (_ctx, path, name) => await a.getxattr(path, name),
    listxattr: async (_ctx, path) => await a.listxattr(path),
    removexattr: async (_ctx, path, name) => { await a.removexattr(path, name) }
  })
}
