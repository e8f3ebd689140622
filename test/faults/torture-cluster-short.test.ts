/**
 * A short cluster torture run inside `npm test`: five hosts in network
 * namespaces, one client per host's mount, about 85 s under a fixed-seed
 * nemesis that injects every fault kind of the default mix at least once
 * (nemesis.ts); no anomaly from the checkers or the harness, replicas
 * identical and `walkenfs check` clean at the end.
 * `npm run torture -- --minutes M --seed S` runs longer.
 */
import t from 'tap'
import { clusterTorture } from './cluster-torture.js'
import { MIXED } from './nemesis.js'
import { netnsAvailable } from '../net/netns.js'

const SEED = 20261122
const skip = netnsAvailable()

t.test(`cluster torture, 5 hosts, seed ${SEED}, 85 s: no anomalies`, { skip: skip ?? false }, async (t) => {
  const run = clusterTorture({ seed: SEED, durationMs: 85_000, log: (l) => t.comment(l) })
  t.teardown(() => run.cleanup())
  const r = await run.run()
  t.comment(`operations: ${r.operations}, anomalies: ${r.anomalies.length}`)
  t.comment(`faults: ${JSON.stringify(r.faults)}`)
  t.comment(JSON.stringify(r.stats))
  for (const a of r.anomalies.slice(0, 20)) t.comment(`[${a.checker}] ${a.message}`)
  const kinds = Object.keys(MIXED).filter((k) => (MIXED[k as keyof typeof MIXED] ?? 0) > 0) as Array<keyof typeof r.faults>
  t.same(kinds.filter((k) => r.faults[k] === 0), [], `the nemesis injected every fault kind of its mix (${JSON.stringify(r.faults)})`)
  t.ok(r.operations > 500, `clients ran operations (${r.operations})`)
  t.ok(r.stats.unknown > 0, 'some writes had unknown outcomes (the checkers saw indeterminate writes)')
  t.same(r.anomalies, [], 'no anomalies')
})
