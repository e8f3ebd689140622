/**
 * ModelFs, unchanged, on ReplicatedTables over 3 hosts: every host has its
 * own ModelFs (as every host mounts the tree), and each operation below is
 * issued on the next host in turn. checkFs verifies the tables at the end.
 */
import t from 'tap'
import { ModelFs, wallClockNs } from '../../src/fs/model.js'
import { checkFs } from '../../src/fs/check.js'
import { ROOT_INO, XATTR_CREATE, XATTR_REPLACE } from '../../src/fs/types.js'
import { caller, pattern } from '../helpers/fs.js'
import { ReplCluster } from './repl-cluster.js'
import { rng } from '../helpers/rng.js'

const REG = 0o100644
const S_IFMT = 0o170000

interface Setup { fs: ModelFs, hosts: ModelFs[], cluster: ReplCluster, calls: Map<number, number> }

/** `fs` sends each call to the next host's ModelFs; `calls` counts calls per host. */
async function setup (t: { teardown: (fn: () => unknown) => void }): Promise<Setup> {
  const cluster = await ReplCluster.start({ hosts: 3, fragments: 4 })
  t.teardown(() => cluster.cleanup())
  const first = [...cluster.hosts.values()][0]
  const settings = await ModelFs.init(first.tables, {}, wallClockNs)
  const hosts = [...cluster.hosts.values()].map((h) => new ModelFs(h.tables, settings, null))
  const calls = new Map<number, number>()
  let i = 0
  const fs = new Proxy(hosts[0], {
    get (_target, prop) {
      const v = (hosts[0] as unknown as Record<string | symbol, unknown>)[prop]
      if (typeof v !== 'function') return v
      return (...args: unknown[]) => {
        const k = i++ % hosts.length
        calls.set(k, (calls.get(k) ?? 0) + 1)
        return (hosts[k] as unknown as Record<string | symbol, (...a: unknown[]) => unknown>)[prop](...args)
      }
    }
  })
  return { fs, hosts, cluster, calls }
}

async function clean (t: { same: (found: unknown, wanted: unknown, msg: string) => unknown }, s: Setup): Promise<void> {
  t.same(await checkFs(s.cluster.roundRobin()), [], 'check finds no damage')
}

t.test('create, lookup, directories and their errors, each call on another host', async (t) => {
  const s = await setup(t)
  const { fs } = s
  const f = await fs.mknod(ROOT_INO, 'a', REG, 0, caller)
  t.equal(f.nlink, 1)
  t.same(await fs.lookup(ROOT_INO, 'a'), f)
  t.same(await fs.getattr(f.ino), f)
  await t.rejects(fs.mknod(ROOT_INO, 'a', REG, 0, caller), { code: 'EEXIST' })
  await t.rejects(fs.lookup(ROOT_INO, 'nope'), { code: 'ENOENT' })
  await t.rejects(fs.lookup(f.ino, 'x'), { code: 'ENOTDIR' })
  t.equal((await fs.getattr(ROOT_INO)).nlink, 2)
  const a = await fs.mkdir(ROOT_INO, 'd', 0o755, caller)
  t.equal((await fs.getattr(ROOT_INO)).nlink, 3)
  const b = await fs.mkdir(a.ino, 'b', 0o700, caller)
  await fs.mkdir(a.ino, 'c', 0o700, caller)
  await fs.mknod(a.ino, 'file', REG, 0, caller)
  t.equal((await fs.getattr(a.ino)).nlink, 4, 'a file does not count')
  t.equal((await fs.lookup(b.ino, '..')).ino, a.ino)
  await t.rejects(fs.rmdir(ROOT_INO, 'd'), { code: 'ENOTEMPTY' })
  await t.rejects(fs.unlink(a.ino, 'b'), { code: 'EISDIR' })
  await fs.rmdir(a.ino, 'b')
  t.equal((await fs.getattr(a.ino)).nlink, 3)
  await t.rejects(fs.getattr(b.ino), { code: 'ENOENT' })
  t.same((await fs.readdir(a.ino)).map((e) => e.name).sort(), ['c', 'file'])
  t.ok([0, 1, 2].every((k) => (s.calls.get(k) ?? 0) > 3), 'every host served calls')
  await clean(t, s)
})

t.test('writes in 128 KiB chunks from alternating hosts read back exactly', async (t) => {
  const s = await setup(t)
  const { fs } = s
  const f = await fs.mknod(ROOT_INO, 'data', REG, 0, caller)
  const data = pattern(1024 * 1024 + 1234, 7)
  for (let off = 0; off < data.length; off += 131072) {
    t.equal(await fs.write(f.ino, off, data.subarray(off, off + 131072)), Math.min(131072, data.length - off))
  }
  t.equal((await fs.getattr(f.ino)).size, data.length)
  t.ok((await fs.read(f.ino, 0, data.length)).equals(data), 'whole file')
  t.ok((await fs.read(f.ino, 65530, 20)).equals(data.subarray(65530, 65550)), 'across a block boundary')
  const patch = Buffer.from('PATCHED')
  await fs.write(f.ino, 100000, patch)
  patch.copy(data, 100000)
  t.ok((await fs.read(f.ino, 0, data.length)).equals(data), 'overwrite in the middle')
  await fs.setattr(f.ino, { size: 70000 }, caller)
  t.ok((await fs.read(f.ino, 0, 100000)).equals(data.subarray(0, 70000)), 'truncate')
  await clean(t, s)
})

t.test('hard links, symlinks and xattrs across hosts', async (t) => {
  const s = await setup(t)
  const { fs } = s
  const d = await fs.mkdir(ROOT_INO, 'd', 0o755, caller)
  const f = await fs.mknod(ROOT_INO, 'f', REG, 0, caller)
  await fs.write(f.ino, 0, Buffer.from('shared'))
  const l = await fs.link(f.ino, d.ino, 'g')
  t.equal(l.nlink, 2)
  await t.rejects(fs.link(d.ino, ROOT_INO, 'dd'), { code: 'EPERM' })
  await fs.unlink(ROOT_INO, 'f')
  t.equal((await fs.getattr(f.ino)).nlink, 1)
  t.equal((await fs.read(f.ino, 0, 10)).toString(), 'shared')
  const sl = await fs.symlink(d.ino, 'ln', '../some/where', caller)
  t.equal(sl.mode & S_IFMT, 0o120000)
  t.equal(await fs.readlink(sl.ino), '../some/where')
  await fs.setxattr(f.ino, 'user.a', Buffer.from('1'), 0)
  await fs.setxattr(f.ino, 'trusted.b', Buffer.from('22'), XATTR_CREATE)
  t.same((await fs.listxattr(f.ino)).sort(), ['trusted.b', 'user.a'])
  await t.rejects(fs.setxattr(f.ino, 'user.a', Buffer.from('x'), XATTR_CREATE), { code: 'EEXIST' })
  await fs.setxattr(f.ino, 'user.a', Buffer.from('replaced'), XATTR_REPLACE)
  t.same(await fs.getxattr(f.ino, 'user.a'), Buffer.from('replaced'))
  await fs.unlink(d.ino, 'g')
  await t.rejects(fs.getattr(f.ino), { code: 'ENOENT' })
  t.equal(await fs.tables.countRows('xattr', f.ino % 4), 0, 'xattrs go with the inode')
  await clean(t, s)
})

t.test('rename: move, replace, noreplace, exchange across directories (fragments)', async (t) => {
  const s = await setup(t)
  const { fs } = s
  // One host's round robin puts consecutive directories in different fragments.
  const a = await s.hosts[0].mkdir(ROOT_INO, 'a', 0o755, caller)
  const b = await s.hosts[0].mkdir(ROOT_INO, 'b', 0o755, caller)
  t.not(a.ino % 4, b.ino % 4, 'the two directories are in different fragments')
  const f = await fs.mknod(a.ino, 'f', REG, 0, caller)
  await fs.write(f.ino, 0, Buffer.from('F'))
  const g = await fs.mknod(b.ino, 'g', REG, 0, caller)
  await fs.write(g.ino, 0, Buffer.from('G'))
  await fs.rename(a.ino, 'f', b.ino, 'f2')
  await t.rejects(fs.lookup(a.ino, 'f'), { code: 'ENOENT' })
  t.equal((await fs.lookup(b.ino, 'f2')).ino, f.ino)
  await t.rejects(fs.rename(b.ino, 'f2', b.ino, 'g', { noreplace: true }), { code: 'EEXIST' })
  await fs.rename(b.ino, 'f2', b.ino, 'g')
  t.equal((await fs.lookup(b.ino, 'g')).ino, f.ino, 'replaced atomically')
  await t.rejects(fs.getattr(g.ino), { code: 'ENOENT' }, 'the replaced file is freed')
  const sub = await fs.mkdir(a.ino, 'sub', 0o755, caller)
  await fs.rename(a.ino, 'sub', b.ino, 'g', { exchange: true })
  t.equal((await fs.lookup(b.ino, 'g')).ino, sub.ino)
  t.equal((await fs.lookup(a.ino, 'sub')).ino, f.ino)
  t.equal((await fs.getattr(a.ino)).nlink, 2)
  t.equal((await fs.getattr(b.ino)).nlink, 3)
  t.equal((await fs.lookup(sub.ino, '..')).ino, b.ino)
  const deep = await fs.mkdir(sub.ino, 'deep', 0o755, caller)
  await t.rejects(fs.rename(ROOT_INO, 'b', deep.ino, 'x'), { code: 'EINVAL' }, 'into its own subtree')
  const empty = await fs.mkdir(ROOT_INO, 'empty', 0o755, caller)
  await fs.rename(ROOT_INO, 'a', ROOT_INO, 'empty')
  t.equal((await fs.lookup(ROOT_INO, 'empty')).ino, a.ino, 'a directory replaces an empty one')
  await t.rejects(fs.getattr(empty.ino), { code: 'ENOENT' })
  await clean(t, s)
})

t.test('concurrent creates, renames and unlinks from 3 hosts leave a consistent tree', async (t) => {
  const s = await setup(t)
  const dirs = await Promise.all(['x', 'y', 'z'].map(async (n, k) => await s.hosts[k].mkdir(ROOT_INO, n, 0o755, caller)))
  await Promise.all(s.hosts.map(async (h, k) => {
    for (let i = 0; i < 6; i++) {
      const name = `h${k}-${i}`
      const f = await h.mknod(dirs[i % 3].ino, name, REG, 0, caller)
      await h.write(f.ino, 0, Buffer.from(name))
      // Move into the next directory (another fragment), sometimes over a name another host uses.
      await h.rename(dirs[i % 3].ino, name, dirs[(i + 1) % 3].ino, i % 2 === 0 ? 'shared' : name)
      if (i % 3 === 2) await h.unlink(dirs[(i + 1) % 3].ino, name).catch((e: { code?: string }) => { if (e.code !== 'ENOENT') throw e })
    }
  }))
  const names = (await Promise.all(dirs.map(async (d) => (await s.fs.readdir(d.ino)).map((e) => e.name)))).flat()
  t.ok(names.filter((n) => n === 'shared').length <= 3, 'at most one "shared" per directory')
  await clean(t, s)
})

const POSIX = new Set(['ENOENT', 'EEXIST', 'ENOTDIR', 'EISDIR', 'ENOTEMPTY', 'EINVAL', 'EPERM', 'EBUSY'])

t.test('random namespace operations from 3 hosts at once keep the tables consistent', async (t) => {
  const s = await setup(t)
  const names = ['a', 'b', 'c', 'd']
  const dirs: number[] = [ROOT_INO]
  const inos: number[] = []
  const codes = new Map<string, number>()
  let ok = 0
  await Promise.all(s.hosts.map(async (fs, k) => {
    const r = rng(101 + k)
    for (let step = 0; step < 60; step++) {
      const d1 = dirs[r(dirs.length)]
      const d2 = dirs[r(dirs.length)]
      const n1 = names[r(names.length)]
      const n2 = names[r(names.length)]
      try {
        switch (r(9)) {
          case 0: dirs.push((await fs.mkdir(d1, n1, 0o755, caller)).ino); break
          case 1: inos.push((await fs.mknod(d1, n1, REG, 0, caller)).ino); break
          case 2: if (inos.length) await fs.link(inos[r(inos.length)], d1, n1); break
          case 3: await fs.unlink(d1, n1); break
          case 4: await fs.rmdir(d1, n1); break
          case 5: await fs.rename(d1, n1, d2, n2); break
          case 6: await fs.rename(d1, n1, d2, n2, { exchange: true }); break
          case 7: await fs.rename(d1, n1, d2, n2, { noreplace: true }); break
          case 8: await fs.symlink(d1, n1, 'target', caller); break
        }
        ok++
      } catch (e) {
        const code = (e as { code?: string }).code ?? ''
        if (!POSIX.has(code)) throw e
        codes.set(code, (codes.get(code) ?? 0) + 1)
      }
    }
  }))
  t.ok(ok > 15, `${ok} operations succeeded (errors: ${[...codes].map(([c, n]) => `${c} ${n}`).join(', ')})`)
  await clean(t, s)
})
