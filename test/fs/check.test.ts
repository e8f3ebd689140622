import t from 'tap'
import { checkFs, type Problem } from '../../src/fs/check.js'
import { blockKey, decodeInode, direntKey, direntPrefix, encodeDirent, encodeInode, inodeKey, xattrKey } from '../../src/fs/rows.js'
import { ROOT_INO } from '../../src/fs/types.js'
import { fragmentOfKey, fragmentOfOwner } from '../../src/tables/fragments.js'
import { TABLES, prefixEnd } from '../../src/tables/types.js'
import { caller, openFs } from '../helpers/fs.js'

const REG = 0o100644

/** A small tree with a file of several blocks, a hard link, a symlink and an xattr. */
async function tree (t: Parameters<typeof openFs>[0]) {
  const { fs } = await openFs(t, { blockSize: 4096, inlineMax: 0 })
  const d = await fs.mkdir(ROOT_INO, 'd', 0o755, caller)
  const f = await fs.mknod(d.ino, 'f', REG, 0, caller)
  await fs.write(f.ino, 0, Buffer.alloc(10000, 1))
  await fs.link(f.ino, ROOT_INO, 'f2')
  await fs.symlink(d.ino, 's', 'f', caller)
  await fs.setxattr(f.ino, 'user.x', Buffer.from('y'), 0)
  return { fs, d, f }
}

const kinds = (ps: Problem[]): string[] => [...new Set(ps.map((p) => p.kind))].sort()

t.test('a healthy tree is clean', async (t) => {
  const { fs } = await tree(t)
  t.same(await checkFs(fs.tables), [])
})

t.test('an entry pointing to a missing inode', async (t) => {
  const { fs, d } = await tree(t)
  await fs.tables.txn(async (tx) => { tx.put('dirent', direntKey(d.ino, 'ghost'), encodeDirent(987654321, REG)) })
  t.same(kinds(await checkFs(fs.tables)), ['dangling-entry'])
})

t.test('an nlink that does not match the entries', async (t) => {
  const { fs, f } = await tree(t)
  await fs.tables.txn(async (tx) => {
    const n = decodeInode(f.ino, (await tx.get('inode', inodeKey(f.ino)))!)
    n.nlink = 5
    tx.put('inode', inodeKey(f.ino), encodeInode(n))
  })
  const ps = await checkFs(fs.tables)
  t.same(kinds(ps), ['nlink'])
  t.equal(ps[0].ino, f.ino)
})

t.test('a directory nlink off by one', async (t) => {
  const { fs } = await tree(t)
  await fs.tables.txn(async (tx) => {
    const n = decodeInode(ROOT_INO, (await tx.get('inode', inodeKey(ROOT_INO)))!)
    n.nlink = 2
    tx.put('inode', inodeKey(ROOT_INO), encodeInode(n))
  })
  t.same(kinds(await checkFs(fs.tables)), ['nlink'])
})

t.test('orphan blocks and xattrs of an inode that does not exist', async (t) => {
  const { fs } = await tree(t)
  await fs.tables.txn(async (tx) => {
    tx.put('block', blockKey(4000001, 3), Buffer.alloc(100))
    tx.put('xattr', xattrKey(4000001, 'user.lost'), Buffer.from('v'))
  })
  t.same(kinds(await checkFs(fs.tables)), ['orphan-block', 'orphan-xattr'])
})

t.test('a block past EOF, and stored bytes that do not add up', async (t) => {
  const { fs, f } = await tree(t)
  await fs.tables.txn(async (tx) => { tx.put('block', blockKey(f.ino, 9), Buffer.alloc(10)) })
  t.same(kinds(await checkFs(fs.tables)), ['block-past-eof', 'stored-bytes'])
})

t.test('an entry removed without its inode; an inode with nlink 0 and no orphan record', async (t) => {
  const { fs, d } = await tree(t)
  const s = await fs.lookup(d.ino, 's')
  await fs.tables.txn(async (tx) => { tx.delete('dirent', direntKey(d.ino, 's')) })
  t.same(kinds(await checkFs(fs.tables)), ['nlink'], 'nlink 1 but no entry')
  await fs.tables.txn(async (tx) => {
    const n = decodeInode(s.ino, (await tx.get('inode', inodeKey(s.ino)))!)
    n.nlink = 0
    tx.put('inode', inodeKey(s.ino), encodeInode(n))
  })
  t.same(kinds(await checkFs(fs.tables)), ['unreferenced-inode'], 'a space leak')
})

t.test('a symlink without its target row, and the entry of a removed directory', async (t) => {
  const { fs, d } = await tree(t)
  const s = await fs.lookup(d.ino, 's')
  await fs.tables.txn(async (tx) => {
    tx.delete('symlink', inodeKey(s.ino))
    tx.delete('inode', inodeKey(d.ino))
  })
  t.same(kinds(await checkFs(fs.tables)), ['dangling-entry', 'entry-in-non-directory', 'missing-symlink-target', 'nlink'], 'the root also lost a subdirectory')
})

t.test('a whole fragment lost (a forced recovery with --accept-loss recreates it empty): reported, no crash', async (t) => {
  const { fs } = await tree(t)
  const rootFragment = fragmentOfOwner(ROOT_INO, 4)
  // A directory whose rows live outside the root's fragment, with files in it; then every row of its fragment goes.
  let dir = await fs.mkdir(ROOT_INO, 'x0', 0o755, caller)
  for (let i = 1; fragmentOfOwner(dir.ino, 4) === rootFragment && i < 64; i++) dir = await fs.mkdir(ROOT_INO, `x${i}`, 0o755, caller)
  const lost = fragmentOfOwner(dir.ino, 4)
  t.not(lost, rootFragment, `directory ${dir.ino} lives in fragment ${lost}, the root in ${rootFragment}`)
  const owners = [dir.ino]
  for (let i = 0; i < 6; i++) owners.push((await fs.mknod(dir.ino, `n${i}`, REG, 0, caller)).ino)
  t.ok(owners.every((o) => fragmentOfOwner(o, 4) === lost), 'the files live in their directory\'s fragment')
  // A range is read within one fragment, so the rows go owner by owner.
  await fs.tables.txn(async (tx) => {
    for (const table of TABLES) {
      if (table === 'meta') continue
      for (const o of owners) {
        const p = direntPrefix(o)
        for (const r of await tx.range(table, p, prefixEnd(p))) if (fragmentOfKey(r.key, 4) === lost) tx.delete(table, r.key)
      }
    }
  })
  const ps = await checkFs(fs.tables)
  t.ok(ps.length > 0, `the loss is reported: ${kinds(ps).join(', ')}`)
  t.ok(ps.some((p) => p.kind === 'dangling-entry' && p.ino === dir.ino), 'the root\'s entry naming the lost directory dangles')
})
