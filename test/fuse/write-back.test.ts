import t from 'tap'
import { WriteBack } from '../../src/fuse/write-back.js'
import { FsError } from '../../src/fs/types.js'

// The commit target is a plain byte array per inode: what the model would hold.
function store () {
  const files = new Map<number, Buffer>()
  const commits: Array<[number, number, number]> = []
  let fail: ((ino: number, off: number) => boolean) | null = null
  return {
    files,
    commits,
    setFail (f: typeof fail) { fail = f },
    commit: async (ino: number, off: number, data: Buffer) => {
      await new Promise((r) => setImmediate(r))
      if (fail?.(ino, off)) throw new FsError('ENOSPC')
      commits.push([ino, off, data.length])
      const old = files.get(ino) ?? Buffer.alloc(0)
      const out = Buffer.alloc(Math.max(old.length, off + data.length))
      old.copy(out)
      data.copy(out, off)
      files.set(ino, out)
    }
  }
}

t.test('sequential writes coalesce into large commits, in order', async (t) => {
  const s = store()
  const wb = new WriteBack(s.commit, { flushThreshold: 1 << 30, maxCommitBytes: 64 * 1024 })
  const chunk = Buffer.alloc(4096)
  for (let i = 0; i < 32; i++) {
    chunk.fill(i)
    t.equal(await wb.write(7, i * 4096, chunk), 4096)
  }
  t.equal(wb.dirtyBytes(7), 32 * 4096)
  t.equal(wb.bufferedEnd(7), 32 * 4096)
  t.equal(s.commits.length, 0, 'nothing committed before a flush')
  await wb.flush(7)
  t.equal(wb.dirtyBytes(7), 0)
  t.same(s.commits.map((c) => c[2]), [65536, 65536], 'two commits of 64 KiB')
  const f = s.files.get(7)!
  for (let i = 0; i < 32; i++) t.equal(f[i * 4096 + 17], i, `block ${i} holds its own bytes`)
})

t.test('the caller may reuse its buffer; a later overlapping write wins', async (t) => {
  const s = store()
  const wb = new WriteBack(s.commit)
  const b = Buffer.from('aaaa')
  await wb.write(1, 0, b)
  b.fill('z')
  await wb.write(1, 2, Buffer.from('bb'))
  await wb.flush(1)
  t.equal(s.files.get(1)!.toString(), 'aabb')
})

t.test('a failed background commit is reported once by the next write or flush', async (t) => {
  const s = store()
  const wb = new WriteBack(s.commit, { flushThreshold: 8 })
  s.setFail((ino) => ino === 3)
  await wb.write(3, 0, Buffer.alloc(16))
  await new Promise((r) => setTimeout(r, 10))
  await t.rejects(wb.write(3, 16, Buffer.alloc(4)), { code: 'ENOSPC' })
  s.setFail(null)
  await wb.write(3, 16, Buffer.alloc(4))
  await wb.flush(3)
  t.equal(wb.dirtyBytes(3), 0)
  s.setFail(() => true)
  await wb.write(3, 0, Buffer.alloc(4))
  await t.rejects(wb.flush(3), { code: 'ENOSPC' })
  await wb.flush(3)
  t.pass('error reported only once')
})

t.test('memory is bounded: writers wait for commits past maxDirtyBytes', async (t) => {
  const s = store()
  let peak = 0
  const wb = new WriteBack(async (ino, off, data) => {
    peak = Math.max(peak, wb.dirtyBytes(ino))
    await s.commit(ino, off, data)
  }, { flushThreshold: 1 << 30, maxDirtyBytes: 64 * 1024, maxCommitBytes: 16 * 1024 })
  for (let i = 0; i < 256; i++) await wb.write(5, i * 1024, Buffer.alloc(1024, i))
  await wb.flush(5)
  t.ok(peak <= 64 * 1024 + 1024, `dirty bytes stayed bounded (peak ${peak})`)
  t.equal(s.files.get(5)!.length, 256 * 1024)
})

t.test('discard drops buffered bytes at and past an offset', async (t) => {
  const s = store()
  const wb = new WriteBack(s.commit)
  await wb.write(9, 0, Buffer.from('hello world'))
  wb.discard(9, 5)
  t.equal(wb.dirtyBytes(9), 5)
  await wb.flush(9)
  t.equal(s.files.get(9)!.toString(), 'hello')
})

t.test('a failed commit is reported to every handle whose bytes it dropped, once each', async (t) => {
  const s = store()
  const wb = new WriteBack(s.commit, { flushThreshold: 1 << 30 })
  // two appenders of one file: their bytes join one extent
  await wb.write(5, 0, Buffer.from('handle-1 '), 1)
  await wb.write(5, 9, Buffer.from('handle-2 '), 2)
  s.setFail(() => true)
  const first = wb.flush(5, 1)
  const second = wb.flush(5, 2)
  await t.rejects(first, { code: 'ENOSPC' }, 'the handle whose flush ran the commit hears of it')
  await t.rejects(second, { code: 'ENOSPC' }, 'so does the other writer, whose bytes were dropped too')
  s.setFail(null)
  await t.resolves(wb.flush(5, 1), 'reported once to handle 1')
  await t.resolves(wb.flush(5, 2), 'reported once to handle 2')
  t.equal(s.files.get(5), undefined, 'nothing was committed')
  wb.forget(5, 1)
  wb.forget(5, 2)
  t.equal(wb.hasDirty(5), false, 'no state left once both handles are closed')
})

t.test('a handle that wrote before another handle\'s flush failed hears of it at its own later flush', async (t) => {
  const s = store()
  const wb = new WriteBack(s.commit, { flushThreshold: 1 << 30 })
  await wb.write(6, 0, Buffer.from('a'), 1)
  await wb.write(6, 1, Buffer.from('b'), 2)
  s.setFail(() => true)
  await t.rejects(wb.flush(6, 1), { code: 'ENOSPC' })
  s.setFail(null)
  await t.rejects(wb.flush(6, 2), { code: 'ENOSPC' }, 'handle 2 learns its byte was lost')
  const h3 = 3
  await wb.write(6, 0, Buffer.from('c'), h3)
  await t.resolves(wb.flush(6, h3), 'a handle that first wrote after the failure does not hear of it')
})

t.test('dropped bytes are announced, per inode, once per failed commit', async (t) => {
  const s = store()
  const dropped: number[] = []
  const wb = new WriteBack(s.commit, { onDropped: (ino) => { dropped.push(ino) } })
  await wb.write(4, 0, Buffer.alloc(16))
  await wb.write(5, 0, Buffer.alloc(16))
  await wb.flush(5)
  t.same(dropped, [], 'nothing dropped while commits succeed')
  s.setFail((ino) => ino === 4)
  await t.rejects(wb.flush(4), { code: 'ENOSPC' })
  t.same(dropped, [4], 'the inode whose bytes were dropped')
})
