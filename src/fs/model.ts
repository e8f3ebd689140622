/**
 * The POSIX filesystem model (`FileSystem` of types.ts) as transactions over
 * the fragment tables. No FUSE types, no paths: inode numbers in, `Attr` out.
 *
 * Owns: the meaning of the rows (rows.ts), placement of new inodes, nlink
 * bookkeeping, unlink-while-open (orphans), and mapping failures to POSIX
 * codes. Every public method is one transaction (all or nothing); a resolved
 * mutation is committed, and `fsync()` makes it durable.
 *
 * Decisions:
 * - Placement: a new non-directory's inode goes to its parent directory's
 *   fragment, so a create touches one fragment (one proposal once
 *   replicated). A new directory goes to the next fragment in a round robin,
 *   so that directories, and the entries they hold, spread over fragments.
 * - Data: blocks of `blockSize` (default 64 KiB) and files up to `inlineMax`
 *   bytes (default 1920: the largest round size that keeps the inode row an
 *   ordinary lmdb leaf entry, see DEFAULT_INLINE_MAX) held inside the
 *   inode row; bench/fs-model.bench.ts gives the figures behind both.
 * - Permissions are the kernel's job (`default_permissions`); the model
 *   checks none. Reads do not update atime (as with `noatime`): a read must
 *   not cost a write.
 * - Unlink of an open inode keeps it (nlink 0) with an `orphan` row in its
 *   fragment; the last `release` frees it, and so does the next start after
 *   a crash. Open counts are this host's (open-files.ts).
 * - Shared opens (cluster mode, `openElsewhere` given): another host may
 *   hold the inode open, so a last name that goes always leaves an orphan,
 *   and the orphan is freed only once no other host answers that it holds
 *   it open (`tryFree`, kicked after the unlink and after the last local
 *   release, and `sweepOrphans` for what a crash left behind). Kicked
 *   orphans are freed in batches: one question for the batch, one
 *   transaction per fragment. An open
 *   registers its handle before it reads the inode and refuses an inode
 *   with no name left (ENOENT, so the caller resolves the path again): if
 *   the open read the inode before the unlink committed, the unlinking
 *   host's question comes after the registration and hears "open".
 * - statfs answers within STATFS_WAIT_MS: its used-inode count (every
 *   fragment's inode rows, counted in parallel) is an estimate like the free
 *   counts beside it, so when the count takes longer (a fragment without
 *   quorum waits up to quorumWait) it gives the last count, 0 before the
 *   first, and the count goes on to serve the next call. `df`, and
 *   umount(8), which calls statfs before it unmounts, never wait for a lost
 *   quorum.
 */
import { statfs } from 'node:fs/promises'
import { withDeadline } from '../util/deadline.js'
import { RESERVE_BYTES, Store, type StoreOptions } from '../store/store.js'
import { InodeAllocator } from '../tables/ino-alloc.js'
import { LocalTables } from '../tables/local.js'
import { TablesFullError, TxnConflictError, prefixEnd, type Tables, type Tx, type TxnOptions } from '../tables/types.js'
import { freeData, readData, truncateData, writeData } from './file-data.js'
import { OpenFiles } from './open-files.js'
import {
  FS_SETTINGS_KEY, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, decodeDirent, decodeInode, direntKey, direntName, direntPrefix,
  encodeDirent, encodeInode, inodeKey, isDir, orphanInoOf, orphanKey, orphanPrefix, symlinkKey, xattrKey, xattrName,
  type FsSettings, type Inode
} from './rows.js'
import {
  FsError, ROOT_INO, XATTR_CREATE, XATTR_REPLACE,
  type Attr, type Caller, type DirEntry, type FileSystem, type RenameFlags, type SetAttr, type StatFs, type TimeChange
} from './types.js'

export const NAME_MAX = 255
/** statfs waits at most this long for the used-inode count (module doc) */
export const STATFS_WAIT_MS = 500
/**
 * lmdb puts a value on its own overflow page(s) when the leaf node (header +
 * key + value) exceeds about half a 4 KiB page. An inode row is 72 bytes +
 * inline data under an 11-byte store key; measured with lmdb-js 3.5: up to
 * 1944 bytes of inline data stay in the leaf, 1945 overflow. 1920 leaves a
 * margin.
 */
export const DEFAULT_INLINE_MAX = 1920
export const DEFAULT_BLOCK_SIZE = 65536
/** largest read served in one call (FUSE asks for at most 128 KiB) */
export const MAX_READ = 16 * 1024 * 1024
export const XATTR_NAME_MAX = 255
export const XATTR_SIZE_MAX = 65536
const SYMLINK_MAX = 4096
/** orphans freed together: one question to the other hosts, one transaction per fragment */
const FREE_BATCH = 32
/** most orphans one background round frees (over all fragments: one transaction per fragment) */
const FREE_ROUND_MAX = 256
/** a round of kicked orphans starts once no kick came for this long (or a fragment has a full batch) ... */
const FREE_GATHER_MS = 100
/** ... or once its first kick waited this long */
const FREE_GATHER_MAX_MS = 1000
const DIR_SIZE = 4096
const XATTR_NAMESPACES = ['user.', 'trusted.']

export interface ModelOptions {
  /** block size of a new filesystem (fixed at init) */
  blockSize?: number
  /** largest file kept inline in its inode row, for a new filesystem (0 = never) */
  inlineMax?: number
  /** fragments of a new store */
  fragments?: number
  store?: StoreOptions
  /** tests only: run every transaction body twice */
  debugRerun?: boolean
  /** wall clock in ns (tests may inject one) */
  clock?: () => bigint
}

export function wallClockNs (): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n
}

function fail (code: string, message?: string): never {
  throw new FsError(code, message)
}

function checkName (name: string): void {
  if (name.length === 0 || name.includes('/') || name.includes('\0')) fail('EINVAL', `invalid name ${JSON.stringify(name)}`)
  if (Buffer.byteLength(name, 'utf8') > NAME_MAX) fail('ENAMETOOLONG', `name of ${Buffer.byteLength(name, 'utf8')} bytes (max ${NAME_MAX})`)
}

function checkNewName (name: string): void {
  checkName(name)
  if (name === '.' || name === '..') fail('EEXIST', `"${name}" always exists`)
}

export function toAttr (n: Inode): Attr {
  return {
    ino: n.ino,
    mode: n.mode,
    nlink: n.nlink,
    uid: n.uid,
    gid: n.gid,
    rdev: n.rdev,
    size: n.size,
    blocks: Math.ceil(n.stored / 512),
    atimeNs: n.atimeNs,
    mtimeNs: n.mtimeNs,
    ctimeNs: n.ctimeNs
  }
}

async function getInode (tx: Tx, ino: number): Promise<Inode> {
  if (!Number.isSafeInteger(ino) || ino < 1) fail('ENOENT', `bad inode number ${ino}`)
  const v = await tx.get('inode', inodeKey(ino))
  if (!v) fail('ENOENT', `no inode ${ino}`)
  return decodeInode(ino, v)
}

async function getDir (tx: Tx, ino: number): Promise<Inode> {
  const n = await getInode(tx, ino)
  if (!isDir(n.mode)) fail('ENOTDIR', `inode ${ino} is not a directory`)
  return n
}

function putInode (tx: Tx, n: Inode): void {
  tx.put('inode', inodeKey(n.ino), encodeInode(n))
}

/** The inode a name in a directory points to, or undefined; ENOTDIR/ENOENT for a bad directory. */
async function lookupEntry (tx: Tx, parent: number, name: string): Promise<number | undefined> {
  const d = await tx.get('dirent', direntKey(parent, name))
  if (d) return decodeDirent(d).ino
  await getDir(tx, parent)
  return undefined
}

async function isEmptyDir (tx: Tx, ino: number): Promise<boolean> {
  const p = direntPrefix(ino)
  return (await tx.range('dirent', p, prefixEnd(p), { limit: 1 })).length === 0
}

export class ModelFs implements FileSystem {
  readonly tables: Tables
  readonly settings: FsSettings
  private readonly dataDir: string | null
  private readonly alloc: InodeAllocator
  private readonly handles = new OpenFiles()
  private readonly now: () => bigint
  private nextDirFragment: number
  private closed = false
  private usedCache: { count: number, until: number } | null = null
  private counting: Promise<number> | null = null

  /** cluster mode: whether any other host may hold an inode open (see the module comment) */
  private readonly openElsewhere: ((inos: number[]) => Promise<boolean[]>) | null
  /** orphans whose freeing is under way (bounded; the sweep catches what does not fit) */
  private readonly freeing = new Set<number>()
  /** orphans kicked and waiting for the next batch (kickFree) */
  private readonly toFree = new Set<number>()
  private freeRun: Promise<void> | null = null
  /** Date.now() of the last kickFree (the gathering waits for a quiet moment) */
  private lastKick = 0

  constructor (tables: Tables, settings: FsSettings, dataDir: string | null, clock?: () => bigint,
    shared: { openElsewhere?: (inos: number[]) => Promise<boolean[]> } = {}) {
    this.tables = tables
    this.settings = settings
    this.dataDir = dataDir
    this.alloc = new InodeAllocator(tables)
    this.now = clock ?? wallClockNs
    this.nextDirFragment = Math.floor(Math.random() * tables.fragments)
    this.openElsewhere = shared.openElsewhere ?? null
  }

  /** Whether this host holds `ino` open (answers other hosts' questions). */
  isOpenHere (ino: number): boolean {
    return this.handles.isOpen(ino)
  }

  /** Open (or create) the filesystem in `dataDir` on the local store; frees orphans left by a crash. */
  static async open (dataDir: string, opts: ModelOptions = {}): Promise<ModelFs> {
    const store = Store.open(dataDir, opts.store)
    let tables: LocalTables
    try {
      tables = LocalTables.open(store, { fragments: opts.fragments, debugRerun: opts.debugRerun })
    } catch (e) {
      await store.close()
      throw e
    }
    try {
      const settings = await ModelFs.init(tables, opts, opts.clock ?? wallClockNs)
      const fs = new ModelFs(tables, settings, dataDir, opts.clock)
      await fs.freeOrphans()
      return fs
    } catch (e) {
      await tables.close()
      throw e
    }
  }

  /** Create the root and the settings on first use; return the settings. */
  static async init (tables: Tables, opts: ModelOptions, clock: () => bigint): Promise<FsSettings> {
    const blockSize = opts.blockSize ?? DEFAULT_BLOCK_SIZE
    const inlineMax = opts.inlineMax ?? DEFAULT_INLINE_MAX
    if (!Number.isInteger(blockSize) || blockSize < 512 || blockSize > 1 << 22) throw new FsError('EINVAL', `block size ${blockSize} not in 512..4 MiB`)
    if (!Number.isInteger(inlineMax) || inlineMax < 0 || inlineMax > blockSize) throw new FsError('EINVAL', `inlineMax ${inlineMax} not in 0..blockSize`)
    return await tables.txn(async (tx) => {
      const cur = await tx.get('meta', FS_SETTINGS_KEY)
      if (cur) return JSON.parse(cur.toString()) as FsSettings
      const s: FsSettings = { blockSize, inlineMax }
      tx.put('meta', FS_SETTINGS_KEY, Buffer.from(JSON.stringify(s)))
      const t = clock()
      putInode(tx, {
        ino: ROOT_INO, mode: S_IFDIR | 0o755, nlink: 2, uid: 0, gid: 0, rdev: 0, size: DIR_SIZE, stored: 0,
        parent: ROOT_INO, atimeNs: t, mtimeNs: t, ctimeNs: t, inline: null
      })
      return s
    })
  }

  /** Run one operation, turning table-layer failures into POSIX codes. */
  private async op<T> (body: (tx: Tx) => Promise<T>, opts?: TxnOptions): Promise<T> {
    if (this.closed) fail('EIO', 'the filesystem is closed')
    try {
      return await this.tables.txn(body, opts)
    } catch (e) {
      throw this.mapError(e)
    }
  }

  private mapError (e: unknown): unknown {
    if (e instanceof FsError) return e
    if (e instanceof TablesFullError) return new FsError('ENOSPC', e.message)
    if (e instanceof TxnConflictError) return new FsError('EAGAIN', e.message)
    const code = (e as { code?: unknown })?.code
    if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)) return new FsError(code, (e as Error).message)
    return e
  }

  private newInode (ino: number, mode: number, caller: Caller, parent: number, rdev = 0): Inode {
    const t = this.now()
    return {
      ino, mode, nlink: 1, uid: caller.uid, gid: caller.gid, rdev, size: 0, stored: 0, parent,
      atimeNs: t, mtimeNs: t, ctimeNs: t, inline: (mode & S_IFMT) === S_IFREG && this.settings.inlineMax > 0 ? Buffer.alloc(0) : null
    }
  }

  private async allocateFor (parent: number, dir: boolean): Promise<number> {
    const F = this.tables.fragments
    if (dir) {
      this.nextDirFragment = (this.nextDirFragment + 1) % F
      return await this.alloc.allocate(this.nextDirFragment)
    }
    return await this.alloc.allocate(parent % F)
  }

  /** The common part of mknod/mkdir/symlink: a new inode under a new name. */
  private async create (parent: number, name: string, mode: number, caller: Caller, rdev: number, target?: Buffer): Promise<Attr> {
    checkNewName(name)
    const dir = isDir(mode)
    let ino: number
    try {
      ino = await this.allocateFor(parent, dir)
    } catch (e) {
      throw this.mapError(e)
    }
    return await this.op(async (tx) => {
      const p = await getDir(tx, parent)
      if (await tx.get('dirent', direntKey(parent, name))) fail('EEXIST', `"${name}" exists in ${parent}`)
      const n = this.newInode(ino, mode, caller, dir ? parent : 0, rdev)
      if (dir) {
        n.nlink = 2
        n.size = DIR_SIZE
        p.nlink++
      }
      if (target) {
        n.size = target.length
        tx.put('symlink', symlinkKey(ino), target)
      }
      putInode(tx, n)
      tx.put('dirent', direntKey(parent, name), encodeDirent(ino, mode))
      p.mtimeNs = p.ctimeNs = n.ctimeNs
      putInode(tx, p)
      return toAttr(n)
    })
  }

  async lookup (parent: number, name: string): Promise<Attr> {
    checkName(name)
    return await this.op(async (tx) => {
      if (name === '.') return toAttr(await getDir(tx, parent))
      if (name === '..') return toAttr(await getInode(tx, (await getDir(tx, parent)).parent))
      const ino = await lookupEntry(tx, parent, name)
      if (ino === undefined) fail('ENOENT', `no "${name}" in ${parent}`)
      return toAttr(await getInode(tx, ino))
    })
  }

  async lookupPath (parent: number, names: string[]): Promise<Attr> {
    for (const name of names) checkName(name)
    return await this.op(async (tx) => {
      let ino = parent
      for (const name of names) {
        if (name === '.') { await getDir(tx, ino); continue }
        const next = name === '..' ? (await getDir(tx, ino)).parent : await lookupEntry(tx, ino, name)
        if (next === undefined) fail('ENOENT', `no "${name}" in ${ino}`)
        ino = next
      }
      return toAttr(await getInode(tx, ino))
    })
  }

  async getattr (ino: number): Promise<Attr> {
    return await this.op(async (tx) => toAttr(await getInode(tx, ino)))
  }

  async setattr (ino: number, change: SetAttr, _caller: Caller): Promise<Attr> {
    return await this.op(async (tx) => {
      const n = await getInode(tx, ino)
      const t = this.now()
      if (change.mode !== undefined) n.mode = (n.mode & S_IFMT) | (change.mode & 0o7777)
      if (change.uid !== undefined && change.uid !== 0xffffffff && change.uid !== -1) n.uid = change.uid
      if (change.gid !== undefined && change.gid !== 0xffffffff && change.gid !== -1) n.gid = change.gid
      if (change.size !== undefined) {
        if (isDir(n.mode)) fail('EISDIR', `inode ${ino} is a directory`)
        if ((n.mode & S_IFMT) !== S_IFREG) fail('EINVAL', `inode ${ino} is not a regular file`)
        await truncateData(tx, n, this.settings, change.size)
        n.mtimeNs = t
      }
      const pick = (c: TimeChange): bigint => 'now' in c ? t : c.ns
      if (change.atime) n.atimeNs = pick(change.atime)
      if (change.mtime) n.mtimeNs = pick(change.mtime)
      n.ctimeNs = t
      putInode(tx, n)
      return toAttr(n)
    })
  }

  async mknod (parent: number, name: string, mode: number, rdev: number, caller: Caller): Promise<Attr> {
    const type = mode & S_IFMT
    if (type === S_IFDIR || type === S_IFLNK) fail('EINVAL', 'mknod cannot make directories or symlinks')
    return await this.create(parent, name, type === 0 ? (mode | S_IFREG) : mode, caller, rdev)
  }

  async mkdir (parent: number, name: string, mode: number, caller: Caller): Promise<Attr> {
    return await this.create(parent, name, S_IFDIR | (mode & 0o7777), caller, 0)
  }

  async symlink (parent: number, name: string, target: string, caller: Caller): Promise<Attr> {
    const t = Buffer.from(target, 'utf8')
    if (t.length === 0) fail('ENOENT', 'empty symlink target')
    if (t.length > SYMLINK_MAX) fail('ENAMETOOLONG', `symlink target of ${t.length} bytes (max ${SYMLINK_MAX})`)
    return await this.create(parent, name, S_IFLNK | 0o777, caller, 0, t)
  }

  async readlink (ino: number): Promise<string> {
    return await this.op(async (tx) => {
      const n = await getInode(tx, ino)
      if ((n.mode & S_IFMT) !== S_IFLNK) fail('EINVAL', `inode ${ino} is not a symlink`)
      const v = await tx.get('symlink', symlinkKey(ino))
      if (!v) fail('EIO', `symlink ${ino} has no target row`)
      return v.toString('utf8')
    })
  }

  async link (ino: number, newParent: number, newName: string): Promise<Attr> {
    checkNewName(newName)
    return await this.op(async (tx) => {
      const n = await getInode(tx, ino)
      if (isDir(n.mode)) fail('EPERM', 'hard links to directories are not allowed')
      const p = await getDir(tx, newParent)
      if (await tx.get('dirent', direntKey(newParent, newName))) fail('EEXIST', `"${newName}" exists in ${newParent}`)
      if (n.nlink === 0) fail('ENOENT', `inode ${ino} has been removed`)
      const t = this.now()
      n.nlink++
      n.ctimeNs = t
      putInode(tx, n)
      tx.put('dirent', direntKey(newParent, newName), encodeDirent(ino, n.mode))
      p.mtimeNs = p.ctimeNs = t
      putInode(tx, p)
      return toAttr(n)
    })
  }

  /**
   * Drop one name of `n` (already removed from its directory by the caller).
   * Frees the inode when its last name goes and no handle holds it; else it
   * stays as an orphan until the last release. In shared mode the orphan's
   * inode goes to `orphaned`, to be freed once the transaction committed.
   */
  private async dropName (tx: Tx, n: Inode, t: bigint, orphaned: number[]): Promise<void> {
    n.nlink = isDir(n.mode) ? 0 : Math.max(0, n.nlink - 1)
    n.ctimeNs = t
    if (n.nlink > 0) {
      putInode(tx, n)
    } else if (this.handles.isOpen(n.ino) || this.openElsewhere !== null) {
      putInode(tx, n)
      tx.put('meta', orphanKey(n.ino % this.tables.fragments, n.ino), Buffer.alloc(0))
      if (this.openElsewhere !== null) orphaned.push(n.ino)
    } else {
      await this.freeInode(tx, n)
    }
  }

  private async freeInode (tx: Tx, n: Inode): Promise<void> {
    await freeData(tx, n, this.settings)
    const p = direntPrefix(n.ino)
    for (;;) {
      const xs = await tx.range('xattr', p, prefixEnd(p), { limit: 1024 })
      for (const x of xs) tx.delete('xattr', x.key)
      if (xs.length < 1024) break
    }
    tx.delete('symlink', symlinkKey(n.ino))
    tx.delete('inode', inodeKey(n.ino))
    tx.delete('meta', orphanKey(n.ino % this.tables.fragments, n.ino))
  }

  async unlink (parent: number, name: string): Promise<void> {
    checkName(name)
    let orphaned: number[] = []
    await this.op(async (tx) => {
      orphaned = []
      const ino = await lookupEntry(tx, parent, name)
      if (ino === undefined) fail('ENOENT', `no "${name}" in ${parent}`)
      const n = await getInode(tx, ino)
      if (isDir(n.mode)) fail('EISDIR', `"${name}" is a directory`)
      const p = await getInode(tx, parent)
      const t = this.now()
      tx.delete('dirent', direntKey(parent, name))
      p.mtimeNs = p.ctimeNs = t
      putInode(tx, p)
      await this.dropName(tx, n, t, orphaned)
    })
    for (const ino of orphaned) this.kickFree(ino)
  }

  async rmdir (parent: number, name: string): Promise<void> {
    checkName(name)
    if (name === '.') fail('EINVAL', 'cannot remove "."')
    if (name === '..') fail('ENOTEMPTY', 'cannot remove ".."')
    let orphaned: number[] = []
    await this.op(async (tx) => {
      orphaned = []
      const ino = await lookupEntry(tx, parent, name)
      if (ino === undefined) fail('ENOENT', `no "${name}" in ${parent}`)
      const n = await getInode(tx, ino)
      if (!isDir(n.mode)) fail('ENOTDIR', `"${name}" is not a directory`)
      if (!(await isEmptyDir(tx, ino))) fail('ENOTEMPTY', `"${name}" is not empty`)
      const p = await getInode(tx, parent)
      const t = this.now()
      tx.delete('dirent', direntKey(parent, name))
      p.nlink--
      p.mtimeNs = p.ctimeNs = t
      putInode(tx, p)
      await this.dropName(tx, n, t, orphaned)
    })
    for (const ino of orphaned) this.kickFree(ino)
  }

  /** Is `ino` the directory `ancestor` or inside it? (walks parent pointers up to the root) */
  private async isWithin (tx: Tx, ino: number, ancestor: number): Promise<boolean> {
    let cur = ino
    for (let depth = 0; depth < 100_000; depth++) {
      if (cur === ancestor) return true
      if (cur === ROOT_INO) return false
      cur = (await getInode(tx, cur)).parent
    }
    fail('EIO', `directory ${ino}: parent chain too long (loop?)`)
  }

  async rename (parent: number, name: string, newParent: number, newName: string, flags: RenameFlags = {}): Promise<void> {
    checkName(name)
    checkNewName(newName)
    if (name === '.' || name === '..') fail('EBUSY', `cannot rename "${name}"`)
    if (flags.exchange && flags.noreplace) fail('EINVAL', 'RENAME_EXCHANGE with RENAME_NOREPLACE')
    let orphaned: number[] = []
    await this.op(async (tx) => {
      orphaned = []
      const srcIno = await lookupEntry(tx, parent, name)
      if (srcIno === undefined) fail('ENOENT', `no "${name}" in ${parent}`)
      const dstIno = await lookupEntry(tx, newParent, newName)
      const src = await getInode(tx, srcIno)
      const t = this.now()
      if (flags.exchange) {
        if (dstIno === undefined) fail('ENOENT', `no "${newName}" in ${newParent}`)
        if (dstIno === srcIno) return
        const dst = await getInode(tx, dstIno)
        if (isDir(src.mode) && await this.isWithin(tx, newParent, srcIno)) fail('EINVAL', 'cannot move a directory into its own subtree')
        if (isDir(dst.mode) && await this.isWithin(tx, parent, dstIno)) fail('EINVAL', 'cannot move a directory into its own subtree')
        tx.put('dirent', direntKey(parent, name), encodeDirent(dstIno, dst.mode))
        tx.put('dirent', direntKey(newParent, newName), encodeDirent(srcIno, src.mode))
        src.ctimeNs = dst.ctimeNs = t
        if (parent !== newParent) {
          const dirDelta = (isDir(src.mode) ? 1 : 0) - (isDir(dst.mode) ? 1 : 0)
          if (isDir(src.mode)) src.parent = newParent
          if (isDir(dst.mode)) dst.parent = parent
          putInode(tx, src)
          putInode(tx, dst)
          const p = await getInode(tx, parent)
          const np = await getInode(tx, newParent)
          p.nlink -= dirDelta
          np.nlink += dirDelta
          p.mtimeNs = p.ctimeNs = np.mtimeNs = np.ctimeNs = t
          putInode(tx, p)
          putInode(tx, np)
        } else {
          putInode(tx, src)
          putInode(tx, dst)
          const p = await getInode(tx, parent)
          p.mtimeNs = p.ctimeNs = t
          putInode(tx, p)
        }
        return
      }
      if (dstIno !== undefined && flags.noreplace) fail('EEXIST', `"${newName}" exists in ${newParent}`)
      if (dstIno === srcIno) return // two names of one inode: POSIX says do nothing
      const srcIsDir = isDir(src.mode)
      if (srcIsDir && await this.isWithin(tx, newParent, srcIno)) fail('EINVAL', 'cannot move a directory into its own subtree')
      let dst: Inode | undefined
      if (dstIno !== undefined) {
        dst = await getInode(tx, dstIno)
        if (srcIsDir && !isDir(dst.mode)) fail('ENOTDIR', `"${newName}" is not a directory`)
        if (!srcIsDir && isDir(dst.mode)) fail('EISDIR', `"${newName}" is a directory`)
        if (isDir(dst.mode) && !(await isEmptyDir(tx, dstIno))) fail('ENOTEMPTY', `"${newName}" is not empty`)
      }
      tx.delete('dirent', direntKey(parent, name))
      tx.put('dirent', direntKey(newParent, newName), encodeDirent(srcIno, src.mode))
      src.ctimeNs = t
      if (srcIsDir) src.parent = newParent
      putInode(tx, src)
      const p = await getInode(tx, parent)
      p.mtimeNs = p.ctimeNs = t
      if (parent === newParent) {
        if (dst && isDir(dst.mode)) p.nlink--
        putInode(tx, p)
      } else {
        const np = await getInode(tx, newParent)
        if (srcIsDir) { p.nlink--; np.nlink++ }
        if (dst && isDir(dst.mode)) np.nlink--
        np.mtimeNs = np.ctimeNs = t
        putInode(tx, p)
        putInode(tx, np)
      }
      if (dst) await this.dropName(tx, dst, t, orphaned)
    })
    for (const ino of orphaned) this.kickFree(ino)
  }

  async readdir (ino: number): Promise<DirEntry[]> {
    return await this.op(async (tx) => {
      await getDir(tx, ino)
      const out: DirEntry[] = []
      const p = direntPrefix(ino)
      const end = prefixEnd(p)
      let start = p
      for (;;) {
        const rows = await tx.range('dirent', start, end, { limit: 4096 })
        for (const r of rows) {
          const v = await tx.get('inode', inodeKey(decodeDirent(r.value).ino))
          if (v) out.push({ name: direntName(r.key), attr: toAttr(decodeInode(decodeDirent(r.value).ino, v)) })
        }
        if (rows.length < 4096) return out
        start = Buffer.concat([rows[rows.length - 1].key, Buffer.from([0])])
      }
    })
  }

  async open (ino: number): Promise<void> {
    const reopen = this.handles.isOpen(ino)
    this.handles.open(ino)
    try {
      // Checked, never a hint: the shared-opens protocol needs this read to
      // come after the handle was registered (a stale "still named" would
      // let another host free the inode under this open).
      await this.op(async (tx) => {
        const n = await getInode(tx, ino)
        // An inode with no name left is only reachable through a handle
        // this host already holds; otherwise the name was re-pointed.
        if (n.nlink === 0 && !reopen) fail('ENOENT', `inode ${ino} has no name left`)
      })
    } catch (e) {
      this.handles.release(ino)
      throw e
    }
  }

  async release (ino: number): Promise<void> {
    if (!this.handles.release(ino)) return
    if (this.openElsewhere !== null) {
      // Shared mode frees through tryFree, which checks in its own
      // transaction: a stale "still named" only leaves the freeing to the
      // orphan sweep; nlink never rises from 0.
      const orphan = await this.op(async (tx) => {
        const v = await tx.get('inode', inodeKey(ino))
        return v !== undefined && decodeInode(ino, v).nlink === 0 && !this.handles.isOpen(ino)
      }, { unchecked: true })
      if (orphan) this.kickFree(ino)
      return
    }
    await this.op(async (tx) => {
      const v = await tx.get('inode', inodeKey(ino))
      if (!v) return
      const n = decodeInode(ino, v)
      if (n.nlink !== 0 || this.handles.isOpen(ino)) return
      await this.freeInode(tx, n)
    })
  }

  async read (ino: number, offset: number, length: number): Promise<Buffer> {
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) fail('EINVAL', `read at ${offset} of ${length}`)
    // A short read is allowed; this bounds the buffer one call can allocate.
    const len = Math.min(length, MAX_READ)
    return await this.op(async (tx) => {
      const n = await getInode(tx, ino)
      if (isDir(n.mode)) fail('EISDIR', `inode ${ino} is a directory`)
      return await readData(tx, n, this.settings, offset, len)
    })
  }

  async write (ino: number, offset: number, data: Buffer): Promise<number> {
    if (!Number.isSafeInteger(offset) || offset < 0) fail('EINVAL', `write at ${offset}`)
    if (!Number.isSafeInteger(offset + data.length)) fail('EFBIG', `write past 2^53 bytes`)
    return await this.op(async (tx) => {
      const n = await getInode(tx, ino)
      if (isDir(n.mode)) fail('EISDIR', `inode ${ino} is a directory`)
      await writeData(tx, n, this.settings, offset, data)
      n.mtimeNs = n.ctimeNs = this.now()
      putInode(tx, n)
      return data.length
    })
  }

  async append (ino: number, data: Buffer): Promise<number> {
    return await this.op(async (tx) => {
      const n = await getInode(tx, ino)
      if (isDir(n.mode)) fail('EISDIR', `inode ${ino} is a directory`)
      const offset = n.size
      if (!Number.isSafeInteger(offset + data.length)) fail('EFBIG', 'write past 2^53 bytes')
      await writeData(tx, n, this.settings, offset, data)
      n.mtimeNs = n.ctimeNs = this.now()
      putInode(tx, n)
      return offset
    })
  }

  async fsync (): Promise<void> {
    try {
      await this.tables.flush()
    } catch (e) {
      throw this.mapError(e)
    }
  }

  /** Inodes in use; counting walks the inode keys, so the count is kept for a second. */
  private async usedInodes (): Promise<number> {
    if (this.usedCache && this.usedCache.until > Date.now()) return this.usedCache.count
    this.counting ??= this.countInodes().finally(() => { this.counting = null })
    return (await withDeadline<number | null>(this.counting, STATFS_WAIT_MS, null)) ?? this.usedCache?.count ?? 0
  }

  private async countInodes (): Promise<number> {
    const counts = await Promise.all(Array.from({ length: this.tables.fragments }, async (_, f) => await this.tables.countRows('inode', f)))
    const count = counts.reduce((a, b) => a + b, 0)
    this.usedCache = { count, until: Date.now() + 1000 }
    return count
  }

  async statfs (): Promise<StatFs> {
    const used = await this.usedInodes()
    const bsize = this.settings.blockSize
    if (!this.dataDir) {
      return { bsize, frsize: bsize, blocks: 0, bfree: 0, bavail: 0, files: used, ffree: 0, favail: 0, namemax: NAME_MAX }
    }
    const st = await statfs(this.dataDir)
    const scale = st.bsize / bsize
    // The store keeps RESERVE_BYTES for deletes on a full disk: not available to writers.
    const availBytes = Math.max(0, st.bavail * st.bsize - RESERVE_BYTES)
    // An inode costs one row of ~100 bytes plus lmdb overhead; 512 bytes per
    // inode is a conservative estimate of how many more fit.
    const ffree = Math.floor(availBytes / 512)
    return {
      bsize,
      frsize: bsize,
      blocks: Math.floor(st.blocks * scale),
      bfree: Math.floor(st.bfree * scale),
      bavail: Math.floor(availBytes / bsize),
      files: used + ffree,
      ffree,
      favail: ffree,
      namemax: NAME_MAX
    }
  }

  private checkXattrName (name: string): void {
    if (name.length === 0) fail('EINVAL', 'empty xattr name')
    if (Buffer.byteLength(name, 'utf8') > XATTR_NAME_MAX) fail('ERANGE', `xattr name longer than ${XATTR_NAME_MAX} bytes`)
  }

  async getxattr (ino: number, name: string): Promise<Buffer> {
    this.checkXattrName(name)
    return await this.op(async (tx) => {
      await getInode(tx, ino)
      const v = await tx.get('xattr', xattrKey(ino, name))
      if (!v) fail('ENODATA', `no xattr "${name}" on ${ino}`)
      return v
    })
  }

  async setxattr (ino: number, name: string, value: Buffer, flags: number): Promise<void> {
    this.checkXattrName(name)
    if (!XATTR_NAMESPACES.some((ns) => name.startsWith(ns) && name.length > ns.length)) fail('EOPNOTSUPP', `xattr namespace of "${name}" not supported (user.*, trusted.*)`)
    if (value.length > XATTR_SIZE_MAX) fail('E2BIG', `xattr value of ${value.length} bytes (max ${XATTR_SIZE_MAX})`)
    await this.op(async (tx) => {
      const n = await getInode(tx, ino)
      const key = xattrKey(ino, name)
      const exists = (await tx.get('xattr', key)) !== undefined
      if ((flags & XATTR_CREATE) && exists) fail('EEXIST', `xattr "${name}" exists`)
      if ((flags & XATTR_REPLACE) && !exists) fail('ENODATA', `no xattr "${name}" to replace`)
      tx.put('xattr', key, Buffer.from(value))
      n.ctimeNs = this.now()
      putInode(tx, n)
    })
  }

  async listxattr (ino: number): Promise<string[]> {
    return await this.op(async (tx) => {
      await getInode(tx, ino)
      const p = direntPrefix(ino)
      return (await tx.range('xattr', p, prefixEnd(p))).map((r) => xattrName(r.key))
    })
  }

  async removexattr (ino: number, name: string): Promise<void> {
    this.checkXattrName(name)
    await this.op(async (tx) => {
      const n = await getInode(tx, ino)
      const key = xattrKey(ino, name)
      if ((await tx.get('xattr', key)) === undefined) fail('ENODATA', `no xattr "${name}" on ${ino}`)
      tx.delete('xattr', key)
      n.ctimeNs = this.now()
      putInode(tx, n)
    })
  }

  /**
   * Frees `ino` in the background if it is an orphan nobody holds open; a
   * failure is left to the sweep. Kicks gather while they keep coming
   * (until none came for FREE_GATHER_MS, at most FREE_GATHER_MAX_MS, or
   * until one fragment has FREE_BATCH) and go together: one question to
   * the other hosts and one transaction per fragment for the lot. A
   * file's inode is in its directory's fragment, so an `rm` of many files
   * costs about one proposal each, not two; directories are spread over
   * every fragment, so an `rm -rf` of a tree needs the longer gathering to
   * put more than one directory in a fragment's transaction.
   */
  private kickFree (ino: number): void {
    if (this.freeing.has(ino) || this.toFree.has(ino) || this.freeing.size + this.toFree.size >= 1024) return
    this.toFree.add(ino)
    this.lastKick = Date.now()
    if (this.freeRun !== null) return
    this.freeRun = (async () => {
      while (this.toFree.size > 0 && !this.closed) {
        // Unlinks one at a time come every few ms: wait for more to join (the space comes back a little later).
        const started = Date.now()
        let round = this.nextFreeRound()
        while (!this.closed && !round.full && Date.now() - started < FREE_GATHER_MAX_MS) {
          const quiet = Date.now() - this.lastKick
          if (quiet >= FREE_GATHER_MS) break
          await new Promise((resolve) => setTimeout(resolve, FREE_GATHER_MS - quiet))
          round = this.nextFreeRound()
        }
        const batch = round.inos
        for (const i of batch) { this.toFree.delete(i); this.freeing.add(i) }
        try {
          await this.tryFreeMany(batch)
        } catch {
          // Left to the orphan sweep.
        } finally {
          for (const i of batch) this.freeing.delete(i)
        }
      }
    })().finally(() => { this.freeRun = null })
  }

  /**
   * The next round of kicked orphans: at most FREE_BATCH of each fragment,
   * FREE_ROUND_MAX in all, oldest kicks first; `full` once some fragment
   * has a whole batch or the round has its most (waiting longer would add
   * nothing to it).
   */
  private nextFreeRound (): { inos: number[], full: boolean } {
    const per = new Map<number, number>()
    const inos: number[] = []
    let full = false
    for (const ino of this.toFree) {
      if (inos.length >= FREE_ROUND_MAX) break
      const f = ino % this.tables.fragments
      const n = (per.get(f) ?? 0) + 1
      if (n > FREE_BATCH) continue
      per.set(f, n)
      inos.push(ino)
      if (n === FREE_BATCH) full = true
    }
    return { inos, full: full || inos.length >= FREE_ROUND_MAX }
  }

  /** Frees orphan `ino` unless some host holds it open. Returns whether it is gone. */
  async tryFree (ino: number): Promise<boolean> {
    return (await this.tryFreeMany([ino])) === 1
  }

  /** Frees those of the orphans `inos` that no host holds open, one transaction per fragment. Returns how many are gone. */
  private async tryFreeMany (inos: number[]): Promise<number> {
    if (this.closed) return 0
    let free = inos.filter((ino) => !this.handles.isOpen(ino))
    if (free.length === 0) return 0
    if (this.openElsewhere !== null) {
      const open = await this.openElsewhere(free)
      free = free.filter((_, i) => !open[i])
    }
    // An open here may have registered while the others answered.
    free = free.filter((ino) => !this.handles.isOpen(ino))
    const byFragment = new Map<number, number[]>()
    for (const ino of free) {
      const f = ino % this.tables.fragments
      let l = byFragment.get(f)
      if (l === undefined) byFragment.set(f, l = [])
      l.push(ino)
    }
    const gone = await Promise.all([...byFragment.values()].map(async (group) => await this.op(async (tx) => {
      let n = 0
      for (const ino of group) {
        const v = await tx.get('inode', inodeKey(ino))
        if (!v) {
          tx.delete('meta', orphanKey(ino % this.tables.fragments, ino))
          n++
          continue
        }
        const node = decodeInode(ino, v)
        if (node.nlink !== 0) {
          tx.delete('meta', orphanKey(ino % this.tables.fragments, ino))
          continue
        }
        await this.freeInode(tx, node)
        n++
      }
      return n
    })))
    return gone.reduce((a, b) => a + b, 0)
  }

  /**
   * Cluster mode: tries to free every orphan of the given fragments (those
   * a crashed or unreachable host left, or whose first try met an open
   * handle). Returns how many were freed.
   */
  async sweepOrphans (fragments: number[]): Promise<number> {
    let freed = 0
    for (const f of fragments) {
      const p = orphanPrefix(f)
      const rows = await this.tables.txn(async (tx) => await tx.range('meta', p, prefixEnd(p), { limit: 256 }))
      const batch = rows.map((r) => orphanInoOf(r.key)).filter((ino) => !this.freeing.has(ino))
      for (let i = 0; i < batch.length; i += FREE_BATCH) {
        const part = batch.slice(i, i + FREE_BATCH)
        for (const ino of part) this.freeing.add(ino)
        try {
          freed += await this.tryFreeMany(part)
        } finally {
          for (const ino of part) this.freeing.delete(ino)
        }
      }
    }
    return freed
  }

  /** Free inodes left with no name (a crash while they were open). Runs at open. */
  async freeOrphans (): Promise<number> {
    let freed = 0
    for (let f = 0; f < this.tables.fragments; f++) {
      const p = orphanPrefix(f)
      const rows = await this.tables.txn(async (tx) => await tx.range('meta', p, prefixEnd(p)))
      for (const r of rows) {
        const ino = orphanInoOf(r.key)
        if (this.handles.isOpen(ino)) continue
        await this.op(async (tx) => {
          tx.delete('meta', r.key)
          const v = await tx.get('inode', inodeKey(ino))
          if (v) {
            const n = decodeInode(ino, v)
            if (n.nlink === 0) await this.freeInode(tx, n)
          }
        })
        freed++
      }
    }
    return freed
  }

  /** Resolves once the background frees kicked so far are over (freed, or left to the sweep). */
  async freesSettled (): Promise<void> {
    while (this.freeRun !== null) await this.freeRun
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    // A batch under way ends after its current transaction; the rest is left to the sweep.
    await this.freesSettled()
    await this.tables.close()
  }
}
