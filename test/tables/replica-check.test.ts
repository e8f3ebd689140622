import t, { type Test } from 'tap'
import { Store } from '../../src/store/store.js'
import { checkReplicas, fragmentDigest, serveDigests, type DigestEnv, type LocalReplicas } from '../../src/tables/replica-check.js'
import { tempDir } from '../helpers/tmp.js'

function row (fragment: number, key: string): Buffer {
  const b = Buffer.alloc(3 + key.length)
  b.writeUInt16BE(fragment)
  b[2] = 1
  b.write(key, 3)
  return b
}

/** Three stores as three hosts; calls between them are plain function calls (the network is simulated). */
function hosts (t: Test) {
  const handlers = new Map<string, (p: unknown, from: string) => Promise<unknown>>()
  const applied = new Map<string, number>([['a', 5], ['b', 5], ['c', 5]])
  const stores = new Map<string, Store>()
  const down = new Set<string>()
  for (const id of ['a', 'b', 'c']) {
    const s = Store.open(tempDir(t), { autoFlushMs: 0 })
    t.teardown(() => s.close())
    stores.set(id, s)
  }
  const local = (id: string): LocalReplicas => ({
    fragmentOf: (g) => g.startsWith('fs/') ? Number(g.slice(3)) : null,
    applied: () => applied.get(id)!
  })
  const env = (id: string): DigestEnv => ({
    self: id,
    replicas: () => ['a', 'b', 'c'],
    call: async (host, method, payload) => {
      if (down.has(host)) throw new Error(`no link to ${host}`)
      return await handlers.get(`${host} ${method}`)!(payload, id)
    },
    handle: (method, fn) => { handlers.set(`${id} ${method}`, fn) }
  })
  for (const id of ['a', 'b', 'c']) serveDigests(env(id), stores.get(id)!, local(id))
  return { stores, applied, down, env, local }
}

t.test('identical replicas are clean; a diverged one is a mismatch; replicas at different indexes are busy, never a mismatch', async (t) => {
  const h = hosts(t)
  for (const s of h.stores.values()) s.commit([[row(2, 'x'), Buffer.from('1')], [row(3, 'other'), Buffer.from('z')]])
  h.stores.get('c')!.commit([[row(3, 'only-c'), Buffer.from('q')]])
  const r = await checkReplicas(h.env('a'), h.stores.get('a')!, h.local('a'), ['fs/2'])
  t.equal(r.clean, true, 'fragment 2 is the same on all three (other fragments do not count)')
  t.equal(r.groups[0]!.verdict, 'same')
  t.equal(r.groups[0]!.replicas[0]!.digest!.rows, 1)

  h.stores.get('b')!.commit([[row(2, 'x'), Buffer.from('2')]])
  const bad = await checkReplicas(h.env('a'), h.stores.get('a')!, h.local('a'), ['fs/2', 'fs/3'])
  t.equal(bad.clean, false)
  t.same(bad.groups.map((g) => g.verdict), ['mismatch', 'mismatch'])
  t.same(bad.counts, { same: 0, mismatch: 2, busy: 0, unreachable: 0 })

  h.applied.set('b', 6)
  const busy = await checkReplicas(h.env('a'), h.stores.get('a')!, h.local('a'), ['fs/2'], { tries: 3, pauseMs: 1 })
  t.equal(busy.groups[0]!.verdict, 'busy', 'b is one entry ahead: not comparable, not a divergence')
  t.equal(busy.clean, false)

  h.down.add('c')
  const cut = await checkReplicas(h.env('a'), h.stores.get('a')!, h.local('a'), ['fs/2'], { tries: 2, pauseMs: 1 })
  t.equal(cut.groups[0]!.verdict, 'unreachable')
  t.match(cut.groups[0]!.replicas.find((x) => x.host === 'c')!.error, /no link to c/)
})

t.test('the digest covers keys and values, not just their concatenation', async (t) => {
  const h = hosts(t)
  const a = h.stores.get('a')!
  const b = h.stores.get('b')!
  a.commit([[row(1, 'ab'), Buffer.from('c')]])
  b.commit([[row(1, 'a'), Buffer.from('bc')]])
  t.not(fragmentDigest(a, 1, 0).sha256, fragmentDigest(b, 1, 0).sha256)
})
