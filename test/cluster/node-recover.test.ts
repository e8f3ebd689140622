/**
 * `walkenfs recover --force-new-cluster` on cluster nodes in this process
 * (real Wire on 127.0.0.1, real Stores): the refusals, the recovery of one
 * survivor of three, what it serves afterwards, a host left behind being
 * refused, a new empty host getting replicas, and the loss of groups the
 * survivor held no replica of (--accept-loss).
 */
import t from 'tap'
import { join } from 'node:path'
import { findGroup } from '../../src/cluster/catalog.js'
import { runRecover, type RecoverIo } from '../../src/cli/recover.js'
import { Store } from '../../src/store/store.js'
import { CountMachine, NodeCluster } from './node-harness.js'

function io (interactive = false, answer = ''): RecoverIo & { lines: string[] } {
  const lines: string[] = []
  return { lines, out: (l) => lines.push(l), err: (l) => lines.push(l), interactive, ask: async (q) => { lines.push(q); return answer } }
}

/** Proposes `n` entries to every fs group through its leader. */
async function writeAll (c: NodeCluster, ids: string[], n: number): Promise<void> {
  for (let i = 0; i < 4; i++) {
    const g = `fs/${i}`
    for (let k = 0; k < n; k++) {
      let done = false
      for (let attempt = 0; !done && attempt < 200; attempt++) {
        const leader = ids.find((id) => c.nodes.has(id) && c.get(id).localGroup(g)?.role === 'leader')
        try {
          if (leader === undefined) throw new Error('no leader')
          await c.get(leader).raft.propose(g, new Uint8Array([k]))
          done = true
        } catch { await new Promise((r) => setTimeout(r, 20)) }
      }
      if (!done) throw new Error(`could not write to ${g}`)
    }
  }
}

function counts (c: NodeCluster, id: string): number[] {
  const root = c.nodes.get(id)!.store.lmdbRoot
  return [0, 1, 2, 3].map((i) => new CountMachine(root, `fs/${i}`).count())
}

t.test('one survivor of three becomes the cluster; an old host is refused, a new one gets replicas', async (t) => {
  const c = new NodeCluster({ settings: { fragments: 4, copies: 3 } })
  t.teardown(() => c.cleanup())
  const ids = ['a1', 'a2', 'a3']
  await c.reserve([...ids, 'a4'])
  await c.start('a1', { mode: 'init' })
  await c.get('a1').ready()
  const peers = await c.peersOf(['a1'])
  for (const id of ids.slice(1)) await c.start(id, { peers })
  await Promise.all(ids.map(async (id) => await c.get(id).ready()))
  await c.until(() => NodeCluster.fsSettled(c.get('a1').catalog(), 3), 'every fs group on 3 voters', 6000)
  await writeAll(c, ids, 3)
  const want = [0, 1, 2, 3].map((i) => c.get('a1').localGroup(`fs/${i}`)!.commit)
  await c.until(() => ids.every((id) => [0, 1, 2, 3].every((i) => c.get(id).localGroup(`fs/${i}`)!.applied >= want[i]!)), 'every replica applied the writes')
  const before = counts(c, 'a1')
  t.ok(before.every((n) => n >= 3), `a1 applied the writes of every fragment (${before.join(', ')})`)
  const oldId = c.get('a1').identity.clusterId
  for (const id of ['a2', 'a3', 'a1']) await c.stop(id)
  const dir = join(c.base, 'a1')

  // Refusals: nothing changes.
  let r = io()
  t.equal(await runRecover({ dataDir: dir, yes: false, acceptLoss: false }, r), 1, 'no --yes and no terminal: refused')
  t.match(r.lines.join('\n'), /no terminal to confirm on/)
  t.match(r.lines.join('\n'), /Hosts dropped from the cluster: a2 \(node \d+\), a3 \(node \d+\)/, 'the plan names the hosts dropped')
  t.match(r.lines.join('\n'), /fs\/3 +voter +\d+ +\d+ +\d+ +/, 'the plan shows each group\'s indexes')
  r = io(true, 'no')
  t.equal(await runRecover({ dataDir: dir, yes: false, acceptLoss: false }, r), 1, 'a terminal answer other than "force": refused')
  t.match(r.lines.join('\n'), /Type "force" to go on/)
  const busy = Store.open(dir)
  r = io()
  t.equal(await runRecover({ dataDir: dir, yes: true, acceptLoss: false }, r), 2, 'store in use: refused')
  t.match(r.lines.join('\n'), /in use by process .*unmount it/)
  await busy.close()

  r = io(true, 'force')
  t.equal(await runRecover({ dataDir: dir, yes: false, acceptLoss: false }, r), 0, 'confirmed with "force": recovered')
  t.match(r.lines.join('\n'), /a1 is now the only host of cluster/)

  const a1 = await c.start('a1', { peers: [] })
  await a1.node.ready()
  const cat = a1.node.catalog()
  t.not(cat.clusterId, oldId, 'the cluster has a new id')
  t.equal(a1.node.identity.clusterId, cat.clusterId, 'identity and catalog agree on it')
  t.same(cat.hosts.map((h) => h.id), ['a1'], 'the catalog holds the survivor only')
  t.same(cat.recovery?.previousIds, [oldId], 'the catalog remembers the old id')
  for (let i = 0; i < 4; i++) {
    const g = `fs/${i}`
    t.same(findGroup(cat, g)?.replicas, [{ host: 'a1', role: 'voter' }], `${g} placed on a1 alone`)
    await c.until(() => a1.node.localGroup(g)?.role === 'leader', `a1 leads ${g}`)
    t.same(a1.node.localGroup(g)!.config, { voters: [a1.node.identity.node!], learners: [] }, `${g}: a1 is its only voter`)
  }
  t.same(counts(c, 'a1'), before, 'every fragment kept what it held')
  await writeAll(c, ['a1'], 1)
  t.same(counts(c, 'a1'), before.map((n) => n + 1), 'writes commit on the lone host')

  const old = await c.start('a2', { peers: await c.peersOf(['a1']), discoverMs: 2000 })
  await t.rejects(old.node.ready(), /data is from before a forced recovery on a1 at .*move this host's data directory away and let it join empty/, 'the old host is refused with the reason')
  await c.stop('a2')

  const fresh = await c.start('a4', { peers: await c.peersOf(['a1']) })
  await fresh.node.ready()
  await c.until(() => NodeCluster.fsSettled(a1.node.catalog(), 2), 'every fs group has 2 voters (a1 and the new host)', 6000)
  await c.until(() => [0, 1, 2, 3].every((i) => (fresh.node.localGroup(`fs/${i}`)?.applied ?? 0) >= a1.node.localGroup(`fs/${i}`)!.commit), 'the new host caught up')
  t.same(counts(c, 'a4'), counts(c, 'a1'), 'the new host holds the same data')
})

t.test('groups the survivor holds no replica of: refused without --accept-loss, recreated empty with it', async (t) => {
  const c = new NodeCluster({ settings: { fragments: 4, copies: 1 } })
  t.teardown(() => c.cleanup())
  await c.reserve(['b1', 'b2'])
  await c.start('b1', { mode: 'init' })
  await c.get('b1').ready()
  await c.start('b2', { peers: await c.peersOf(['b1']) })
  await c.get('b2').ready()
  const onB2 = (): string[] => c.get('b1').catalog().groups.filter((g) => g.id.startsWith('fs/') && g.replicas.some((r) => r.host === 'b2')).map((g) => g.id)
  await c.until(() => onB2().length > 0 && c.get('b1').catalog().groups.filter((g) => g.id.startsWith('fs/')).every((g) => g.leader !== null), 'some fragment lives on b2 only', 6000)
  await c.until(() => onB2().every((g) => c.get('b2').localGroup(g)?.role === 'leader'), 'b2 leads its fragments')
  for (const id of ['b2', 'b1']) await c.stop(id)
  const dir = join(c.base, 'b1')
  let r = io()
  t.equal(await runRecover({ dataDir: dir, yes: true, acceptLoss: false }, r), 1, 'refused without --accept-loss')
  const named = /holds no data of (\d+) group\(s\): ([^;]+); .*--accept-loss/.exec(r.lines.join('\n'))
  t.ok(named, 'the refusal names the groups and the way out')
  const lost = named![2]!.split(', ')
  t.equal(lost.length, Number(named![1]))
  t.ok(lost.every((g) => /^fs\/\d$/.test(g)), `the lost groups are fragments (${lost.join(', ')})`)
  r = io()
  t.equal(await runRecover({ dataDir: dir, yes: true, acceptLoss: true }, r), 0, 'recovered with --accept-loss')
  t.match(r.lines.join('\n'), /LOST entirely and recreated empty/)
  const b1 = await c.start('b1', { peers: [] })
  await b1.node.ready()
  for (let i = 0; i < 4; i++) await c.until(() => b1.node.localGroup(`fs/${i}`)?.role === 'leader', `fs/${i} led by b1`)
  t.ok(lost.every((g) => new CountMachine(b1.store.lmdbRoot, g).count() === 0), 'the lost fragments are recreated empty')
  await writeAll(c, ['b1'], 1)
  t.ok(lost.every((g) => new CountMachine(b1.store.lmdbRoot, g).count() === 1), 'and take writes')
})

