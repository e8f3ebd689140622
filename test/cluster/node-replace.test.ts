/**
 * A host closed for longer than replace_after: its replicas are rebuilt on
 * the others back to 3 voters; `retire` of the dead host then finishes and
 * marks it retired in the catalog.
 */
import t from 'tap'
import { findHost } from '../../src/cluster/catalog.js'
import { NodeCluster } from './node-harness.js'

t.test('a dead host is replaced after replace_after, then retired', async (t) => {
  const c = new NodeCluster({ settings: { fragments: 4, copies: 3, replaceAfterMs: 1500 } })
  t.teardown(() => c.cleanup())
  const ids = ['r1', 'r2', 'r3', 'r4']
  const peers = await c.form(ids)
  const holds = (id: string): number => c.get('r1').catalog().groups.filter((g) => g.id.startsWith('fs/') && g.replicas.some((r) => r.host === id)).length
  await c.until(() => NodeCluster.fsSettled(c.get('r1').catalog(), 3) && ids.every((id) => holds(id) >= 2), 'replicas spread over the four hosts')

  const victim = 'r3'
  const before = holds(victim)
  t.ok(before > 0, `${victim} holds ${before} fs replicas`)
  // The victim leads the schema group when it dies, so the actuator itself has to fail over.
  const schemaLeader = (): string | undefined => ids.find((id) => c.nodes.has(id) && c.get(id).isSchemaLeader())
  await c.until(() => c.get('r1').catalog().groups.find((g) => g.id === 'schema')?.replicas.some((r) => r.host === victim && r.role === 'voter') === true, `${victim} is a schema voter`)
  let polls = 0
  await c.until(() => {
    const l = schemaLeader()
    if (l === victim) return true
    // Ask again now and then: a transfer that does not finish within an election timeout is dropped by Raft.
    if (l !== undefined && polls++ % 50 === 0) {
      try { c.get(l).raft.transferLeadership('schema', c.get(victim).identity.node!) } catch { /* a leader change in between: next time */ }
    }
    return false
  }, `${victim} leads the schema group`)
  await c.stop(victim)
  const alive = ids.filter((id) => id !== victim)
  await c.until(() => alive.every((id) => NodeCluster.fsSettled(c.get(id).catalog(), 3, [victim])), 'every fs group back to 3 voters without the dead host', 6000)
  // The rebuilt replicas are real Raft members, not just catalog rows.
  for (let i = 0; i < 4; i++) {
    const g = `fs/${i}`
    // A replica removed by a recent rebalance may wait out replicaGraceMs before it is deleted.
    await c.until(() => alive.filter((id) => c.get(id).localGroup(g) !== null).length === 3, `${g} has a replica on exactly 3 live hosts`)
    const holders = alive.filter((id) => c.get(id).localGroup(g) !== null)
    t.same(holders, c.get('r1').catalog().groups.find((x) => x.id === g)!.replicas.map((r) => r.host), `${g}: the replicas are where the catalog says`)
    await c.until(() => holders.every((id) => c.get(id).localGroup(g)!.config.voters.length === 3), `${g}: every replica sees 3 voters`)
  }
  t.equal(c.get('r2').status().hosts.find((h) => h.id === victim)?.up, false, 'status shows the dead host down')

  await c.get('r2').retire(victim, { timeoutMs: 30_000 })
  t.equal(findHost(c.get('r2').catalog(), victim)?.state, 'retired', 'the dead host is retired')
  await c.until(() => alive.every((id) => findHost(c.get(id).catalog(), victim)?.state === 'retired'), 'every host sees it retired')
  t.notOk(c.get('r1').catalog().groups.some((g) => g.replicas.some((r) => r.host === victim)), 'no group keeps a replica on it')
  await t.rejects(c.get('r1').retire('nosuch'), /not in this cluster's catalog/)

  // The retired host comes back on its old data directory: it is told why it cannot take part.
  const back = await c.start(victim, { peers, discoverMs: 2000 })
  await t.rejects(back.node.ready(), /r3 was retired from cluster .* wipe this data directory/)
  t.equal(back.node.status().self.phase, 'error')
  t.equal(findHost(c.get('r1').catalog(), victim)?.state, 'retired', 'and it stays retired')
})
