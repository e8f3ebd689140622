/**
 * Raft host drivers talking over the real peer wire: encrypted TCP on
 * loopback, each host with its own Wire endpoint and lmdb environment.
 */
import t from 'tap'
import { RaftError } from '../../src/raft/types.js'
import { KvMachine } from './kv-machine.js'
import { WireCluster, type WireHost } from './wire-cluster.js'

const GROUPS = Array.from({ length: 20 }, (_, i) => `g${i}`)

async function threeHosts (t: { teardown: (fn: () => unknown) => void }, groups = GROUPS, opts: ConstructorParameters<typeof WireCluster>[0] = {}): Promise<WireCluster> {
  const c = new WireCluster(opts)
  t.teardown(() => c.cleanup())
  for (const id of [1, 2, 3]) await c.startHost(id)
  for (const g of groups) await c.createGroup(g, [1, 2, 3])
  c.startAll()
  await c.until(() => groups.every((g) => c.leaderOf(g) !== undefined), 'a leader in every group')
  return c
}

function valueOn (wh: WireHost, g: string, k: string): string | undefined { return wh.machines.get(g)?.get(k) }

function allHave (c: WireCluster, groups: string[], k: (g: string) => string, v: (g: string) => string): boolean {
  return [...c.hosts.values()].every((wh) => groups.every((g) => valueOn(wh, g, k(g)) === v(g)))
}

t.test('3 hosts x 20 groups replicate proposals over encrypted TCP and agree', async (t) => {
  const c = await threeHosts(t)
  await Promise.all(GROUPS.map(async (g) => {
    for (let i = 0; i < 10; i++) await c.propose(g, KvMachine.encode(`k${i}`, `${g}-v${i}`))
  }))
  await c.until(() => allHave(c, GROUPS, () => 'k9', (g) => `${g}-v9`), 'every host applied every group')
  for (const wh of c.hosts.values()) {
    await wh.host.idle()
    for (const g of GROUPS) {
      for (let i = 0; i < 10; i++) t.equal(valueOn(wh, g, `k${i}`), `${g}-v${i}`, `host ${wh.id} ${g} k${i}`)
    }
    t.equal(wh.transport.counters.spoofed + wh.transport.counters.malformed, 0, `host ${wh.id} got only well-formed batches`)
    t.ok(wh.transport.counters.batchesReceived > 0, `host ${wh.id} received batches over the wire`)
  }
  // Committed logs agree: same commit index and the same term at it on every host, per group.
  for (const g of GROUPS) {
    const commits = [...c.hosts.values()].map((wh) => wh.host.status(g).commit)
    await c.until(() => new Set([...c.hosts.values()].map((wh) => wh.host.status(g).commit)).size === 1, `${g}: equal commit (${commits.join(',')})`)
  }
  // The driver's batching survives the wire: one wire message carries many groups' messages.
  const sent = [...c.hosts.values()].reduce((s, wh) => s + wh.host.stats.messagesSent, 0)
  const batches = [...c.hosts.values()].reduce((s, wh) => s + wh.transport.counters.batchesSent, 0)
  t.ok(sent / batches > 1.5, `raft messages per wire message: ${(sent / batches).toFixed(1)}`)
})

t.test('a killed host: the other two elect leaders and go on; restarted from its lmdb it catches up', async (t) => {
  const c = await threeHosts(t)
  for (const g of GROUPS) await c.propose(g, KvMachine.encode('before', g))
  const victim = c.leaderOf('g0')!.id
  const led = GROUPS.filter((g) => c.leaderOf(g)?.id === victim)
  t.ok(led.length >= 1, `host ${victim} led ${led.length} groups`)
  await c.killHost(victim)
  await c.until(() => GROUPS.every((g) => c.leaderOf(g) !== undefined && c.leaderOf(g)!.id !== victim), 'new leaders among the other two')
  for (const g of GROUPS) t.not(c.leaderOf(g)!.id, victim)
  await Promise.all(GROUPS.map(async (g) => {
    for (let i = 0; i < 5; i++) await c.propose(g, KvMachine.encode(`during${i}`, g))
  }))
  await c.until(() => allHave(c, GROUPS, () => 'during4', (g) => g), 'both survivors applied the writes made without the victim')
  const back = await c.startHost(victim)
  t.equal(valueOn(back, 'g0', 'before'), 'g0', 'restarted host has its own applied rows from lmdb')
  t.equal(valueOn(back, 'g0', 'during4'), undefined, 'and nothing it did not hear yet')
  back.host.start()
  await c.until(() => allHave(c, GROUPS, () => 'during4', (g) => g), 'the restarted host caught up in every group')
  for (const g of GROUPS) {
    await c.until(() => back.host.status(g).commit === c.leaderOf(g)!.host.status(g).commit, `${g} commit caught up`)
  }
  t.pass('caught up')
})

t.test('a host with the wrong cookie gets no link and no raft traffic; with the right one it joins', async (t) => {
  const c = new WireCluster()
  t.teardown(() => c.cleanup())
  await c.startHost(1)
  await c.startHost(2)
  const intruder = await c.startHost(3, Buffer.from('not-the-cluster-cookie-but-long-enough-000'))
  for (const g of ['a', 'b']) await c.createGroup(g, [1, 2, 3])
  c.startAll()
  const good = [c.hosts.get(1)!, c.hosts.get(2)!]
  await c.until(() => ['a', 'b'].every((g) => c.leaderOf(g, good) !== undefined), 'leaders among the two good hosts')
  for (const g of ['a', 'b']) await c.propose(g, KvMachine.encode('k', 'v'))
  await c.until(() => good.every((wh) => wh.wire.counters.get('authFailed') > 0), 'the good hosts refused the intruder')
  // Several election timeouts (300 ms each) pass with the intruder campaigning.
  await new Promise((r) => setTimeout(r, 1500))
  t.equal(intruder.transport.counters.batchesReceived, 0, 'the intruder received no raft batch')
  for (const wh of good) {
    t.notOk(wh.wire.linkedPeers().includes('3'), `host ${wh.id} has no link to the intruder`)
    t.equal(wh.transport.counters.batchesReceived > 0, true)
  }
  for (const g of ['a', 'b']) {
    t.not(intruder.host.status(g).role, 'leader', `intruder does not lead ${g}`)
    t.equal(valueOn(intruder, g, 'k'), undefined, `intruder never applied ${g}`)
    t.not(c.leaderOf(g, good), undefined, `${g} still led by a good host`)
  }
  t.ok(intruder.logs.some((l) => /EAUTH|refused/.test(l)), 'the intruder logs the refusal')
  // The same host with the right cookie joins: the refusal was the cookie's doing.
  await c.killHost(3)
  const joined = await c.startHost(3)
  joined.host.start()
  await c.until(() => ['a', 'b'].every((g) => valueOn(joined, g, 'k') === 'v'), 'host 3 with the right cookie caught up')
  t.pass('joined')
})

t.test('a partition: the isolated minority commits nothing; the majority goes on; healing converges', async (t) => {
  const groups = GROUPS.slice(0, 6)
  const c = await threeHosts(t, groups)
  for (const g of groups) await c.propose(g, KvMachine.encode('before', g))
  // Make host 3 lead g0 so that the minority side holds a leader when the partition starts.
  const l0 = c.leaderOf('g0')!
  if (l0.id !== 3) {
    await c.until(() => c.hosts.get(3)!.host.status('g0').commit === l0.host.status('g0').commit, 'host 3 caught up in g0')
    l0.host.transferLeadership('g0', 3)
    await c.until(() => c.leaderOf('g0')?.id === 3, 'host 3 leads g0')
  }
  const h3 = c.hosts.get(3)!
  c.setLink(3, 1, false)
  c.setLink(3, 2, false)
  await c.until(() => h3.wire.linkedPeers().length === 0, 'host 3 has no links')
  const commitAtCut = new Map(groups.map((g) => [g, h3.host.status(g).commit]))
  const minority = h3.host.status('g0').role === 'leader'
    ? await h3.host.propose('g0', KvMachine.encode('minority', 'x')).then(() => 'committed', (e: unknown) => e)
    : new RaftError('NOT_LEADER', 'already stepped down')
  t.ok(minority instanceof RaftError, `a proposal on the isolated side fails: ${String(minority)}`)
  const majority = [c.hosts.get(1)!, c.hosts.get(2)!]
  await c.until(() => groups.every((g) => c.leaderOf(g, majority) !== undefined), 'leaders on the majority side')
  for (const g of groups) {
    const l = c.leaderOf(g, majority)!
    let tries = 0
    for (;;) {
      try { await c.leaderOf(g, majority)!.host.propose(g, KvMachine.encode('during', g)); break } catch (e) {
        if (!(e instanceof RaftError) || ++tries > 100) throw e
        await new Promise((r) => setTimeout(r, 20))
      }
    }
    t.ok(l.id === 1 || l.id === 2, `${g}: the majority commits`)
  }
  for (const g of groups) {
    t.equal(h3.host.status(g).commit, commitAtCut.get(g), `${g}: the minority's commit index did not move`)
    t.not(h3.host.status(g).role, 'leader', `${g}: host 3 no longer leads (check-quorum)`)
    t.equal(valueOn(h3, g, 'during'), undefined, `${g}: the minority did not see the majority's write yet`)
  }
  c.setLink(3, 1, true)
  c.setLink(3, 2, true)
  await c.until(() => allHave(c, groups, () => 'during', (g) => g), 'every host converged after healing')
  for (const wh of c.hosts.values()) t.equal(valueOn(wh, 'g0', 'minority'), undefined, `host ${wh.id}: the minority's write was never applied`)
})

t.test('a snapshot bigger than one wire frame travels in chunks', async (t) => {
  const frame = 256 << 10
  const c = new WireCluster({
    wire: { maxFrameBytes: frame },
    transport: { snapshotChunkBytes: 32 << 10, maxMessageBytes: 128 << 10 },
    host: { compactAfter: 100 }
  })
  t.teardown(() => c.cleanup())
  for (const id of [1, 2, 3]) await c.startHost(id)
  await c.createGroup('big', [1, 2, 3])
  c.startAll()
  await c.until(() => c.leaderOf('big') !== undefined, 'a leader')
  await c.propose('big', KvMachine.encode('first', '1'))
  const victim = [...c.hosts.values()].find((wh) => wh !== c.leaderOf('big'))!.id
  await c.until(() => valueOn(c.hosts.get(victim)!, 'big', 'first') === '1', 'victim applied the first write')
  await c.killHost(victim)
  const value = 'x'.repeat(1024)
  let next = 0
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < 600) { const i = next++; await c.propose('big', KvMachine.encode(`k${i}`, value)) }
  }))
  const leader = c.leaderOf('big')!
  const state = leader.machines.get('big')!.snapshot().length
  t.ok(state > frame, `the state (${state} bytes) is bigger than one frame (${frame} bytes)`)
  const back = await c.startHost(victim)
  back.host.start()
  await c.until(() => valueOn(back, 'big', 'k599') === value && valueOn(back, 'big', 'k0') === value, 'the restarted host caught up')
  t.ok(back.transport.counters.snapshotsReceived >= 1, `caught up through ${back.transport.counters.snapshotsReceived} chunked snapshot(s)`)
  t.equal(leader.transport.counters.droppedError, 0, 'no message failed on the frame limit')
})
