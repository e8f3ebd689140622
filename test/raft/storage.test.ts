import t, { type Test } from 'tap'
import { open, type RootDatabase } from 'lmdb'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RaftStorage } from '../../src/store/raft-storage.js'
import type { Entry, Ready } from '../../src/raft/types.js'
import type { EntryHead } from '../../src/raft/log.js'

const cfg = { voters: [1, 2, 3], learners: [] }
const ents = (from: number, to: number, term: number): Entry[] =>
  Array.from({ length: to - from + 1 }, (_, k) => ({ index: from + k, term, kind: 'normal' as const, data: new Uint8Array([from + k, term]) }))
const ready = (p: Partial<Ready>): Ready => ({ entries: [], messages: [], early: 0, committed: [], readStates: [], ...p })

/** A RaftStorage on an lmdb environment of its own, removed after the test. */
function freshStorage (t: Test): { root: RootDatabase, st: RaftStorage, dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'walkenfs-raftstore-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const root = open({ path: dir })
  t.teardown(async () => { await root.close() })
  return { root, st: new RaftStorage(root), dir }
}

t.test('raft storage on lmdb: append, overwrite, compact, install, reopen', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'walkenfs-raftstore-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  let root = open({ path: dir })
  t.teardown(async () => { await root.close() })
  let st = new RaftStorage(root)
  await root.transaction(() => st.bootstrap('g', cfg))
  t.throws(() => st.bootstrap('g', cfg), /already exists/)
  t.throws(() => st.load('nope'), /raft group nope has no state/)

  await root.transaction(() => st.writeReady('g', ready({ entries: ents(1, 10, 1), hardState: { term: 1, vote: 2, commit: 4 } })))
  let s = st.load('g')
  t.same(s.entries.map((e) => e.index), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
  t.same(s.hardState, { term: 1, vote: 2, commit: 4 })

  // A follower overwrites a conflicting suffix: 9 and 10 must disappear.
  await root.transaction(() => st.writeReady('g', ready({ entries: ents(6, 8, 2), hardState: { term: 2, vote: 0, commit: 5 } })))
  s = st.load('g')
  t.same(s.entries.map((e) => [e.index, e.term]), [[1, 1], [2, 1], [3, 1], [4, 1], [5, 1], [6, 2], [7, 2], [8, 2]])

  // Local compaction together with an append, and the applied index in the same transaction.
  await root.transaction(() => {
    st.writeReady('g', ready({ compacted: { meta: { index: 5, term: 1, config: cfg }, data: new Uint8Array([9]) }, entries: ents(9, 9, 2) }))
    st.setApplied('g', 5)
  })
  s = st.load('g')
  t.equal(s.snapshot.meta.index, 5)
  t.same(s.entries.map((e) => e.index), [6, 7, 8, 9])
  t.equal(s.applied, 5)

  // Installing a leader's snapshot replaces the whole log, including entries past it.
  await root.transaction(() => st.writeReady('g', ready({ snapshot: { meta: { index: 7, term: 3, config: { voters: [1, 2], learners: [3] } }, data: new Uint8Array([7]) } })))
  await root.transaction(() => st.writeReady('g', ready({ entries: ents(8, 9, 3), hardState: { term: 3, vote: 0, commit: 7 } })))
  await root.flushed
  await root.close()

  // Reopen from disk: a fresh storage object knows nothing but what lmdb holds.
  root = open({ path: dir })
  st = new RaftStorage(root)
  s = st.load('g')
  t.same(s.snapshot.meta, { index: 7, term: 3, config: { voters: [1, 2], learners: [3] } })
  t.same(s.entries.map((e) => [e.index, e.term]), [[8, 3], [9, 3]])
  t.same(s.hardState, { term: 3, vote: 0, commit: 7 })
  t.equal(s.applied, 7, 'applied is at least the snapshot index')
  t.same(st.groups(), ['g'])
  await root.transaction(() => st.drop('g'))
  t.same(st.groups(), [])
})

t.test('read back for opening: applied entries come as heads from their own keys, the rest whole; stores without heads read whole', async (t) => {
  const { root, st } = freshStorage(t)
  await root.transaction(() => st.bootstrap('g', cfg))
  const conf: Entry = { index: 3, term: 1, kind: 'conf', conf: { type: 'addLearner', node: 4 } }
  const empty: Entry = { index: 4, term: 1, kind: 'normal' }
  await root.transaction(() => {
    st.writeReady('g', ready({ entries: [...ents(1, 2, 1), conf, empty, ...ents(5, 10, 1)], hardState: { term: 1, vote: 1, commit: 10 } }))
    st.setApplied('g', 8)
  })
  // A follower overwrites a suffix: the heads of the old 7..10 go with their entries.
  await root.transaction(() => st.writeReady('g', ready({ entries: ents(7, 9, 2), hardState: { term: 2, vote: 2, commit: 8 } })))
  const shape = (e: Entry | EntryHead): string => 'released' in e ? `${e.index}h${e.term}` : `${e.index}${e.kind === 'conf' ? 'c' : 'e'}${e.term}`
  t.same(st.load('g', true).entries.map(shape), ['1h1', '2h1', '3c1', '4e1', '5h1', '6h1', '7h2', '8h2', '9e2'],
    'heads up to min(applied, commit); the configuration change and the empty entry whole; unapplied 9 whole')
  t.same((st.load('g', true).entries[0] as EntryHead).released, 2, 'a head knows its payload size')
  t.same(st.load('g').entries.map(shape), ['1e1', '2e1', '3c1', '4e1', '5e1', '6e1', '7e2', '8e2', '9e2'], 'whole on request')

  await root.transaction(() => st.writeReady('g', ready({ compacted: { meta: { index: 5, term: 1, config: cfg }, data: new Uint8Array() } })))
  t.same(st.load('g', true).entries.map(shape), ['6h1', '7h2', '8h2', '9e2'], 'compaction takes the heads too')
  t.same([...root.openDB({ name: 'raft', encoding: 'msgpack', keyEncoding: 'ordered-binary' }).getKeys({ start: ['g', 'm', 0], end: ['g', 'm', 6] })], [], 'no head left below the snapshot')

  // A store written before heads existed has only the entries: the same log, read whole.
  const raw = root.openDB({ name: 'raft', encoding: 'msgpack', keyEncoding: 'ordered-binary' })
  await root.transaction(() => { for (const k of raw.getKeys({ start: ['g', 'm', 0], end: ['g', 'm', 100] })) raw.remove(k) })
  t.same(st.load('g', true).entries.map(shape), ['6e1', '7e2', '8e2', '9e2'], 'without heads, every entry whole')
  await root.transaction(() => st.writeReady('g', ready({ entries: ents(10, 11, 2) })))
  t.equal([...raw.getKeys({ start: ['g', 'm', 0], end: ['g', 'm', 100] })].length, 2, 'new entries get heads again')
  await root.transaction(() => st.drop('g'))
  for (const part of ['e', 'm']) t.same([...raw.getKeys({ start: ['g', part, 0], end: ['g', part, 100] })], [], `drop removes every '${part}' key`)
})

t.test('groups() lists every group with state once, reading one key per group', async (t) => {
  const { root, st } = freshStorage(t)
  // names that are prefixes of each other: a skip past one group's keys must not skip the next
  const ids = ['schema', 'fs/1', 'fs/10', 'fs/2', 'fs/1a']
  for (const g of ids) {
    await root.transaction(() => {
      st.bootstrap(g, cfg)
      st.writeReady(g, ready({ entries: ents(1, 50, 1), hardState: { term: 1, vote: 1, commit: 50 } }))
    })
  }
  t.same(st.groups().sort(), [...ids].sort())
  await root.transaction(() => st.drop('fs/10'))
  t.same(st.groups().sort(), ['fs/1', 'fs/1a', 'fs/2', 'schema'], 'a dropped group is gone')
})

t.test('groups() leaves no read snapshot open: pages freed after it are reused', async (t) => {
  const { root, st, dir } = freshStorage(t)
  for (const g of ['schema', 'fs/0', 'fs/1']) await root.transaction(() => st.bootstrap(g, cfg))
  st.groups()
  // A log that keeps compacting: 400 entries of 256 KiB, each removed by the next cycle. With a
  // snapshot pinned, lmdb can reuse none of the freed pages and the file grows to about 100 MiB.
  const big = new Uint8Array(256 * 1024)
  for (let i = 1; i <= 400; i++) {
    root.transactionSync(() => {
      st.writeReady('fs/0', ready({ entries: [{ index: i, term: 1, kind: 'normal', data: big }] }))
      if (i > 1) st.writeReady('fs/0', ready({ compacted: { meta: { index: i - 1, term: 1, config: cfg }, data: new Uint8Array() } }))
    })
  }
  await root.flushed
  const mib = statSync(join(dir, 'data.mdb')).size / 2 ** 20
  t.ok(mib < 20, `the store stays small (${mib.toFixed(1)} MiB)`)
})
