import t, { type Test } from 'tap'
import { plan, fragmentId, SCHEMA_GROUP, type GroupState, type PlacementInput } from '../../src/cluster/placement.js'
import { seededRng } from '../../src/raft/rng.js'
import { newCluster, runToFixedPoint, hostDown, hostUp, input, type SimCluster } from '../helpers/placement-sim.js'

const MIN = 60 * 1000

function dataGroups (c: SimCluster): GroupState[] {
  return c.groups.filter((g) => g.id !== SCHEMA_GROUP)
}
function replicaHosts (g: GroupState): string[] {
  return g.replicas.map((r) => r.host).sort()
}
function loads (c: SimCluster): Record<string, number> {
  const out: Record<string, number> = {}
  for (const h of c.hosts) if (h.state === 'up' && h.retiring !== true) out[h.id] = 0
  for (const g of dataGroups(c)) for (const r of g.replicas) if (r.host in out) out[r.host]++
  return out
}
function leaderCounts (c: SimCluster): Record<string, number> {
  const out: Record<string, number> = {}
  for (const h of c.hosts) if (h.state === 'up') out[h.id] = 0
  for (const g of c.groups) if (g.leader !== null) out[g.leader]++
  return out
}
function spread (r: Record<string, number>): number {
  const v = Object.values(r)
  return Math.max(...v) - Math.min(...v)
}
function converge (t: Test, c: SimCluster, seed = 1, rounds = 200): void {
  const r = runToFixedPoint(c, seededRng(seed), rounds)
  t.same(c.violations, [], 'no unsafe step')
  t.ok(r.settled, `settled within ${rounds} rounds (took ${r.rounds})`)
}

t.test('one host, then two join with copies=3: every fragment ends with 3 voters, evenly spread', async (t) => {
  const c = newCluster(['a'], [{ name: 'inode', copies: 3, fragments: 12 }])
  converge(t, c)
  t.equal(dataGroups(c).length, 12)
  for (const g of dataGroups(c)) t.same(replicaHosts(g), ['a'], `${g.id} starts with the one host it has`)
  t.equal(plan(input(c)).progress.underReplicated.length, 13, 'all under-replicated while the cluster is smaller than copies')
  hostUp(c, 'b')
  hostUp(c, 'c')
  converge(t, c)
  for (const g of dataGroups(c)) {
    t.same(replicaHosts(g), ['a', 'b', 'c'], `${g.id} topped up`)
    t.ok(g.replicas.every((r) => r.role === 'voter'))
  }
  t.same(plan(input(c)).progress.underReplicated, [SCHEMA_GROUP], 'only the schema group wants more voters (cap 5, 3 hosts)')
  t.ok(spread(leaderCounts(c)) <= 1, `leaders spread: ${JSON.stringify(leaderCounts(c))}`)
})

t.test('a new table on enough hosts: every fragment is founded on all its homes at once, in one plan, spread', async (t) => {
  const c = newCluster(['a', 'b', 'c', 'd', 'e'], [{ name: 'inode', copies: 3, fragments: 40 }])
  const first = plan(input(c))
  const creates = first.moves.filter((m) => m.kind === 'create')
  t.equal(creates.length, 41, 'the 40 fragments and the schema group, all in the first plan')
  t.same(first.moves.filter((m) => m.kind !== 'create'), [], 'nothing else to do yet')
  const perHost: Record<string, number> = {}
  const firstHomes: Record<string, number> = {}
  for (const m of creates) {
    if (m.kind !== 'create') continue
    t.equal(new Set(m.hosts).size, m.hosts.length, `${m.group}: distinct hosts`)
    t.equal(m.hosts.length, m.group === SCHEMA_GROUP ? 5 : 3, `${m.group}: founded with every copy it wants`)
    if (m.group === SCHEMA_GROUP) continue
    for (const h of m.hosts) perHost[h] = (perHost[h] ?? 0) + 1
    firstHomes[m.hosts[0]!] = (firstHomes[m.hosts[0]!] ?? 0) + 1
  }
  t.ok(spread(perHost) <= 1, `replicas per host ${JSON.stringify(perHost)}`)
  t.ok(spread(firstHomes) <= 1, `first homes per host ${JSON.stringify(firstHomes)}`)
  converge(t, c)
  for (const g of dataGroups(c)) t.ok(g.replicas.length === 3 && g.replicas.every((r) => r.role === 'voter'), `${g.id}: 3 voters`)
  t.ok(spread(leaderCounts(c)) <= 1, `leaders spread after settling: ${JSON.stringify(leaderCounts(c))}`)
})

t.test('more hosts than copies: replicas per host within ±1 and leaderships spread', async (t) => {
  const c = newCluster(['a', 'b', 'c'], [{ name: 'inode', copies: 3, fragments: 20 }, { name: 'block', copies: 2, fragments: 7 }])
  converge(t, c)
  for (const id of ['d', 'e', 'f', 'g']) hostUp(c, id)
  converge(t, c)
  t.ok(spread(loads(c)) <= 1, `replicas per host ${JSON.stringify(loads(c))}`)
  t.ok(spread(leaderCounts(c)) <= 1, `leaders per host ${JSON.stringify(leaderCounts(c))}`)
  for (const g of dataGroups(c)) t.equal(g.replicas.length, g.id.startsWith('block') ? 2 : 3)
})

t.test('a host down for less than replace_after keeps its replicas: no replica moves', async (t) => {
  const c = newCluster(['a', 'b', 'c', 'd'], [{ name: 'inode', copies: 3, fragments: 8 }], { replaceAfterMs: 10 * MIN })
  converge(t, c)
  const before = dataGroups(c).map((g) => replicaHosts(g))
  hostDown(c, 'b')
  c.now += 9 * MIN
  converge(t, c)
  t.same(dataGroups(c).map((g) => replicaHosts(g)), before, 'every replica stays where it was')
  const p = plan(input(c))
  t.same(p.moves, [], 'nothing to do while b may come back')
  t.ok(dataGroups(c).every((g) => g.leader !== 'b'), 'no leadership on the down host')
})

t.test('a host down longer than replace_after: its replicas are rebuilt on the others, never below a majority', async (t) => {
  const c = newCluster(['a', 'b', 'c', 'd', 'e'], [{ name: 'inode', copies: 3, fragments: 10 }], { replaceAfterMs: 10 * MIN })
  converge(t, c)
  const onB = dataGroups(c).filter((g) => replicaHosts(g).includes('b')).map((g) => g.id)
  t.ok(onB.length > 0)
  hostDown(c, 'b')
  c.now += 11 * MIN
  const seen: string[] = []
  const r = runToFixedPoint(c, seededRng(2), 200, (p, c) => {
    for (const g of dataGroups(c)) {
      const live = g.replicas.filter((x) => x.role === 'voter' && x.host !== 'b').length
      if (live < 2) seen.push(`${g.id} had ${live} live voters`)
    }
    // A replacement is promoted before b's voter goes.
    for (const m of p.moves) {
      if (m.kind !== 'remove' || m.host !== 'b') continue
      const g = c.groups.find((x) => x.id === m.group)!
      if (g.replicas.filter((x) => x.role === 'voter' && x.host !== 'b').length < 3) seen.push(`${m.group}: b removed before its replacement was a voter`)
    }
  })
  t.ok(r.settled)
  t.same(c.violations, [])
  t.same(seen, [])
  for (const g of dataGroups(c)) {
    t.notOk(replicaHosts(g).includes('b'), `${g.id} left b`)
    t.equal(g.replicas.filter((x) => x.role === 'voter').length, 3, `${g.id} back to 3 voters`)
  }
  t.ok(spread(loads(c)) <= 1, `replicas per live host ${JSON.stringify(loads(c))}`)
})

t.test('retire a live host: it is drained (leaderships first) and ends with nothing', async (t) => {
  const c = newCluster(['a', 'b', 'c', 'd'], [{ name: 'inode', copies: 3, fragments: 9 }])
  converge(t, c)
  c.hosts.find((h) => h.id === 'c')!.retiring = true
  const first = plan(input(c))
  t.ok(first.progress.draining.c > 0, `progress shows what is left on c: ${first.progress.draining.c}`)
  converge(t, c)
  t.equal(plan(input(c)).progress.draining.c, 0)
  for (const g of c.groups) t.notOk(replicaHosts(g).includes('c'), `${g.id} left c`)
  for (const g of dataGroups(c)) t.same(replicaHosts(g), ['a', 'b', 'd'])
})

t.test('retire a dead host: drained without it, other hosts keep a majority all along', async (t) => {
  const c = newCluster(['a', 'b', 'c', 'd'], [{ name: 'inode', copies: 3, fragments: 9 }], { replaceAfterMs: 10 * MIN })
  converge(t, c)
  hostDown(c, 'a')
  c.hosts.find((h) => h.id === 'a')!.retiring = true
  converge(t, c)
  for (const g of c.groups) t.notOk(replicaHosts(g).includes('a'), `${g.id} left a before replace_after passed`)
  t.equal(c.now < 10 * MIN + 1, true, 'retire does not wait for replace_after')
  for (const g of dataGroups(c)) t.same(replicaHosts(g), ['b', 'c', 'd'])
})

t.test('copies=1: retiring the only holder moves the fragment, 2 → 1 only onto a live voter', async (t) => {
  const c = newCluster(['a', 'b'], [{ name: 'tmp', copies: 1, fragments: 4 }])
  converge(t, c)
  const onA = dataGroups(c).filter((g) => replicaHosts(g).includes('a')).length
  t.equal(onA, 2, 'spread over both hosts')
  c.hosts.find((h) => h.id === 'a')!.retiring = true
  converge(t, c)
  for (const g of dataGroups(c)) t.same(replicaHosts(g), ['b'])
})

t.test('after a host dies, its leaderships spread over the survivors instead of landing on one', async (t) => {
  const c = newCluster(['a', 'b', 'c', 'd', 'e'], [{ name: 'inode', copies: 3, fragments: 30 }])
  converge(t, c)
  const lead = leaderCounts(c)
  t.ok(lead.a > 0)
  hostDown(c, 'a') // the sim elects the lowest live voter: the piles land on b and c
  const piled = leaderCounts(c)
  delete piled.a
  t.ok(spread(piled) >= 2, `the naive election piles up: ${JSON.stringify(piled)}`)
  converge(t, c)
  const after = leaderCounts(c)
  delete after.a
  t.ok(spread(after) <= 1, `spread again: ${JSON.stringify(after)}`)
})

t.test('rate limits: at most maxMoves copies in flight, maxMovesPerHost per host, and progress shows the rest', async (t) => {
  const c = newCluster(['a'], [{ name: 'inode', copies: 3, fragments: 40 }], { maxMoves: 3, maxMovesPerHost: 2 })
  converge(t, c)
  for (const id of ['b', 'c', 'd', 'e', 'f']) hostUp(c, id)
  let sawDeferred = false
  const problems: string[] = []
  runToFixedPoint(c, seededRng(3), 400, (p, c) => {
    if (p.progress.deferred > 0) sawDeferred = true
    const inFlight = new Map<string, number>()
    let total = 0
    const count = (h: string | null): void => { if (h !== null) inFlight.set(h, (inFlight.get(h) ?? 0) + 1) }
    for (const g of c.groups) {
      for (const r of g.replicas) if (r.role === 'learner' && r.caughtUp !== true) { total++; count(r.host); count(g.leader) }
    }
    for (const m of p.moves) {
      if (m.kind !== 'addLearner') continue
      total++
      count(m.host)
      count(c.groups.find((g) => g.id === m.group)?.leader ?? null)
    }
    if (total > 3) problems.push(`t=${c.now}: ${total} copies in flight`)
    for (const [h, n] of inFlight) if (n > 2) problems.push(`t=${c.now}: host ${h} in ${n} copies`)
  })
  t.same(c.violations, [])
  t.same(problems, [])
  t.ok(sawDeferred, 'some copies had to wait')
  t.ok(plan(input(c)).progress.settled)
  t.ok(spread(loads(c)) <= 1, JSON.stringify(loads(c)))
})

t.test('schema group: at most 5 voters, on distinct hosts and zones first, every other host a learner', async (t) => {
  const hosts = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'h7', 'h8', 'h9']
  const c = newCluster(['h1'], [{ name: 'inode', copies: 3, fragments: 6 }])
  converge(t, c)
  for (const h of hosts.slice(1)) hostUp(c, h)
  // Three zones of three hosts each.
  for (const h of c.hosts) h.zone = `z${(Number(h.id.slice(1)) - 1) % 3}`
  converge(t, c)
  const schema = c.groups.find((g) => g.id === SCHEMA_GROUP)!
  const voters = schema.replicas.filter((r) => r.role === 'voter').map((r) => r.host)
  t.equal(voters.length, 5)
  t.equal(new Set(voters).size, 5, 'distinct hosts')
  const zones = new Set(voters.map((v) => c.hosts.find((h) => h.id === v)!.zone))
  t.equal(zones.size, 3, 'every zone holds a voter')
  t.equal(schema.replicas.filter((r) => r.role === 'learner').length, 4)
  t.same(replicaHosts(schema), hosts)
  // A voter dies for good: a learner is promoted first, then the dead voter goes.
  const dead = voters[0]
  hostDown(c, dead)
  c.now += 11 * MIN
  converge(t, c)
  const after = c.groups.find((g) => g.id === SCHEMA_GROUP)!
  t.equal(after.replicas.filter((r) => r.role === 'voter').length, 5)
  t.notOk(replicaHosts(after).includes(dead))
})

t.test('a group with an uncommitted change or without a live majority gets no membership move', async (t) => {
  const base: PlacementInput = {
    now: 0,
    hosts: ['a', 'b', 'c', 'd'].map((id) => ({ id, state: 'up' as const })),
    tables: [{ name: 'x', copies: 3, fragments: 2 }],
    groups: [
      { id: fragmentId('x', 0), replicas: [{ host: 'a', role: 'voter' }], leader: 'a', changing: true },
      { id: fragmentId('x', 1), replicas: [{ host: 'a', role: 'voter' }, { host: 'b', role: 'voter' }, { host: 'c', role: 'voter' }], leader: null }
    ]
  }
  base.groups.push({ id: fragmentId('x', 2), replicas: [{ host: 'a', role: 'voter' }, { host: 'c', role: 'voter' }, { host: 'd', role: 'voter' }], leader: 'c' })
  base.tables[0].fragments = 3
  base.groups.push({ id: 'dropped/0', replicas: [{ host: 'a', role: 'voter' }], leader: 'a' })
  base.hosts[1] = { id: 'b', state: 'down', downSince: -20 * MIN }
  base.hosts[2] = { id: 'c', state: 'down', downSince: -20 * MIN }
  const p = plan(base)
  // x/2 has a live majority but its reported leader (c) is down: wait for the election.
  t.same(p.moves.filter((m) => m.group !== SCHEMA_GROUP), [])
  t.same(p.progress.unavailable, [fragmentId('x', 1)])
  t.same(p.progress.unknown, ['dropped/0'], 'a group no table wants is reported, not touched')
  t.same(p.progress.underReplicated.sort(), [SCHEMA_GROUP, fragmentId('x', 0), fragmentId('x', 1), fragmentId('x', 2)].sort())
})

t.test('deterministic: same input in any order gives the same plan', async (t) => {
  const c = newCluster(['a', 'b', 'c'], [{ name: 'inode', copies: 3, fragments: 15 }])
  converge(t, c)
  for (const id of ['d', 'e']) hostUp(c, id)
  hostDown(c, 'a')
  c.now += 11 * MIN
  const a = input(c)
  const b = input(c)
  b.hosts.reverse()
  b.groups.reverse()
  for (const g of b.groups) g.replicas.reverse()
  const pa = plan(a)
  t.ok(pa.moves.length > 0)
  t.same(plan(b), pa)
  t.same(plan(a), pa, 'and again')
})

t.test('a plan is cut at maxPlan moves, and what was cut shows as deferred until done', async (t) => {
  const c = newCluster(['a', 'b', 'c'], [{ name: 'inode', copies: 3, fragments: 30 }], { maxPlan: 5 })
  const first = plan(input(c))
  t.equal(first.moves.length, 5)
  t.equal(first.progress.deferred, 26, '30 fragments and the schema group to create, 5 planned')
  converge(t, c)
  for (const g of dataGroups(c)) t.same(replicaHosts(g), ['a', 'b', 'c'])
})

t.test('a leader streaming to a learner keeps its leadership until the copy is done, even on a retiring host', async (t) => {
  const hosts = ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((id) => ({ id, state: 'up' as const, retiring: id === 'a' }))
  const voters = ['a', 'b', 'c', 'd', 'e', 'f'].map((host) => ({ host, role: 'voter' as const }))
  const copying: PlacementInput = {
    now: 0, hosts, tables: [], groups: [{ id: SCHEMA_GROUP, replicas: [...voters, { host: 'g', role: 'learner', caughtUp: false }], leader: 'a' }]
  }
  const p = plan(copying)
  t.same(p.moves, [], 'no transfer while g copies from a')
  t.equal(p.progress.catchingUp, 1)
  copying.groups[0].replicas[6].caughtUp = true
  t.same(plan(copying).moves, [{ kind: 'transferLeader', group: SCHEMA_GROUP, from: 'a', to: 'b' }], 'then a hands over before it is removed')
})
