import t from 'tap'
import { checkFs } from '../../src/fs/check.js'
import { FsError, ROOT_INO } from '../../src/fs/types.js'
import { caller, openFs } from '../helpers/fs.js'
import { rng } from '../helpers/rng.js'

const POSIX = new Set(['ENOENT', 'EEXIST', 'ENOTDIR', 'EISDIR', 'ENOTEMPTY', 'EINVAL', 'EPERM', 'EBUSY'])

for (const seed of [11, 12, 13]) {
  t.test(`random namespace operations keep the tables consistent (seed ${seed})`, async (t) => {
    const { fs } = await openFs(t, { fragments: 3, debugRerun: false })
    const r = rng(seed)
    const names = ['a', 'b', 'c', 'd', 'e']
    // directories we know of (may have been removed since; errors are expected then)
    const dirs: number[] = [ROOT_INO]
    const inos: number[] = []
    const codes = new Map<string, number>()
    let ok = 0
    for (let step = 0; step < 600; step++) {
      const d1 = dirs[r(dirs.length)]
      const d2 = dirs[r(dirs.length)]
      const n1 = names[r(names.length)]
      const n2 = names[r(names.length)]
      try {
        switch (r(9)) {
          case 0: dirs.push((await fs.mkdir(d1, n1, 0o755, caller)).ino); break
          case 1: inos.push((await fs.mknod(d1, n1, 0o100644, 0, caller)).ino); break
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
        if (!(e instanceof FsError) || !POSIX.has(e.code)) throw e
        codes.set(e.code, (codes.get(e.code) ?? 0) + 1)
      }
      if (step % 100 === 99) {
        const problems = await checkFs(fs.tables)
        if (problems.length) {
          t.same(problems, [], `consistent after step ${step}`)
          return
        }
      }
    }
    t.ok(ok > 100, `${ok} operations succeeded (errors: ${[...codes].map(([c, n]) => `${c} ${n}`).join(', ')})`)
    t.same(await checkFs(fs.tables), [])
  })
}
