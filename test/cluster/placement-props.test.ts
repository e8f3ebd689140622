/**
 * Property tests: many seeded random clusters go through random joins,
 * short outages, deaths and retirements; after each event planner + model
 * are iterated to a fixed point and the invariants are checked. A failure
 * names its seed: `SEED=n node scripts/run-tests.mjs placement-props` reruns it.
 */
import t from 'tap'
import { plan, majority, SCHEMA_GROUP, type Plan } from '../../src/cluster/placement.js'
import { seededRng, type Rng } from '../../src/raft/rng.js'
import { newCluster, runToFixedPoint, hostDown, hostUp, input, type SimCluster } from '../helpers/placement-sim.js'

const MIN = 60 * 1000
const REPLACE = 10 * MIN
const CASES = Number(process.env.CASES ?? 2000)
const ONLY = process.env.SEED === undefined ? undefined : Number(process.env.SEED)
const MAX_ROUNDS = 600

type HostClass = 'active' | 'waiting' | 'lost'
function classOf (c: SimCluster, id: string): HostClass {
  const h = c.hosts.find((x) => x.id === id)
  if (h === undefined || h.retiring === true) return 'lost'
  if (h.state === 'up') return 'active'
  return c.now - (h.downSince ?? c.now) < REPLACE ? 'waiting' : 'lost'
}

/** Rate limits seen from outside: copies in flight after this plan. */
function checkPlan (p: Plan, c: SimCluster, problems: string[]): void {
  const maxMoves = c.settings.maxMoves ?? 8
  const perHost = c.settings.maxMovesPerHost ?? 2
  const busy = new Map<string, number>()
  let total = 0
  const count = (h: string | null): void => { if (h !== null) busy.set(h, (busy.get(h) ?? 0) + 1) }
  for (const g of c.groups) {
    for (const r of g.replicas) {
      if (r.role === 'learner' && r.caughtUp !== true && classOf(c, r.host) === 'active') { total++; count(r.host); count(g.leader) }
    }
  }
  // A failover can hand a streaming leader's copies to a busy host; only a
  // plan that starts a copy on top of that breaks the limit.
  const starts = p.moves.filter((m) => m.kind === 'addLearner')
  if (starts.length === 0) return
  for (const m of starts) {
    if (m.kind !== 'addLearner') continue
    total++
    count(m.host)
    count(c.groups.find((g) => g.id === m.group)?.leader ?? null)
  }
  if (total > maxMoves) problems.push(`t=${c.now}: ${total} copies in flight > ${maxMoves}`)
  for (const [h, n] of busy) if (n > perHost) problems.push(`t=${c.now}: ${h} in ${n} copies > ${perHost}`)
  if (p.moves.length > (c.settings.maxPlan ?? 256)) problems.push('plan longer than maxPlan')
}

/** What must hold once the planner has nothing left to do. */
function checkFixedPoint (c: SimCluster, problems: string[]): void {
  const active = c.hosts.filter((h) => classOf(c, h.id) === 'active').map((h) => h.id)
  const waiting = c.hosts.some((h) => classOf(c, h.id) === 'waiting')
  const schemaVoters = c.settings.schemaVoters ?? 5
  const load = new Map(active.map((h) => [h, 0]))
  const leaders = new Map(c.hosts.filter((h) => h.state === 'up').map((h) => [h.id, 0]))
  const wanted = new Map<string, number>([[SCHEMA_GROUP, Infinity]])
  for (const tb of c.tables) for (let i = 0; i < tb.fragments; i++) wanted.set(`${tb.name}/${i}`, tb.copies ?? 3)
  if (c.groups.length !== wanted.size) problems.push(`${c.groups.length} groups, want ${wanted.size}`)
  for (const g of c.groups) {
    const copies = wanted.get(g.id)
    if (copies === undefined) { problems.push(`unknown group ${g.id}`); continue }
    const hosts = g.replicas.map((r) => r.host)
    if (new Set(hosts).size !== hosts.length) problems.push(`${g.id}: two replicas on one host`)
    const onWaiting = hosts.filter((h) => classOf(c, h) === 'waiting').length
    if (hosts.some((h) => classOf(c, h) === 'lost')) problems.push(`${g.id}: replica left on a lost host`)
    const expect = Math.min(copies, active.length + onWaiting)
    if (hosts.length !== expect) problems.push(`${g.id}: ${hosts.length} replicas, want ${expect}`)
    const voters = g.replicas.filter((r) => r.role === 'voter').map((r) => r.host)
    // A learner on a host that is down cannot be promoted until it returns.
    const waitingVoters = g.replicas.filter((r) => r.role === 'voter' && classOf(c, r.host) === 'waiting').length
    const wantVoters = Math.min(g.id === SCHEMA_GROUP ? schemaVoters : copies, active.length + waitingVoters)
    if (voters.length !== wantVoters) problems.push(`${g.id}: ${voters.length} voters, want ${wantVoters}`)
    if (g.leader === null) problems.push(`${g.id}: no leader`)
    else leaders.set(g.leader, (leaders.get(g.leader) ?? 0) + 1)
    if (g.id !== SCHEMA_GROUP) for (const h of hosts) if (load.has(h)) load.set(h, load.get(h)! + 1)
  }
  if (!waiting && active.length > 0) {
    const v = [...load.values()]
    if (Math.max(...v) - Math.min(...v) > 1) problems.push(`replicas per host not within ±1: ${JSON.stringify(Object.fromEntries(load))}`)
  }
  // Leaderships: no single transfer could even them out further.
  for (const g of c.groups) {
    if (g.leader === null) continue
    for (const r of g.replicas) {
      if (r.role !== 'voter' || classOf(c, r.host) !== 'active' || r.host === g.leader) continue
      if ((leaders.get(g.leader) ?? 0) - (leaders.get(r.host) ?? 0) >= 2) {
        problems.push(`${g.id}: leader on ${g.leader} (${leaders.get(g.leader)}) while voter ${r.host} leads ${leaders.get(r.host)}`)
      }
    }
  }
}

/** Taking `id` down must leave every group a live majority (the planner cannot help otherwise). */
function survivable (c: SimCluster, id: string): boolean {
  for (const g of c.groups) {
    const voters = g.replicas.filter((r) => r.role === 'voter')
    const live = voters.filter((r) => r.host !== id && c.hosts.find((h) => h.id === r.host)?.state === 'up').length
    if (live < majority(voters.length)) return false
  }
  return c.hosts.some((h) => h.id !== id && h.state === 'up' && h.retiring !== true)
}

function pick<T> (rng: Rng, xs: T[]): T | undefined {
  return xs.length === 0 ? undefined : xs[rng.int(xs.length)]
}

interface CaseStats { rounds: number, events: number, moves: number }

function runCase (seed: number, stats: CaseStats): string[] {
  const rng = seededRng(seed)
  const problems: string[] = []
  let next = 0
  const newId = (): string => `h${String(next++).padStart(2, '0')}`
  const hosts = Array.from({ length: 1 + rng.int(9) }, newId)
  const tables = Array.from({ length: 1 + rng.int(3) }, (_, i) => ({
    name: `t${i}`, copies: pick(rng, [1, 2, 3, 3, 3, 5])!, fragments: 1 + rng.int(12)
  }))
  const c = newCluster(hosts, tables, {
    replaceAfterMs: REPLACE, maxMoves: 1 + rng.int(8), maxMovesPerHost: 1 + rng.int(3), schemaVoters: pick(rng, [3, 5])!
  })
  /** `full`: also check the fixed point (a drain may have to wait for an absent host). */
  const settle = (what: string, full = true): void => {
    const r = runToFixedPoint(c, rng, MAX_ROUNDS, (p, c) => checkPlan(p, c, problems))
    stats.rounds += r.rounds
    for (const p of r.plans) stats.moves += p.moves.length
    if (!r.settled) problems.push(`after ${what}: not settled within ${MAX_ROUNDS} rounds`)
    problems.push(...c.violations.map((v) => `after ${what}: ${v}`))
    c.violations.length = 0
    if (full) checkFixedPoint(c, problems)
    // Fixed point means the planner really has nothing more to say.
    if (plan(input(c)).moves.length !== 0) problems.push(`after ${what}: planner still moves at its fixed point`)
  }
  settle('start')
  const events = 2 + rng.int(5)
  for (let e = 0; e < events && problems.length === 0; e++) {
    stats.events++
    const upHosts = c.hosts.filter((h) => h.state === 'up' && h.retiring !== true).map((h) => h.id)
    const downHosts = c.hosts.filter((h) => h.state === 'down' && h.retiring !== true).map((h) => h.id)
    const kind = rng.int(8)
    if (kind === 0 || c.hosts.length < 2) {
      const id = newId()
      hostUp(c, id)
      settle(`join ${id}`)
    } else if (kind === 1) {
      // A short outage: nothing may move off the host; then it comes back.
      const id = pick(rng, upHosts.filter((h) => survivable(c, h)))
      if (id === undefined) continue
      const before = JSON.stringify(c.groups.map((g) => g.replicas.map((r) => r.host).sort()))
      hostDown(c, id)
      c.now += rng.int(REPLACE / 2)
      settle(`short outage of ${id}`)
      const after = JSON.stringify(c.groups.map((g) => g.replicas.map((r) => r.host).sort()))
      if (before !== after) problems.push(`short outage of ${id}: replicas moved`)
      hostUp(c, id)
      settle(`return of ${id}`)
    } else if (kind === 2) {
      const id = pick(rng, upHosts.filter((h) => survivable(c, h)))
      if (id === undefined) continue
      hostDown(c, id)
      c.now += REPLACE + rng.int(REPLACE)
      settle(`death of ${id}`)
    } else if (kind === 3) {
      const id = pick(rng, upHosts.filter((h) => upHosts.length > 1 && h !== undefined))
      if (id === undefined) continue
      c.hosts.find((h) => h.id === id)!.retiring = true
      settle(`retire of live ${id}`)
    } else if (kind === 4) {
      const id = pick(rng, upHosts.filter((h) => survivable(c, h)))
      if (id === undefined) continue
      hostDown(c, id)
      c.hosts.find((h) => h.id === id)!.retiring = true
      settle(`retire of dead ${id}`)
    } else if (kind === 5) {
      // A death while another host is briefly down: the rebuild must not
      // count on the absent host, nor move its replicas.
      const dead = pick(rng, upHosts.filter((h) => survivable(c, h)))
      if (dead === undefined) continue
      hostDown(c, dead)
      c.now += REPLACE + rng.int(REPLACE)
      const away = pick(rng, upHosts.filter((h) => h !== dead && survivable(c, h)))
      if (away === undefined) { settle(`death of ${dead}`); continue }
      hostDown(c, away)
      settle(`death of ${dead} while ${away} is away`)
      hostUp(c, away)
      settle(`return of ${away}`)
    } else if (kind === 6) {
      // A retirement while another host is briefly down: draining must not
      // remove a live voter that the group's majority still needs.
      const away = pick(rng, upHosts.filter((h) => survivable(c, h)))
      if (away === undefined) continue
      const id = pick(rng, upHosts.filter((h) => h !== away))
      if (id === undefined || upHosts.length < 3) continue
      const held = (): string => JSON.stringify(c.groups.map((g) => g.replicas.some((r) => r.host === away)))
      const before = held()
      hostDown(c, away)
      c.hosts.find((h) => h.id === id)!.retiring = true
      settle(`retire of ${id} while ${away} is away`, false)
      if (held() !== before) problems.push(`retire of ${id} while ${away} is away: ${away} lost or gained replicas`)
      hostUp(c, away)
      settle(`return of ${away}`)
    } else {
      const id = pick(rng, downHosts)
      if (id === undefined) continue
      hostUp(c, id)
      settle(`return of ${id}`)
    }
  }
  return problems
}

t.test(`${ONLY === undefined ? CASES : 1} seeded random clusters reach a safe, balanced fixed point`, async (t) => {
  const stats: CaseStats = { rounds: 0, events: 0, moves: 0 }
  let failed = 0
  const seeds = ONLY === undefined ? Array.from({ length: CASES }, (_, i) => i) : [ONLY]
  for (const seed of seeds) {
    const problems = runCase(seed, stats)
    if (problems.length > 0) {
      failed++
      if (failed <= 5) t.fail(`seed ${seed}: ${problems.slice(0, 5).join('; ')}`)
    }
  }
  t.equal(failed, 0, `${failed} failing seeds`)
  t.comment(`events ${stats.events}, rounds ${stats.rounds}, moves ${stats.moves}`)
})
