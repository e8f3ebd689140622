/**
 * Three empty hosts started together with expect=3 form ONE cluster: the
 * catalog agrees on all three, every fs fragment ends with 3 voters (founded
 * with them, once all three are up); a fourth host joins and becomes a member.
 */
import t from 'tap'
import { findGroup, type Catalog } from '../../src/cluster/catalog.js'
import { NodeCluster } from './node-harness.js'

function summary (c: Readonly<Catalog>): string {
  return JSON.stringify({ id: c.clusterId, hosts: c.hosts.map((h) => [h.id, h.node, h.state]), tables: c.tables })
}

t.test('three empty hosts with expect=3 form one cluster; a fourth joins', async (t) => {
  const c = new NodeCluster({ expect: 3 })
  t.teardown(() => c.cleanup())
  const ids = ['h1', 'h2', 'h3']
  await c.reserve([...ids, 'h4'])
  const peers = await c.peersOf(ids)
  // Start in reverse order: the lowest id must still be the one that bootstraps.
  for (const id of [...ids].reverse()) await c.start(id, { peers })
  await Promise.all(ids.map(async (id) => await c.get(id).ready()))
  const ids3 = new Set(ids.map((id) => c.get(id).identity.clusterId))
  t.equal(ids3.size, 1, 'one cluster id on all three hosts')
  t.equal(c.get('h1').identity.node, 1, 'the lowest id bootstrapped as node 1')
  await c.until(() => ids.every((id) => NodeCluster.fsSettled(c.get(id).catalog(), 3)), 'every fs fragment has 3 voters on every host')
  await c.until(() => new Set(ids.map((id) => summary(c.get(id).catalog()))).size === 1, 'catalogs agree')
  const cat = c.get('h2').catalog()
  t.same(cat.hosts.map((h) => h.id), ids, 'three hosts in the catalog')
  t.same(cat.tables.map((x) => [x.name, x.copies, x.fragments]), [['fs', 3, 4]], 'the fs table with the bootstrap settings')
  // The Raft groups themselves agree with the catalog.
  for (let i = 0; i < 4; i++) {
    const g = `fs/${i}`
    for (const id of ids) {
      const s = c.get(id).localGroup(g)
      t.ok(s, `${id} holds a replica of ${g}`)
      t.equal(s!.config.voters.length, 3, `${id} sees 3 voters in ${g}`)
      // The fs table waited for the expected hosts: each fragment was founded with its 3 voters, no membership change after.
      t.equal(s!.configIndex, 0, `${id}: ${g} still has its founding configuration`)
    }
  }
  t.ok(c.nodes.get('h3')!.logs.some((l) => /waiting: 1 of 3 expected hosts seen/.test(l)), 'the first host up said what it waits for')

  // RouterEnv, as the transactions layer uses it.
  for (const id of ids) c.get(id).handle('test.echo', async (p, from) => ({ p, at: id, from }))
  t.same(await c.get('h2').call('h1', 'test.echo', 5, 2000), { p: 5, at: 'h1', from: 'h2' }, 'call reaches another host, which sees the caller')
  t.same(await c.get('h2').call('h2', 'test.echo', 6, 2000), { p: 6, at: 'h2', from: 'h2' }, 'call to itself runs the local handler')
  const env = c.get('h3')
  t.equal(env.self, 'h3')
  t.equal(env.hostOfNode(1), 'h1')
  t.equal(env.hostOfNode(99), undefined)
  t.same(env.replicas('fs/0'), ids, 'replicas per the catalog')
  t.ok(ids.includes(env.leaderHint('fs/0') ?? ''), 'a leader hint')
  t.ok(env.hasGroup('fs/0') && !env.hasGroup('fs/9'))
  t.equal(env.quorumWaitMs(), 10_000, 'quorum wait from the catalog (default 10 s)')
  t.equal(env.raft.id, env.identity.node)

  const st = c.get('h3').status()
  t.equal(st.writable, 'all')
  t.equal(st.hosts.length, 3)

  await c.start('h4', { peers: await c.peersOf(['h2']) })
  await c.get('h4').ready()
  t.equal(c.get('h4').identity.clusterId, c.get('h1').identity.clusterId, 'the fourth host joined the same cluster')
  t.equal(c.get('h4').identity.node, 4)
  await c.until(() => findGroup(c.get('h4').catalog(), 'schema')?.replicas.some((r) => r.host === 'h4') === true, 'h4 holds a schema replica')
  // With copies=3 and 4 hosts, rebalancing moves some replicas to h4 (4 fragments × 3 = 12 replicas → 3 per host).
  await c.until(() => {
    const k = c.get('h1').catalog()
    if (!NodeCluster.fsSettled(k, 3)) return false
    const per = new Map<string, number>()
    for (const g of k.groups) if (g.id.startsWith('fs/')) for (const r of g.replicas) per.set(r.host, (per.get(r.host) ?? 0) + 1)
    return (per.get('h4') ?? 0) >= 2 && Math.max(...per.values()) - Math.min(...per.values()) <= 1
  }, 'replicas rebalanced onto h4')
  t.equal(c.get('h4').status().writable, 'all')
})
