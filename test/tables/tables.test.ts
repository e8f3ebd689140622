import t from 'tap'
import { Store } from '../../src/store/store.js'
import { LocalTables } from '../../src/tables/local.js'
import { InodeAllocator } from '../../src/tables/ino-alloc.js'
import { encodeOwner, fragmentOfKey, metaKey } from '../../src/tables/fragments.js'
import { tempDir } from '../helpers/tmp.js'
import { tablesContract } from './contract.js'

function key (owner: number, rest: string): Buffer {
  return Buffer.concat([encodeOwner(owner), Buffer.from(rest)])
}

async function openTables (t: { teardown: (fn: () => unknown) => void }, dir: string, fragments = 4, debugRerun = false): Promise<LocalTables> {
  const tables = LocalTables.open(Store.open(dir), { fragments, debugRerun })
  t.teardown(() => tables.close())
  return tables
}

tablesContract(t, {
  open: async (t, fragments) => await openTables(t, tempDir(t), fragments),
  increments: 200,
  inodes: 3000
})

t.test('rows of one owner share a fragment; fragments are fixed at init', async (t) => {
  const dir = tempDir(t)
  const tables = LocalTables.open(Store.open(dir), { fragments: 5 })
  t.equal(fragmentOfKey(key(12, 'x'), 5), 2)
  t.equal(fragmentOfKey(key(12, 'other'), 5), fragmentOfKey(encodeOwner(12), 5))
  t.equal(await tables.countRows('inode', 2), 0)
  await tables.txn(async (tx) => { tx.put('inode', encodeOwner(12), Buffer.from('i')); tx.put('block', key(12, 'b0'), Buffer.from('d')) })
  t.equal(await tables.countRows('inode', 2), 1, 'the inode row of owner 12 is in fragment 12 % 5')
  t.equal(await tables.countRows('block', 2), 1, 'and so is its block')
  t.equal(await tables.countRows('inode', 0), 0)
  await tables.close()
  const store = Store.open(dir)
  t.throws(() => LocalTables.open(store, { fragments: 3 }), /fixed at init/)
  await store.close()
  const again = LocalTables.open(Store.open(dir))
  t.equal(again.fragments, 5)
  await again.close()
})

t.test('inode numbers encode their fragment, are unique, and are not reused after reopen', async (t) => {
  const dir = tempDir(t)
  let tables = LocalTables.open(Store.open(dir), { fragments: 3 })
  let alloc = new InodeAllocator(tables)
  const seen = new Set<number>()
  const got = await Promise.all(Array.from({ length: 3000 }, async (_, i) => await alloc.allocate(i % 3)))
  got.forEach((ino, i) => {
    t.equal(ino % 3, i % 3)
    seen.add(ino)
  })
  t.equal(seen.size, 3000, 'no number handed out twice')
  t.notOk(seen.has(1), 'the root number is never allocated')
  await tables.close()
  tables = LocalTables.open(Store.open(dir))
  t.teardown(() => tables.close())
  alloc = new InodeAllocator(tables)
  for (let i = 0; i < 100; i++) {
    const ino = await alloc.allocate(1)
    t.notOk(seen.has(ino))
    t.ok(Number.isSafeInteger(ino))
  }
  t.end()
})

t.test('debugRerun runs bodies twice and keeps only the second attempt', async (t) => {
  const tables = await openTables(t, tempDir(t), 2, true)
  let runs = 0
  await tables.txn(async (tx) => {
    runs++
    const cur = await tx.get('meta', metaKey(0, 'n'))
    tx.put('meta', metaKey(0, 'n'), Buffer.from([(cur?.[0] ?? 0) + 1]))
  })
  t.equal(runs, 2)
  t.same(await tables.txn(async (tx) => await tx.get('meta', metaKey(0, 'n'))), Buffer.from([1]))
})
