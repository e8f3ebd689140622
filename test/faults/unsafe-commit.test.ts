/**
 * The cluster harness bites: with the test-only switch
 * WALKENFS_TEST_UNSAFE_COMMIT=1 every host applies (and so acknowledges)
 * Raft entries before a majority holds them, so a leader cut off from the
 * others goes on acknowledging writes the majority never sees. A short
 * partition-heavy cluster run must report anomalies. A minute, so that
 * even a loaded machine gets several leader isolations into it (35 s once
 * got only one, and no client wrote through that leader meanwhile).
 */
import t from 'tap'
import { clusterTorture } from './cluster-torture.js'
import { PARTITIONS } from './nemesis.js'
import { netnsAvailable } from '../net/netns.js'

const skip = netnsAvailable()

t.test('a minority leader that acknowledges uncommitted writes is caught', { skip: skip ?? false }, async (t) => {
  const run = clusterTorture({ seed: 777, durationMs: 60_000, mix: PARTITIONS, env: { WALKENFS_TEST_UNSAFE_COMMIT: '1' }, log: (l) => t.comment(l) })
  t.teardown(() => run.cleanup())
  const r = await run.run()
  t.comment(`operations: ${r.operations}, anomalies: ${r.anomalies.length}, faults: ${JSON.stringify(r.faults)}`)
  for (const a of r.anomalies.slice(0, 15)) t.comment(`[${a.checker}] ${a.message}`)
  t.ok(r.faults['isolate-leader'] > 0, 'a leader was cut off')
  t.ok(r.anomalies.some((a) => a.checker !== 'harness'), `the checkers report anomalies (${r.anomalies.length} in all)`)
})
