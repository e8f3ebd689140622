/**
 * The cluster harness bites: with the test-only switch
 * WALKENFS_TEST_UNSAFE_COMMIT=1 every host applies (and so acknowledges)
 * Raft entries before a majority holds them, so a leader cut off from the
 * others goes on acknowledging writes the majority never sees. A short
 * partition-heavy cluster run must report anomalies: the history checkers'
 * verdicts, or replicas and final states that differ between hosts. The
 * checkers see a lost write only when a strict read or the final state
 * contradicts it, which depends on which host leads the written fragment;
 * in CI three runs in a row showed the bug only as differing replicas and
 * final states. A minute, so that
 * even a loaded machine gets several leader isolations into it (35 s once
 * got only one, and no client wrote through that leader meanwhile), and up
 * to three such runs.
 */
import t from 'tap'
import { clusterTorture } from './cluster-torture.js'
import { PARTITIONS } from './nemesis.js'
import { netnsAvailable } from '../net/netns.js'

const skip = netnsAvailable()
const DIVERGENCE = /reads a different final state than|check --replicas: .*[1-9]\d* DIFFERENT/

t.test('a minority leader that acknowledges uncommitted writes is caught', { skip: skip ?? false }, async (t) => {
  // Whether a client writes through a leader while it is cut off is up to
  // timing: one run on a loaded machine found none (3 leader isolations, 0
  // anomalies), others hundreds. Up to three runs (other seeds) until one bites.
  let isolations = 0
  let caught = 0
  for (const seed of [777, 778, 779]) {
    const run = clusterTorture({ seed, durationMs: 60_000, mix: PARTITIONS, env: { WALKENFS_TEST_UNSAFE_COMMIT: '1' }, log: (l) => t.comment(l) })
    try {
      const r = await run.run()
      t.comment(`seed ${seed}: operations: ${r.operations}, anomalies: ${r.anomalies.length}, faults: ${JSON.stringify(r.faults)}`)
      for (const a of r.anomalies.slice(0, 15)) t.comment(`[${a.checker}] ${a.message}`)
      isolations += r.faults['isolate-leader'] ?? 0
      // Caught: the history checkers' verdicts, and the two harness findings that are the bug itself
      // (replicas of one fragment that differ, hosts that read different final states). Other harness
      // findings (a host not healthy, a failed mount) could come from anything, so they do not count.
      caught = r.anomalies.filter((a) => a.checker !== 'harness' || DIVERGENCE.test(a.message)).length
    } catch (e) {
      // With the switch on, even forming the cluster can go wrong (seen once: a mount's first write got
      // no answer from its fragment's leader within quorum_wait, 3 s). That is the broken Raft showing
      // before any fault, not the checkers biting: the next seed.
      t.comment(`seed ${seed}: the run ended early: ${(e as Error).message.slice(0, 400)}`)
    } finally {
      run.cleanup()
    }
    if (caught > 0) break
  }
  t.ok(isolations > 0, 'a leader was cut off')
  t.ok(caught > 0, `the harness reports the divergence (${caught} anomalies in the run that caught it)`)
})
