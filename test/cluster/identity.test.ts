import t from 'tap'
import { open } from 'lmdb'
import { join } from 'node:path'
import { IdentityStore } from '../../src/cluster/identity.js'
import { resolveOptions } from '../../src/cluster/node-options.js'
import { tempDir } from '../helpers/tmp.js'

t.test('identity: written at first start, fixed afterwards, survives a reopen', async (t) => {
  const dir = join(tempDir(t), 'env')
  let syncs = 0
  let root = open({ path: dir })
  let ids = new IdentityStore(root, async () => { syncs++; await root.flushed })
  const first = await ids.open(undefined, 'fallback', 'prod')
  t.same(first, { hostId: 'fallback', clusterName: 'prod', clusterId: null, node: null }, 'no host= given: the fallback id')
  t.ok(syncs > 0, 'the write is synced')
  await t.rejects(ids.open('other', 'fallback', 'prod'), /belongs to host "fallback", but host=other was given/)
  await t.rejects(ids.open(undefined, 'fallback', 'test'), /belongs to cluster "prod", but cluster=test was given/)
  await ids.setMember('c-1', 4)
  await t.rejects(ids.setMember('c-2', 4), /already belongs to cluster id c-1 as node 4/)
  await root.close()
  root = open({ path: dir })
  ids = new IdentityStore(root, async () => { await root.flushed })
  t.same(await ids.open('fallback', 'x', 'prod'), { hostId: 'fallback', clusterName: 'prod', clusterId: 'c-1', node: 4 }, 'read back after a reopen')
  await ids.setMember('c-1', 4)
  await root.close()
})

t.test('node options: defaults and refusals', async (t) => {
  const base = { store: {} as never, defaultHostId: 'h', clusterName: 'c', cookie: Buffer.alloc(32), machineFor: () => { throw new Error('unused') } }
  const d = resolveOptions(base)
  t.equal(d.expect, 1)
  t.equal(d.discoverMs, 3000)
  t.equal(resolveOptions({ ...base, mode: 'init', expect: 3 }).expect, 1, 'init is expect=1')
  t.equal(resolveOptions({ ...base, mode: 'init' }).discoverMs, 0)
  t.throws(() => resolveOptions({ ...base, expect: 0 }), /expect=0/)
  t.throws(() => resolveOptions({ ...base, heartbeatTicks: 10, electionTicks: 10 }), /heartbeatTicks \(10\) must be below electionTicks/)
  t.throws(() => resolveOptions({ ...base, heartbeatMs: 100, downAfterMs: 300 }), /down_after/)
})
