/**
 * What `walkenfs status` shows of a cluster mount: the node's view
 * (src/cluster/node-status.ts) plus what the transactions layer knows
 * (fragments served stale), as one JSON-able object, a page a person reads
 * at a glance, and the exit code a script tests.
 *
 * Exit codes: 0 = this host is in quorum for everything (safe to serve);
 * 2 = some fragments are read-only here (no reachable majority: reads are
 * stale, writes fail with EROFS after quorum_wait); 1 = not a member (or
 * not mounted).
 *
 * Pure: no I/O.
 */
import type { NodeStatus } from '../cluster/node-status.js'

export interface FragmentView {
  group: string
  replicas: Array<{ host: string, role: 'voter' | 'learner' }>
  leader: string | null
  /** whether writes can commit (a leader on a live host) */
  quorum: boolean
  /** reads of this fragment were last served from the local replica without a leader (stale) */
  stale: boolean
  /** this host's replica: how far it has applied the log, and how far behind the commit index it is */
  local: { role: string, applied: number, lag: number } | null
  underReplicated: boolean
}

export interface ClusterView {
  name: string
  id: string | null
  host: string
  node: number | null
  phase: string
  error: string | null
  schemaLeader: boolean
  writable: 'all' | 'some-read-only' | 'not-member'
  copies: number | null
  hosts: Array<{ id: string, node: number, addresses: string[], up: boolean, state: string }>
  fragments: FragmentView[]
  /** other Raft groups (the schema) */
  groups: FragmentView[]
  placement: { underReplicated: string[], catchingUp: number, draining: Record<string, number>, settled: boolean }
}

export function clusterView (s: NodeStatus, stale: ReadonlySet<string>, copies: number | null): ClusterView {
  const view = (g: NodeStatus['groups'][number]): FragmentView => {
    const voters = g.replicas.filter((r) => r.role === 'voter').length
    return {
      group: g.id,
      replicas: g.replicas.map((r) => ({ host: r.host, role: r.role })),
      leader: g.leader,
      quorum: g.hasLeader,
      stale: stale.has(g.id),
      local: g.local === null ? null : { role: g.local.role, applied: g.local.applied, lag: Math.max(0, g.local.commit - g.local.applied) },
      underReplicated: copies !== null && g.id !== 'schema' && voters < copies
    }
  }
  const fragments = s.groups.filter((g) => g.id !== 'schema').map(view)
  const underReplicated = s.placement?.underReplicated ?? fragments.filter((f) => f.underReplicated).map((f) => f.group)
  const writable = s.writable === 'not-member' ? 'not-member' : fragments.some((f) => !f.quorum || f.stale) ? 'some-read-only' : s.writable
  return {
    name: s.self.clusterName,
    id: s.self.clusterId,
    host: s.self.id,
    node: s.self.node,
    phase: s.self.phase,
    error: s.self.error,
    schemaLeader: s.self.schemaLeader,
    writable,
    copies,
    hosts: s.hosts.map((h) => ({ id: h.id, node: h.node, addresses: h.addresses, up: h.up, state: h.state })),
    fragments,
    groups: s.groups.filter((g) => g.id === 'schema').map(view),
    placement: {
      underReplicated,
      catchingUp: s.placement?.catchingUp ?? 0,
      draining: s.placement?.draining ?? {},
      settled: s.placement?.settled ?? underReplicated.length === 0
    }
  }
}

export function exitCodeOf (v: ClusterView): number {
  return v.writable === 'all' ? 0 : v.writable === 'some-read-only' ? 2 : 1
}

const VERDICT: Record<ClusterView['writable'], string> = {
  all: 'WRITABLE: in quorum for every fragment',
  'some-read-only': 'READ-ONLY in part: some fragments have no reachable majority (stale reads; writes fail with EROFS after quorum_wait)',
  'not-member': 'NOT A MEMBER of the cluster yet'
}

export function formatCluster (v: ClusterView): string {
  const out: string[] = []
  out.push(`cluster ${v.name} (id ${v.id ?? 'none yet'}), this host ${v.host}${v.node !== null ? ` (node ${v.node})` : ''}${v.schemaLeader ? ', schema leader' : ''}: ${v.phase}`)
  out.push(`  ${VERDICT[v.writable]}`)
  if (v.error) out.push(`  ERROR: ${v.error}`)
  out.push('  hosts:')
  const leads = new Map<string, number>()
  for (const f of v.fragments) if (f.leader) leads.set(f.leader, (leads.get(f.leader) ?? 0) + 1)
  for (const h of v.hosts) {
    const state = h.state !== 'up' ? ` ${h.state.toUpperCase()}` : ''
    out.push(`    ${h.id.padEnd(16)} ${(h.up ? 'up' : 'DOWN').padEnd(5)}${state} leads ${String(leads.get(h.id) ?? 0).padStart(3)}  ${h.addresses.join(' ')}${h.id === v.host ? '  (this host)' : ''}`)
  }
  const bad = v.fragments.filter((f) => !f.quorum || f.stale || f.underReplicated || (f.local?.lag ?? 0) > 0)
  out.push(`  fragments: ${v.fragments.length}${v.copies !== null ? `, ${v.copies} copies wanted` : ''}; ${bad.length === 0 ? 'all healthy' : `${bad.length} need attention:`}`)
  for (const f of bad.slice(0, 50)) {
    const notes = [
      !f.quorum ? 'NO QUORUM' : '',
      f.stale ? 'stale reads here' : '',
      f.underReplicated ? 'under-replicated' : '',
      (f.local?.lag ?? 0) > 0 ? `lag ${f.local!.lag}` : ''
    ].filter((x) => x !== '')
    out.push(`    ${f.group.padEnd(8)} ${f.replicas.map((r) => `${r.host}${r.host === f.leader ? '*' : ''}${r.role === 'learner' ? '(learner)' : ''}`).join(' ')}  ${notes.join(', ')}`)
  }
  if (bad.length > 50) out.push(`    … and ${bad.length - 50} more (see --json)`)
  const p = v.placement
  out.push(`  placement: ${p.settled ? 'settled' : `${p.underReplicated.length} under-replicated, ${p.catchingUp} copies in flight`}` +
    `${Object.keys(p.draining).length > 0 ? `; draining ${Object.entries(p.draining).map(([h, n]) => `${h} (${n} left)`).join(', ')}` : ''}`)
  return out.join('\n')
}
