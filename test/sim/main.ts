/**
 * `npm run sim -- --seeds N [--from S] [--lease] [--live] [--cache] [--fault NAME]`: runs N simulator
 * schedules starting at seed S, prints every violation with the seed that
 * reproduces it, and ends with `schedules: N, violations: V`. Exit code 1
 * when any schedule failed. `--fault` turns on one test-only rule breaker
 * (reply-before-flush, double-vote, vote-ignoring-term, apply-uncommitted,
 * skip-prevote, local-reads, unsafe-lease, unsafe-follower-lease) to show the checkers catch it;
 * `--lease` turns lease reads on, `--live` live snapshots, `--cache` cache
 * leases (hosts answer reads from a cache kept under their leases; implies
 * --lease).
 */
import { runSimulation, FAULTS, type FaultName } from './run.js'

const args = process.argv.slice(2)
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(name)
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt
}
const seeds = Number(opt('--seeds', '100'))
const from = Number(opt('--from', '1'))
const fault = opt('--fault', '')
const lease = args.includes('--lease')
const live = args.includes('--live')
const cache = args.includes('--cache')
if (!Number.isInteger(seeds) || seeds < 1 || !Number.isInteger(from)) {
  console.error('usage: npm run sim -- --seeds N [--from S] [--lease] [--live] [--cache] [--fault ' + Object.keys(FAULTS).join('|') + ']')
  process.exit(2)
}
if (fault !== '' && !(fault in FAULTS)) {
  console.error(`unknown fault "${fault}"; known: ${Object.keys(FAULTS).join(', ')}`)
  process.exit(2)
}
const t0 = Date.now()
const r = runSimulation({ seeds, from, lease, live, cache, fault: fault === '' ? undefined : fault as FaultName, onViolation: (seed, v) => console.log(`seed ${seed}: ${v}  (repro: npm run sim -- --seeds 1 --from ${seed}${lease ? ' --lease' : ''}${live ? ' --live' : ''}${cache ? ' --cache' : ''}${fault ? ' --fault ' + fault : ''})`) })
console.log(`elapsed: ${((Date.now() - t0) / 1000).toFixed(1)} s, events: ${r.events}, elections: ${r.elections}, snapshots sent: ${r.snapshotsSent}, crashes: ${r.crashes}, membership steps: ${r.confChanges}, client ops: ${r.ops}${cache ? `, answered from a cache: ${r.cacheReads}` : ''}`)
console.log(`schedules: ${r.schedules}, violations: ${r.violations}`)
process.exit(r.violations === 0 ? 0 : 1)
