/**
 * The placement planner ("fragmentron"): a pure function from cluster state
 * to the next replica moves of every Raft group (each table fragment and the
 * schema group).
 *
 * Owns: deciding where replicas and leaderships should be and which single
 * membership step each group should take next. It holds no I/O and reads no
 * clock: time arrives as `now` in the input. The caller executes the moves,
 * waits for them to commit, and asks again; iterating reaches a fixed point.
 *
 * Promises (see docs/placement.md for why):
 * - deterministic: same input, same output; every tie is broken by ids;
 * - at most one move per group per plan, and none for a group whose
 *   configuration change is still uncommitted or that has no live quorum;
 * - a replacement is added as a learner, caught up and promoted before the
 *   voter it replaces is removed; a voter is removed only if the live voters
 *   left are still a majority of the old configuration (a 2 → 1 shrink only
 *   when one voter is all the group can have and the survivor is up);
 * - a host down for less than `replaceAfterMs` keeps its replicas;
 * - data copies (new learners) are bounded per host and in total, counting
 *   learners still catching up; the output list is bounded by `maxPlan`.
 */

export type HostId = string
export type GroupId = string

export interface HostInfo {
  id: HostId
  state: 'up' | 'down'
  /** When it was first seen down (ms, same clock as `now`); required when down. */
  downSince?: number
  /** Set by `walkenfs retire HOST`: drain it, whether it is up or dead. */
  retiring?: boolean
  /** Optional failure domain: replicas of one group prefer distinct zones. */
  zone?: string
}

export interface TableSpec {
  name: string
  /** Wanted replicas per fragment (default 3). */
  copies?: number
  fragments: number
}

export interface ReplicaState {
  host: HostId
  role: 'voter' | 'learner'
  /** A learner whose log has reached the group's commit index. Voters: ignored. */
  caughtUp?: boolean
}

export interface GroupState {
  id: GroupId
  replicas: ReplicaState[]
  /** Current leader's host, or null when there is none (or it is unknown). */
  leader: HostId | null
  /** A membership change is proposed but not yet committed. */
  changing?: boolean
}

export interface PlacementSettings {
  replaceAfterMs: number
  /** Learners catching up (copies in flight) a host may send or receive at once. */
  maxMovesPerHost: number
  /** Learners catching up in the whole cluster at once. */
  maxMoves: number
  schemaVoters: number
  /** Upper bound on the length of one plan. */
  maxPlan: number
}

export const defaultSettings: PlacementSettings = {
  replaceAfterMs: 10 * 60 * 1000,
  maxMovesPerHost: 2,
  maxMoves: 8,
  schemaVoters: 5,
  maxPlan: 256
}

export interface PlacementInput {
  now: number
  hosts: HostInfo[]
  tables: TableSpec[]
  /** Current groups; a fragment of `tables` missing here has no replica yet. */
  groups: GroupState[]
  settings?: Partial<PlacementSettings>
}

export type Move =
  /** found the group on `hosts`, every one a voter of its first configuration (hosts[0] is counted as its leader) */
  | { kind: 'create', group: GroupId, hosts: HostId[] }
  | { kind: 'addLearner', group: GroupId, host: HostId }
  | { kind: 'promote', group: GroupId, host: HostId }
  | { kind: 'remove', group: GroupId, host: HostId }
  | { kind: 'transferLeader', group: GroupId, from: HostId, to: HostId }

export interface Progress {
  groups: number
  /** Groups with fewer voters on live, non-retiring hosts than they want. */
  underReplicated: GroupId[]
  /** Groups without a live majority: no membership change is possible. */
  unavailable: GroupId[]
  /** Learners still copying data. */
  catchingUp: number
  /** Copies held back by the rate limits, and moves cut off by `maxPlan`. */
  deferred: number
  /** Replicas still on each retiring host. */
  draining: Record<HostId, number>
  /** Groups in the input that no table wants (a dropped table): left alone, for the caller to retire. */
  unknown: GroupId[]
  /** Nothing planned, deferred or catching up. */
  settled: boolean
}

export interface Plan {
  moves: Move[]
  progress: Progress
}

export const SCHEMA_GROUP = 'schema'

export function fragmentId (table: string, index: number): GroupId {
  return `${table}/${index}`
}

export function majority (voters: number): number {
  return Math.floor(voters / 2) + 1
}

/**
 * Whether removing one voter from a group of `voters` voters, leaving
 * `liveAfter` live voters, keeps the safety rule. `canOnlyHaveOne` is the
 * exception for groups that cannot have a second voter anyway.
 */
export function removalSafe (voters: number, liveAfter: number, canOnlyHaveOne: boolean): boolean {
  if (voters <= 1) return false
  if (liveAfter >= majority(voters)) return true
  return voters === 2 && liveAfter === 1 && canOnlyHaveOne
}

type HostClass = 'active' | 'waiting' | 'lost'

const byId = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

interface Analysis {
  id: GroupId
  kind: 'data' | 'schema'
  copies: number
  g: GroupState
  leader: HostId | null
  voters: ReplicaState[]
  learners: ReplicaState[]
  liveVoters: number
  hasQuorum: boolean
  kept: ReplicaState[]
  keptVoters: ReplicaState[]
  lost: ReplicaState[]
  target: number
  voterTarget: number
}

export function plan (input: PlacementInput): Plan {
  const s: PlacementSettings = { ...defaultSettings, ...input.settings }
  const hosts = [...input.hosts].sort((a, b) => byId(a.id, b.id))
  const hostById = new Map(hosts.map((h) => [h.id, h]))
  const cls = new Map<HostId, HostClass>()
  for (const h of hosts) {
    if (h.retiring === true) cls.set(h.id, 'lost')
    else if (h.state === 'up') cls.set(h.id, 'active')
    else if (input.now - (h.downSince ?? input.now) < s.replaceAfterMs) cls.set(h.id, 'waiting')
    else cls.set(h.id, 'lost')
  }
  // A replica on a host the input does not know is treated as lost and down.
  const classOf = (id: HostId): HostClass => cls.get(id) ?? 'lost'
  const isUp = (id: HostId): boolean => hostById.get(id)?.state === 'up'
  const active = hosts.filter((h) => cls.get(h.id) === 'active').map((h) => h.id)

  // Wanted groups in a fixed order: schema first, then tables by name.
  const current = new Map(input.groups.map((g) => [g.id, g]))
  const wanted: Array<{ id: GroupId, kind: 'data' | 'schema', copies: number }> = [{ id: SCHEMA_GROUP, kind: 'schema', copies: s.schemaVoters }]
  for (const t of [...input.tables].sort((a, b) => byId(a.name, b.name))) {
    for (let i = 0; i < t.fragments; i++) wanted.push({ id: fragmentId(t.name, i), kind: 'data', copies: Math.max(1, t.copies ?? 3) })
  }

  const wantedIds = new Set(wanted.map((w) => w.id))
  const groups: Analysis[] = wanted.map((w) => {
    const g = current.get(w.id) ?? { id: w.id, replicas: [], leader: null }
    const replicas = [...g.replicas].sort((a, b) => byId(a.host, b.host))
    const voters = replicas.filter((r) => r.role === 'voter')
    const learners = replicas.filter((r) => r.role === 'learner')
    const liveVoters = voters.filter((r) => isUp(r.host)).length
    const kept = replicas.filter((r) => classOf(r.host) !== 'lost')
    const keptWaiting = kept.filter((r) => classOf(r.host) === 'waiting').length
    const reachable = active.length + keptWaiting
    const target = w.kind === 'schema' ? reachable : Math.min(w.copies, reachable)
    const voterTarget = w.kind === 'schema' ? Math.min(s.schemaVoters, target) : target
    const leader = g.leader !== null && isUp(g.leader) && voters.some((v) => v.host === g.leader) ? g.leader : null
    return {
      id: w.id, kind: w.kind, copies: w.copies, g, leader, voters, learners, liveVoters,
      hasQuorum: voters.length > 0 && liveVoters >= majority(voters.length),
      kept, keptVoters: kept.filter((r) => r.role === 'voter'),
      lost: replicas.filter((r) => classOf(r.host) === 'lost'),
      target, voterTarget
    }
  })

  // Replica load per host over data groups; updated as moves are chosen so
  // that one plan does not send every fragment to the same emptiest host.
  const load = new Map<HostId, number>(hosts.map((h) => [h.id, 0]))
  const leaders = new Map<HostId, number>(hosts.map((h) => [h.id, 0]))
  // Copies in flight per host (as receiver or as the leader sending).
  const busy = new Map<HostId, number>(hosts.map((h) => [h.id, 0]))
  let inFlight = 0
  for (const a of groups) {
    if (a.kind === 'data') for (const r of a.g.replicas) load.set(r.host, (load.get(r.host) ?? 0) + 1)
    if (a.leader !== null) leaders.set(a.leader, (leaders.get(a.leader) ?? 0) + 1)
    for (const r of a.learners) {
      if (r.caughtUp === true || !isUp(r.host)) continue
      inFlight++
      busy.set(r.host, (busy.get(r.host) ?? 0) + 1)
      if (a.leader !== null) busy.set(a.leader, (busy.get(a.leader) ?? 0) + 1)
    }
  }
  const catchingUp = inFlight

  const moves: Move[] = []
  const touched = new Set<GroupId>()
  let deferred = 0
  const emit = (m: Move): void => {
    if (moves.length >= s.maxPlan) { deferred++; return }
    moves.push(m)
    touched.add(m.group)
  }
  const canCopy = (to: HostId, from: HostId | null): boolean =>
    inFlight < s.maxMoves && (busy.get(to) ?? 0) < s.maxMovesPerHost && (from === null || (busy.get(from) ?? 0) < s.maxMovesPerHost)
  const startCopy = (a: Analysis, to: HostId): void => {
    inFlight++
    busy.set(to, (busy.get(to) ?? 0) + 1)
    if (a.leader !== null) busy.set(a.leader, (busy.get(a.leader) ?? 0) + 1)
    if (a.kind === 'data') load.set(to, (load.get(to) ?? 0) + 1)
    emit({ kind: 'addLearner', group: a.id, host: to })
  }
  const zoneOf = (id: HostId): string => hostById.get(id)?.zone ?? `host:${id}`
  /** Best new home for a replica of `a`: fewest of its replicas in the zone, least loaded, lowest id. */
  const pickHome = (a: Analysis, chosen: HostId[] = []): HostId | undefined => {
    const has = new Set([...a.g.replicas.map((r) => r.host), ...chosen])
    const zones = new Map<string, number>()
    for (const h of [...a.kept.map((r) => r.host), ...chosen]) zones.set(zoneOf(h), (zones.get(zoneOf(h)) ?? 0) + 1)
    let best: HostId | undefined
    let bestKey: [number, number] = [Infinity, Infinity]
    // `active` is sorted by id, so keeping the first of equals breaks ties by id.
    for (const h of active) {
      if (has.has(h)) continue
      const key: [number, number] = [zones.get(zoneOf(h)) ?? 0, load.get(h) ?? 0]
      if (key[0] < bestKey[0] || (key[0] === bestKey[0] && key[1] < bestKey[1])) { best = h; bestKey = key }
    }
    return best
  }
  const leastLoaded = (a: Analysis): HostId | undefined => {
    const has = new Set(a.g.replicas.map((r) => r.host))
    let best: HostId | undefined
    for (const h of active) if (!has.has(h) && (best === undefined || (load.get(h) ?? 0) < (load.get(best) ?? 0))) best = h
    return best
  }
  const copying = (a: Analysis): boolean => a.learners.some((r) => r.caughtUp !== true && isUp(r.host))
  const canChange = (a: Analysis): boolean => a.hasQuorum && a.leader !== null && a.g.changing !== true

  /** Removes `r` if safe; moves leadership away first when `r` leads. */
  const tryRemove = (a: Analysis, r: ReplicaState): boolean => {
    if (r.role === 'learner') { emit({ kind: 'remove', group: a.id, host: r.host }); return true }
    const liveAfter = a.liveVoters - (isUp(r.host) ? 1 : 0)
    if (!removalSafe(a.voters.length, liveAfter, a.voterTarget <= 1)) return false
    if (r.host === a.leader) {
      if (copying(a)) return false
      const to = a.keptVoters.filter((v) => v.host !== r.host && isUp(v.host))
        .sort((x, y) => (leaders.get(x.host) ?? 0) - (leaders.get(y.host) ?? 0) || byId(x.host, y.host))[0]
      if (to === undefined) return false
      leaders.set(r.host, (leaders.get(r.host) ?? 0) - 1)
      leaders.set(to.host, (leaders.get(to.host) ?? 0) + 1)
      emit({ kind: 'transferLeader', group: a.id, from: r.host, to: to.host })
      return true
    }
    if (a.kind === 'data') load.set(r.host, (load.get(r.host) ?? 0) - 1)
    emit({ kind: 'remove', group: a.id, host: r.host })
    return true
  }

  /** Pass 1: repairs, drains, top-ups and trims. One step per group. */
  const repair = (a: Analysis): void => {
    if (a.voters.length === 0 && a.learners.length === 0) {
      // Founded on all its homes at once, every one a voter: an empty group has nothing to copy, so adding
      // learners and promoting them one by one only cost rounds (256 fragments took 7 minutes to place).
      const homes: HostId[] = []
      while (homes.length < Math.max(1, a.voterTarget)) {
        const home = pickHome(a, homes)
        if (home === undefined) break
        if (a.kind === 'data') load.set(home, (load.get(home) ?? 0) + 1)
        homes.push(home)
      }
      if (homes.length > 0) {
        leaders.set(homes[0]!, (leaders.get(homes[0]!) ?? 0) + 1)
        emit({ kind: 'create', group: a.id, hosts: homes })
      }
      return
    }
    if (!canChange(a)) return
    const keptLearners = a.kept.filter((r) => r.role === 'learner')
    const ready = keptLearners.filter((r) => r.caughtUp === true && isUp(r.host))
    const busyCopying = copying(a)
    // Data groups want every kept replica a voter; the schema group only up to its cap.
    const wantPromote = a.kind === 'data' ? ready.length > 0 : a.keptVoters.length < a.voterTarget && ready.length > 0
    if (wantPromote) {
      const voterZones = new Set(a.voters.map((v) => zoneOf(v.host)))
      const r = [...ready].sort((x, y) => Number(voterZones.has(zoneOf(x.host))) - Number(voterZones.has(zoneOf(y.host))) || byId(x.host, y.host))[0]
      emit({ kind: 'promote', group: a.id, host: r.host })
      return
    }
    const lostLearner = a.lost.find((r) => r.role === 'learner')
    if (lostLearner !== undefined) { emit({ kind: 'remove', group: a.id, host: lostLearner.host }); return }
    const lostVoters = a.lost.filter((r) => r.role === 'voter')
      .sort((x, y) => Number(isUp(x.host)) - Number(isUp(y.host)) || byId(x.host, y.host))
    const home = lostVoters.length > 0 || a.kept.length < a.target ? pickHome(a) : undefined
    if (lostVoters.length > 0 && (a.keptVoters.length >= a.voterTarget || (home === undefined && !busyCopying))) {
      for (const r of lostVoters) if (tryRemove(a, r)) return
    }
    if (a.kept.length < a.target || (lostVoters.length > 0 && a.kept.length === a.target && !busyCopying)) {
      // Second case: a lost voter could not be removed safely yet (2 voters,
      // or a voter of the majority is briefly down); a surplus replica first
      // makes its removal safe.
      if (busyCopying || home === undefined) return
      if (canCopy(home, a.leader)) startCopy(a, home)
      else deferred++
      return
    }
    if (busyCopying) return
    if (a.keptVoters.length > a.voterTarget) {
      // Too many voters (after a rebalance copy, a surplus copy, or a lowered
      // cap): drop the one on the most loaded active host. A host that is
      // briefly down keeps its replicas, so it is never the one dropped.
      const order = a.keptVoters.filter((r) => classOf(r.host) === 'active').sort((x, y) =>
        (load.get(y.host) ?? 0) - (load.get(x.host) ?? 0) || byId(x.host, y.host))
      // The leader is not skipped: skipping it would drop a less loaded
      // voter, possibly the copy just made, and the group would oscillate.
      for (const r of order) if (tryRemove(a, r)) return
    }
  }

  /** Pass 2: even out replica counts, one copy at a time, only in healthy groups. */
  const rebalance = (a: Analysis): void => {
    if (a.kind !== 'data' || touched.has(a.id) || !canChange(a)) return
    if (a.lost.length > 0 || a.learners.length > 0 || a.kept.length !== a.target) return
    if (a.kept.some((r) => classOf(r.host) !== 'active')) return
    const from = [...a.kept].sort((x, y) => (load.get(y.host) ?? 0) - (load.get(x.host) ?? 0) || byId(x.host, y.host))[0]
    const to = leastLoaded(a)
    if (from === undefined || to === undefined) return
    if ((load.get(from.host) ?? 0) - (load.get(to) ?? 0) < 2) return
    if (!canCopy(to, a.leader)) { deferred++; return }
    load.set(from.host, (load.get(from.host) ?? 0) - 1)
    startCopy(a, to)
  }

  /** Pass 3: leaders off retiring hosts, then spread leaderships over up hosts. */
  const spreadLeaders = (a: Analysis): void => {
    // A leader streaming to a learner keeps it: moving it would move the
    // copy's source onto a host the rate limit did not account for.
    if (touched.has(a.id) || a.leader === null || a.g.changing === true || copying(a)) return
    const from = a.leader
    const candidates = a.voters.filter((v) => v.host !== from && classOf(v.host) === 'active')
      .map((v) => v.host).sort((x, y) => (leaders.get(x) ?? 0) - (leaders.get(y) ?? 0) || byId(x, y))
    const to = candidates[0]
    if (to === undefined) return
    const retiring = classOf(from) === 'lost'
    if (!retiring && (leaders.get(from) ?? 0) - (leaders.get(to) ?? 0) < 2) return
    leaders.set(from, (leaders.get(from) ?? 0) - 1)
    leaders.set(to, (leaders.get(to) ?? 0) + 1)
    emit({ kind: 'transferLeader', group: a.id, from, to })
  }

  // Most urgent first: groups with the fewest kept voters relative to their target.
  const urgency = [...groups].sort((x, y) =>
    (x.keptVoters.length - x.voterTarget) - (y.keptVoters.length - y.voterTarget) || byId(x.id, y.id))
  for (const a of urgency) repair(a)
  for (const a of groups) rebalance(a)
  for (const a of groups) spreadLeaders(a)

  const draining: Record<HostId, number> = {}
  for (const h of hosts) if (h.retiring === true) draining[h.id] = 0
  for (const a of groups) for (const r of a.g.replicas) if (r.host in draining) draining[r.host]++

  return {
    moves,
    progress: {
      groups: groups.length,
      underReplicated: groups.filter((a) => a.keptVoters.filter((v) => classOf(v.host) === 'active').length < a.copies).map((a) => a.id),
      unavailable: groups.filter((a) => (a.voters.length > 0 || a.learners.length > 0) && !a.hasQuorum).map((a) => a.id),
      catchingUp,
      deferred,
      draining,
      unknown: input.groups.map((g) => g.id).filter((id) => !wantedIds.has(id)).sort(byId),
      settled: moves.length === 0 && deferred === 0 && catchingUp === 0
    }
  }
}
