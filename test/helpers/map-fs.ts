/**
 * A minimal in-memory filesystem over the FUSE binding, for the binding's
 * own tests and benchmark: a Map from path to node, sparse file contents in
 * 64 KiB chunks (so a write at 5 GiB costs one chunk). It is a fixture, not
 * the walkenfs filesystem model; it exists to exercise every patched path of
 * the binding and to record what the handlers received.
 *
 * Policy it shares with walkenfs: opens with write access get direct I/O
 * (refusing shared writable mmap); new nodes are owned by the caller.
 */
import { constants as fsc } from 'node:fs'
import type { FuseDirEntry, FuseContext, FuseOps, OpenResult, Stat, StatFs, TimeUpdate } from '../../src/fuse/binding.js'
import { FuseError } from '../../src/fuse/binding.js'

const CHUNK = 65536
const O_ACCMODE = 3 // Linux; not exported by node:fs
const LOG_LIMIT = 1000

export interface Node {
  ino: number
  mode: number
  uid: number
  gid: number
  nlink: number
  size: number
  chunks: Map<number, Buffer>
  target: string
  atimeNs: bigint
  mtimeNs: bigint
  ctimeNs: bigint
  xattrs: Map<string, Buffer>
}

/** One handler call as the fixture saw it. */
export interface Call {
  op: string
  path: string
  ctx: FuseContext
  args: unknown[]
}

// wall clock with ns resolution: epoch at load + monotonic ns since then
const epochBaseNs = BigInt(Date.now()) * 1_000_000n
const monoBaseNs = process.hrtime.bigint()
function nowNs (): bigint {
  return epochBaseNs + (process.hrtime.bigint() - monoBaseNs)
}

function parentOf (path: string): string {
  const i = path.lastIndexOf('/')
  return i <= 0 ? '/' : path.slice(0, i)
}

export class MapFs implements FuseOps {
  readonly nodes = new Map<string, Node>()
  /** The last LOG_LIMIT calls, oldest first. */
  readonly calls: Call[] = []
  /** Inode numbers start here: above 2^32, so a 32-bit truncation shows. */
  nextIno: number
  private nextFh = 1

  constructor (firstIno = 2 ** 40 + 7) {
    this.nextIno = firstIno
    const t = nowNs()
    this.nodes.set('/', this.newNode(fsc.S_IFDIR | 0o777, 0, 0, t))
  }

  private newNode (mode: number, uid: number, gid: number, t: bigint): Node {
    const ino = this.nextIno++
    return { ino, mode, uid, gid, nlink: (mode & fsc.S_IFMT) === fsc.S_IFDIR ? 2 : 1, size: 0, chunks: new Map(), target: '', atimeNs: t, mtimeNs: t, ctimeNs: t, xattrs: new Map() }
  }

  private log (op: string, path: string, ctx: FuseContext, ...args: unknown[]): void {
    if (this.calls.length >= LOG_LIMIT) this.calls.shift()
    this.calls.push({ op, path, ctx, args })
  }

  callsOf (op: string, path?: string): Call[] {
    return this.calls.filter((c) => c.op === op && (path === undefined || c.path === path))
  }

  private get (path: string): Node {
    const n = this.nodes.get(path)
    if (!n) throw new FuseError('ENOENT')
    return n
  }

  private stat (n: Node): Stat {
    return { mode: n.mode, uid: n.uid, gid: n.gid, size: n.size, ino: n.ino, nlink: n.nlink, atimeNs: n.atimeNs, mtimeNs: n.mtimeNs, ctimeNs: n.ctimeNs }
  }

  private add (ctx: FuseContext, path: string, mode: number): Node {
    if (this.nodes.has(path)) throw new FuseError('EEXIST')
    const parent = this.get(parentOf(path))
    if ((parent.mode & fsc.S_IFMT) !== fsc.S_IFDIR) throw new FuseError('ENOTDIR')
    const t = nowNs()
    const n = this.newNode(mode, ctx.uid, ctx.gid, t)
    this.nodes.set(path, n)
    parent.mtimeNs = parent.ctimeNs = t
    return n
  }

  /** Reads `len` bytes of a node's sparse content from `pos` (holes are zeros). */
  readContent (n: Node, pos: number, len: number): Buffer {
    const out = Buffer.alloc(Math.max(0, Math.min(len, n.size - pos)))
    for (let done = 0; done < out.length;) {
      const at = pos + done
      const idx = Math.floor(at / CHUNK)
      const off = at - idx * CHUNK
      const take = Math.min(CHUNK - off, out.length - done)
      const c = n.chunks.get(idx)
      if (c) c.copy(out, done, off, off + take)
      done += take
    }
    return out
  }

  private opened (path: string, flags: number): OpenResult {
    const writable = (flags & O_ACCMODE) !== fsc.O_RDONLY
    return { fh: this.nextFh++, directIo: writable }
  }

  async getattr (ctx: FuseContext, path: string): Promise<Stat> {
    return this.stat(this.get(path))
  }

  async fgetattr (ctx: FuseContext, path: string, fh: number): Promise<Stat> {
    this.log('fgetattr', path, ctx, fh)
    return this.stat(this.get(path))
  }

  async statfs (): Promise<StatFs> {
    // counts above 2^32 on purpose (a 32-bit field would wrap)
    return { bsize: 4096, frsize: 4096, blocks: 2 ** 40, bfree: 2 ** 39, bavail: 2 ** 39 - 5, files: 2 ** 36, ffree: 2 ** 35, favail: 2 ** 35, namemax: 255 }
  }

  async readdir (ctx: FuseContext, path: string): Promise<FuseDirEntry[]> {
    const dir = this.get(path)
    const prefix = path === '/' ? '/' : path + '/'
    const out: FuseDirEntry[] = [{ name: '.', ino: dir.ino, mode: dir.mode }]
    for (const [p, n] of this.nodes) {
      if (p !== '/' && p.startsWith(prefix) && !p.slice(prefix.length).includes('/')) out.push({ name: p.slice(prefix.length), ino: n.ino, mode: n.mode })
    }
    return out
  }

  async open (ctx: FuseContext, path: string, flags: number): Promise<OpenResult> {
    this.get(path)
    const r = this.opened(path, flags)
    this.log('open', path, ctx, flags, r)
    return r
  }

  async create (ctx: FuseContext, path: string, mode: number, flags: number): Promise<OpenResult> {
    this.add(ctx, path, mode)
    const r = this.opened(path, flags)
    this.log('create', path, ctx, mode, flags, r)
    return r
  }

  async opendir (ctx: FuseContext, path: string, flags: number): Promise<OpenResult> {
    if ((this.get(path).mode & fsc.S_IFMT) !== fsc.S_IFDIR) throw new FuseError('ENOTDIR')
    const r = { fh: this.nextFh++ }
    this.log('opendir', path, ctx, flags, r)
    return r
  }

  async releasedir (ctx: FuseContext, path: string, fh: number): Promise<void> {
    this.log('releasedir', path, ctx, fh)
  }

  async read (ctx: FuseContext, path: string, fh: number, buf: Buffer, position: number): Promise<number> {
    this.log('read', path, ctx, fh, buf.length, position)
    const data = this.readContent(this.get(path), position, buf.length)
    data.copy(buf)
    return data.length
  }

  async write (ctx: FuseContext, path: string, fh: number, data: Buffer, position: number): Promise<number> {
    this.log('write', path, ctx, fh, data.length, position)
    const n = this.get(path)
    for (let done = 0; done < data.length;) {
      const at = position + done
      const idx = Math.floor(at / CHUNK)
      const off = at - idx * CHUNK
      const take = Math.min(CHUNK - off, data.length - done)
      let c = n.chunks.get(idx)
      if (!c) { c = Buffer.alloc(CHUNK); n.chunks.set(idx, c) }
      data.copy(c, off, done, done + take)
      done += take
    }
    n.size = Math.max(n.size, position + data.length)
    n.mtimeNs = n.ctimeNs = nowNs()
    return data.length
  }

  private resize (n: Node, size: number): void {
    for (const idx of n.chunks.keys()) if (idx * CHUNK >= size) n.chunks.delete(idx)
    const last = n.chunks.get(Math.floor(size / CHUNK))
    if (last) last.fill(0, size % CHUNK)
    n.size = size
    n.mtimeNs = n.ctimeNs = nowNs()
  }

  async truncate (ctx: FuseContext, path: string, size: number): Promise<void> {
    this.log('truncate', path, ctx, size)
    this.resize(this.get(path), size)
  }

  async ftruncate (ctx: FuseContext, path: string, fh: number, size: number): Promise<void> {
    this.log('ftruncate', path, ctx, fh, size)
    this.resize(this.get(path), size)
  }

  async utimens (ctx: FuseContext, path: string, atime: TimeUpdate, mtime: TimeUpdate): Promise<void> {
    this.log('utimens', path, ctx, atime, mtime)
    const n = this.get(path)
    const t = nowNs()
    if (atime !== 'omit') n.atimeNs = atime === 'now' ? t : atime
    if (mtime !== 'omit') n.mtimeNs = mtime === 'now' ? t : mtime
    n.ctimeNs = t
  }

  async chmod (ctx: FuseContext, path: string, mode: number): Promise<void> {
    const n = this.get(path)
    n.mode = (n.mode & fsc.S_IFMT) | (mode & 0o7777)
    n.ctimeNs = nowNs()
  }

  async chown (ctx: FuseContext, path: string, uid: number, gid: number): Promise<void> {
    this.log('chown', path, ctx, uid, gid)
    const n = this.get(path)
    if (uid !== -1) n.uid = uid
    if (gid !== -1) n.gid = gid
    n.ctimeNs = nowNs()
  }

  async mkdir (ctx: FuseContext, path: string, mode: number): Promise<void> {
    this.add(ctx, path, fsc.S_IFDIR | (mode & 0o7777))
  }

  async unlink (ctx: FuseContext, path: string): Promise<void> {
    this.get(path)
    this.nodes.delete(path)
  }

  async rmdir (ctx: FuseContext, path: string): Promise<void> {
    this.get(path)
    for (const p of this.nodes.keys()) if (p.startsWith(path + '/')) throw new FuseError('ENOTEMPTY')
    this.nodes.delete(path)
  }

  async rename (ctx: FuseContext, src: string, dest: string): Promise<void> {
    const n = this.get(src)
    this.nodes.delete(src)
    this.nodes.set(dest, n)
  }

  async symlink (ctx: FuseContext, target: string, linkPath: string): Promise<void> {
    const n = this.add(ctx, linkPath, fsc.S_IFLNK | 0o777)
    n.target = target
    n.size = Buffer.byteLength(target)
  }

  async readlink (ctx: FuseContext, path: string): Promise<string> {
    return this.get(path).target
  }

  async flush (ctx: FuseContext, path: string, fh: number): Promise<void> {
    this.log('flush', path, ctx, fh)
  }

  async fsync (ctx: FuseContext, path: string, fh: number, datasync: boolean): Promise<void> {
    this.log('fsync', path, ctx, fh, datasync)
  }

  async release (ctx: FuseContext, path: string, fh: number): Promise<void> {
    this.log('release', path, ctx, fh)
  }

  async setxattr (ctx: FuseContext, path: string, name: string, value: Buffer): Promise<void> {
    this.get(path).xattrs.set(name, Buffer.from(value))
  }

  async getxattr (ctx: FuseContext, path: string, name: string): Promise<Buffer | null> {
    return this.get(path).xattrs.get(name) ?? null
  }

  async listxattr (ctx: FuseContext, path: string): Promise<string[]> {
    return [...this.get(path).xattrs.keys()]
  }

  async removexattr (ctx: FuseContext, path: string, name: string): Promise<void> {
    if (!this.get(path).xattrs.delete(name)) throw new FuseError('ENODATA')
  }
}
