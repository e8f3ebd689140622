/**
 * The catalog as a real schema Raft group: three hosts, each with its own
 * lmdb environment, over the in-process transport.
 */
import t from 'tap'
import { CatalogMachine } from '../../src/cluster/catalog-machine.js'
import { encodeCatalog, encodeCommand, type ApplyResult, type CatalogCommand } from '../../src/cluster/catalog.js'
import { SCHEMA_GROUP } from '../../src/cluster/placement.js'
import { RaftError } from '../../src/raft/types.js'
import { TestCluster, type TestHost } from '../raft/cluster.js'

async function createSchema (c: TestCluster, ids: number[], voters: number[], machines: Map<number, CatalogMachine>): Promise<void> {
  for (const id of ids) {
    const th = c.hosts.get(id)!
    const sm = new CatalogMachine(th.root, SCHEMA_GROUP)
    machines.set(id, sm)
    await th.host.createGroup(SCHEMA_GROUP, { voters, learners: [] }, sm)
  }
}

function bytes (sm: CatalogMachine): Buffer {
  return Buffer.from(encodeCatalog(sm.catalog() as never))
}

async function propose (c: TestCluster, cmd: CatalogCommand): Promise<ApplyResult> {
  return await c.propose(SCHEMA_GROUP, encodeCommand(cmd)) as ApplyResult
}

t.test('three hosts apply catalog commands through Raft and agree, rejections included', async (t) => {
  const c = new TestCluster()
  t.teardown(() => c.cleanup())
  for (const id of [1, 2, 3]) c.openHost(id)
  const machines = new Map<number, CatalogMachine>()
  await createSchema(c, [1, 2, 3], [1, 2, 3], machines)
  c.startAll()
  await c.until(() => c.leaderOf(SCHEMA_GROUP) !== undefined, 'a schema leader')

  t.same(await propose(c, { op: 'bootstrap', clusterId: 'cid-1', name: 'prod', host: { id: 'h1', addresses: ['127.0.0.1:7001'] }, at: 1 }), { ok: true })
  t.same(await propose(c, { op: 'addHost', host: { id: 'h2', addresses: ['127.0.0.1:7002'] }, at: 2 }), { ok: true })
  t.same(await propose(c, { op: 'addHost', host: { id: 'h3', addresses: ['127.0.0.1:7003'] }, at: 3 }), { ok: true })
  const dup = await propose(c, { op: 'addHost', host: { id: 'h2', addresses: ['x'] }, at: 4 })
  t.same(dup, { ok: false, error: 'host h2 is already in the catalog (up)' }, 'a rejected command resolves with its error')
  t.same(await propose(c, { op: 'bootstrap', clusterId: 'cid-2', name: 'prod', host: { id: 'h9', addresses: ['y'] }, at: 5 }),
    { ok: false, error: 'the cluster is already bootstrapped (cluster id cid-1)' }, 'a second bootstrap is refused')
  t.same(await propose(c, { op: 'createTable', name: 'files', fragments: 4 }), { ok: true })
  t.same(await propose(c, { op: 'recordMembership', group: SCHEMA_GROUP, replicas: ['h1', 'h2', 'h3'].map((h) => ({ host: h, role: 'voter' as const })), configIndex: 1 }), { ok: true })
  const garbage = await c.propose(SCHEMA_GROUP, new Uint8Array([0xc1, 0xc1, 0xc1])) as ApplyResult
  t.equal(garbage.ok, false, 'bytes that are not a command are rejected, not thrown')

  await c.until(() => [2, 3].every((id) => bytes(machines.get(id)!).equals(bytes(machines.get(1)!))), 'all replicas hold the same catalog')
  const cat = machines.get(1)!.catalog()
  t.equal(cat.clusterId, 'cid-1')
  t.same(cat.hosts.map((h) => h.id), ['h1', 'h2', 'h3'])
  t.same(cat.tables, [{ name: 'files', copies: 3, fragments: 4 }])

  // The catalog row is durable with the applied index: a restarted host reads it back from lmdb.
  await c.hosts.get(3)!.host.idle()
  const before = bytes(machines.get(3)!)
  const appliedBefore = c.hosts.get(3)!.host.status(SCHEMA_GROUP).applied
  await c.stopHost(3)
  const th3 = c.openHost(3)
  const reopened = new CatalogMachine(th3.root, SCHEMA_GROUP)
  t.ok(bytes(reopened).equals(before), 'the reopened machine starts from the committed catalog')
  const applied = th3.host.storage.load(SCHEMA_GROUP).applied
  t.equal(applied, appliedBefore, `the applied index (${applied}) was persisted with it`)
  th3.host.openGroup(SCHEMA_GROUP, reopened)
  machines.set(3, reopened)
  th3.host.start()
  t.same(await propose(c, { op: 'updateAddresses', host: 'h3', addresses: ['127.0.0.1:7303'] }), { ok: true })
  await c.until(() => reopened.catalog().hosts.find((h) => h.id === 'h3')!.addresses[0] === '127.0.0.1:7303', 'the restarted host applies new commands')
  await c.until(() => [1, 2].every((id) => bytes(machines.get(id)!).equals(bytes(reopened))), 'and agrees again')
})

t.test('a learner that joins after compaction gets the catalog by snapshot', async (t) => {
  const c = new TestCluster({ compactAfter: 4 })
  t.teardown(() => c.cleanup())
  for (const id of [1, 2, 3, 4]) c.openHost(id)
  const machines = new Map<number, CatalogMachine>()
  await createSchema(c, [1, 2, 3], [1, 2, 3], machines)
  c.startAll()
  await c.until(() => c.leaderOf(SCHEMA_GROUP) !== undefined, 'a schema leader')
  t.same(await propose(c, { op: 'bootstrap', clusterId: 'cid-7', name: 'lab', host: { id: 'h1', addresses: ['a'] }, at: 1 }), { ok: true })
  for (const h of ['h2', 'h3', 'h4']) t.same(await propose(c, { op: 'addHost', host: { id: h, addresses: [h] }, at: 2 }), { ok: true })
  for (let i = 0; i < 10; i++) t.same(await propose(c, { op: 'createTable', name: `t${i}`, fragments: 1 }), { ok: true })

  const h4: TestHost = c.hosts.get(4)!
  await createSchema(c, [4], [1, 2, 3], machines)
  const leader = c.leaderOf(SCHEMA_GROUP)!
  await leader.host.idle()
  const compacted = leader.host.storage.load(SCHEMA_GROUP).snapshot.meta.index
  t.ok(compacted > 1, `the leader compacted its log up to ${compacted}, so the bootstrap entry is gone from it`)
  const confIndex = await leader.host.changeMembership(SCHEMA_GROUP, { type: 'addLearner', node: 4 })
  t.same(await propose(c, { op: 'recordMembership', group: SCHEMA_GROUP, replicas: [...['h1', 'h2', 'h3'].map((h) => ({ host: h, role: 'voter' as const })), { host: 'h4', role: 'learner' as const }], configIndex: confIndex }), { ok: true })
  const sm4 = machines.get(4)!
  await c.until(() => bytes(sm4).equals(bytes(machines.get(leader.id)!)), 'the learner holds the same catalog')
  t.equal(sm4.catalog().clusterId, 'cid-7', 'the bootstrap, compacted away, reached the learner inside a snapshot')
  t.equal(sm4.catalog().tables.length, 10)
  t.same(sm4.catalog().groups[0].replicas.map((r) => `${r.host}:${r.role}`), ['h1:voter', 'h2:voter', 'h3:voter', 'h4:learner'])
  await t.rejects(h4.host.propose(SCHEMA_GROUP, encodeCommand({ op: 'createTable', name: 'x' })), RaftError, 'a learner cannot change the catalog itself')
})

t.test('snapshot and restore on real lmdb: the restored row is what a reopened machine reads', async (t) => {
  const c = new TestCluster()
  t.teardown(() => c.cleanup())
  const a = c.openHost(1)
  const b = c.openHost(2)
  const src = new CatalogMachine(a.root, SCHEMA_GROUP)
  const entry = (index: number, cmd: CatalogCommand): { index: number, term: number, kind: 'normal', data: Uint8Array } => ({ index, term: 1, kind: 'normal', data: encodeCommand(cmd) })
  await a.root.transaction(() => {
    src.apply(entry(1, { op: 'bootstrap', clusterId: 'snap', name: 'n', host: { id: 'h1', addresses: ['a'] }, at: 1 }))
    src.apply(entry(2, { op: 'createTable', name: 'files', fragments: 2 }))
  })
  const dst = new CatalogMachine(b.root, SCHEMA_GROUP)
  await b.root.transaction(() => dst.restore(src.snapshot()))
  t.ok(bytes(dst).equals(bytes(src)), 'restored state equals the source')
  t.ok(bytes(new CatalogMachine(b.root, SCHEMA_GROUP)).equals(bytes(src)), 'and it is the stored row')
  await b.root.transaction(() => dst.restore(new Uint8Array()))
  t.equal(new CatalogMachine(b.root, SCHEMA_GROUP).catalog().clusterId, null, 'an empty snapshot restores the empty catalog')
  t.throws(() => dst.restore(new Uint8Array([0x01])), /catalog snapshot is damaged/)
})
