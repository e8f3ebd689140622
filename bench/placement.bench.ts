/**
 * `npm run bench -- placement`: cost of one planner call on large clusters
 * (settled, and just after a host died for good), and how many planning
 * rounds and moves the model needs to rebuild the dead host's replicas.
 */
import { plan } from '../src/cluster/placement.js'
import { seededRng } from '../src/raft/rng.js'
import { hostDown, input, newCluster, runToFixedPoint } from '../test/helpers/placement-sim.js'

function timePlan (f: () => void, minMs = 300): number {
  let n = 0
  const start = process.hrtime.bigint()
  let elapsed = 0
  while (elapsed < minMs) {
    f()
    n++
    elapsed = Number(process.hrtime.bigint() - start) / 1e6
  }
  return elapsed / n
}

export async function run (_args: string[]): Promise<void> {
  console.log('hosts  fragments  settled plan (ms)  after death plan (ms)  moves in 1st plan  rounds to rebuild  moves to rebuild')
  for (const [hosts, fragments] of [[5, 300], [20, 1000], [50, 3000]]) {
    const ids = Array.from({ length: hosts }, (_, i) => `h${String(i).padStart(2, '0')}`)
    const c = newCluster(ids, [{ name: 'inode', copies: 3, fragments }], { maxMoves: 64, maxMovesPerHost: 4, maxPlan: 100000 })
    const rng = seededRng(1)
    runToFixedPoint(c, rng, 100000)
    const settled = input(c)
    const tSettled = timePlan(() => plan(settled))
    hostDown(c, ids[0])
    c.now += 11 * 60 * 1000
    const dead = input(c)
    const first = plan(dead)
    const tDead = timePlan(() => plan(dead))
    const r = runToFixedPoint(c, rng, 100000)
    const moves = r.plans.reduce((n, p) => n + p.moves.length, 0)
    console.log(`${String(hosts).padStart(5)}  ${String(fragments).padStart(9)}  ${tSettled.toFixed(2).padStart(17)}  ${tDead.toFixed(2).padStart(21)}  ${String(first.moves.length).padStart(17)}  ${String(r.rounds).padStart(17)}  ${String(moves).padStart(16)}`)
  }
}
