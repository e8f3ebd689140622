import t from 'tap'
import { FAULTS, runSimulation, type FaultName } from './run.js'

// The CI share of the simulator: 2,000 schedules must show no violation.
t.test('2000 simulated schedules keep every safety and liveness promise', async (t) => {
  const r = runSimulation({ seeds: 2000, from: 1, onViolation: (seed, v) => t.comment(`seed ${seed}: ${v}`) })
  t.equal(r.schedules, 2000)
  t.equal(r.violations, 0, 'violations')
  // The schedules really exercise the hard paths.
  t.ok(r.crashes > 1000, `crashes: ${r.crashes}`)
  t.ok(r.snapshotsSent > 100, `snapshots sent: ${r.snapshotsSent}`)
  t.ok(r.confChanges > 100, `membership steps: ${r.confChanges}`)
  t.ok(r.elections > 2000, `elections: ${r.elections}`)
})

// Lease reads answer reads without a heartbeat round: the same promises must hold.
t.test('1000 simulated schedules with lease reads keep every promise', async (t) => {
  const r = runSimulation({ seeds: 1000, from: 5001, lease: true, onViolation: (seed, v) => t.comment(`seed ${seed} (--lease): ${v}`) })
  t.equal(r.schedules, 1000)
  t.equal(r.violations, 0, 'violations')
  t.ok(r.crashes > 500, `crashes: ${r.crashes}`)
})

// Live snapshots: compaction keeps no data and a leader sends its state machine as it is.
t.test('1000 simulated schedules with live snapshots keep every promise', async (t) => {
  const r = runSimulation({ seeds: 1000, from: 9001, live: true, onViolation: (seed, v) => t.comment(`seed ${seed} (--live): ${v}`) })
  t.equal(r.schedules, 1000)
  t.equal(r.violations, 0, 'violations')
  t.ok(r.snapshotsSent > 50, `snapshots sent: ${r.snapshotsSent}`)
  t.ok(r.crashes > 500, `crashes: ${r.crashes}`)
})

// Cache leases: hosts answer reads from what they keep under their leases (the model of a cluster mount's kernel caches).
t.test('1000 simulated schedules with cache leases keep every promise', async (t) => {
  const r = runSimulation({ seeds: 1000, from: 13001, cache: true, onViolation: (seed, v) => t.comment(`seed ${seed} (--cache): ${v}`) })
  t.equal(r.schedules, 1000)
  t.equal(r.violations, 0, 'violations')
  t.ok(r.cacheReads > 2000, `reads answered from a cache alone: ${r.cacheReads}`)
  t.ok(r.crashes > 500, `crashes: ${r.crashes}`)
})

// Each test-only rule breaker must be caught, and by the checker meant for it.
const expected: Record<FaultName, RegExp> = {
  // A follower that acknowledged entries it then lost in a crash can also
  // leave the leader probing it forever (the leader's match for it lies
  // above its log): the event bound catches that.
  'reply-before-flush': /lost|divergent|two leaders|applied a different|exceeded/,
  'double-vote': /two leaders/,
  'vote-ignoring-term': /two leaders/,
  'apply-uncommitted': /applied/,
  'skip-prevote': /cut off from a quorum/,
  'local-reads': /not linearizable/,
  'unsafe-lease': /not linearizable/,
  'unsafe-follower-lease': /not linearizable/,
  'cache-no-drop': /not linearizable/,
  'cache-in-flight': /not linearizable/
}
for (const fault of Object.keys(FAULTS) as FaultName[]) {
  t.test(`the simulator catches the ${fault} fault`, async (t) => {
    const r = runSimulation({ seeds: 1500, from: 1, fault, stopAtFirst: true })
    t.ok(r.firstViolation, `caught within ${r.schedules} schedules`)
    if (r.firstViolation) {
      t.match(r.firstViolation.violation, expected[fault])
      t.comment(`seed ${r.firstViolation.seed}: ${r.firstViolation.violation}`)
    }
  })
}
