/**
 * The harness bites on a real store: with the test-only switch
 * WALKENFS_TEST_UNSAFE_ACK=1 the daemon acknowledges fsync and close
 * before committing the bytes, and a short torture run (kill -9 included)
 * must then report anomalies — acknowledged writes that were lost.
 */
import t from 'tap'
import { torture } from './torture.js'

t.test('acknowledging fsync before the commit is caught', async (t) => {
  const run = torture({ seed: 424242, durationMs: 25_000, env: { ...process.env, WALKENFS_TEST_UNSAFE_ACK: '1' }, log: (l) => t.comment(l) })
  t.teardown(() => run.cleanup())
  const r = await run.run()
  t.comment(`operations: ${r.operations}, anomalies: ${r.anomalies.length}`)
  for (const a of r.anomalies.slice(0, 10)) t.comment(`[${a.checker}] ${a.message}`)
  t.ok(r.stats.kills > 0, `the daemon was killed (${r.stats.kills} times)`)
  t.ok(r.anomalies.some((a) => a.checker !== 'harness'), `the checkers report lost acknowledged writes (${r.anomalies.length} anomalies)`)
})
