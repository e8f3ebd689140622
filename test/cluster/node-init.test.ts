/**
 * `init`: one host bootstraps alone with copies=3; two more join and every
 * group tops up to 3 replicas. Then a restart of a host (close, reopen on
 * the same data directory) resumes without bootstrapping anything.
 */
import t from 'tap'
import { findGroup } from '../../src/cluster/catalog.js'
import { NodeCluster } from './node-harness.js'

t.test('init alone, two join: every group tops up to 3 replicas; a restart resumes', async (t) => {
  const c = new NodeCluster()
  t.teardown(() => c.cleanup())
  await c.reserve(['a', 'b', 'c'])
  await c.start('a', { mode: 'init' })
  await c.get('a').ready()
  const clusterId = c.get('a').identity.clusterId
  t.ok(clusterId, 'a bootstrapped a cluster')
  const alone = c.get('a').catalog()
  for (let i = 0; i < 4; i++) t.same(findGroup(alone, `fs/${i}`)?.replicas, [{ host: 'a', role: 'voter' }], `fs/${i} starts with the one host it has`)
  t.same(c.get('a').status().placement?.underReplicated.filter((g) => g.startsWith('fs/')), ['fs/0', 'fs/1', 'fs/2', 'fs/3'], 'status reports them under-replicated')

  const peers = await c.peersOf(['a'])
  await c.start('b', { peers })
  await c.start('c', { peers })
  await Promise.all(['b', 'c'].map(async (id) => await c.get(id).ready()))
  await c.until(() => ['a', 'b', 'c'].every((id) => NodeCluster.fsSettled(c.get(id).catalog(), 3)), 'every fs group has 3 voters')
  for (const id of ['b', 'c']) t.equal(c.get(id).identity.clusterId, clusterId, `${id} joined ${clusterId}`)
  await c.until(() => ['a', 'b', 'c'].every((id) => findGroup(c.get(id).catalog(), 'schema')?.replicas.filter((r) => r.role === 'voter').length === 3), 'the schema group has 3 voters')

  // Restart b: same data directory and port, no bootstrap, no join: it resumes as node 2 or 3 of the same cluster.
  const before = c.get('b').identity
  await c.stop('b')
  // A short outage (well under replace_after) moves nothing: b keeps its replicas while it is seen down.
  await c.until(() => c.get('a').status().hosts.find((h) => h.id === 'b')?.up === false, 'a sees b down')
  for (let i = 0; i < 10; i++) await new Promise((r) => setTimeout(r, 150))
  t.ok(['fs/0', 'fs/1', 'fs/2', 'fs/3'].every((g) => c.get('a').replicas(g).includes('b')), 'b keeps every replica during a short outage')
  t.equal(c.get('a').status().writable, 'all', 'two of three voters keep every fragment writable')
  const again = await c.start('b', { peers })
  await again.node.ready()
  t.same(again.node.identity, before, 'the same identity after a restart')
  t.notOk(again.logs.some((l) => /bootstrapping|joining/.test(l)), 'a restarted host neither bootstraps nor joins')
  t.equal(again.node.catalog().hosts.length, 3, 'no new host in the catalog')
  await c.until(() => ['fs/0', 'fs/1', 'fs/2', 'fs/3'].every((g) => again.node.localGroup(g)?.lead !== 0 && again.node.localGroup(g) !== null), 'b serves its replicas again')
  t.equal(again.node.status().writable, 'all')
  // Starting with another host id on b's data directory is refused with a clear error.
  await c.stop('b')
  await t.rejects(c.start('b', { peers, hostId: 'other' }), /belongs to host "b", but host=other was given/)
  await c.nodes.get('b')?.store.close()
  c.nodes.delete('b')
})

t.test('a bootstrap cut short after the identity write is finished by the next start', async (t) => {
  const c = new NodeCluster()
  t.teardown(() => c.cleanup())
  // What a crash right after the identity write leaves: {clusterId, node 1, bootstrapping} and no raft group.
  const { Store } = await import('../../src/store/store.js')
  const { IdentityStore } = await import('../../src/cluster/identity.js')
  const { join } = await import('node:path')
  const store = Store.open(join(c.base, 'k'), { autoFlushMs: 0 })
  const ids = new IdentityStore(store.lmdbRoot, async () => { store.noteCommit(); await store.flush() })
  await ids.open('k', 'k', 'nodetest')
  await ids.setMember('nodetest-cut-short', 1, true)
  await store.close()
  const k = await c.start('k')
  await k.node.ready()
  t.equal(k.node.catalog().clusterId, 'nodetest-cut-short', 'the catalog is bootstrapped with the stored cluster id')
  t.equal(k.node.identity.bootstrapping, undefined, 'the mark is cleared')
  t.ok(NodeCluster.fsSettled(k.node.catalog(), 1), 'the fs groups exist')
})
