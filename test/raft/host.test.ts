import t from 'tap'
import { RaftError, type Entry, type Snapshot } from '../../src/raft/types.js'
import { TestCluster, type TestHost } from './cluster.js'
import { KvMachine } from './kv-machine.js'

t.test('three hosts on real lmdb replicate, apply and read linearizably', async (t) => {
  const c = new TestCluster()
  t.teardown(() => c.cleanup())
  const leader = await c.startGroup('g', [1, 2, 3])
  const writes = []
  for (let i = 0; i < 50; i++) writes.push(leader.host.propose('g', KvMachine.encode(`k${i}`, `v${i}`)))
  const results = await Promise.all(writes)
  t.same(results, Array.from({ length: 50 }, (_, i) => `v${i}`), 'each proposal resolves with its applied result')
  // A follower's read waits for a read point confirmed by the leader, so it sees every acknowledged write.
  const follower = [...c.hosts.values()].find((h) => h !== leader)!
  // A follower that has not heard from the leader yet refuses reads (NOT_LEADER); wait until it has.
  await c.until(() => follower.host.status('g').lead === leader.id, 'follower knows the leader')
  await follower.host.read('g')
  t.equal(follower.machines.get('g')!.get('k49'), 'v49')
  await c.until(() => [...c.hosts.values()].every((h) => h.machines.get('g')!.get('k49') === 'v49'), 'all hosts applied')
  for (const h of c.hosts.values()) {
    await h.host.idle()
    const init = h.host.storage.load('g')
    t.ok(init.hardState.commit >= 51, `host ${h.id} persisted commit ${init.hardState.commit}`)
    t.ok(init.applied >= 51, `host ${h.id} persisted applied ${init.applied} with its rows`)
  }
})

t.test('with leases, a follower that reads holds a read lease: its reads take no round and still see every acknowledged write', async (t) => {
  const c = new TestCluster({ leaseReads: true })
  t.teardown(() => c.cleanup())
  const leader = await c.startGroup('g', [1, 2, 3])
  const [follower, other] = [...c.hosts.values()].filter((h) => h !== leader)
  await c.until(() => follower.host.status('g').lead === leader.id, 'follower knows the leader')
  for (let i = 0; i < 200; i++) {
    await leader.host.propose('g', KvMachine.encode('k', `v${i}`))
    await follower.host.read('g')
    t.equal(follower.machines.get('g')!.get('k'), `v${i}`, `read ${i} on the follower sees the write acknowledged before it`)
    if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  // Right after a write the follower usually holds the entry before it learns that it committed,
  // and asks the leader; reads with no write in between are answered by its lease.
  const before = follower.host.stats.followerLeaseReads
  for (let i = 0; i < 50; i++) {
    await follower.host.read('g')
    t.equal(follower.machines.get('g')!.get('k'), 'v199')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  const byLease = follower.host.stats.followerLeaseReads - before
  t.ok(byLease > 0, `${byLease} of 50 follower reads without writes between them answered by its lease`)
  t.equal(other.host.stats.followerLeaseReads, 0, 'a follower that serves no reads holds no lease')

  // Cut off, the lease holder stops answering alone once its lease ends, and the leader's
  // commits wait for it only until then.
  c.net.setLink(follower.id, leader.id, false)
  c.net.setLink(follower.id, other.id, false)
  const t0 = Date.now()
  await leader.host.propose('g', KvMachine.encode('k', 'after-cut'))
  const waited = Date.now() - t0
  t.ok(waited < 5000, `a write commits without the cut-off lease holder (after ${waited} ms)`)
  const held = follower.host.stats.followerLeaseReads
  await t.rejects(follower.host.read('g'), 'the cut-off follower can no longer read alone')
  t.equal(follower.host.stats.followerLeaseReads, held, 'and answered no read by lease')
  t.not(follower.machines.get('g')!.get('k'), 'after-cut')
  for (const h of [leader, other]) c.net.setLink(follower.id, h.id, true)
})

t.test('a follower refuses proposals and names the leader', async (t) => {
  const c = new TestCluster()
  t.teardown(() => c.cleanup())
  for (const id of [1, 2, 3]) c.openHost(id)
  await c.createGroup('g', [1, 2, 3])
  c.startAll()
  await c.until(() => c.leaderOf('g') !== undefined, 'a leader')
  const leader = c.leaderOf('g')!
  await c.until(() => [...c.hosts.values()].every((h) => h.host.status('g').lead === leader.id), 'followers know the leader')
  const follower = [...c.hosts.values()].find((h) => h !== leader)!
  const err = await follower.host.propose('g', KvMachine.encode('x', 'y')).then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof RaftError, 'a RaftError')
  t.equal((err as RaftError).code, 'NOT_LEADER')
  t.equal((err as RaftError).leader, leader.id)
  t.match((err as RaftError).message, new RegExp(`host ${leader.id} leads group g`))
})

t.test('a restarted host recovers its log, hard state and state machine exactly, then catches up', async (t) => {
  const c = new TestCluster()
  t.teardown(() => c.cleanup())
  for (const id of [1, 2, 3]) c.openHost(id)
  await c.createGroup('g', [1, 2, 3])
  c.startAll()
  await c.until(() => c.leaderOf('g') !== undefined, 'a leader')
  let leader = c.leaderOf('g')!
  for (let i = 0; i < 20; i++) await c.propose('g', KvMachine.encode(`a${i}`, `${i}`))
  leader = c.leaderOf('g')!
  const victim = [...c.hosts.values()].find((h) => h !== leader)!
  await c.until(() => victim.machines.get('g')!.get('a19') === '19', 'victim applied')
  await victim.host.idle()
  const before = victim.host.storage.load('g')
  await c.stopHost(victim.id)
  // Writes continue on the remaining majority.
  for (let i = 0; i < 20; i++) await c.propose('g', KvMachine.encode(`b${i}`, `${i}`))
  const back = c.openHost(victim.id)
  const after = back.host.storage.load('g')
  t.same(after.hardState, before.hardState, 'hard state read back unchanged')
  t.same(after.entries.map((e) => [e.index, e.term]), before.entries.map((e) => [e.index, e.term]), 'log read back unchanged')
  t.equal(after.applied, before.applied, 'applied index read back unchanged')
  c.reopenGroups(back)
  t.equal(back.machines.get('g')!.get('a19'), '19', 'state machine rows survived')
  back.host.start()
  await c.propose('g', KvMachine.encode('c', 'done'))
  await c.until(() => back.machines.get('g')!.get('c') === 'done' && back.machines.get('g')!.get('b19') === '19', 'restarted host caught up')
  t.pass('caught up')
})

t.test('hundreds of groups share one flush per cycle and one batch per host pair', async (t) => {
  const c = new TestCluster({ tickMs: 20 })
  t.teardown(() => c.cleanup())
  for (const id of [1, 2, 3]) c.openHost(id)
  const groups = Array.from({ length: 200 }, (_, i) => `frag${i}`)
  for (const g of groups) await c.createGroup(g, [1, 2, 3])
  c.startAll()
  await c.until(() => groups.every((g) => c.leaderOf(g) !== undefined), 'a leader in every group', 3000)
  const before = [...c.hosts.values()].map((h) => ({ ...h.host.stats }))
  await Promise.all(groups.map((g) => c.propose(g, KvMachine.encode('k', g))))
  const after = [...c.hosts.values()].map((h) => ({ ...h.host.stats }))
  let tx = 0; let batches = 0; let msgs = 0
  after.forEach((a, i) => { tx += a.transactions - before[i].transactions; batches += a.batchesSent - before[i].batchesSent; msgs += a.messagesSent - before[i].messagesSent })
  t.comment(`200 proposals in 200 groups: ${tx} lmdb transactions, ${batches} batches carrying ${msgs} messages`)
  t.ok(tx < 200, `fewer transactions (${tx}) than groups written`)
  t.ok(msgs / batches > 2, `messages coalesced per batch (${(msgs / Math.max(1, batches)).toFixed(1)})`)
  for (const g of groups.slice(0, 5)) {
    await c.until(() => [...c.hosts.values()].every((h) => h.machines.get(g)!.get('k') === g), `group ${g} applied everywhere`)
  }
})

t.test('membership: a learner catches up, is promoted, and a voter is removed', async (t) => {
  const c = new TestCluster()
  t.teardown(() => c.cleanup())
  for (const id of [1, 2, 3, 4]) c.openHost(id)
  await c.createGroup('g', [1, 2, 3])
  // Host 4 joins with the same initial snapshot; it learns its role from the log.
  const h4 = c.hosts.get(4)!
  const sm4 = new KvMachine(h4.root, 'g')
  h4.machines.set('g', sm4)
  await h4.host.createGroup('g', { voters: [1, 2, 3], learners: [] }, sm4)
  c.startAll()
  await c.until(() => c.leaderOf('g') !== undefined, 'a leader')
  const leader = c.leaderOf('g')!
  for (let i = 0; i < 10; i++) await c.propose('g', KvMachine.encode(`m${i}`, `${i}`))
  await t.rejects(leader.host.changeMembership('g', { type: 'promote', node: 4 }), /not a learner/)
  await leader.host.changeMembership('g', { type: 'addLearner', node: 4 })
  await c.until(() => sm4.get('m9') === '9', 'learner caught up')
  let promoted = false
  for (let i = 0; i < 100 && !promoted; i++) {
    try {
      await leader.host.changeMembership('g', { type: 'promote', node: 4 })
      promoted = true
    } catch (e) {
      if (!(e instanceof RaftError) || e.code !== 'BUSY') throw e
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  t.ok(promoted, 'learner promoted once caught up')
  t.same(leader.host.status('g').config.voters, [1, 2, 3, 4])
  const victim = [1, 2, 3].find((id) => id !== leader.id)!
  await leader.host.changeMembership('g', { type: 'remove', node: victim })
  t.same(leader.host.status('g').config.voters, [1, 2, 3, 4].filter((id) => id !== victim))
  await c.propose('g', KvMachine.encode('after', 'yes'))
  await c.until(() => sm4.get('after') === 'yes', 'new voter applies')
})

t.test('leadership transfer through the driver, and clear errors for unknown groups', async (t) => {
  const c = new TestCluster()
  t.teardown(() => c.cleanup())
  for (const id of [1, 2, 3]) c.openHost(id)
  await c.createGroup('g', [1, 2, 3])
  c.startAll()
  await c.until(() => c.leaderOf('g') !== undefined, 'a leader')
  const leader = c.leaderOf('g')!
  await c.propose('g', KvMachine.encode('t', '1'))
  const to = [1, 2, 3].find((id) => id !== leader.id)!
  leader.host.transferLeadership('g', to)
  await c.until(() => c.leaderOf('g')?.id === to, `host ${to} leads`)
  t.equal(await c.hosts.get(to)!.host.propose('g', KvMachine.encode('t', '2')), '2', 'the new leader takes proposals')
  t.throws(() => leader.host.status('missing'), /raft group missing is not open on host/)
  await t.rejects(leader.host.propose('missing', new Uint8Array()), /raft group missing is not open on host/)
  await t.rejects(leader.host.read('missing'), /raft group missing is not open on host/)
})

t.test('an empty replica (no configuration) never campaigns, then takes the configuration from the leader and becomes a voter', async (t) => {
  const c = new TestCluster()
  t.teardown(() => c.cleanup())
  for (const id of [1, 2]) c.openHost(id)
  await c.createGroup('g', [1])
  const h2 = c.hosts.get(2)!
  const sm2 = new KvMachine(h2.root, 'g')
  h2.machines.set('g', sm2)
  await h2.host.openEmptyGroup('g', sm2)
  t.same(h2.host.status('g').config, { voters: [], learners: [] }, 'opened with an empty configuration')
  c.startAll()
  await c.until(() => c.hosts.get(1)!.host.status('g').role === 'leader', 'host 1 leads')
  for (let i = 0; i < 5; i++) await c.propose('g', KvMachine.encode(`k${i}`, `${i}`))
  // Many election timeouts pass: the empty replica must stay a follower with no term of its own.
  for (let i = 0; i < 100; i++) h2.host.tick()
  await h2.host.idle()
  t.equal(h2.host.status('g').role, 'follower', 'an empty replica never campaigns')
  t.equal(h2.host.status('g').term, 0, 'nor raises its term')
  const leader = c.hosts.get(1)!
  await leader.host.changeMembership('g', { type: 'addLearner', node: 2 })
  await c.until(() => sm2.get('k4') === '4', 'the learner received the log')
  // Its configuration came from the leader's snapshot at index 0 plus the log: host 1 is a voter there.
  t.same(h2.host.status('g').config, { voters: [1], learners: [2] }, 'the learner knows the founding voter')
  let promoted = false
  for (let i = 0; i < 100 && !promoted; i++) {
    try {
      await leader.host.changeMembership('g', { type: 'promote', node: 2 })
      promoted = true
    } catch (e) {
      if (!(e instanceof RaftError) || e.code !== 'BUSY') throw e
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  t.ok(promoted, 'promoted once caught up')
  await c.until(() => h2.host.status('g').config.voters.length === 2, 'the new voter sees both voters')
  t.same(h2.host.status('g').config, { voters: [1, 2], learners: [] })
  t.same(leader.host.caughtUpLearners('g'), [], 'no learner left')
  await c.propose('g', KvMachine.encode('after', 'yes'))
  await c.until(() => sm2.get('after') === 'yes', 'the new voter applies')
})

t.test('closeGroup fails waiters and stops serving; destroyGroup deletes storage and rows', async (t) => {
  const c = new TestCluster()
  t.teardown(() => c.cleanup())
  c.openHost(1)
  await c.createGroup('g', [1])
  c.startAll()
  const h = c.hosts.get(1)!
  await c.until(() => h.host.status('g').role === 'leader', 'host 1 leads')
  await c.propose('g', KvMachine.encode('a', '1'))
  const sm = h.machines.get('g')!
  let dropped = 0
  ;(sm as KvMachine & { drop: () => void }).drop = () => { dropped++; sm.restore(new Uint8Array()) }
  h.host.closeGroup('g')
  t.notOk(h.host.hasGroup('g'), 'closed')
  await t.rejects(h.host.propose('g', KvMachine.encode('b', '2')), /not open/)
  t.ok(h.host.storage.has('g'), 'storage kept by close')
  h.host.openGroup('g', sm)
  t.ok(h.host.hasGroup('g'), 'reopened')
  await h.host.destroyGroup('g')
  t.notOk(h.host.hasGroup('g'))
  t.notOk(h.host.storage.has('g'), 'storage deleted')
  t.equal(dropped, 1, 'the state machine dropped its rows in the same transaction')
  t.equal(sm.get('a'), undefined)
})

t.test('a closed host refuses requests at once instead of leaving them waiting for a cycle that never comes', async (t) => {
  const c = new TestCluster()
  t.teardown(() => c.cleanup())
  const h = await c.startGroup('g', [1])
  await c.propose('g', KvMachine.encode('a', '1'))
  await h.host.close()
  const refused = /raft group g is not open on host 1: the host is shut down/
  await t.rejects(h.host.propose('g', KvMachine.encode('b', '2')), refused, 'a proposal')
  await t.rejects(h.host.read('g'), refused, 'a read')
  await t.rejects(h.host.changeMembership('g', { type: 'addLearner', node: 2 }), refused, 'a membership step')
  t.equal(h.host.readNow('g'), false, 'no lease read either')
})

/**
 * Group g on hosts 1 and 2 (compacting every 4 entries) with rows k0..k11
 * and a compacted log; host 3 then joins as an empty learner and is filled.
 */
async function compactedThenLearner (t: { teardown: (fn: () => unknown) => void }, live: boolean): Promise<{ c: TestCluster, h3: TestHost, sm3: KvMachine, compactedAt: Snapshot }> {
  const c = new TestCluster({ compactAfter: 4 }, live)
  t.teardown(() => c.cleanup())
  for (const id of [1, 2, 3]) c.openHost(id)
  await c.createGroup('g', [1, 2])
  c.startAll()
  await c.until(() => c.leaderOf('g') !== undefined, 'a leader')
  for (let i = 0; i < 12; i++) await c.propose('g', KvMachine.encode(`k${i}`, `${i}`))
  const leader = c.leaderOf('g')!
  await c.until(() => leader.host.storage.load('g').snapshot.meta.index > 0, 'the leader compacted its log')
  const compactedAt = leader.host.storage.load('g').snapshot
  const h3 = c.hosts.get(3)!
  const sm3 = new KvMachine(h3.root, 'g', live)
  h3.machines.set('g', sm3)
  await h3.host.openEmptyGroup('g', sm3)
  await leader.host.changeMembership('g', { type: 'addLearner', node: 3 })
  await c.until(() => sm3.get('k11') === '11', 'the learner has every row')
  return { c, h3, sm3, compactedAt }
}

t.test('an empty replica added to a group whose leader compacted its log is filled by the snapshot', async (t) => {
  const { h3 } = await compactedThenLearner(t, false)
  t.same(h3.host.status('g').config, { voters: [1, 2], learners: [3] }, 'and the right configuration')
})

t.test('with live snapshots a compaction stores no copy of the rows, and a replica added afterwards gets every row from the leader\'s state', async (t) => {
  const { c, h3, sm3, compactedAt } = await compactedThenLearner(t, true)
  t.equal(compactedAt.data.length, 0, 'the stored snapshot holds no data')
  for (let i = 0; i < 12; i++) t.equal(sm3.get(`k${i}`), `${i}`, `k${i} arrived`)
  await c.until(() => h3.host.storage.load('g').snapshot.meta.index > 0, 'the learner stored the installed snapshot')
  t.equal(h3.host.storage.load('g').snapshot.data.length, 0, 'without its data: the rows are the state')
  await c.stopHost(3)
  const back = c.openHost(3)
  c.reopenGroups(back)
  back.host.start()
  t.equal(back.machines.get('g')!.get('k11'), '11', 'reopened, the learner still has its rows')
  await c.propose('g', KvMachine.encode('after', 'restart'))
  await c.until(() => back.machines.get('g')!.get('after') === 'restart', 'and follows the log from there')
})

t.test('with live snapshots the log\'s bytes bring a compaction', async (t) => {
  const c = new TestCluster({ compactAfter: 1_000_000, compactAfterBytes: 8 << 10 }, true)
  t.teardown(() => c.cleanup())
  const leader = await c.startGroup('g', [1, 2, 3])
  const big = 'x'.repeat(2048)
  for (let i = 0; i < 20; i++) await c.propose('g', KvMachine.encode(`k${i}`, big))
  await c.until(() => [...c.hosts.values()].every((h) => h.host.storage.load('g').snapshot.meta.index > 0), 'every host compacted')
  for (const h of c.hosts.values()) t.ok(h.host.status('g').applied - h.host.storage.load('g').snapshot.meta.index < 20, `host ${h.id} keeps fewer than 20 entries`)
  t.equal(leader.machines.get('g')!.get('k19'), big, 'the rows are all there')
})

t.test('a host keeps in memory only the entries a follower may still need, and one that was down catches up from entries read back from lmdb', async (t) => {
  const c = new TestCluster({}, true)
  t.teardown(() => c.cleanup())
  const leader = await c.startGroup('g', [1, 2, 3])
  const big = 'x'.repeat(4096)
  for (let i = 0; i < 10; i++) await c.propose('g', KvMachine.encode(`k${i}`, big))
  await c.until(() => [...c.hosts.values()].every((h) => h.host.status('g').applied === leader.host.status('g').commit), 'every host applied everything')
  await c.until(() => [...c.hosts.values()].every((h) => h.host.status('g').heldBytes === 0), 'every host released what it applied')
  t.ok(leader.host.status('g').logBytes > 40_000, 'the log still holds the entries, on disk')
  const down = [...c.hosts.values()].find((h) => h !== leader)!
  await c.stopHost(down.id)
  for (let i = 10; i < 20; i++) await c.propose('g', KvMachine.encode(`k${i}`, big))
  await c.until(() => leader.host.status('g').heldBytes === 0, 'once the follower was silent for an election timeout, the leader released its entries too')
  const back = c.openHost(down.id)
  const stored = back.host.storage.load('g', true)
  t.ok(stored.entries.length >= 10 && stored.entries.every((e) => e.index > stored.applied || 'released' in e || (e as Entry).kind !== 'normal'),
    'read back for opening, every applied payload is left on disk')
  t.ok(back.host.storage.load('g').entries.every((e) => 'kind' in e), 'read back whole (recovery), every entry has its payload')
  c.reopenGroups(back)
  t.equal(back.host.status('g').heldBytes, 0, 'reopened: what it had applied stays on disk')
  back.host.start()
  await c.until(() => back.machines.get('g')!.get('k19') === big, 'the follower caught up')
  t.equal(back.host.storage.load('g').snapshot.meta.index, 0, 'from entries read back by the leader, not a snapshot')
  for (let i = 0; i < 20; i++) t.equal(back.machines.get('g')!.get(`k${i}`), big, `k${i}`)
})

t.test('with a sync option, a cycle sends nothing but a leader\'s appends before its sync finished', async (t) => {
  const c = new TestCluster()
  t.teardown(() => c.cleanup())
  const inSync = new Map<number, boolean>()
  const syncs = new Map<number, number>()
  for (const id of [1, 2, 3]) {
    // Each host gets its own sync, which the transport observer can watch.
    ;(c.opts as { sync?: () => Promise<void> }).sync = async () => {
      inSync.set(id, true)
      await new Promise((r) => setTimeout(r, 2))
      await c.hosts.get(id)?.root.flushed
      inSync.set(id, false)
      syncs.set(id, (syncs.get(id) ?? 0) + 1)
    }
    c.openHost(id)
  }
  let early = 0
  let sent = 0
  c.net.observer = (from, _to, batch) => {
    sent++
    if (inSync.get(from) === true) for (const { msg } of batch) if (msg.type !== 'app') early++
  }
  await c.createGroup('g', [1, 2, 3])
  c.startAll()
  await c.until(() => c.leaderOf('g') !== undefined, 'a leader')
  for (let i = 0; i < 20; i++) await c.propose('g', KvMachine.encode(`k${i}`, `${i}`))
  t.ok(sent > 0, 'messages were sent')
  t.equal(early, 0, 'none but appends while its host was syncing')
  t.ok(c.leaderOf('g')!.host.stats.earlySent > 0, 'the leader sent appends before its own flush')
  for (const id of [1, 2, 3]) t.ok((syncs.get(id) ?? 0) >= c.hosts.get(id)!.host.stats.transactions, `host ${id}: a sync for every cycle`)
})

t.test('a host whose disk has no room pauses instead of failing, refuses proposals with ENOSPC, and resumes once space is freed', async (t) => {
  const c = new TestCluster()
  t.teardown(() => c.cleanup())
  const full = new Set<number>()
  for (const id of [1, 2, 3]) {
    ;(c.opts as { room?: () => boolean }).room = () => !full.has(id)
    c.openHost(id)
  }
  await c.createGroup('g', [1, 2, 3])
  c.startAll()
  await c.until(() => c.leaderOf('g') !== undefined, 'a leader')
  for (let i = 0; i < 10; i++) await c.propose('g', KvMachine.encode(`a${i}`, `${i}`))

  // A follower runs out of room: the other two still make a majority.
  const first = c.leaderOf('g')!
  const follower = [...c.hosts.values()].find((h) => h !== first)!
  full.add(follower.id)
  for (let i = 0; i < 10; i++) await c.propose('g', KvMachine.encode(`b${i}`, `${i}`))
  t.equal(follower.host.failure, undefined, 'the full follower has not stopped')
  t.not(follower.machines.get('g')!.get('b9'), '9', 'and applied nothing while full')

  // The leader's disk fills too: proposals there fail at once with ENOSPC, nothing is lost.
  const leader = c.leaderOf('g')!
  full.add(leader.id)
  const code = await leader.host.propose('g', KvMachine.encode('x', 'y')).then(() => 'applied', (e: { code?: string }) => e.code)
  t.equal(code, 'ENOSPC', 'a proposal to the full leader fails with ENOSPC')
  t.equal(leader.host.failure, undefined, 'the full leader has not stopped either')

  // Space is freed: both resume by themselves and catch up.
  full.clear()
  await c.until(() => c.leaderOf('g') !== undefined, 'a leader again', 10_000)
  await c.propose('g', KvMachine.encode('after', 'freed'))
  await c.until(() => [...c.hosts.values()].every((h) => h.machines.get('g')!.get('b9') === '9' && h.machines.get('g')!.get('after') === 'freed'), 'every host applied everything')
})

t.test('a cache gate: a follower acknowledges another host\'s entry only once its caches dropped the rows; a leader proposes one only then; cacheUntil is 0 while a change is in flight', async (t) => {
  // 50 ms ticks: the leases (about 1.1 s) outlast every step below on a loaded machine
  const c = new TestCluster({ leaseReads: true, tickMs: 50 })
  t.teardown(() => c.cleanup())
  const leader = await c.startGroup('g', [1, 2, 3])
  const [f, o] = [...c.hosts.values()].filter((h) => h !== leader)
  await c.until(() => f.host.status('g').lead === leader.id && o.host.status('g').lead === leader.id, 'followers know the leader')
  await leader.host.propose('g', KvMachine.encode('k', 'v0'))

  /** A gate whose drops the test settles by hand. */
  const gate = (): { dropped: unknown[], release: () => void, drop: (rows: unknown) => Promise<void>, dropAll: () => undefined } => {
    const waiting: Array<() => void> = []
    const g = {
      dropped: [] as unknown[],
      release: () => { for (const r of waiting.splice(0)) r() },
      drop: async (rows: unknown) => {
        g.dropped.push(rows)
        await new Promise<void>((resolve) => { waiting.push(resolve) })
      },
      dropAll: () => undefined
    }
    return g
  }
  const fg = gate()
  f.host.setCacheGate(fg)
  t.equal(f.host.cacheUntil('g', f.host.cacheStamp()), 0, 'a follower without a read lease may cache nothing')
  await f.host.read('g')
  await c.until(() => f.host.cacheUntil('g', f.host.cacheStamp()) > performance.now(), 'f holds a read lease')
  const before = f.host.cacheStamp()

  // Another host's change: f's acknowledgement waits for its gate, and the leader's commit for f (f holds a lease).
  let committed = false
  const p = leader.host.propose('g', KvMachine.encode('k', 'v1', leader.id)).then(() => { committed = true })
  await c.until(() => fg.dropped.length === 1, 'f was asked to drop the row')
  t.same(fg.dropped, [['k']], 'the rows of the entry')
  t.equal(f.host.cacheUntil('g', f.host.cacheStamp()), 0, 'while the change is in flight, nothing read on f may be cached')
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.notOk(committed, 'not committed while f, a lease holder, has not acknowledged')
  fg.release()
  await p
  await c.until(() => f.machines.get('g')!.get('k') === 'v1', 'f applied the change')
  t.equal(f.host.cacheUntil('g', before), 0, 'a read that began before the change may not be cached')
  await f.host.read('g')
  t.ok(f.host.cacheUntil('g', f.host.cacheStamp()) > performance.now(), 'one that begins after it may')

  // f's own change: no drop (its kernel learns it from its own answer), only the in-flight rule.
  await leader.host.propose('g', KvMachine.encode('k', 'v2', f.id))
  t.equal(fg.dropped.length, 1, 'no drop for the host\'s own entries')

  // The leader drops before it proposes another host's change; its log does not grow meanwhile.
  const lg = gate()
  leader.host.setCacheGate(lg)
  const last = leader.host.status('g').commit
  const q = leader.host.propose('g', KvMachine.encode('k', 'v3', o.id))
  await c.until(() => lg.dropped.length === 1, 'the leader was asked to drop the row')
  t.equal(leader.host.cacheUntil('g', leader.host.cacheStamp()), 0, 'the leader caches nothing of g meanwhile')
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(leader.host.status('g').commit, last, 'nothing proposed before the drop')
  lg.release()
  await c.until(() => fg.dropped.length === 2, 'then f is asked to drop it too')
  fg.release()
  await q
  t.equal(leader.machines.get('g')!.get('k'), 'v3')
})
