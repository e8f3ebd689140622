/**
 * The in-memory log's released entries (src/raft/log.ts `release`): what
 * leaves memory, what stays, and how much is read back for one slice.
 */
import t from 'tap'
import { RaftLog, type EntryHead } from '../../src/raft/log.js'
import { entrySize, type Entry } from '../../src/raft/types.js'

const normal = (index: number, bytes: number): Entry => ({ index, term: 1, kind: 'normal', data: new Uint8Array(bytes).fill(index % 256) })
const meta = { index: 0, term: 0, config: { voters: [1], learners: [] } }

function logOf (n: number, bytes: number): { log: RaftLog, disk: Entry[], asked: number[] } {
  const disk = Array.from({ length: n }, (_, k) => normal(k + 1, bytes))
  const asked: number[] = []
  const log = new RaftLog(meta, [], 0, 0, (lo, hi) => { asked.push(hi - lo + 1); return disk.slice(lo - 1, hi) })
  log.append(disk)
  log.takeUnstable()
  log.commitTo(n)
  log.applied = n
  return { log, disk, asked }
}

t.test('release drops applied payloads, keeps the byte count for compaction, and stops at unstable and unapplied entries', async (t) => {
  const { log } = logOf(10, 100)
  log.applied = 6
  t.equal(log.release(100), 600, 'only the applied entries')
  t.equal(log.heldBytes(), 400)
  t.equal(log.bytes(), 1000, 'the log still counts every payload since the snapshot')
  log.append([normal(11, 100)])
  log.applied = 11
  log.commitTo(11)
  t.equal(log.release(100), 400, 'entry 11 is not handed out for persisting yet: it stays')
  t.equal(log.heldBytes(), 100)
  log.compact(8)
  t.equal(log.bytes(), 300, 'compaction subtracts released entries too')
  t.equal(log.term(9), 1, 'a released slot still knows its term')
})

t.test('a slice reads back no more released entries than its byte bound takes', async (t) => {
  const { log, asked } = logOf(100, 1000)
  log.release(100)
  const out = log.slice(1, 100, 5000, entrySize)
  t.equal(out.length, 4, 'four entries of 1024 bytes fit in 5000')
  t.ok(asked.reduce((a, b) => a + b, 0) <= 5, `and at most one more was read (${asked})`)
  t.same(out.map((e) => e.index), [1, 2, 3, 4])
  t.equal(out[3].data![0], 4, 'whole entries')
  asked.length = 0
  t.equal(log.slice(1, 100).length, 100, 'without a bound, everything')
  t.same(asked, [100], 'in one read (runs of up to 256)')
})

t.test('without a load function nothing is released', async (t) => {
  const log = new RaftLog(meta, [normal(1, 10)], 1, 1)
  t.equal(log.release(1), 0)
  t.equal(log.heldBytes(), 10)
})

t.test('a restart may hand in applied entries as heads: they never take memory, and read back whole', async (t) => {
  const disk = Array.from({ length: 10 }, (_, k) => normal(k + 1, 100))
  const head = (e: Entry): EntryHead => ({ index: e.index, term: e.term, released: e.data!.length })
  const load = (lo: number, hi: number): Entry[] => disk.slice(lo - 1, hi)
  const log = new RaftLog(meta, [...disk.slice(0, 6).map(head), ...disk.slice(6)], 10, 6, load)
  t.equal(log.heldBytes(), 400, 'only the unapplied payloads are held')
  t.equal(log.bytes(), 1000, 'the heads count toward compaction by size')
  t.equal(log.term(3), 1)
  t.same(log.entry(3)?.data, disk[2]!.data, 'a head reads back whole')
  t.same(log.slice(5, 8).map((e) => e.data![0]), [5, 6, 7, 8])
  t.throws(() => new RaftLog(meta, [head(disk[0]!), head(disk[1]!)], 10, 1, load), /entry 2 arrived without its payload/, 'a head beyond the applied index is refused')
  t.throws(() => new RaftLog(meta, [head(disk[0]!)], 10, 1), /no load function/, 'and a head without a way to read it back')
})
