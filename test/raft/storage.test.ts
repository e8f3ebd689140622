import t from 'tap'
import { open } from 'lmdb'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RaftStorage } from '../../src/store/raft-storage.js'
import type { Entry, Ready } from '../../src/raft/types.js'

const cfg = { voters: [1, 2, 3], learners: [] }
const ents = (from: number, to: number, term: number): Entry[] =>
  Array.from({ length: to - from + 1 }, (_, k) => ({ index: from + k, term, kind: 'normal' as const, data: new Uint8Array([from + k, term]) }))
const ready = (p: Partial<Ready>): Ready => ({ entries: [], messages: [], early: 0, committed: [], readStates: [], ...p })

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
