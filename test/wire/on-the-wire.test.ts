/**
 * What actually crosses the network: a relay between two wires records the
 * bytes, so we can see that frames are encrypted by default (and plain
 * only when switched off), and that a link fails over between addresses.
 */
import net from 'node:net'
import t, { type Test } from 'tap'
import { once, startWire, waitFor } from './helpers.js'

async function relay (t: Test, target: number): Promise<{ port: number, bytes: () => Buffer, cut: () => void }> {
  const seen: Buffer[] = []
  const pairs: net.Socket[] = []
  const server = net.createServer((inbound) => {
    const out = net.connect({ host: '127.0.0.1', port: target })
    pairs.push(inbound, out)
    for (const [a, b] of [[inbound, out], [out, inbound]] as const) {
      a.on('data', (d: Buffer) => { seen.push(d); b.write(d) })
      a.on('error', () => b.destroy())
      a.on('close', () => b.destroy())
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const cut = (): void => { server.close(); for (const s of pairs) s.destroy() }
  t.teardown(cut)
  return { port: (server.address() as net.AddressInfo).port, bytes: () => Buffer.concat(seen), cut }
}

for (const encrypt of [true, false]) {
  t.test(`payloads ${encrypt ? 'never appear' : 'appear'} in the TCP stream with encryption ${encrypt ? 'on' : 'off'}`, async (t) => {
    const { wire: a } = await startWire(t, 'a', { encrypt })
    const { wire: b } = await startWire(t, 'b', { encrypt })
    const r = await relay(t, b.port)
    b.handle('echo', (p) => p)
    a.addPeer('b', [`127.0.0.1:${r.port}`])
    const marker = 'MARKER-' + 'x'.repeat(40)
    t.equal(await a.call('b', 'echo', marker, { deadlineMs: 2000 }), marker)
    await a.send('b', { secret: marker })
    await waitFor('bytes relayed', () => r.bytes().includes('secret') || r.bytes().length > 300)
    t.equal(r.bytes().includes(marker), !encrypt)
  })
}

t.test('a peer with several addresses is reached by the one that works, and relinked by another when it dies', async (t) => {
  const { wire: a } = await startWire(t, 'a')
  const { wire: b } = await startWire(t, 'b')
  const r1 = await relay(t, b.port)
  const r2 = await relay(t, b.port)
  const dead = net.createServer()
  await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve))
  const deadPort = (dead.address() as net.AddressInfo).port
  dead.close() // now refuses connections
  b.handle('who', () => 'b')
  a.addPeer('b', [`127.0.0.1:${deadPort}`, `127.0.0.1:${r1.port}`, `127.0.0.1:${r2.port}`])
  t.equal(await a.call('b', 'who', null, { deadlineMs: 3000 }), 'b')
  t.equal(a.peerTable()[0]!.linkedVia, `127.0.0.1:${r1.port}`, 'skipped the dead address')
  const down = once(a, 'peer-down')
  r1.cut()
  await down
  t.equal(await a.call('b', 'who', null, { deadlineMs: 3000 }), 'b', 'a call made during failover waits for the new link')
  await waitFor('relinked', () => a.peerTable()[0]!.linkedVia === `127.0.0.1:${r2.port}`)
  t.pass('now over the third address')
})
