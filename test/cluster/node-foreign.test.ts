/**
 * Two clusters with the same name and cookie (each made by `init`): a host
 * of one that meets the other is refused with an error naming both ids, and
 * the other cluster ignores its Raft messages.
 */
import t from 'tap'
import { NodeCluster } from './node-harness.js'

t.test('a host of another cluster id is refused with a clear error', async (t) => {
  const c = new NodeCluster()
  t.teardown(() => c.cleanup())
  await c.reserve(['x1', 'y1'])
  await c.start('x1', { mode: 'init' })
  await c.start('y1', { mode: 'init' })
  await Promise.all(['x1', 'y1'].map(async (id) => await c.get(id).ready()))
  const x = c.get('x1').identity.clusterId!
  const y = c.get('y1').identity.clusterId!
  t.not(x, y, 'two separate clusters')
  // y1 restarts with x1 as a static peer: it has data of cluster y, and sees a member of x.
  await c.stop('y1')
  // A generous discovery window: the check must not race the link setup on a loaded machine.
  const y1 = await c.start('y1', { peers: await c.peersOf(['x1']), discoverMs: 2000 })
  const err = await y1.node.ready().then(() => null, (e: Error) => e)
  t.ok(err, 'ready() rejects')
  t.match(err?.message ?? '', new RegExp(`belongs to cluster id ${y}, but host x1 .* belongs to cluster id ${x}`), 'the error names both cluster ids and the other host')
  t.match(err?.message ?? '', /give them different cluster= names/, 'and says what to do')
  t.equal(y1.node.status().self.phase, 'error')
  t.match(y1.node.status().self.error ?? '', /cluster id/)
  // x1 stays what it was: one host, its own id.
  t.same(c.get('x1').catalog().hosts.map((h) => h.id), ['x1'])
  t.equal(c.get('x1').status().writable, 'all')

  // An empty host that sees members of both clusters refuses to choose.
  const z = await c.start('z', { peers: await c.peersOf(['x1', 'y1']) })
  const zerr = await z.node.ready().then(() => null, (e: Error) => e)
  t.match(zerr?.message ?? '', /belong to different cluster ids/, 'an empty host seeing two clusters refuses to join either')
  t.equal(z.node.identity.clusterId, null, 'and stays empty')
  t.equal(z.node.status().writable, 'not-member', 'status says it is no member')
})
