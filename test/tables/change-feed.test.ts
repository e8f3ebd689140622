/**
 * The change feed of one fragment (src/tables/change-feed.ts): batches in
 * index order from any resume point it still covers, `gap` otherwise
 * (evicted from the ring, or from before the replica opened or restored a
 * snapshot), and long polls that wake on a new batch.
 */
import t from 'tap'
import { ChangeFeed, ChangeFeeds, MIN_FEED_BYTES, pollFeed, type ChangeBatch } from '../../src/tables/change-feed.js'

const batch = (index: number): ChangeBatch => ({ index, txn: `h.x.${index}`, at: 0, participants: [], changes: [{ table: 2, key: Buffer.alloc(9, index), value: null, old: null }] })

t.test('reads from any covered index, in order; indexes without changes only move the position', async (t) => {
  const f = new ChangeFeed()
  f.advance(10) // the group opened at applied index 10
  f.push(batch(11))
  f.advance(12) // an entry without watched changes
  f.push(batch(13))
  const all = f.read(10)
  t.same(all.batches.map((b) => b.index), [11, 13])
  t.equal(all.position, 13)
  t.same(f.read(11).batches.map((b) => b.index), [13])
  t.same(f.read(13).batches, [])
  t.equal(f.read(9).gap, true, 'from before the replica opened: a gap, never a silent skip')
  t.same(f.read(10, 1).batches.map((b) => b.index), [11], 'at most max batches')
  t.equal(f.read(10, 1).position, 11, 'the position of a short read is its last batch')
})

t.test('the ring is bounded: evicted batches turn into a gap', async (t) => {
  const f = new ChangeFeed({ maxBatches: 3 })
  f.advance(0)
  for (let i = 1; i <= 5; i++) f.push(batch(i))
  t.equal(f.read(1).gap, true)
  t.same(f.read(2).batches.map((b) => b.index), [3, 4, 5])
  const bytes = new ChangeFeed({ maxBytes: 300 })
  bytes.advance(0)
  for (let i = 1; i <= 20; i++) bytes.push(batch(i))
  t.ok(bytes.read(19).batches.length === 1 && bytes.read(0).gap, 'a byte bound evicts too')
})

t.test('the feeds of a host share one byte budget: each keeps an even share, never below the floor', async (t) => {
  const big = (index: number): ChangeBatch => ({ index, txn: `h.x.${index}`, at: 0, participants: [], changes: [{ table: 1, key: Buffer.alloc(9, index), value: Buffer.alloc(4000, index), old: null }] })
  const M = MIN_FEED_BYTES
  const feeds = new ChangeFeeds({ budgetBytes: 4 * M, maxBytes: 3 * M, maxBatches: 1_000_000 })
  const fill = (f: ChangeFeed, from: number): void => { f.advance(from - 1); for (let i = from; i < from + 200; i++) f.push(big(i)) }
  const a = feeds.of(0)
  fill(a, 1)
  t.ok(a.heldBytes <= 3 * M && a.heldBytes > 3 * M - 5000, `alone, a feed keeps up to its own bound (${a.heldBytes} bytes)`)
  const b = feeds.of(1)
  t.ok(a.heldBytes <= 2 * M && a.heldBytes > 2 * M - 5000, `a second feed cuts the first one's share to half the budget at once (${a.heldBytes} bytes)`)
  fill(b, 1)
  for (let k = 2; k < 8; k++) fill(feeds.of(k), 1)
  t.ok(feeds.heldBytes() <= 8 * M, `eight feeds: each at the floor, ${feeds.heldBytes()} bytes in all`)
  t.ok(b.heldBytes >= MIN_FEED_BYTES - 5000, 'never below the floor')
  t.equal(a.read(0).gap, true, 'what a share no longer holds is a gap for a reader')
  t.equal(a.read(199).batches.length, 1, 'the newest batches stay')
})

t.test('a snapshot restore (reset) starts coverage afresh', async (t) => {
  const f = new ChangeFeed()
  f.advance(0)
  f.push(batch(1))
  f.reset(-1)
  await t.rejects(pollFeed(f, 1, 0), /not open/, 'not open until the host tells the snapshot index')
  f.advance(50)
  t.equal(f.read(1).gap, true)
  t.same(f.read(50).batches, [])
})

t.test('a long poll wakes on the next batch; a poll with nothing new ends after its wait', async (t) => {
  const f = new ChangeFeed()
  f.advance(5)
  t.same(await pollFeed(f, null, 1000), { gap: false, batches: [], position: 5 })
  const p = pollFeed(f, 5, 60_000)
  setTimeout(() => f.push(batch(6)), 20)
  t.same((await p).batches.map((b) => b.index), [6])
  t.same((await pollFeed(f, 6, 30)).batches, [], 'an empty poll returns after its wait')
})

t.test('polls beyond maxWaiters are not woken early but still answered with what came', async (t) => {
  const f = new ChangeFeed({ maxWaiters: 1 })
  f.advance(0)
  const first = pollFeed(f, 0, 60_000)
  const second = pollFeed(f, 0, 60_000)
  f.push(batch(1))
  t.same((await first).batches.map((b) => b.index), [1], 'the woken poll')
  t.same((await second).batches.map((b) => b.index), [1], 'the overflow poll, after its shortened wait')
})
