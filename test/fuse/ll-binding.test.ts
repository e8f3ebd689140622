// The low-level binding (native/fuse-ll) on a real mount: answers by inode,
// the kernel keeps what the answers allow, invalidation drops exactly that,
// errors and hung handlers reach the caller, no child inherits /dev/fuse,
// and unmount ends the session. A tiny in-memory inode filesystem serves it.
import t from 'tap'
import { execFile } from 'node:child_process'
import { readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { FuseError, isMountPoint, type Stat } from '../../src/fuse/binding.js'
import { checkLowLevelOptions, type Entry, type LowLevelMount, type LowLevelOps } from '../../src/fuse/ll-binding.js'
import { mountLowLevelForTest } from '../helpers/fuse-mount.js'

const run = promisify(execFile)
const S_IFDIR = 0o040000
const S_IFREG = 0o100000

/** Inodes by number; directories map names to inodes. Counts the requests it sees. */
class TinyFs {
  readonly calls: Record<string, number> = {}
  readonly data = new Map<number, Buffer>()
  readonly dirs = new Map<number, Map<string, number>>([[1, new Map()]])
  /** seconds the kernel may keep names and attributes */
  timeout = 0
  /** getattr never settles (for the ETIMEDOUT test) */
  hang = false
  private next = 2

  add (parent: number, name: string, content: string): number {
    const ino = this.next++
    this.data.set(ino, Buffer.from(content))
    this.dirs.get(parent)!.set(name, ino)
    return ino
  }

  stat (ino: number): Stat {
    const dir = this.dirs.has(ino)
    const size = dir ? 0 : this.data.get(ino)?.length
    if (size === undefined) throw new FuseError('ENOENT')
    return { ino, mode: dir ? S_IFDIR | 0o755 : S_IFREG | 0o644, nlink: 1, uid: 0, gid: 0, size, atimeNs: 0n, mtimeNs: 0n, ctimeNs: 0n }
  }

  private count (op: string): void {
    this.calls[op] = (this.calls[op] ?? 0) + 1
  }

  ops (): LowLevelOps {
    const entry = (ino: number): Entry => ({ stat: this.stat(ino), attrTimeout: this.timeout, entryTimeout: this.timeout })
    return {
      lookup: async (_c, parent, name) => {
        this.count('lookup')
        const ino = this.dirs.get(parent)?.get(name)
        if (ino === undefined) throw new FuseError('ENOENT')
        return entry(ino)
      },
      getattr: async (_c, ino) => {
        this.count('getattr')
        if (this.hang) await new Promise(() => {})
        return { stat: this.stat(ino), attrTimeout: this.timeout }
      },
      open: async () => ({ fh: 7 }),
      read: async (_c, ino, fh, size, offset) => {
        this.count('read')
        if (fh !== 7) throw new FuseError('EBADF')
        return this.data.get(ino)!.subarray(offset, offset + size)
      },
      create: async (_c, parent, name) => ({ ...entry(this.add(parent, name, '')), fh: 7, directIo: true }),
      write: async (_c, ino, _fh, data, offset) => {
        const old = this.data.get(ino)!
        const out = Buffer.alloc(Math.max(old.length, offset + data.length))
        old.copy(out)
        data.copy(out, offset)
        this.data.set(ino, out)
        return data.length
      },
      readdir: async (_c, ino) => [
        { name: '.', ino, mode: S_IFDIR },
        { name: '..', ino: 1, mode: S_IFDIR },
        ...[...this.dirs.get(ino)!].map(([name, i]) => ({ name, ino: i, mode: S_IFREG }))
      ],
      getxattr: async () => { throw new FuseError('ENODATA') }
    }
  }
}

async function mountTiny (t: { teardown (fn: () => unknown): void }, fs: TinyFs, timeoutMs?: number): Promise<{ mnt: string, m: LowLevelMount }> {
  const { mnt, fuse } = await mountLowLevelForTest(t, fs.ops(), timeoutMs !== undefined ? { timeoutMs } : {})
  return { mnt, m: fuse }
}

t.test('options of the path API are refused before mounting, with the reason', async (t) => {
  t.doesNotThrow(() => checkLowLevelOptions(['allow_other', 'big_writes', 'max_write=131072', 'fsname=x']))
  t.throws(() => checkLowLevelOptions(['attr_timeout=1']), /belongs to libfuse's path API/)
  t.throws(() => checkLowLevelOptions(['use_ino']), /belongs to libfuse's path API/)
  t.throws(() => checkLowLevelOptions(['nofail']), /unknown FUSE mount option "nofail"/)
})

t.test('files are served by inode: names, contents, inode numbers, listings, create and write', async (t) => {
  const fs = new TinyFs()
  const a = fs.add(1, 'a', 'hello')
  const { mnt } = await mountTiny(t, fs)
  t.equal(await readFile(join(mnt, 'a'), 'utf8'), 'hello')
  t.equal((await stat(join(mnt, 'a'))).ino, a, 'st_ino is the filesystem\'s inode number')
  t.equal((await stat(mnt)).ino, 1, 'the root is inode 1')
  t.same((await readdir(mnt)).sort(), ['a'])
  await writeFile(join(mnt, 'b'), 'written')
  t.equal(fs.data.get(fs.dirs.get(1)!.get('b')!)!.toString(), 'written')
  await t.rejects(stat(join(mnt, 'missing')), { code: 'ENOENT' })
})

t.test('the kernel keeps what the answers allow, and invalidation drops exactly that', async (t) => {
  const fs = new TinyFs()
  fs.timeout = 3600
  const a = fs.add(1, 'a', 'one')
  const { mnt, m } = await mountTiny(t, fs)
  t.equal((await stat(join(mnt, 'a'))).size, 3)
  const before = { ...fs.calls }
  await stat(join(mnt, 'a'))
  t.same(fs.calls, before, 'a second stat is answered by the kernel alone')

  // behind the kernel's back (as another host would): new content, and the name now names another inode
  fs.data.set(a, Buffer.from('longer'))
  t.equal((await stat(join(mnt, 'a'))).size, 3, 'stale until invalidated')
  m.invalInode(a)
  // the invalidation travels on its own thread; invalidated() resolves once it is done
  await m.invalidated()
  t.equal((await stat(join(mnt, 'a'))).size, 6, 'invalInode drops the cached attributes')

  const b = fs.add(1, 'other', 'xy')
  fs.dirs.get(1)!.set('a', b)
  t.equal((await stat(join(mnt, 'a'))).ino, a, 'the cached name still leads to the old inode')
  m.invalEntry(1, 'a')
  await m.invalidated()
  t.equal((await stat(join(mnt, 'a'))).ino, b, 'invalEntry drops the cached name')
})

t.test('without timeouts every access asks again', async (t) => {
  const fs = new TinyFs()
  fs.add(1, 'a', 'one')
  const { mnt } = await mountTiny(t, fs)
  await stat(join(mnt, 'a'))
  const lookups = fs.calls.lookup ?? 0
  await stat(join(mnt, 'a'))
  t.ok((fs.calls.lookup ?? 0) > lookups, 'the name is looked up again')
})

t.test('a handler that never settles is answered ETIMEDOUT', async (t) => {
  const fs = new TinyFs()
  fs.add(1, 'a', 'one')
  const { mnt } = await mountTiny(t, fs, 300)
  fs.hang = true
  // fstat of the root asks getattr (no timeouts): the hung handler must not hang the caller
  await t.rejects(stat(mnt), { code: 'ETIMEDOUT' })
  fs.hang = false
  t.equal((await stat(mnt)).ino, 1, 'the mount keeps working')
})

t.test('no child inherits the /dev/fuse descriptor; unmount ends the session', async (t) => {
  const fs = new TinyFs()
  const { mnt, m } = await mountTiny(t, fs)
  const fd = m.fd
  t.ok(fd > 2, 'the session has a descriptor')
  const own = await run('readlink', [`/proc/${process.pid}/fd/${fd}`])
  t.match(own.stdout, /\/dev\/fuse/, 'this process holds /dev/fuse (the check can see it)')
  const child = await run('sh', ['-c', `readlink /proc/$$/fd/${fd} || true`])
  t.notMatch(child.stdout, /\/dev\/fuse/, 'a spawned child has no /dev/fuse descriptor')
  await m.unmount()
  t.notOk(isMountPoint(mnt), 'detached')
  await m.ended
  t.equal(m.fd, -1, 'the session closed once the kernel connection was gone')
})
