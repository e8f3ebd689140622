/**
 * A tiny model of a cluster for driving the placement planner: it applies
 * planned moves to a state the way the groups would (checking that each move
 * is legal at that moment), lets learners catch up over a few rounds, and
 * elects a leader where a group has none. Violations of the safety rules are
 * recorded, not thrown, so property tests can report the seed and the step.
 *
 * The election deliberately picks the lowest live voter id: that piles
 * leaderships onto one host and makes the planner's spreading visible.
 */
import { plan, majority, fragmentId, type GroupState, type HostInfo, type Move, type PlacementInput, type PlacementSettings, type Plan, type TableSpec } from '../../src/cluster/placement.js'
import type { Rng } from '../../src/raft/rng.js'

export interface SimCluster {
  now: number
  hosts: HostInfo[]
  tables: TableSpec[]
  groups: GroupState[]
  settings: Partial<PlacementSettings>
  /** Rounds a learner still needs, by `group host`. */
  copying: Map<string, number>
  violations: string[]
}

export function newCluster (hosts: string[], tables: TableSpec[], settings: Partial<PlacementSettings> = {}): SimCluster {
  return { now: 0, hosts: hosts.map((id) => ({ id, state: 'up' })), tables, groups: [], settings, copying: new Map(), violations: [] }
}

export function input (c: SimCluster): PlacementInput {
  return { now: c.now, hosts: c.hosts.map((h) => ({ ...h })), tables: c.tables, groups: c.groups.map((g) => ({ ...g, replicas: g.replicas.map((r) => ({ ...r })) })), settings: c.settings }
}

const host = (c: SimCluster, id: string): HostInfo | undefined => c.hosts.find((h) => h.id === id)
const up = (c: SimCluster, id: string): boolean => host(c, id)?.state === 'up'

function group (c: SimCluster, id: string): GroupState {
  let g = c.groups.find((x) => x.id === id)
  if (g === undefined) { g = { id, replicas: [], leader: null }; c.groups.push(g) }
  return g
}

/** Copies wanted by a group (schema: its voter cap), or undefined for an unknown group. */
function copiesOf (c: SimCluster, id: string): number | undefined {
  if (id === 'schema') return c.settings.schemaVoters ?? 5
  for (const t of c.tables) for (let i = 0; i < t.fragments; i++) if (fragmentId(t.name, i) === id) return t.copies ?? 3
  return undefined
}

/** Applies one move, recording a violation when it would not be legal. */
export function applyMove (c: SimCluster, m: Move, rng: Rng): void {
  const bad = (why: string): void => { c.violations.push(`t=${c.now} ${JSON.stringify(m)}: ${why}`) }
  const g = group(c, m.group)
  const voters = g.replicas.filter((r) => r.role === 'voter')
  const target = m.kind === 'transferLeader' ? m.to : m.kind === 'create' ? m.hosts[0] : m.host
  const live = voters.filter((r) => up(c, r.host)).length
  if (m.kind !== 'create' && (voters.length === 0 || live < majority(voters.length))) return bad('group has no live majority')
  if (m.kind !== 'create' && m.kind !== 'transferLeader' && (g.leader === null || !up(c, g.leader))) return bad('group has no leader')
  const member = g.replicas.find((r) => r.host === target)
  switch (m.kind) {
    case 'create':
      if (g.replicas.length > 0) return bad('group already exists')
      if (m.hosts.length === 0 || new Set(m.hosts).size !== m.hosts.length) return bad('no hosts, or one twice')
      if (m.hosts.some((h) => !up(c, h) || host(c, h)?.retiring === true)) return bad('host not usable')
      if (m.hosts.length > (copiesOf(c, g.id) ?? 0)) return bad('more founders than copies wanted')
      g.replicas = m.hosts.map((h) => ({ host: h, role: 'voter' as const }))
      // Any founder may win the first election.
      g.leader = m.hosts[rng.int(m.hosts.length)]!
      return
    case 'addLearner':
      if (member !== undefined) return bad('already a member')
      if (!up(c, m.host) || host(c, m.host)?.retiring === true) return bad('host not usable')
      g.replicas.push({ host: m.host, role: 'learner', caughtUp: false })
      c.copying.set(`${g.id} ${m.host}`, 1 + rng.int(3))
      return
    case 'promote':
      if (member?.role !== 'learner') return bad('not a learner')
      if (member.caughtUp !== true) return bad('learner has not caught up')
      member.role = 'voter'
      delete member.caughtUp
      return
    case 'remove': {
      if (member === undefined) return bad('not a member')
      if (member.role === 'voter') {
        const liveAfter = live - (up(c, m.host) ? 1 : 0)
        // The brief's rule: what is left must still be a majority of the old
        // configuration; the one exception is a group that wants a single copy
        // (or has one usable host) shrinking 2 → 1 onto a live voter.
        const usable = c.hosts.filter((h) => h.state === 'up' && h.retiring !== true).length
        const single = (copiesOf(c, g.id) ?? 3) === 1 || usable <= 1
        if (!(liveAfter >= majority(voters.length) || (voters.length === 2 && liveAfter === 1 && single))) {
          return bad(`removing a voter leaves ${liveAfter} live of ${voters.length}`)
        }
        const h = host(c, m.host)
        const lost = h === undefined || h.retiring === true || (h.state === 'down' && c.now - (h.downSince ?? c.now) >= (c.settings.replaceAfterMs ?? 600000))
        const kept = voters.filter((v) => v.host !== m.host).length
        if (!lost && kept < Math.min(copiesOf(c, g.id) ?? 3, usable)) return bad('removed a healthy voter from an under-replicated group')
        if (lost) {
          // The replacement comes first: every voter the group can have
          // elsewhere is in place before a lost one goes.
          const isLost = (id: string): boolean => {
            const x = host(c, id)
            return x === undefined || x.retiring === true || (x.state === 'down' && c.now - (x.downSince ?? c.now) >= (c.settings.replaceAfterMs ?? 600000))
          }
          const keptVoters = voters.filter((v) => !isLost(v.host)).length
          // A learner on a host that is down cannot be promoted: only voters there count.
          const waiting = voters.filter((r) => !isLost(r.host) && !up(c, r.host)).length
          if (keptVoters < Math.min(copiesOf(c, g.id) ?? 3, usable + waiting)) return bad(`removed a lost voter with only ${keptVoters} voters in place`)
        }
      }
      if (g.leader === m.host) return bad('removed the leader without a transfer first')
      g.replicas = g.replicas.filter((r) => r.host !== m.host)
      c.copying.delete(`${g.id} ${m.host}`)
      return
    }
    case 'transferLeader':
      if (g.leader !== m.from) return bad('from is not the leader')
      if (member?.role !== 'voter' || !up(c, m.to)) return bad('target is not a live voter')
      g.leader = m.to
  }
}

/** One round of time inside the groups: learners copy, leaderless groups elect. */
export function advance (c: SimCluster): void {
  for (const g of c.groups) {
    for (const r of g.replicas) {
      if (r.role !== 'learner' || r.caughtUp === true || !up(c, r.host)) continue
      const key = `${g.id} ${r.host}`
      const left = (c.copying.get(key) ?? 1) - 1
      if (left <= 0) { r.caughtUp = true; c.copying.delete(key) } else c.copying.set(key, left)
    }
  }
  elect(c)
}

/** Groups whose leader is gone elect the lowest live voter, if they have a live majority. */
export function elect (c: SimCluster): void {
  for (const g of c.groups) {
    const voters = g.replicas.filter((r) => r.role === 'voter')
    const live = voters.filter((r) => up(c, r.host)).map((r) => r.host).sort()
    if (g.leader !== null && up(c, g.leader) && voters.some((v) => v.host === g.leader)) continue
    g.leader = live.length >= majority(voters.length) && live.length > 0 ? live[0] : null
  }
}

export interface RunResult {
  rounds: number
  settled: boolean
  last: Plan
  plans: Plan[]
}

/**
 * Plans, checks the plan's shape, applies it and advances, until the planner
 * is settled or `maxRounds` pass. `check` sees every plan before it is applied.
 */
export function runToFixedPoint (c: SimCluster, rng: Rng, maxRounds: number, check?: (p: Plan, c: SimCluster) => void): RunResult {
  const plans: Plan[] = []
  for (let round = 0; round < maxRounds; round++) {
    const p = plan(input(c))
    plans.push(p)
    check?.(p, c)
    if (p.progress.settled) return { rounds: round, settled: true, last: p, plans }
    const seen = new Set<string>()
    for (const m of p.moves) {
      if (seen.has(m.group)) c.violations.push(`t=${c.now} two moves for ${m.group} in one plan`)
      seen.add(m.group)
      applyMove(c, m, rng)
    }
    advance(c)
    c.now += 1000
  }
  const last = plan(input(c))
  return { rounds: maxRounds, settled: last.progress.settled, last, plans }
}

/** Marks a host down from now on; `advance` moves leaderships off it. */
export function hostDown (c: SimCluster, id: string): void {
  const h = host(c, id)
  if (h === undefined) throw new Error(`no host ${id}`)
  h.state = 'down'
  h.downSince = c.now
  elect(c)
}

export function hostUp (c: SimCluster, id: string): void {
  const h = host(c, id)
  if (h === undefined) c.hosts.push({ id, state: 'up' })
  else { h.state = 'up'; delete h.downSince }
}
