/**
 * The bootstrap decision of a starting host: wait, bootstrap a new cluster,
 * join an existing one, resume its own, or stop with an error.
 *
 * Owns: the rule that decides when a new cluster forms (docs/catalog.md).
 * Pure: what the host sees arrives as input; it holds no I/O and no clock.
 *
 * Promises:
 * - a host that has data (a cluster id) never bootstraps;
 * - an empty host bootstraps only when it sees at least `expect` empty
 *   hosts (itself included), no member of any cluster, and it has the
 *   lowest id among them; when peers report whom they see, only if every
 *   one of them sees exactly the same set of empty hosts. Hence two hosts
 *   that see each other never both bootstrap, and two bootstrapping hosts
 *   whose peers report their views never share a member;
 * - seeing two cluster ids, or a cluster id other than its own, is an error
 *   with a message naming the hosts and ids, never a silent choice.
 */

export interface SelfState {
  id: string
  /** The cluster id in this host's store, or null when the store is empty. */
  clusterId: string | null
}

export interface BootstrapSettings {
  /** The cluster name (`cluster=`); discovery only shows peers with the same name and cookie. */
  cluster: string
  /** Empty hosts that must see each other before a new cluster forms (`expect=N`). */
  expect: number
}

export interface PeerView {
  id: string
  /** The peer's cluster id, or null when it is empty. */
  clusterId: string | null
  /** The schema group's leader as the peer believes it (members only). */
  leaderHint?: string | null
  /** The empty hosts the peer sees, itself included, when it reports them. */
  sees?: string[]
}

export type BootstrapDecision =
  | { kind: 'wait', reason: string }
  | { kind: 'bootstrap', members: string[] }
  | { kind: 'join', clusterId: string, via: string[], leaderHint: string | null }
  | { kind: 'resume', clusterId: string }
  | { kind: 'error', message: string }

function sorted (xs: Iterable<string>): string[] {
  return [...xs].sort((a, b) => a < b ? -1 : a > b ? 1 : 0)
}

function sameSet (a: string[], b: string[]): boolean {
  const sa = sorted(new Set(a))
  const sb = sorted(new Set(b))
  return sa.length === sb.length && sa.every((x, i) => x === sb[i])
}

/** The most common leader hint among members, ties broken by the lowest host id. */
function bestHint (members: PeerView[]): string | null {
  const votes = new Map<string, number>()
  for (const p of members) if (p.leaderHint != null) votes.set(p.leaderHint, (votes.get(p.leaderHint) ?? 0) + 1)
  let best: string | null = null
  for (const h of sorted(votes.keys())) if (best === null || votes.get(h)! > votes.get(best)!) best = h
  return best
}

export function decideBootstrap (self: SelfState, settings: BootstrapSettings, seen: PeerView[]): BootstrapDecision {
  if (!Number.isInteger(settings.expect) || settings.expect < 1) {
    return { kind: 'error', message: `expect=${String(settings.expect)} is not allowed: it must be a whole number of hosts, at least 1` }
  }
  if (typeof self.id !== 'string' || self.id === '') return { kind: 'error', message: 'this host has no id' }

  const peers = new Map<string, PeerView>()
  for (const p of seen) {
    if (p.id === self.id) {
      return { kind: 'error', message: `another host reports this host's own id ${self.id}; host ids must be unique in cluster ${settings.cluster}` }
    }
    const prior = peers.get(p.id)
    if (prior && prior.clusterId !== p.clusterId) {
      return { kind: 'error', message: `host ${p.id} is reported both as ${prior.clusterId ?? 'empty'} and as ${p.clusterId ?? 'empty'}; two hosts share that id?` }
    }
    peers.set(p.id, p)
  }
  const all = sorted(peers.keys()).map((id) => peers.get(id)!)
  const members = all.filter((p) => p.clusterId !== null)
  const ids = sorted(new Set(members.map((p) => p.clusterId!)))

  if (self.clusterId !== null) {
    const foreign = members.filter((p) => p.clusterId !== self.clusterId)
    if (foreign.length > 0) {
      const f = foreign[0]
      return { kind: 'error', message: `this host belongs to cluster id ${self.clusterId}, but host ${f.id} (cluster name ${settings.cluster}) belongs to cluster id ${f.clusterId}; two clusters share the name and cookie — give them different cluster= names, or wipe the host that should join the other cluster` }
    }
    // A host with data runs its own groups; it never forms a new cluster, even when it sees nobody.
    return { kind: 'resume', clusterId: self.clusterId }
  }

  if (ids.length > 1) {
    const where = ids.map((id) => `${id} (${members.filter((p) => p.clusterId === id).map((p) => p.id).join(', ')})`).join(' and ')
    return { kind: 'error', message: `hosts of cluster name ${settings.cluster} belong to different cluster ids: ${where}; refusing to choose one — give the clusters different cluster= names or cookies` }
  }
  if (ids.length === 1) {
    return { kind: 'join', clusterId: ids[0], via: members.map((p) => p.id), leaderHint: bestHint(members) }
  }

  const empty = sorted([self.id, ...all.map((p) => p.id)])
  if (empty.length < settings.expect) {
    return { kind: 'wait', reason: `${empty.length} of ${settings.expect} expected hosts seen` }
  }
  if (empty[0] !== self.id) {
    return { kind: 'wait', reason: `host ${empty[0]} has the lowest id of the ${empty.length} empty hosts seen; waiting for it to bootstrap the cluster` }
  }
  for (const p of all) {
    if (p.sees !== undefined && !sameSet([...p.sees, p.id], empty)) {
      return { kind: 'wait', reason: `host ${p.id} sees a different set of empty hosts (${sorted(new Set([...p.sees, p.id])).join(', ')}) than this host (${empty.join(', ')}); waiting until the views agree` }
    }
  }
  return { kind: 'bootstrap', members: empty }
}
