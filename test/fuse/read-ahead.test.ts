import t from 'tap'
import { ReadAhead } from '../../src/fuse/read-ahead.js'
import { Adapter } from '../../src/fuse/adapter.js'
import { ModelFs } from '../../src/fs/model.js'
import { Store } from '../../src/store/store.js'
import { LocalTables } from '../../src/tables/local.js'
import { S_IFREG } from '../../src/fs/rows.js'
import { tempDir } from '../helpers/tmp.js'

const KiB = 1024
const MiB = 1024 * KiB

function bytes (n: number, seed: number): Buffer {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff
  return b
}

// The source is a byte array per inode; each fetch is logged, as a filesystem read would be one transaction.
function source (files: Map<number, Buffer>) {
  const fetches: Array<[number, number, number]> = []
  return {
    fetches,
    fetch: async (ino: number, offset: number, length: number) => {
      fetches.push([ino, offset, length])
      await new Promise((resolve) => setImmediate(resolve))
      const f = files.get(ino) ?? Buffer.alloc(0)
      return Buffer.from(f.subarray(Math.min(offset, f.length), Math.min(offset + length, f.length)))
    }
  }
}

t.test('a sequential reader gets exact bytes with one fetch per window, concurrent requests included', async (t) => {
  const file = bytes(3 * MiB + 5000, 1)
  const s = source(new Map([[7, file]]))
  const ra = new ReadAhead(s.fetch)
  const got: Buffer[] = []
  for (let off = 0; off < file.length; off += 4 * 128 * KiB) {
    // As the kernel does: several 128 KiB requests in flight at once.
    const parts = await Promise.all([0, 1, 2, 3].map(async (i) => await ra.read(1, 7, off + i * 128 * KiB, 128 * KiB)))
    got.push(...parts)
  }
  t.ok(Buffer.concat(got).equals(file), 'every byte, in order, and nothing past the end')
  t.same(s.fetches, [0, 1, 2, 3].map((i) => [7, i * MiB, MiB]), 'four windows of 1 MiB (the last one short), and none past it')
  t.equal(ra.served, 28 - 1, 'all requests but the first came from windows (the later ones fetched ahead)')
  t.same(await ra.read(1, 7, file.length, 128 * KiB), Buffer.alloc(0), 'a read at the end is empty')
})

t.test('small, random and large requests are fetched as asked, and open no window', async (t) => {
  const file = bytes(4 * MiB, 2)
  const s = source(new Map([[7, file]]))
  const ra = new ReadAhead(s.fetch)
  t.ok((await ra.read(1, 7, 0, 4 * KiB)).equals(file.subarray(0, 4 * KiB)), 'small read')
  t.ok((await ra.read(1, 7, 3 * MiB, 128 * KiB)).equals(file.subarray(3 * MiB, 3 * MiB + 128 * KiB)), 'a jump')
  t.ok((await ra.read(1, 7, 0, 2 * MiB)).equals(file.subarray(0, 2 * MiB)), 'a request as large as a window')
  t.same(s.fetches, [[7, 0, 4 * KiB], [7, 3 * MiB, 128 * KiB], [7, 0, 2 * MiB]])
  t.equal(ra.fetched, 0)
})

t.test('a change here drops the windows of that inode; a closed handle drops its own; memory is bounded', async (t) => {
  const files = new Map([[7, bytes(2 * MiB, 3)], [8, bytes(2 * MiB, 4)]])
  const s = source(files)
  const ra = new ReadAhead(s.fetch, { maxBytes: 2 * MiB })
  await ra.read(1, 7, 0, 128 * KiB)
  await ra.read(2, 8, 0, 128 * KiB)
  t.equal(ra.fetched, 2)
  files.set(7, bytes(2 * MiB, 9))
  ra.changed(7)
  t.ok((await ra.read(1, 7, 128 * KiB, 128 * KiB)).equals(files.get(7)!.subarray(128 * KiB, 256 * KiB)), 'the changed inode is read afresh')
  t.ok((await ra.read(2, 8, 128 * KiB, 128 * KiB)).equals(files.get(8)!.subarray(128 * KiB, 256 * KiB)), 'the other inode still comes from its window')
  t.equal(ra.served, 1)
  await ra.read(1, 7, 0, 128 * KiB)
  await ra.read(3, 8, 0, 128 * KiB)
  t.equal(ra.fetched, 3, 'a third window would pass maxBytes: fetched as asked instead')
  ra.drop(2)
  await ra.read(3, 8, 0, 128 * KiB)
  t.equal(ra.fetched, 4, 'after a handle closed, there is room again')
  for (let ino = 100; ino < 1100; ino++) ra.changed(ino)
  t.equal(ra.fetched, 4, 'changes of inodes nobody reads through a window fetch nothing')
  t.ok((await ra.read(3, 8, 128 * KiB, 128 * KiB)).equals(files.get(8)!.subarray(128 * KiB, 256 * KiB)), 'and leave the windows of others as they were')
  t.equal(ra.served, 2)
})

t.test('a failed window fetch fails the requests that wait for it, and the next request fetches again', async (t) => {
  const file = bytes(2 * MiB, 5)
  let fail = true
  const ra = new ReadAhead(async (_ino, offset, length) => {
    await new Promise((resolve) => setImmediate(resolve))
    if (fail) throw new Error('EIO: the disk went away')
    return Buffer.from(file.subarray(offset, offset + length))
  })
  const a = ra.read(1, 7, 0, 128 * KiB)
  const b = ra.read(1, 7, 128 * KiB, 128 * KiB)
  await t.rejects(a, /EIO/)
  await t.rejects(b, /EIO/)
  fail = false
  t.ok((await ra.read(1, 7, 0, 128 * KiB)).equals(file.subarray(0, 128 * KiB)))
})

t.test('through the adapter on a real store: a read-only reader sees what this mount wrote before its read', async (t) => {
  const dir = tempDir(t)
  const tables = LocalTables.open(Store.open(dir), { fragments: 4 })
  const fs = new ModelFs(tables, await ModelFs.init(tables, {}, () => BigInt(Date.now()) * 1_000_000n), dir)
  t.teardown(async () => await fs.close())
  const adapter = new Adapter(fs, { nameTtlMs: 0 })
  const caller = { uid: 0, gid: 0, pid: process.pid }
  const w = await adapter.create('/data', S_IFREG | 0o644, 1, caller)
  const first = bytes(3 * MiB, 6)
  await adapter.write(w.fh, 0, first)
  await adapter.flush(w.fh)
  const r = await adapter.open('/data', 0)
  t.ok((await adapter.read(r.fh, 0, 128 * KiB)).equals(first.subarray(0, 128 * KiB)), 'first request')
  // Written through another handle while the reader's window holds the old bytes.
  const patch = Buffer.alloc(64 * KiB, 0xee)
  await adapter.write(w.fh, 256 * KiB, patch)
  t.ok((await adapter.read(r.fh, 256 * KiB, 128 * KiB)).equals(Buffer.concat([patch, first.subarray(320 * KiB, 384 * KiB)])), 'the write is seen, even unflushed')
  await adapter.truncate('/data', 300 * KiB, caller)
  t.equal((await adapter.read(r.fh, 256 * KiB, 128 * KiB)).length, 44 * KiB, 'a truncate is seen')
  await adapter.release(r.fh)
  await adapter.release(w.fh)
  t.equal(adapter.readAhead.fetched > 0, true, 'the reader used read-ahead windows')
})
