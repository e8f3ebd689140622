import t from 'tap'
import { clusterView, exitCodeOf, formatCluster } from '../../src/cli/cluster-status.js'
import type { NodeStatus } from '../../src/cluster/node-status.js'

function status (over: Partial<NodeStatus> = {}): NodeStatus {
  const group = (id: string, hosts: string[], leader: string | null, hasLeader = true) => ({
    id, replicas: hosts.map((host) => ({ host, role: 'voter' as const })), leader,
    local: { role: leader === 'a' ? 'leader' : 'follower', term: 3, commit: 10, applied: 10 }, hasLeader
  })
  return {
    self: { id: 'a', node: 1, clusterId: 'prod-1', clusterName: 'prod', addresses: ['10.0.0.1:7400'], phase: 'member', error: null, schemaLeader: true },
    hosts: [
      { id: 'a', node: 1, addresses: ['10.0.0.1:7400'], up: true, detector: 'self', state: 'up' },
      { id: 'b', node: 2, addresses: ['10.0.0.2:7400'], up: true, detector: 'up', state: 'up' },
      { id: 'c', node: 3, addresses: ['10.0.0.3:7400'], up: false, detector: 'down', state: 'up' }
    ],
    groups: [group('schema', ['a', 'b', 'c'], 'a'), group('fs/0', ['a', 'b', 'c'], 'a'), group('fs/1', ['a', 'b'], 'b')],
    placement: null,
    writable: 'all',
    ...over
  } as NodeStatus
}

t.test('a healthy view: exit 0, leaders counted, under-replication derived from copies when this host has no plan', async (t) => {
  const v = clusterView(status(), new Set(), 3)
  t.equal(v.writable, 'all')
  t.equal(exitCodeOf(v), 0)
  t.same(v.fragments.map((f) => f.group), ['fs/0', 'fs/1'], 'the schema group is kept apart')
  t.same(v.placement.underReplicated, ['fs/1'])
  t.equal(v.placement.settled, false)
  const text = formatCluster(v)
  t.match(text, /cluster prod \(id prod-1\), this host a \(node 1\), schema leader/)
  t.match(text, /WRITABLE/)
  t.match(text, /c\s+DOWN/)
  t.match(text, /a\s+up\s+leads\s+1/)
  t.match(text, /fs\/1\s+a b\*\s+under-replicated/)
})

t.test('a fragment without quorum or served stale makes the host read-only somewhere: exit 2', async (t) => {
  const s = status()
  s.groups[1]!.hasLeader = false
  const v = clusterView(s, new Set(), 3)
  t.equal(v.writable, 'some-read-only')
  t.equal(exitCodeOf(v), 2)
  t.match(formatCluster(v), /fs\/0 .*NO QUORUM/)
  const stale = clusterView(status(), new Set(['fs/1']), 2)
  t.equal(exitCodeOf(stale), 2)
  t.match(formatCluster(stale), /stale reads here/)
})

t.test('not a member: exit 1', async (t) => {
  const v = clusterView(status({ writable: 'not-member', groups: [] }), new Set(), null)
  t.equal(exitCodeOf(v), 1)
  t.match(formatCluster(v), /NOT A MEMBER/)
})
