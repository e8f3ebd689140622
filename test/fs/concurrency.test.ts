import t from 'tap'
import { checkFs } from '../../src/fs/check.js'
import { checkDataDir } from '../../src/fs/check-data-dir.js'
import { ROOT_INO } from '../../src/fs/types.js'
import { caller, openFs, pattern } from '../helpers/fs.js'

t.test('many operations in flight at once leave a consistent tree', async (t) => {
  const { fs, dir } = await openFs(t, { fragments: 8, blockSize: 4096, inlineMax: 512 })
  const dirs = await Promise.all(Array.from({ length: 8 }, async (_, i) => await fs.mkdir(ROOT_INO, `d${i}`, 0o755, caller)))
  // 8 × 40 creates with writes, all concurrent
  const files = await Promise.all(dirs.flatMap((d, i) => Array.from({ length: 40 }, async (_, j) => {
    const f = await fs.mknod(d.ino, `f${j}`, 0o100644, 0, caller)
    await fs.write(f.ino, 0, pattern(1000 + j * 100, i * 100 + j))
    return { d, j, ino: f.ino, seed: i * 100 + j }
  })))
  t.equal(new Set(files.map((f) => f.ino)).size, 320, 'every create got its own inode')
  // concurrently: move half the files across directories, unlink a quarter, link some, make subdirectories
  await Promise.all([
    ...files.filter((f) => f.j % 2 === 0).map(async (f) => await fs.rename(f.d.ino, `f${f.j}`, dirs[(dirs.indexOf(f.d) + 1) % 8].ino, `m${f.d.ino}-${f.j}`)),
    ...files.filter((f) => f.j % 4 === 1).map(async (f) => await fs.unlink(f.d.ino, `f${f.j}`)),
    ...files.filter((f) => f.j % 4 === 3).map(async (f) => await fs.link(f.ino, ROOT_INO, `l${f.ino}`)),
    ...dirs.map(async (d) => await fs.mkdir(d.ino, 'sub', 0o700, caller))
  ])
  t.same(await checkFs(fs.tables), [], 'check is clean')
  let names = 0
  for (const d of dirs) {
    const entries = await fs.readdir(d.ino)
    names += entries.length
    t.equal((await fs.getattr(d.ino)).nlink, 3, 'each directory has one subdirectory')
  }
  t.equal(names, 8 * (40 - 10) + 8, 'files minus the unlinked, plus the subdirectories')
  const moved = files.find((f) => f.j === 2)!
  const back = await fs.read(moved.ino, 0, 1e6)
  t.ok(back.equals(pattern(1000 + 2 * 100, moved.seed)), 'data follows a renamed file')
  await fs.close()
  t.same(await checkDataDir(dir), [], 'the check of the data directory agrees')
})

t.test('checkDataDir refuses a directory without a store', async (t) => {
  const { dir } = await openFs(t)
  await t.rejects(checkDataDir(dir + '/nope'), { code: 'ENOENT' })
})
