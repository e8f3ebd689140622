/**
 * The Tables contract (types.ts), run against any implementation: local.ts
 * in tables.test.ts, replicated.ts in replicated.test.ts.
 */
import type { Test } from 'tap'
import { InodeAllocator } from '../../src/tables/ino-alloc.js'
import { encodeOwner, metaKey } from '../../src/tables/fragments.js'
import { prefixEnd, type Tables } from '../../src/tables/types.js'

export interface ContractOptions {
  /** opens an empty Tables with `fragments` fragments, closed in the test's teardown */
  open: (t: Test, fragments: number) => Promise<Tables>
  /** concurrent read-modify-write transactions on one row */
  increments: number
  /** inode numbers to allocate */
  inodes: number
}

function key (owner: number, rest: string): Buffer {
  return Buffer.concat([encodeOwner(owner), Buffer.from(rest)])
}

export function tablesContract (t: Test, o: ContractOptions): void {
  t.test('get/put/delete/range with own writes visible and order kept', async (t) => {
    const tables = await o.open(t, 4)
    await tables.txn(async (tx) => {
      tx.put('dirent', key(7, 'b'), Buffer.from('B'))
      tx.put('dirent', key(7, 'a'), Buffer.from('A'))
      tx.put('dirent', key(7, 'c'), Buffer.from('C'))
      tx.put('dirent', key(8, 'a'), Buffer.from('other owner'))
      t.same(await tx.get('dirent', key(7, 'a')), Buffer.from('A'), 'a write is visible in its own transaction')
    })
    const names = await tables.txn(async (tx) => {
      tx.delete('dirent', key(7, 'b'))
      tx.put('dirent', key(7, 'ab'), Buffer.from('AB'))
      const p = encodeOwner(7)
      return (await tx.range('dirent', p, prefixEnd(p))).map((r) => r.key.subarray(8).toString())
    })
    t.same(names, ['a', 'ab', 'c'], 'range merges pending puts and deletes in key order')
    const limited = await tables.txn(async (tx) => (await tx.range('dirent', encodeOwner(7), prefixEnd(encodeOwner(7)), { limit: 2 })).length)
    t.equal(limited, 2)
    const keysOnly = await tables.txn(async (tx) => await tx.range('dirent', encodeOwner(7), prefixEnd(encodeOwner(7)), { keysOnly: true }))
    t.same(keysOnly.map((r) => [r.key.subarray(8).toString(), r.value.length]), [['a', 0], ['ab', 0], ['c', 0]], 'keysOnly: keys without values')
    t.equal(await tables.txn(async (tx) => await tx.get('inode', key(7, 'a'))), undefined, 'tables are separate key spaces')
    t.same(await tables.txn(async (tx) => await tx.get('dirent', key(8, 'a'))), Buffer.from('other owner'), 'a transaction over two owners committed both')
  })

  t.test('a body that throws writes nothing', async (t) => {
    const tables = await o.open(t, 4)
    await t.rejects(tables.txn(async (tx) => {
      tx.put('inode', key(1, ''), Buffer.from('x'))
      tx.put('inode', key(2, ''), Buffer.from('y'))
      throw new Error('boom')
    }), /boom/)
    t.equal(await tables.txn(async (tx) => await tx.get('inode', key(1, ''))), undefined)
    t.equal(await tables.txn(async (tx) => await tx.get('inode', key(2, ''))), undefined)
  })

  t.test('transactions are serializable: concurrent read-modify-write loses no update', async (t) => {
    const tables = await o.open(t, 4)
    const k = metaKey(0, 'counter')
    await Promise.all(Array.from({ length: o.increments }, async () => await tables.txn(async (tx) => {
      const cur = await tx.get('meta', k)
      const n = cur ? cur.readUInt32BE(0) : 0
      await new Promise((resolve) => setImmediate(resolve)) // let others run in between
      const b = Buffer.alloc(4)
      b.writeUInt32BE(n + 1)
      tx.put('meta', k, b)
    }, { maxAttempts: 1000 })))
    const v = await tables.txn(async (tx) => await tx.get('meta', k))
    t.equal(v?.readUInt32BE(0), o.increments)
  })

  t.test('countRows counts the rows of one table in one fragment', async (t) => {
    const tables = await o.open(t, 5)
    t.equal(await tables.countRows('inode', 2), 0)
    await tables.txn(async (tx) => { tx.put('inode', encodeOwner(12), Buffer.from('i')); tx.put('block', key(12, 'b0'), Buffer.from('d')) })
    t.equal(await tables.countRows('inode', 2), 1, 'the inode row of owner 12 is in fragment 12 % 5')
    t.equal(await tables.countRows('block', 2), 1, 'and so is its block')
    t.equal(await tables.countRows('inode', 0), 0)
  })

  t.test('inode numbers encode their fragment and are unique', async (t) => {
    const tables = await o.open(t, 3)
    const alloc = new InodeAllocator(tables)
    const seen = new Set<number>()
    const got = await Promise.all(Array.from({ length: o.inodes }, async (_, i) => await alloc.allocate(i % 3)))
    got.forEach((ino, i) => {
      if (ino % 3 !== i % 3) t.fail(`inode ${ino} is not in fragment ${i % 3}`)
      seen.add(ino)
    })
    t.equal(seen.size, o.inodes, 'no number handed out twice')
    t.notOk(seen.has(1), 'the root number is never allocated')
    const other = new InodeAllocator(tables)
    const more = await Promise.all(Array.from({ length: 10 }, async () => await other.allocate(1)))
    t.notOk(more.some((ino) => seen.has(ino)), 'a second allocator (another host) never reuses a number')
  })
}
