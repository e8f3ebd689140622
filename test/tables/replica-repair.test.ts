/**
 * decideRepair: which replicas of a fragment `walkenfs repair` rebuilds,
 * when the leader hands over first, and when it leaves the fragment alone.
 */
import t from 'tap'
import type { GroupCheck } from '../../src/tables/replica-check.js'
import { decideRepair } from '../../src/tables/replica-repair.js'

function check (verdict: GroupCheck['verdict'], reps: Array<[string, string | null, number?, string?]>): GroupCheck {
  return {
    group: 'fs/1',
    verdict,
    replicas: reps.map(([host, sha, applied, error]) => sha === null
      ? { host, digest: null, error: error ?? 'no link to h9' }
      : { host, digest: { applied: applied ?? 10, rows: 3, bytes: 100, sha256: sha.padEnd(64, '0') } })
  }
}

t.test('identical or busy fragments are not touched', async (t) => {
  t.same(decideRepair(check('same', [['h1', 'a'], ['h2', 'a']]), 'h1').rebuild, [])
  t.match(decideRepair(check('busy', [['h1', 'a', 10], ['h2', 'a', 11]]), 'h1').blocked, /busy/)
})

t.test('the replica that differs from the majority is rebuilt', async (t) => {
  const d = decideRepair(check('mismatch', [['h1', 'a'], ['h2', 'b'], ['h3', 'a']]), 'h1')
  t.same(d.rebuild.map((r) => r.host), ['h2'])
  t.equal(d.transferTo, null)
  t.equal(d.blocked, null)
  t.match(d.rebuild[0]!.reason, /^differs/)
})

t.test('a leader that is the odd one out hands over to a replica with the majority content first', async (t) => {
  const d = decideRepair(check('mismatch', [['h1', 'a'], ['h2', 'b'], ['h3', 'b']]), 'h1')
  t.same(d.rebuild.map((r) => r.host), ['h1'])
  t.equal(d.transferTo, 'h2')
})

t.test('without a majority the leader\'s content wins; without a leader nothing is done', async (t) => {
  const d = decideRepair(check('mismatch', [['h1', 'a'], ['h2', 'b']]), 'h2')
  t.same(d.rebuild.map((r) => r.host), ['h1'], 'the follower is rebuilt from the leader')
  t.equal(d.transferTo, null)
  t.match(decideRepair(check('mismatch', [['h1', 'a'], ['h2', 'b']]), null).blocked, /no majority/)
  t.same(decideRepair(check('mismatch', [['h1', 'a'], ['h2', 'b'], ['h3', 'c']]), 'h3').rebuild.map((r) => r.host), ['h1', 'h2'])
})

t.test('a replica that cannot give a digest: rebuilt when its host answers, blocked when it is unreachable', async (t) => {
  const damaged = decideRepair(check('unreachable', [['h1', 'a'], ['h2', null, 0, 'MDB_CORRUPTED: Located page was wrong type'], ['h3', 'a']]), 'h1')
  t.same(damaged.rebuild.map((r) => r.host), ['h2'])
  t.match(damaged.rebuild[0]!.reason, /gives no digest: MDB_CORRUPTED/)
  t.match(decideRepair(check('unreachable', [['h1', 'a'], ['h2', null, 0, 'no link to h2'], ['h3', 'a']]), 'h1').blocked, /cannot be reached/)
  t.match(decideRepair(check('unreachable', [['h1', 'a'], ['h2', null, 0, 'holds no replica (yet)'], ['h3', 'a']]), 'h1').blocked, /still being created/, 'a replica being added is not rebuilt')
})
