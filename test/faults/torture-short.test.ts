/**
 * A short torture run inside `npm test`: about 60 s of four clients under a
 * fixed-seed nemesis (kill -9 and restart, SIGSTOP pauses, a full data
 * directory) against a real walkenfs mount; no anomaly from the checkers or
 * the harness. `npm run torture -- --minutes M --seed S` runs longer.
 */
import t from 'tap'
import { torture } from './torture.js'

const SEED = 20261122

t.test(`torture, seed ${SEED}, 60 s: no anomalies`, async (t) => {
  const run = torture({ seed: SEED, durationMs: 60_000, log: (l) => t.comment(l) })
  t.teardown(() => run.cleanup())
  const r = await run.run()
  t.comment(`operations: ${r.operations}, anomalies: ${r.anomalies.length}`)
  t.comment(JSON.stringify(r.stats))
  t.ok(r.stats.kills > 0 && r.stats.pauses > 0 && r.stats.fills > 0, `the nemesis ran every fault (${JSON.stringify(r.stats)})`)
  t.ok(r.stats.proberEnospc > 0, 'a full data directory gave the prober ENOSPC')
  t.ok(r.operations > 1000, `clients ran operations (${r.operations})`)
  t.ok(r.stats.unknown > 0, 'some operations had unknown outcomes (the checkers saw indeterminate writes)')
  t.same(r.anomalies, [], 'no anomalies')
})
