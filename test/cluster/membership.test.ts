import t from 'tap'
import { Membership } from '../../src/cluster/membership.js'
import { startWire, waitFor } from '../wire/helpers.js'

t.test('membership over real links: up, down when the peer dies, up when it returns', async (t) => {
  const { wire: a } = await startWire(t, 'a', { heartbeatMs: 100, linkTimeoutMs: 300, connectTimeoutMs: 200 })
  let { wire: b } = await startWire(t, 'b', { heartbeatMs: 100, linkTimeoutMs: 300, connectTimeoutMs: 200 })
  const port = b.port
  const m = new Membership(a, { suspectAfterMs: 300, downAfterMs: 800 })
  t.teardown(() => m.stop())
  const events: string[] = []
  m.on('up', (id: string) => events.push(`up ${id}`))
  m.on('down', (id: string) => events.push(`down ${id}`))
  a.addPeer('b', b.addresses)
  await waitFor('b up', () => events.includes('up b'))
  t.same(m.up(), ['b'])
  await b.close()
  await waitFor('b down', () => events.includes('down b'), 5000)
  t.same(m.view(), { b: 'down' })
  ;({ wire: b } = await startWire(t, 'b', { port, heartbeatMs: 100, linkTimeoutMs: 300, connectTimeoutMs: 200 }))
  await waitFor('b up again', () => events.filter((e) => e === 'up b').length === 2, 5000)
  t.same(events, ['up b', 'down b', 'up b'])
})

t.test('a quiet but live link keeps the peer up (heartbeats count as life)', async (t) => {
  const { wire: a } = await startWire(t, 'a', { heartbeatMs: 100, linkTimeoutMs: 600 })
  const { wire: b } = await startWire(t, 'b', { heartbeatMs: 100, linkTimeoutMs: 600 })
  // Silence would make b suspect within 400 ms; waiting 2 s shows heartbeats keep it up.
  const m = new Membership(a, { suspectAfterMs: 400, downAfterMs: 1200 })
  t.teardown(() => m.stop())
  const downs: string[] = []
  m.on('down', (id: string) => downs.push(id))
  a.addPeer('b', b.addresses)
  await waitFor('b up', () => m.up().includes('b'))
  await new Promise((r) => setTimeout(r, 2000))
  t.same(downs, [])
  t.same(m.view(), { b: 'up' })
})
