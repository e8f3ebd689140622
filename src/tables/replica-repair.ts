/**
 * `walkenfs repair`: rebuilds the replicas of a fragment that differ from
 * the rest (docs/operations.md, "Repairing replicas").
 *
 * Owns: deciding which replicas of one group are wrong (`decideRepair`,
 * pure) and rebuilding them (`repairGroup`) through the ordinary Raft
 * paths — never by copying rows around behind Raft's back.
 *
 * The reference content is the digest a strict majority of the replicas
 * agree on, else the leader's. A replica is rebuilt when its digest (at the
 * same applied index) differs from the reference, or when it cannot give
 * one although its host answers (a damaged store). A replica is never
 * rebuilt from a follower's content by copying: the rebuilt replica is
 * removed from the group's configuration (committed by the leader), its
 * rows and Raft state are deleted on its host, and the placement actuator
 * adds it again as an empty learner, which takes the leader's snapshot and
 * log, exactly as a new replica does. A leader that is itself the odd one
 * out first hands its leadership to a replica with the reference content,
 * then is rebuilt like any follower.
 *
 * Why this order: a voter must not lose its log while it still counts in
 * elections (it could help elect a leader missing committed entries), so
 * it is removed before its state is deleted.
 */
import type { Store } from '../store/store.js'
import { checkReplicas, type DigestEnv, type Digest, type GroupCheck, type LocalReplicas } from './replica-check.js'

export interface RepairDecision {
  group: string
  /** sha256 the replicas must end with; null when no replica gave a digest. */
  reference: string | null
  /** Hosts whose replica will be rebuilt. */
  rebuild: Array<{ host: string, reason: string }>
  /** The leader must hand over first, to this host (which has the reference content). */
  transferTo: string | null
  /** Why nothing can be done now (unreachable hosts, replicas never at the same index, no majority and no leader). */
  blocked: string | null
}

/** Which replicas of `check.group` to rebuild, given its leader. */
export function decideRepair (check: GroupCheck, leader: string | null): RepairDecision {
  const d: RepairDecision = { group: check.group, reference: null, rebuild: [], transferTo: null, blocked: null }
  if (check.verdict === 'same') return d
  if (check.verdict === 'busy') { d.blocked = 'its replicas never reported the same applied index (busy); try again when writes are quieter'; return d }
  const answered = check.replicas.filter((r) => r.digest !== null)
  const failing = check.replicas.filter((r) => r.digest === null)
  const unreachable = failing.filter((r) => isUnreachable(r.error))
  if (unreachable.length > 0) { d.blocked = `replica host(s) ${unreachable.map((r) => r.host).join(', ')} cannot be reached; repair needs every replica's host up`; return d }
  const building = failing.filter((r) => /holds no replica/.test(r.error ?? ''))
  if (building.length > 0) { d.blocked = `the replica on ${building.map((r) => r.host).join(', ')} is still being created; try again once walkenfs status shows it caught up`; return d }
  if (new Set(answered.map((r) => r.digest!.applied)).size > 1) { d.blocked = 'its replicas are not at the same applied index'; return d }
  const votes = new Map<string, number>()
  for (const r of answered) votes.set(r.digest!.sha256, (votes.get(r.digest!.sha256) ?? 0) + 1)
  let reference: string | null = null
  for (const [sha, n] of votes) if (2 * n > check.replicas.length) reference = sha
  if (reference === null) {
    const l = answered.find((r) => r.host === leader)
    if (!l) { d.blocked = `no majority of its replicas agree and its leader${leader === null ? ' is not known' : ` ${leader} gave no digest`}; not repaired, rebuild it by hand`; return d }
    reference = l.digest!.sha256
  }
  d.reference = reference
  for (const r of answered) if (r.digest!.sha256 !== reference) d.rebuild.push({ host: r.host, reason: `differs (${short(r.digest!)} instead of ${reference.slice(0, 12)})` })
  for (const r of failing) d.rebuild.push({ host: r.host, reason: `gives no digest: ${r.error ?? 'unknown error'}` })
  if (leader !== null && d.rebuild.some((r) => r.host === leader)) {
    const good = answered.find((r) => r.digest!.sha256 === reference && r.host !== leader)
    if (!good) { d.blocked = `its leader ${leader} is the odd one out and no other replica has the reference content`; d.rebuild = []; return d }
    d.transferTo = good.host
  }
  return d
}

function short (d: Digest): string {
  return `${d.sha256.slice(0, 12)}, ${d.rows} rows`
}

/** A digest call that failed because the host or link is gone, not because the replica is damaged. */
function isUnreachable (error: string | undefined): boolean {
  return error === undefined || /no link|not connected|timed? ?out|unreachable|ECONNREFUSED|EHOSTUNREACH|closed|deadline/i.test(error)
}

export interface RepairEnv extends DigestEnv {
  catalog (): { groups: ReadonlyArray<{ id: string, replicas: ReadonlyArray<{ host: string, role: string }> }> }
  leaderHint (g: string): string | null
  nodeOfHost (host: string): number | undefined
  call (host: string, method: string, payload: unknown, deadlineMs: number): Promise<unknown>
}

export interface RepairResult {
  group: string
  host: string
  ok: boolean
  /** Bytes of rows the rebuilt replica holds at the end. */
  bytes: number
  ms: number
  error?: string
}

/**
 * Rebuilds one replica (`host`) of `g`. `leaderOf` tells who leads g now;
 * `check` re-checks g's digests (it must end `same` with the replica back).
 * Resolves once the replica is back and identical, or with ok=false and
 * the reason after `timeoutMs`.
 */
export async function rebuildReplica (env: RepairEnv, g: string, host: string, check: () => Promise<GroupCheck>,
  opts: { timeoutMs?: number, rpcMs?: number } = {}): Promise<RepairResult> {
  const started = Date.now()
  const deadline = started + (opts.timeoutMs ?? 300_000)
  const rpcMs = opts.rpcMs ?? 5000
  const fail = (error: string): RepairResult => ({ group: g, host, ok: false, bytes: 0, ms: Date.now() - started, error })
  const node = env.nodeOfHost(host)
  if (node === undefined) return fail(`host ${host} has no node number`)
  const voters = (): string[] => env.catalog().groups.find((x) => x.id === g)?.replicas.filter((r) => r.role === 'voter').map((r) => r.host) ?? []
  const want = voters().length
  // 1. Out of the configuration first (committed by the leader), so its lost state never counts in an election.
  let removed = false
  let last = ''
  while (!removed && Date.now() < deadline) {
    const leader = env.leaderHint(g)
    if (leader === host) return fail(`${host} leads ${g}; it must hand over first`)
    try {
      if (leader === null) throw new Error('no leader known')
      await env.call(leader, 'cluster.change', { group: g, change: { type: 'remove', node } }, rpcMs)
      removed = true
    } catch (e) {
      last = (e as Error).message
      if (/is not a member/.test(last)) removed = true
      else await sleep(200)
    }
  }
  if (!removed) return fail(`could not remove the replica on ${host} from ${g}: ${last}`)
  // 2. Delete its rows and Raft state on its host; the placement actuator then adds it back empty and the leader fills it.
  try {
    await env.call(host, 'cluster.dropReplica', { group: g }, rpcMs)
  } catch (e) {
    return fail(`removed from ${g}, but ${host} could not delete its replica: ${(e as Error).message}; the actuator re-adds a replica elsewhere or there`)
  }
  // 3. Wait until the group has its replicas back and they are identical.
  while (Date.now() < deadline) {
    await sleep(500)
    // Back to as many voters as before (the actuator adds a learner, then promotes it once it caught up).
    if (voters().length < want || env.replicas(g).length !== want) continue
    const c = await check()
    if (c.verdict === 'same') {
      const mine = c.replicas.find((r) => r.host === host) ?? c.replicas[0]!
      return { group: g, host, ok: true, bytes: mine.digest?.bytes ?? 0, ms: Date.now() - started }
    }
  }
  return fail(`the replica of ${g} was not rebuilt within ${Math.round((opts.timeoutMs ?? 300_000) / 1000)} s; walkenfs status shows the placement progress`)
}

/** Hands the leadership of g to `to`; resolves once `to` reports leading it. */
export async function handOver (env: RepairEnv, g: string, from: string, to: string, timeoutMs = 30_000): Promise<void> {
  const node = env.nodeOfHost(to)
  if (node === undefined) throw new Error(`host ${to} has no node number`)
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    try {
      const leads = await env.call(to, 'cluster.report', null, 5000) as Array<{ group: string }>
      if (leads.some((r) => r.group === g)) return
      await env.call(from, 'cluster.transfer', { group: g, to: node }, 5000)
    } catch {}
    await sleep(500)
  }
  throw new Error(`the leadership of ${g} did not move from ${from} to ${to} within ${timeoutMs / 1000} s`)
}

function sleep (ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)) }

export interface FragmentRepair {
  group: string
  before: GroupCheck
  decision: RepairDecision
  /** Set when the leader handed over first. */
  handedOver?: { from: string, to: string }
  results: RepairResult[]
  after: GroupCheck | null
}

/**
 * Checks g and rebuilds what differs (`dryRun`: only decides). Runs in the
 * daemon, which holds a replica store and the node.
 */
export async function repairFragment (env: RepairEnv, store: Store, local: LocalReplicas, g: string, opts: { dryRun?: boolean, timeoutMs?: number } = {}): Promise<FragmentRepair> {
  const check = async (): Promise<GroupCheck> => (await checkReplicas(env, store, local, [g])).groups[0]!
  const before = await check()
  const leader = env.leaderHint(g)
  const decision = decideRepair(before, leader)
  const out: FragmentRepair = { group: g, before, decision, results: [], after: null }
  if (opts.dryRun === true || decision.blocked !== null || decision.rebuild.length === 0) return out
  if (decision.transferTo !== null) {
    await handOver(env, g, leader!, decision.transferTo)
    out.handedOver = { from: leader!, to: decision.transferTo }
  }
  // One at a time: each rebuild takes a voter out for a while, and the group must keep its majority.
  for (const r of decision.rebuild) {
    const res = await rebuildReplica(env, g, r.host, check, { timeoutMs: opts.timeoutMs })
    out.results.push(res)
    if (!res.ok) break
  }
  out.after = await check()
  return out
}
