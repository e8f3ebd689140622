/**
 * The plan of a forced recovery (`walkenfs recover --force-new-cluster`):
 * what this host holds of every Raft group, what the recovery will do with
 * it, what can be lost, and whether it may go on at all.
 *
 * Owns: the rules that decide which groups are kept, which are recreated
 * empty and when to refuse; the text a person reads before typing "force".
 * Pure: the catalog, the identity and the replica summaries arrive as input
 * (src/cli/recover.ts reads them from the store and writes the result).
 *
 * Promises:
 * - a host that holds no catalog replica, or that its catalog does not list,
 *   is refused: it cannot speak for the cluster;
 * - a group this host holds no data of is named as lost, and the plan is
 *   refused unless `acceptLoss` is given (it is then recreated empty);
 * - every group it holds is kept with every entry of its log, also the ones
 *   beyond its commit index, and the plan says how many those are;
 * - every other host is dropped from the catalog and named.
 */
import type { ReplicaSummary } from '../raft/force.js'
import { findHost, type Catalog } from './catalog.js'
import type { Identity } from './identity.js'
import { SCHEMA_GROUP } from './placement.js'

export interface GroupPlan {
  id: string
  /** `keep`: this host's replica becomes the only voter; `recreate`: no data here, founded empty (loss). */
  action: 'keep' | 'recreate'
  replica: ReplicaSummary | null
  /** Entries after the commit index this host knew, which the recovery commits. */
  beyondCommit: number
  note: string
}

export interface RecoveryPlan {
  cluster: string
  host: string
  node: number
  oldClusterId: string
  newClusterId: string
  dropped: Array<{ id: string, node: number, state: string }>
  groups: GroupPlan[]
  /** Groups recreated empty: their data is lost. */
  lost: string[]
  /** Groups this host holds that the catalog does not know (left alone). */
  unknown: string[]
  /** Why the recovery must not run (undefined: it may). */
  refusal?: string
}

export interface PlanInput {
  identity: Identity
  /** The catalog of this host's schema replica, with every entry of its log applied (null: no replica). */
  catalog: Catalog | null
  /** What this host holds, by group id (every group with Raft state here). */
  replicas: Record<string, ReplicaSummary>
  newClusterId: string
  acceptLoss: boolean
}

export function planRecovery (i: PlanInput): RecoveryPlan {
  const id = i.identity
  const plan: RecoveryPlan = {
    cluster: id.clusterName, host: id.hostId, node: id.node ?? 0, oldClusterId: id.clusterId ?? '', newClusterId: i.newClusterId,
    dropped: [], groups: [], lost: [], unknown: []
  }
  if (id.clusterId === null || id.node === null) {
    plan.refusal = `host ${id.hostId} never joined a cluster (its data directory holds no cluster membership); there is nothing to recover — mount it to join a cluster`
    return plan
  }
  const schema = i.replicas[SCHEMA_GROUP]
  if (i.catalog === null || schema === undefined || schema.empty || i.catalog.clusterId === null) {
    plan.refusal = `host ${id.hostId} holds no copy of the catalog (schema group), so it cannot tell what the cluster held; run the recovery on a surviving host that does (walkenfs status shows schema replicas)`
    return plan
  }
  const c = i.catalog
  if (findHost(c, id.hostId) === undefined) {
    plan.refusal = `this host's copy of the catalog does not list host ${id.hostId}; its catalog replica is too old to recover from — use another surviving host`
    return plan
  }
  plan.dropped = c.hosts.filter((h) => h.id !== id.hostId && h.state !== 'retired').map((h) => ({ id: h.id, node: h.node, state: h.state }))
  const ids = new Set([SCHEMA_GROUP, ...c.groups.map((g) => g.id)])
  for (const g of [...ids].sort(groupOrder)) {
    const r = i.replicas[g]
    if (r === undefined || r.empty) {
      plan.groups.push({ id: g, action: 'recreate', replica: r ?? null, beyondCommit: 0, note: r === undefined ? 'no replica on this host: its data is LOST; recreated empty' : 'the replica here is empty (it never received its first snapshot): its data is LOST; recreated empty' })
      plan.lost.push(g)
      continue
    }
    const beyond = r.lastIndex - r.commit
    const notes: string[] = []
    notes.push(beyond > 0 ? `keeps ${beyond} entr${beyond === 1 ? 'y' : 'ies'} beyond its commit index (${r.commit + 1}..${r.lastIndex}): they become committed` : 'its whole log was committed')
    if (r.role === 'learner') notes.push('this replica was a learner: it may miss entries its leader had committed')
    if (r.role === 'none') notes.push('this replica had been moved away from this host: its data may be old')
    plan.groups.push({ id: g, action: 'keep', replica: r, beyondCommit: beyond, note: notes.join('; ') })
  }
  plan.unknown = Object.keys(i.replicas).filter((g) => !ids.has(g)).sort(groupOrder)
  if (plan.lost.length > 0 && !i.acceptLoss) {
    plan.refusal = `this host holds no data of ${plan.lost.length} group(s): ${plan.lost.join(', ')}; their files and directories would be lost. ` +
      'Look for another surviving host that holds them first; to go on anyway and recreate them empty, add --accept-loss'
  }
  return plan
}

/** schema first, then fs/<i> by number, then the rest by name. */
function groupOrder (a: string, b: string): number {
  const key = (g: string): [number, string, number] => {
    if (g === SCHEMA_GROUP) return [0, '', 0]
    const m = /^(.*)\/(\d+)$/.exec(g)
    return m ? [1, m[1]!, Number(m[2])] : [2, g, 0]
  }
  const [x, y] = [key(a), key(b)]
  return x[0] - y[0] || (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0) || x[2] - y[2]
}

/** The plan as a person reads it before confirming. */
export function formatPlan (p: RecoveryPlan): string {
  const out: string[] = []
  out.push(`walkenfs recover --force-new-cluster on host ${p.host} (node ${p.node}) of cluster ${p.cluster}`)
  out.push('')
  out.push(`This host becomes the only member of the cluster, which continues under a new id: ${p.oldClusterId} → ${p.newClusterId}.`)
  if (p.dropped.length > 0) {
    out.push(`Hosts dropped from the cluster: ${p.dropped.map((h) => `${h.id} (node ${h.node}${h.state !== 'up' ? `, ${h.state}` : ''})`).join(', ')}.`)
    out.push('  They are refused if they come back with their data: move each one\'s data directory away and let it join empty.')
    out.push('  This includes surviving hosts: their logs may differ from this one, so they must join again empty too.')
  } else {
    out.push('No other host is in this host\'s catalog.')
  }
  out.push('')
  const rows = p.groups.map((g) => [g.id, g.replica === null ? 'none' : g.replica.empty ? 'empty' : g.replica.role, num(g.replica?.lastIndex), num(g.replica?.commit), num(g.replica?.applied), g.note])
  const head = ['group', 'replica here', 'last', 'commit', 'applied', 'after the recovery']
  const w = head.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k]!.length)))
  for (const r of [head, ...rows]) out.push('  ' + r.map((x, k) => k === r.length - 1 ? x : x.padEnd(w[k]!)).join('  '))
  if (p.unknown.length > 0) out.push(`  (groups held here that the catalog does not place anywhere, left as they are: ${p.unknown.join(', ')})`)
  out.push('')
  out.push('What can be lost:')
  out.push('  - writes the lost hosts committed that never reached this host: nobody can know them; only what this')
  out.push('    host\'s logs hold (up to "last" above) survives.')
  out.push('  - entries beyond a group\'s commit index on this host are KEPT and become committed, even if the old')
  out.push('    cluster never acknowledged them (a write that failed with EROFS may appear after all).')
  if (p.lost.length > 0) out.push(`  - groups with no data on this host are LOST entirely and recreated empty: ${p.lost.join(', ')}. Files in them disappear; \`walkenfs check\` reports what then dangles.`)
  else out.push('  - every group has a replica on this host: no group is lost entirely.')
  if (p.refusal !== undefined) {
    out.push('')
    out.push(`REFUSED: ${p.refusal}`)
  }
  return out.join('\n')
}

function num (n: number | undefined): string {
  return n === undefined ? '-' : String(n)
}
