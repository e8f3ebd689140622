import t from 'tap'
import { WireError } from '../../src/wire/errors.js'
import { startWire, waitFor, once } from './helpers.js'

for (const encrypt of [true, false]) {
  t.test(`messages and calls flow both ways (encryption ${encrypt ? 'on' : 'off'})`, async (t) => {
    const { wire: a } = await startWire(t, 'a', { encrypt })
    const { wire: b } = await startWire(t, 'b', { encrypt })
    b.handle('echo', (payload, ctx) => ({ payload, from: ctx.peerId }))
    a.handle('add', (p) => (p as number[]).reduce((x, y) => x + y, 0))
    const upB = once(b, 'peer-up')
    a.addPeer('b', b.addresses)
    const got: unknown[] = []
    b.on('message', (from: string, body: unknown) => got.push([from, body]))
    t.same(await a.call('b', 'echo', { x: [1, 2, 3], bin: Buffer.from('hi') }, { deadlineMs: 2000 }),
      { payload: { x: [1, 2, 3], bin: Buffer.from('hi') }, from: 'a' })
    t.same(await upB, ['a'])
    t.equal(await b.call('a', 'add', [1, 2, 39], { deadlineMs: 2000 }), 42)
    for (let i = 0; i < 100; i++) await a.send('b', { i })
    await waitFor('100 messages', () => got.length === 100)
    t.same(got.map((g) => (g as [string, { i: number }])[1].i), [...Array(100).keys()], 'in order')
    t.same(a.linkedPeers(), ['b'])
    t.same(b.linkedPeers(), ['a'])
  })
}

t.test('a large message crosses; one over the frame limit is refused before sending', async (t) => {
  const { wire: a } = await startWire(t, 'a', { maxFrameBytes: 4 * 1024 * 1024 })
  const { wire: b } = await startWire(t, 'b', { maxFrameBytes: 4 * 1024 * 1024 })
  b.handle('len', (p) => (p as Buffer).length)
  a.addPeer('b', b.addresses)
  t.equal(await a.call('b', 'len', Buffer.alloc(3 * 1024 * 1024, 7), { deadlineMs: 5000 }), 3 * 1024 * 1024)
  await t.rejects(a.call('b', 'len', Buffer.alloc(5 * 1024 * 1024), { deadlineMs: 5000 }), { code: 'EPROTO' })
  t.equal(await a.call('b', 'len', Buffer.alloc(10), { deadlineMs: 5000 }), 10, 'link still works')
})

t.test('deadline, cancellation, remote errors and unknown methods', async (t) => {
  const { wire: a } = await startWire(t, 'a')
  const { wire: b } = await startWire(t, 'b')
  const aborted: string[] = []
  b.handle('hang', (_p, { signal }) => new Promise((resolve) => {
    signal.addEventListener('abort', () => { aborted.push('hang'); resolve(null) })
  }))
  b.handle('boom', () => { throw new Error('it broke') })
  a.addPeer('b', b.addresses)
  await a.call('b', 'boom', null, { deadlineMs: 2000 }).catch(() => {})
  await t.rejects(a.call('b', 'hang', null, { deadlineMs: 100 }), { code: 'ETIMEDOUT' })
  await waitFor('handler aborted at deadline', () => aborted.length === 1)
  const ac = new AbortController()
  const p = a.call('b', 'hang', null, { deadlineMs: 10_000, signal: ac.signal })
  setTimeout(() => ac.abort(), 50)
  await t.rejects(p, { code: 'ECANCELED' })
  await waitFor('handler aborted by cancel', () => aborted.length === 2)
  await t.rejects(a.call('b', 'boom', null, { deadlineMs: 2000 }), { code: 'EREMOTE', message: /it broke/ })
  await t.rejects(a.call('b', 'nope', null, { deadlineMs: 2000 }), { code: 'ENOMETHOD' })
})

t.test('send without a link fails fast; call to an unknown peer fails at its deadline', async (t) => {
  const { wire: a } = await startWire(t, 'a')
  await t.rejects(a.send('zz', 1), { code: 'ELINKDOWN' })
  await t.rejects(a.call('zz', 'm', 1, { deadlineMs: 50 }), { code: 'ELINKDOWN' })
  const ac = new AbortController()
  ac.abort()
  await t.rejects(a.call('zz', 'm', 1, { deadlineMs: 60_000, signal: ac.signal }), { code: 'ECANCELED' }, 'an aborted signal ends the wait at once')
  const { wire: c } = await startWire(t, 'c', { maxBlockedSenders: 3 })
  const waiting = Array.from({ length: 5 }, () => c.call('zz', 'm', 1, { deadlineMs: 100 }).catch((e: { code: string }) => e.code))
  t.same((await Promise.all(waiting)).sort(), ['ELINKDOWN', 'ELINKDOWN', 'ELINKDOWN', 'EQUEUEFULL', 'EQUEUEFULL'], 'waiting calls are bounded')
})

t.test('a peer that restarts is redialed and calls work again', async (t) => {
  const { wire: a } = await startWire(t, 'a')
  let { wire: b } = await startWire(t, 'b')
  const port = b.port
  b.handle('who', () => 'b1')
  a.addPeer('b', b.addresses)
  t.equal(await a.call('b', 'who', null, { deadlineMs: 2000 }), 'b1')
  const down = once(a, 'peer-down')
  await b.close()
  await down
  ;({ wire: b } = await startWire(t, 'b', { port }))
  b.handle('who', () => 'b2')
  t.equal(await a.call('b', 'who', null, { deadlineMs: 5000 }), 'b2', 'call waited for the redial')
})

t.test('simultaneous dials leave exactly one link, the same on both sides', async (t) => {
  const { wire: a } = await startWire(t, 'a')
  const { wire: b } = await startWire(t, 'b')
  const ups: string[] = []
  const downs: string[] = []
  for (const w of [a, b]) {
    w.on('peer-up', (id: string) => ups.push(`${w.hostId}<-${id}`))
    w.on('peer-down', (id: string) => downs.push(`${w.hostId}<-${id}`))
  }
  a.addPeer('b', b.addresses)
  b.addPeer('a', a.addresses)
  await waitFor('links', () => a.linkedPeers().length === 1 && b.linkedPeers().length === 1)
  await new Promise((r) => setTimeout(r, 300))
  const la = a.peerTable()[0]!
  const lb = b.peerTable()[0]!
  t.ok(la.linkedVia && lb.linkedVia)
  t.equal(a.counters.get('linksUp') - a.counters.get('linksDown'), 1, 'one live link on a')
  t.equal(b.counters.get('linksUp') - b.counters.get('linksDown'), 1, 'one live link on b')
  t.same(ups.sort(), ['a<-b', 'b<-a'], 'each side saw its peer come up once')
  t.same(downs, [], 'replacing a duplicate link is not a peer-down')
  b.handle('x', () => 1)
  t.equal(await a.call('b', 'x', null, { deadlineMs: 1000 }), 1)
})

t.test('static seeds: dialing a seed learns the peer; a seed that is ourselves is dropped', async (t) => {
  const { wire: a } = await startWire(t, 'a')
  const { wire: b } = await startWire(t, 'b')
  a.addSeed(b.addresses[0]!)
  a.addSeed(a.addresses[0]!)
  await waitFor('link via seed', () => a.linkedPeers().includes('b') && b.linkedPeers().includes('a'))
  t.same(a.linkedPeers(), ['b'])
  t.equal(a.counters.get('authFailed'), 0)
})

t.test('kernel TCP timeouts are aligned with the failure detector on both ends', async (t) => {
  const { wire: a } = await startWire(t, 'a', { heartbeatMs: 1000, linkTimeoutMs: 3000 })
  const { wire: b } = await startWire(t, 'b', { heartbeatMs: 1000, linkTimeoutMs: 3000 })
  a.addPeer('b', b.addresses)
  await waitFor('link', () => a.linkedPeers().length === 1 && b.linkedPeers().length === 1)
  t.same(a.peerTable()[0]!.tcp, [3000, 1, 1, 3], 'dialer: TCP_USER_TIMEOUT 3000 ms, keepalive 1 s × 3')
  t.same(b.peerTable()[0]!.tcp, [3000, 1, 1, 3], 'listener too')
})

t.test('at most maxInflight requests are served at once; the rest wait in order and all complete', async (t) => {
  const { wire: a } = await startWire(t, 'a')
  const { wire: b } = await startWire(t, 'b', { maxInflight: 3 })
  let now = 0
  let peak = 0
  const order: number[] = []
  b.handle('slow', async (n) => {
    now++
    peak = Math.max(peak, now)
    order.push(n as number)
    await new Promise((r) => setTimeout(r, 5))
    now--
    return n
  })
  a.addPeer('b', b.addresses)
  const results = await Promise.all(Array.from({ length: 200 }, (_, i) => a.call('b', 'slow', i, { deadlineMs: 10_000 })))
  t.same(results, [...Array(200).keys()])
  t.equal(peak, 3, 'never more than 3 handlers at once')
  t.same(order, [...Array(200).keys()], 'served in the order sent')
})

t.test('WireError names its code', async (t) => {
  const e = new WireError('EAUTH', 'x')
  t.equal(e.code, 'EAUTH')
  t.match(e.message, /^EAUTH: x/)
})
