/**
 * `walkenfs status` data: what one host knows about the cluster, as plain
 * data (JSON-able) for the CLI to print or dump with --json.
 *
 * Owns: the NodeStatus shape and how it is derived from the node's catalog,
 * failure detector and local Raft groups. Reads only.
 *
 * Verdict: `not-member` until this host is an active member with a catalog;
 * `all` when every fragment of the fs table has a leader this host can see
 * (its own replica knows a leader, or the catalog's hint names a live host);
 * `some-read-only` otherwise (writes to those fragments wait, then EROFS).
 */
import { findGroup, findHost, type Catalog, type HostState } from './catalog.js'
import type { Progress } from './placement.js'
import type { NodePhase } from './node.js'
import type { Identity } from './identity.js'

export interface NodeStatus {
  self: { id: string, node: number | null, clusterId: string | null, clusterName: string, addresses: string[], phase: NodePhase, error: string | null, schemaLeader: boolean }
  hosts: Array<{ id: string, node: number, addresses: string[], up: boolean, detector: string, state: HostState }>
  groups: Array<{
    id: string
    replicas: Array<{ host: string, role: 'voter' | 'learner' }>
    /** The leader's host as this host knows it (own replica first, else the catalog's hint). */
    leader: string | null
    /** This host's replica, if it has one. */
    local: { role: string, term: number, commit: number, applied: number } | null
    /** Whether the group has a leader on a host that is up: writes can commit. */
    hasLeader: boolean
  }>
  /** The schema leader's last plan (null on other hosts). */
  placement: { underReplicated: string[], unavailable: string[], catchingUp: number, deferred: number, draining: Record<string, number>, settled: boolean } | null
  writable: 'all' | 'some-read-only' | 'not-member'
}

/** The node as status() reads it. */
export interface StatusSource {
  readonly identity: Identity
  readonly self: string
  readonly phase: NodePhase
  readonly error: Error | undefined
  readonly wire: { addresses: string[] }
  catalog (): Readonly<Catalog>
  isUp (host: string): boolean
  peerStates (): Record<string, string>
  isSchemaLeader (): boolean
  leaderHint (g: string): string | null
  localGroup (g: string): { role: string, term: number, commit: number, applied: number } | null
  placementProgress (): Progress | null
}

export function buildStatus (n: StatusSource): NodeStatus {
  const c = n.catalog()
  const peers = n.peerStates()
  const hosts = c.hosts.map((h) => ({
    id: h.id, node: h.node, addresses: [...h.addresses], up: n.isUp(h.id),
    detector: h.id === n.self ? 'self' : peers[h.id] ?? 'unknown', state: h.state
  }))
  const groups = c.groups.map((g) => {
    const local = n.localGroup(g.id)
    const leader = n.leaderHint(g.id)
    return {
      id: g.id,
      replicas: g.replicas.map((r) => ({ host: r.host, role: r.role })),
      leader,
      local: local === null ? null : { role: local.role, term: local.term, commit: local.commit, applied: local.applied },
      hasLeader: leader !== null && n.isUp(leader)
    }
  })
  const p = n.placementProgress()
  const me = findHost(c, n.self)
  let writable: NodeStatus['writable'] = 'not-member'
  if (c.clusterId !== null && me?.state === 'up') {
    const fs = c.tables.find((t) => t.name === 'fs')
    let all = fs !== undefined
    for (let i = 0; fs !== undefined && i < fs.fragments; i++) {
      const g = groups.find((x) => x.id === `fs/${i}`)
      if (!g?.hasLeader || findGroup(c, `fs/${i}`) === undefined) all = false
    }
    writable = all ? 'all' : 'some-read-only'
  }
  return {
    self: {
      id: n.self, node: n.identity.node, clusterId: n.identity.clusterId, clusterName: n.identity.clusterName,
      addresses: [...n.wire.addresses], phase: n.phase, error: n.error?.message ?? null, schemaLeader: n.isSchemaLeader()
    },
    hosts,
    groups,
    placement: p === null ? null : { underReplicated: p.underReplicated, unavailable: p.unavailable, catchingUp: p.catchingUp, deferred: p.deferred, draining: p.draining, settled: p.settled },
    writable
  }
}
