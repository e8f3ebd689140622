import t from 'tap'
import { checkFs } from '../../src/fs/check.js'
import { ROOT_INO } from '../../src/fs/types.js'
import { caller, openFs, pattern } from '../helpers/fs.js'
import { rng } from '../helpers/rng.js'

for (const [blockSize, inlineMax, seed] of [[512, 100, 1], [4096, 0, 2], [1024, 1024, 3]]) {
  t.test(`random writes, truncates and reads match a plain buffer (block ${blockSize}, inline ${inlineMax}, seed ${seed})`, async (t) => {
    const { fs } = await openFs(t, { blockSize, inlineMax, debugRerun: false })
    const f = await fs.mknod(ROOT_INO, 'f', 0o100644, 0, caller)
    const r = rng(seed)
    let model = Buffer.alloc(0)
    let mismatches = 0
    for (let step = 0; step < 400; step++) {
      const op = r(10)
      if (op < 5) {
        const off = r(12 * blockSize)
        const data = pattern(r(3 * blockSize) + 1, step + seed * 1000)
        await fs.write(f.ino, off, data)
        if (off + data.length > model.length) {
          const grown = Buffer.alloc(off + data.length)
          model.copy(grown)
          model = grown
        }
        data.copy(model, off)
      } else if (op < 7) {
        const size = r(10 * blockSize)
        await fs.setattr(f.ino, { size }, caller)
        const m = Buffer.alloc(size)
        model.copy(m, 0, 0, Math.min(size, model.length))
        model = m
      } else {
        const off = r(12 * blockSize)
        const len = r(4 * blockSize)
        const got = await fs.read(f.ino, off, len)
        const want = model.subarray(Math.min(off, model.length), Math.min(off + len, model.length))
        if (!got.equals(want)) mismatches++
      }
      if (step % 50 === 49) {
        const problems = await checkFs(fs.tables)
        if (problems.length > 0) {
          t.same(problems, [], `check after step ${step}`)
          return
        }
      }
    }
    t.equal(mismatches, 0, 'every read matched')
    t.equal((await fs.getattr(f.ino)).size, model.length)
    t.ok((await fs.read(f.ino, 0, model.length)).equals(model), 'the whole file matches')
    t.same(await checkFs(fs.tables), [])
  })
}
