import t from 'tap'
import { pack } from 'msgpackr'
import { Store } from '../../src/store/store.js'
import { FragmentMachine, hashGet, hashRange, rowKey, type Check, type Command, type Result } from '../../src/tables/fragment-machine.js'
import { encodeOwner } from '../../src/tables/fragments.js'
import { ChangeMarks } from '../../src/tables/change-marks.js'
import { ChangeFeed } from '../../src/tables/change-feed.js'
import { prefixOf } from '../../src/tables/local.js'
import { tempDir } from '../helpers/tmp.js'

const F = 4
let index = 0

function key (owner: number, rest = ''): Buffer {
  return rowKey(owner % F, 'meta', Buffer.concat([encodeOwner(owner), Buffer.from(rest)]))
}

function open (t: { teardown: (fn: () => unknown) => void }): { store: Store, sm: FragmentMachine } {
  const store = Store.open(tempDir(t), { autoFlushMs: 0 })
  t.teardown(() => store.close())
  return { store, sm: new FragmentMachine(store, 1, F) }
}

async function applyRaw (store: Store, sm: FragmentMachine, data: Uint8Array): Promise<Result> {
  let r: unknown
  await store.lmdbRoot.transaction(() => { r = sm.apply({ index: ++index, term: 1, kind: 'normal', data }) })
  return r as Result
}

async function apply (store: Store, sm: FragmentMachine, cmd: Command): Promise<Result> {
  return await applyRaw(store, sm, FragmentMachine.encode(cmd))
}

function getCheck (sm: FragmentMachine, k: Buffer): Check {
  const r = sm.readLocal([{ k: 'get', key: k }]).results[0] as { value: Buffer | null }
  return { k: 'get', key: k, hash: hashGet(r.value) }
}

t.test('commit1 applies when its checks hold and conflicts when they do not', async (t) => {
  const { store, sm } = open(t)
  const a = key(1, 'a')
  const stale = getCheck(sm, a)
  t.same(await apply(store, sm, { op: 'commit1', txn: 'T1', at: 1, checks: [stale], writes: [[a, Buffer.from('1')]] }), { ok: true })
  t.same(store.get(a), Buffer.from('1'))
  const r = await apply(store, sm, { op: 'commit1', txn: 'T2', at: 2, checks: [stale], writes: [[a, Buffer.from('2')]] })
  t.same(r, { ok: false, reason: 'conflict', blockers: [] }, 'a check of a value that changed fails')
  t.same(store.get(a), Buffer.from('1'), 'nothing was written')
  const fresh = getCheck(sm, a)
  t.same(await apply(store, sm, { op: 'commit1', txn: 'T3', at: 3, checks: [fresh], writes: [[a, null]] }), { ok: true })
  t.equal(store.get(a), undefined, 'a null write deletes')
})

t.test('range checks cover the keys (and values) the range returned', async (t) => {
  const { store, sm } = open(t)
  const p = prefixOf(1, 'meta')
  const s = Buffer.concat([p, encodeOwner(1)])
  const e = Buffer.concat([p, encodeOwner(2)])
  await apply(store, sm, { op: 'commit1', txn: 'W', at: 1, checks: [], writes: [[key(1, 'x'), Buffer.from('x')]] })
  const rr = sm.readLocal([{ k: 'range', start: s, end: e, limit: 10, keysOnly: true }]).results[0] as { rows: Array<[Buffer, Buffer]> }
  t.equal(rr.rows.length, 1)
  const check: Check = { k: 'range', start: s, end: e, limit: 10, keysOnly: true, hash: hashRange(s, e, 10, true, rr.rows) }
  // A value change is invisible to a keys-only range: the check still holds.
  t.same(await apply(store, sm, { op: 'commit1', txn: 'V', at: 2, checks: [], writes: [[key(1, 'x'), Buffer.from('y')]] }), { ok: true })
  t.same(await apply(store, sm, { op: 'commit1', txn: 'R1', at: 3, checks: [check], writes: [] }), { ok: true })
  // A new key inside the range breaks it.
  await apply(store, sm, { op: 'commit1', txn: 'I', at: 4, checks: [], writes: [[key(1, 'w'), Buffer.from('w')]] })
  const r = await apply(store, sm, { op: 'commit1', txn: 'R2', at: 5, checks: [check], writes: [] })
  t.equal(r.ok, false)
  t.ok(hashGet(undefined).equals(hashGet(null)) && !hashGet(Buffer.alloc(0)).equals(hashGet(null)), 'absence differs from an empty value')
})

t.test('prepare places intents and locks that block conflicting commit1 and prepare', async (t) => {
  const { store, sm } = open(t)
  const a = key(1, 'a')
  const b = key(1, 'b')
  const c = key(1, 'c')
  const prep: Command = { op: 'prepare', txn: 'P', record: 0, participants: [0, 1], at: 100, checks: [getCheck(sm, b)], writes: [[a, Buffer.from('A')]] }
  t.same(await apply(store, sm, prep), { ok: true })
  t.equal(store.get(a), undefined, 'a prepared write is not applied yet')
  const read = sm.readLocal([{ k: 'get', key: a }])
  t.same(read.intents.map((i) => [i.txn, i.record, i.at, i.participants, i.fragment]), [['P', 0, 100, [0, 1], 1]], 'a read meets the intent')

  const w = await apply(store, sm, { op: 'commit1', txn: 'X1', at: 101, checks: [], writes: [[a, Buffer.from('x')]] })
  t.same(w.ok === false && w.reason === 'conflict' && w.blockers.map((x) => x.txn), ['P'], 'a write over an intent conflicts')
  const r = await apply(store, sm, { op: 'commit1', txn: 'X2', at: 102, checks: [getCheck(sm, a)], writes: [[c, Buffer.from('c')]] })
  t.same(r.ok === false && r.reason === 'conflict' && r.blockers.map((x) => x.txn), ['P'], 'a read of an intent conflicts')
  const l = await apply(store, sm, { op: 'commit1', txn: 'X3', at: 103, checks: [], writes: [[b, Buffer.from('b')]] })
  t.same(l.ok === false && l.reason === 'conflict' && l.blockers.map((x) => x.txn), ['P'], 'a write of a read-locked key conflicts')
  const p2 = await apply(store, sm, { op: 'prepare', txn: 'P2', record: 1, participants: [1, 2], at: 104, checks: [], writes: [[b, Buffer.from('b')]] })
  t.equal(p2.ok, false, 'so does a prepare')
  t.same(await apply(store, sm, { op: 'commit1', txn: 'X4', at: 105, checks: [getCheck(sm, b)], writes: [[c, Buffer.from('c')]] }), { ok: true }, 'reading a read-locked key and writing elsewhere is fine')

  t.same(await apply(store, sm, { op: 'resolve', txn: 'P', commit: true, at: 106 }), { ok: true, applied: 1 })
  t.same(store.get(a), Buffer.from('A'), 'resolve(commit) applies the intent')
  t.same(sm.readLocal([{ k: 'get', key: a }]).intents, [], 'and removes it')
  t.same(await apply(store, sm, { op: 'commit1', txn: 'X5', at: 107, checks: [], writes: [[b, Buffer.from('b')]] }), { ok: true }, 'locks are gone')
  t.same(await apply(store, sm, prep), { ok: true }, 'a duplicate prepare returns its first result')
  t.same(sm.readLocal([{ k: 'get', key: a }]).intents, [], 'and places nothing again')
})

t.test('resolve(abort) drops intents; a late prepare after resolve is refused', async (t) => {
  const { store, sm } = open(t)
  const a = key(5, 'a')
  await apply(store, sm, { op: 'prepare', txn: 'P', record: 1, participants: [1, 2], at: 1, checks: [], writes: [[a, Buffer.from('A')]] })
  t.same(await apply(store, sm, { op: 'resolve', txn: 'P', commit: false, at: 2 }), { ok: true, applied: 0 })
  t.equal(store.get(a), undefined)
  t.same(sm.readLocal([{ k: 'get', key: a }]).intents, [])
  t.same(await apply(store, sm, { op: 'resolve', txn: 'Q', commit: false, at: 3 }), { ok: true, applied: 0 }, 'resolving an unknown txn is harmless')
  const late = await apply(store, sm, { op: 'prepare', txn: 'Q', record: 1, participants: [1, 2], at: 1, checks: [], writes: [[a, Buffer.from('Q')]] })
  t.equal(late.ok === false && late.reason, 'resolved', 'a prepare arriving after its resolve places nothing')
  t.same(sm.readLocal([{ k: 'get', key: a }]).intents, [])
})

t.test('decide: the first decision wins; prepare after a decision is refused', async (t) => {
  const { store, sm } = open(t)
  t.same(await apply(store, sm, { op: 'decide', txn: 'D', commit: false, at: 5, participants: [1, 3] }), { ok: true, commit: false })
  t.same(await apply(store, sm, { op: 'decide', txn: 'D', commit: true, at: 6, participants: [1, 3] }), { ok: true, commit: false }, 'a later commit does not overrule an abort')
  t.same(sm.readLocal([{ k: 'decision', txn: 'D' }]).results[0], { k: 'decision', commit: false, participants: [1, 3] })
  const p = await apply(store, sm, { op: 'prepare', txn: 'D', record: 1, participants: [1, 3], at: 4, checks: [], writes: [[key(1), Buffer.from('x')]] })
  t.equal(p.ok === false && p.reason, 'decided')
  const recs = sm.readLocal([{ k: 'records', before: 6 }]).results[0] as { records: unknown[] }
  t.same(recs.records, [{ txn: 'D', commit: false, participants: [1, 3] }], 'records older than a time are listed for the sweeper')
  t.same(await apply(store, sm, { op: 'forget', txn: 'D' }), { ok: true, removed: 1 })
  t.same(sm.readLocal([{ k: 'decision', txn: 'D' }]).results[0], { k: 'decision', commit: null, participants: [] })
})

t.test('commitDecide: the record fragment applies its part and records commit in one step, unless a decision came first', async (t) => {
  const { store, sm } = open(t)
  const a = key(1, 'a')
  const b = key(5, 'b')
  const before = getCheck(sm, a)
  t.same(await apply(store, sm, { op: 'commitDecide', txn: 'C', at: 1, participants: [1, 2], checks: [before], writes: [[a, Buffer.from('C')]] }), { ok: true, commit: true })
  t.same(store.get(a), Buffer.from('C'), 'its writes are applied at once, with no intent in between')
  t.same(sm.readLocal([{ k: 'decision', txn: 'C' }]).results[0], { k: 'decision', commit: true, participants: [1, 2] }, 'and the decision is recorded for the other participants')
  t.same(await apply(store, sm, { op: 'commitDecide', txn: 'C', at: 1, participants: [1, 2], checks: [before], writes: [[a, Buffer.from('C')]] }), { ok: true, commit: true }, 'a retried proposal gives the first result')

  const stale = await apply(store, sm, { op: 'commitDecide', txn: 'S', at: 2, participants: [1, 2], checks: [before], writes: [[a, Buffer.from('S')]] })
  t.same(stale, { ok: false, reason: 'conflict', blockers: [] }, 'a check that no longer holds refuses it')
  t.same(store.get(a), Buffer.from('C'), 'nothing was written')
  t.same(sm.readLocal([{ k: 'decision', txn: 'S' }]).results[0], { k: 'decision', commit: null, participants: [] }, 'and nothing decided: a recoverer aborts it')

  t.same(await apply(store, sm, { op: 'decide', txn: 'R', commit: false, at: 3, participants: [1, 2] }), { ok: true, commit: false })
  t.same(await apply(store, sm, { op: 'commitDecide', txn: 'R', at: 4, participants: [1, 2], checks: [], writes: [[b, Buffer.from('R')]] }), { ok: true, commit: false }, 'a recoverer\'s abort that came first wins')
  t.equal(store.get(b), undefined, 'and the aborted transaction wrote nothing')

  await apply(store, sm, { op: 'prepare', txn: 'P', record: 0, participants: [0, 1], at: 5, checks: [], writes: [[b, Buffer.from('P')]] })
  const blocked = await apply(store, sm, { op: 'commitDecide', txn: 'B', at: 6, participants: [1, 3], checks: [], writes: [[b, Buffer.from('B')]] })
  t.equal(blocked.ok === false && blocked.reason === 'conflict' && blocked.blockers.map((x) => x.txn).join(), 'P', 'another transaction\'s intent on a written key blocks it')
})

t.test('duplicate commit1 gives the first result and applies once; sweep drops old dedupe rows', async (t) => {
  const { store, sm } = open(t)
  const a = key(1, 'n')
  const c1: Command = { op: 'commit1', txn: 'T', at: 1000, checks: [getCheck(sm, a)], writes: [[a, Buffer.from('1')]] }
  t.same(await apply(store, sm, c1), { ok: true })
  await apply(store, sm, { op: 'commit1', txn: 'U', at: 1001, checks: [], writes: [[a, Buffer.from('2')]] })
  t.same(await apply(store, sm, c1), { ok: true }, 'the retry of T reports its first result')
  t.same(store.get(a), Buffer.from('2'), 'and does not write again')
  const s = await apply(store, sm, { op: 'sweep', at: 1001, keepMs: 0, limit: 100 })
  t.same(s, { ok: true, removed: 1 }, 'only the dedupe row older than the cut-off goes')
  t.same(await apply(store, sm, c1), { ok: false, reason: 'conflict', blockers: [] }, 'after the sweep T is a new command again (its check fails)')
})

t.test('snapshot/restore round-trips the fragment, bookkeeping included, and leaves others alone', async (t) => {
  const { store, sm } = open(t)
  const other = new FragmentMachine(store, 2, F)
  await apply(store, sm, { op: 'commit1', txn: 'A', at: 1, checks: [], writes: [[key(1, 'a'), Buffer.from('a')], [key(5, 'b'), Buffer.from('b')]] })
  await apply(store, sm, { op: 'prepare', txn: 'P', record: 1, participants: [1, 2], at: 2, checks: [], writes: [[key(1, 'c'), Buffer.from('c')]] })
  await apply(store, other, { op: 'commit1', txn: 'O', at: 1, checks: [], writes: [[key(2, 'o'), Buffer.from('o')]] })
  const snap = sm.snapshot()
  const store2 = Store.open(tempDir(t), { autoFlushMs: 0 })
  t.teardown(() => store2.close())
  const sm2 = new FragmentMachine(store2, 1, F)
  await apply(store2, sm2, { op: 'commit1', txn: 'junk', at: 1, checks: [], writes: [[key(9, 'junk'), Buffer.from('j')]] })
  await store2.lmdbRoot.transaction(() => sm2.restore(snap))
  t.same(Buffer.from(sm2.snapshot()), Buffer.from(snap), 'the restored fragment snapshots identically')
  t.equal(store2.get(key(9, 'junk')), undefined, 'restore replaced what was there')
  t.same(sm2.readLocal([{ k: 'get', key: key(1, 'c') }]).intents.map((i) => i.txn), ['P'], 'intents survive')
  t.same(await apply(store2, sm2, { op: 'resolve', txn: 'P', commit: true, at: 3 }), { ok: true, applied: 1 })
  t.same(store2.get(key(1, 'c')), Buffer.from('c'))
  await store.lmdbRoot.transaction(() => sm.restore(new Uint8Array(0)))
  t.equal(store.get(key(1, 'a')), undefined, 'an empty snapshot empties the fragment')
  t.same(store.get(key(2, 'o')), Buffer.from('o'), 'another fragment is untouched')
})

t.test('commands that do not decode or name foreign keys get an error result', async (t) => {
  const { store, sm } = open(t)
  const garbage = await applyRaw(store, sm, Buffer.from([0xc1, 0xff, 0x00]))
  t.equal(garbage.ok === false && garbage.reason, 'bad-command')
  const notMap = await applyRaw(store, sm, pack(42))
  t.equal(notMap.ok === false && notMap.reason, 'bad-command')
  const unknown = await applyRaw(store, sm, pack({ op: 'explode', txn: 'x' }))
  t.equal(unknown.ok === false && unknown.reason, 'bad-command')
  const foreign = await apply(store, sm, { op: 'commit1', txn: 'F', at: 1, checks: [], writes: [[key(2, 'x'), Buffer.from('x')]] })
  t.equal(foreign.ok === false && foreign.reason, 'bad-command', 'a key of fragment 2 is refused by fragment 1')
  t.equal(store.get(key(2, 'x')), undefined)
  const missing = await applyRaw(store, sm, pack({ op: 'commit1', txn: 'M', at: 1, checks: [{ k: 'get' }], writes: [] }))
  t.equal(missing.ok === false && missing.reason, 'bad-command')
})

t.test('change marks: rows and intents raise them, bookkeeping does not, a restore forgets them until the replica starts again', async (t) => {
  const store = Store.open(tempDir(t), { autoFlushMs: 0 })
  t.teardown(() => store.close())
  const marks = new ChangeMarks()
  const sm = new FragmentMachine(store, 1, F, undefined, marks)
  // The mark is the last entry's index: unchanged since it, not since the one before.
  const markedLast = (): boolean => marks.unchangedSince(1, index) && !marks.unchangedSince(1, index - 1)
  t.notOk(marks.unchangedSince(1, 1e9), 'a fragment that never started is never unchanged')
  sm.position(index)
  t.ok(marks.unchangedSince(1, index), 'opened here: unchanged since the open')
  await apply(store, sm, { op: 'commit1', txn: 'A', at: 1, checks: [], writes: [[key(1, 'a'), Buffer.from('a')]] })
  t.ok(markedLast(), 'a commit1 raises the mark to its index: reads from before it no longer hold unread')
  await apply(store, sm, { op: 'prepare', txn: 'P', record: 1, participants: [1, 2], at: 2, checks: [], writes: [[key(1, 'c'), Buffer.from('c')]] })
  t.ok(markedLast(), 'a prepare (intents) raises it')
  const afterPrepare = index
  await apply(store, sm, { op: 'decide', txn: 'P', commit: true, at: 3, participants: [1, 2] })
  await apply(store, sm, { op: 'sweep', at: 4, keepMs: 1e9, limit: 10 })
  t.ok(marks.unchangedSince(1, afterPrepare), 'decide and sweep leave it')
  await apply(store, sm, { op: 'resolve', txn: 'P', commit: true, at: 5 })
  t.ok(markedLast(), 'a resolve raises it')
  await apply(store, sm, { op: 'forget', txn: 'P' })
  t.ok(marks.unchangedSince(1, index - 1), 'forget leaves it')
  sm.position(index)
  t.ok(marks.unchangedSince(1, index - 1), 'the position after each entry does not raise it')
  const snap = sm.snapshot()
  await store.lmdbRoot.transaction(() => sm.restore(snap))
  t.notOk(marks.unchangedSince(1, 1e9), 'a restore forgets the mark')
  sm.position(index + 10)
  t.ok(marks.unchangedSince(1, index + 10) && !marks.unchangedSince(1, index + 9), 'the snapshot index starts it again')
})

t.test('rows a read returned stay as they were while later reads and writes reuse lmdb\'s buffers', async (t) => {
  const { store, sm } = open(t)
  const sizes = [10, 4096, 65536, 70000, 1 << 20]
  const rows: Array<[Buffer, Buffer]> = sizes.map((n, i) => [key(1, `r${i}`), Buffer.alloc(n, 0x41 + i)])
  await apply(store, sm, { op: 'commit1', txn: 'W', at: 1, checks: [], writes: rows })
  const p = prefixOf(1, 'meta')
  const range = { k: 'range' as const, start: Buffer.concat([p, encodeOwner(1)]), end: Buffer.concat([p, encodeOwner(2)]), limit: 100, keysOnly: false }
  const first = sm.readLocal([range]).results[0] as { rows: Array<[Buffer, Buffer]> }
  const got = sm.readLocal([{ k: 'get', key: rows[3][0] }]).results[0] as { value: Buffer }
  const copies = first.rows.map(([k, v]) => [Buffer.from(k), Buffer.from(v)])
  // Other reads of every size, and writes that overwrite the same rows.
  for (let i = 0; i < 3; i++) sm.readLocal([range, { k: 'get', key: rows[4][0] }, { k: 'get', key: rows[0][0] }])
  await apply(store, sm, { op: 'commit1', txn: 'O', at: 2, checks: [], writes: rows.map(([k, v]) => [k, Buffer.alloc(v.length, 0x7a)]) })
  sm.readLocal([range])
  t.equal(first.rows.length, sizes.length)
  t.ok(first.rows.every(([k, v], i) => k.equals(copies[i][0]) && v.equals(copies[i][1]) && v.equals(rows[i][1])), 'keys and values of the first range are unchanged')
  t.ok(got.value.equals(rows[3][1]), 'and so is a value a get returned')
})

t.test('a patch builds the row from the checked current value; without a get check of its key it is refused', async (t) => {
  const { store, sm } = open(t)
  const a = key(1, 'block')
  const base = Buffer.alloc(8192, 'a')
  await apply(store, sm, { op: 'commit1', txn: 'W', at: 1, checks: [], writes: [[a, base]] })
  const r = await apply(store, sm, { op: 'commit1', txn: 'P', at: 2, checks: [getCheck(sm, a)], writes: [[a, Buffer.from('XYZ'), 4096, 8192]] })
  t.same(r, { ok: true })
  const want = Buffer.from(base)
  want.write('XYZ', 4096)
  t.ok(store.get(a)?.equals(want), 'only the patched bytes changed')
  await apply(store, sm, { op: 'commit1', txn: 'G', at: 3, checks: [getCheck(sm, a)], writes: [[a, Buffer.from('end'), 8192, 9000]] })
  const grown = Buffer.concat([want, Buffer.from('end'), Buffer.alloc(9000 - 8195)])
  t.ok(store.get(a)?.equals(grown), 'a patch past the end extends the row with its bytes, then zeros')
  await apply(store, sm, { op: 'commit1', txn: 'S', at: 4, checks: [getCheck(sm, a)], writes: [[a, Buffer.alloc(0), 100, 100]] })
  t.ok(store.get(a)?.equals(base.subarray(0, 100)), 'a shorter len cuts the row')

  const unchecked = await apply(store, sm, { op: 'commit1', txn: 'U', at: 5, checks: [], writes: [[a, Buffer.from('!'), 0, 100]] })
  t.equal(unchecked.ok === false && unchecked.reason, 'bad-command', 'a patch needs a get check of its key')
  const past = await apply(store, sm, { op: 'commit1', txn: 'O', at: 6, checks: [getCheck(sm, a)], writes: [[a, Buffer.from('!!'), 99, 100]] })
  t.equal(past.ok === false && past.reason, 'bad-command', 'a patch whose bytes end past len is refused')
  t.ok(store.get(a)?.equals(base.subarray(0, 100)), 'refused patches wrote nothing')

  const stale = getCheck(sm, a)
  await apply(store, sm, { op: 'commit1', txn: 'C', at: 7, checks: [], writes: [[a, Buffer.alloc(100, 'c')]] })
  const conflict = await apply(store, sm, { op: 'commit1', txn: 'D', at: 8, checks: [stale], writes: [[a, Buffer.from('d'), 0, 100]] })
  t.equal(conflict.ok === false && conflict.reason, 'conflict', 'a patch on a changed row conflicts like any write')
})

t.test('a prepared patch is kept as the whole row it builds and written at resolve', async (t) => {
  const { store, sm } = open(t)
  const a = key(1, 'block')
  await apply(store, sm, { op: 'commit1', txn: 'W', at: 1, checks: [], writes: [[a, Buffer.alloc(4096, 'a')]] })
  t.same(await apply(store, sm, { op: 'prepare', txn: 'T', record: 1, participants: [1, 5], at: 2, checks: [getCheck(sm, a)], writes: [[a, Buffer.from('b'), 10, 4096]] }), { ok: true })
  t.ok(store.get(a)?.equals(Buffer.alloc(4096, 'a')), 'nothing is written before the decision')
  t.same(await apply(store, sm, { op: 'resolve', txn: 'T', commit: true, at: 3 }), { ok: true, applied: 1 })
  const want = Buffer.alloc(4096, 'a')
  want.write('b', 10)
  t.ok(store.get(a)?.equals(want))
})

t.test('the change feed keeps its own copies of row values, not views into the applied entry', async (t) => {
  const store = Store.open(tempDir(t), { autoFlushMs: 0 })
  t.teardown(() => store.close())
  const feed = new ChangeFeed()
  const sm = new FragmentMachine(store, 1, F, feed)
  sm.position(index)
  const inodeKey = rowKey(1, 'inode', encodeOwner(1))
  const blockKey = rowKey(1, 'block', Buffer.concat([encodeOwner(1), Buffer.alloc(8)]))
  const data = FragmentMachine.encode({ op: 'commit1', txn: 'W', at: 1, checks: [], writes: [[inodeKey, Buffer.from('inode row')], [blockKey, Buffer.alloc(256 << 10, 7)]] })
  t.same(await applyRaw(store, sm, data), { ok: true })
  const batch = feed.read(index - 1).batches[0]
  const inode = batch.changes.find((c) => c.table === 1)!
  t.same(inode.value, Buffer.from('inode row'), 'the feed has the new inode row')
  // A view would keep the whole 256 KiB entry alive for as long as the ring holds the batch.
  t.ok(inode.value!.buffer.byteLength < 64 << 10, `the value's memory is its own (${inode.value!.buffer.byteLength} bytes behind it)`)
})
