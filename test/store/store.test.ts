import t from 'tap'
import { mkdirSync, writeFileSync, readFileSync, openSync, writeSync, closeSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { Store, STORE_DIR } from '../../src/store/store.js'
import { tempDir } from '../helpers/tmp.js'

const k = (s: string): Buffer => Buffer.from(s)

t.test('creates a store in a missing directory, commits, and keeps rows across reopen', async (t) => {
  const dir = join(tempDir(t), 'data')
  const s = Store.open(dir)
  s.commit([[k('a'), k('1')], [k('b'), k('2')], [k('c'), k('3')]])
  s.commit([[k('b'), null]])
  t.same(s.get(k('a')), k('1'))
  t.equal(s.get(k('b')), undefined)
  t.same(s.range(k('a'), k('z')).map((r) => r.key.toString()), ['a', 'c'])
  t.equal(s.count(k('a'), k('z')), 2)
  await s.flush()
  await s.close()
  const s2 = Store.open(dir)
  t.teardown(() => s2.close())
  t.same(s2.get(k('c')), k('3'))
  t.equal(s2.get(k('b')), undefined)
})

t.test('refuses a non-empty directory that is not a walkenfs data dir', async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'precious.txt'), 'do not touch')
  t.throws(() => Store.open(dir), { name: 'StoreError', code: 'EINVAL', message: /not a walkenfs data directory/ })
  t.equal(readFileSync(join(dir, 'precious.txt'), 'utf8'), 'do not touch')
})

t.test('a damaged data file gives a clear error, not a crash', async (t) => {
  const dir = tempDir(t)
  const s = Store.open(dir)
  s.commit([[k('x'), k('y')]])
  await s.close()
  const file = join(dir, STORE_DIR, 'data.mdb')
  const fd = openSync(file, 'r+')
  // Overwrite the second meta page with garbage.
  writeSync(fd, Buffer.alloc(4096, 0xab), 0, 4096, 4096)
  closeSync(fd)
  t.throws(() => Store.open(dir), { name: 'StoreError', code: 'EIO', message: /damaged \(second meta page/ })
  const fd2 = openSync(file, 'r+')
  writeSync(fd2, Buffer.alloc(100, 0), 0, 100, 0)
  closeSync(fd2)
  t.throws(() => Store.open(dir), { name: 'StoreError', code: 'EIO', message: /damaged \(first meta page/ })
})

t.test('a store of another kind in walkenfs-store is refused', async (t) => {
  const dir = tempDir(t)
  mkdirSync(join(dir, STORE_DIR))
  const s = Store.open(dir)
  await s.close()
  // Reopening our own store works; a data dir whose store dir is a file does not.
  const other = tempDir(t)
  writeFileSync(join(other, STORE_DIR), 'not a directory')
  t.throws(() => Store.open(other), { name: 'StoreError' })
})

t.test('the map grows past its initial size', async (t) => {
  const dir = tempDir(t)
  const s = Store.open(dir, { mapSize: 1 << 20 })
  t.teardown(() => s.close())
  const v = Buffer.alloc(64 * 1024, 7)
  for (let i = 0; i < 256; i++) {
    const key = Buffer.alloc(4)
    key.writeUInt32BE(i)
    s.commit([[key, v]])
  }
  await s.flush()
  t.ok(statSync(join(dir, STORE_DIR, 'data.mdb')).size > 16 << 20, 'the file holds 16 MiB of rows')
  const key = Buffer.alloc(4)
  key.writeUInt32BE(255)
  t.same(s.get(key), v)
})

t.test('concurrent flushes all resolve and a flush after close rejects', async (t) => {
  const dir = tempDir(t)
  const s = Store.open(dir)
  const ps: Array<Promise<void>> = []
  for (let i = 0; i < 20; i++) {
    s.commit([[k(`f${i}`), k('v')]])
    ps.push(s.flush())
  }
  await Promise.all(ps)
  await s.close()
  await t.rejects(s.flush(), { code: 'EIO' })
  t.throws(() => s.commit([[k('a'), k('b')]]), { code: 'EIO' })
})

t.test('one process per store: a second open is refused, a dead owner is taken over', async (t) => {
  const dir = tempDir(t)
  const s = Store.open(dir)
  t.throws(() => Store.open(dir), { name: 'StoreError', code: 'EBUSY', message: /in use by process/ })
  await s.close()
  // a pid file left by a process that is gone (a pid that cannot be alive)
  writeFileSync(join(dir, STORE_DIR, 'owner.pid'), '2147483646\n')
  const s2 = Store.open(dir)
  t.equal(readFileSync(join(dir, STORE_DIR, 'owner.pid'), 'utf8').trim(), String(process.pid))
  await s2.close()
})

t.test('flush covers every commit; the background flush catches up by itself', async (t) => {
  const dir = tempDir(t)
  const s = Store.open(dir, { autoFlushMs: 20 })
  t.teardown(() => s.close())
  s.commit([[k('a'), k('1')]])
  s.commit([[k('b'), k('2')]])
  t.equal(s.unflushedCommits(), 2)
  await s.flush()
  t.equal(s.unflushedCommits(), 0)
  s.commit([[k('c'), k('3')]])
  t.equal(s.unflushedCommits(), 1)
  for (let i = 0; i < 200 && s.unflushedCommits() > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(s.unflushedCommits(), 0, 'the background flush ran')
})

t.test('a store of the previous format is taken over and marked current; one of an unknown format is refused with the reason', async (t) => {
  const dir = tempDir(t)
  const s = Store.open(dir)
  const meta = s.lmdbRoot.openDB<Buffer, string>('store', { encoding: 'binary', keyEncoding: 'ordered-binary' } as never)
  await s.lmdbRoot.transaction(() => { meta.put('format', Buffer.from(JSON.stringify({ magic: 'walkenfs-store', version: 1 }))) })
  await s.close()
  const s1 = Store.open(dir)
  const m1 = s1.lmdbRoot.openDB<Buffer, string>('store', { encoding: 'binary', keyEncoding: 'ordered-binary' } as never)
  t.equal(JSON.parse(m1.getBinary('format')!.toString()).version, 4, 'format 1 is rewritten as 4')
  await s1.lmdbRoot.transaction(() => { m1.put('format', Buffer.from(JSON.stringify({ magic: 'walkenfs-store', version: 2 }))) })
  await s1.close()
  const s2 = Store.open(dir)
  const m2 = s2.lmdbRoot.openDB<Buffer, string>('store', { encoding: 'binary', keyEncoding: 'ordered-binary' } as never)
  t.equal(JSON.parse(m2.getBinary('format')!.toString()).version, 4, 'format 2 is rewritten as 4')
  await s2.lmdbRoot.transaction(() => { m2.put('format', Buffer.from(JSON.stringify({ magic: 'walkenfs-store', version: 3 }))) })
  await s2.close()
  const s3 = Store.open(dir)
  const m3 = s3.lmdbRoot.openDB<Buffer, string>('store', { encoding: 'binary', keyEncoding: 'ordered-binary' } as never)
  t.equal(JSON.parse(m3.getBinary('format')!.toString()).version, 4, 'format 3 is rewritten as 4')
  await s3.lmdbRoot.transaction(() => { m3.put('format', Buffer.from(JSON.stringify({ magic: 'walkenfs-store', version: 5 }))) })
  await s3.close()
  t.throws(() => Store.open(dir), /has store format 5, this build reads 1, 2, 3 and 4: it was written by another walkenfs release/)
})
