/**
 * Hostile and broken input at a listening wire over real TCP: wrong
 * cookies, other clusters, garbage, truncated and oversized frames before
 * and after the handshake, replayed frames, silent and slow peers. Each
 * must be refused and counted, and the host must go on serving good peers.
 */
import net from 'node:net'
import t, { type Test } from 'tap'
import { FrameSealer } from '../../src/wire/cipher.js'
import { dialerHandshake } from '../../src/wire/handshake.js'
import { deriveClusterKeys, randomBytes } from '../../src/wire/keys.js'
import { encodeMessage, Kind } from '../../src/wire/messages.js'
import { frameHeader } from '../../src/wire/framing.js'
import type { Wire } from '../../src/wire/wire.js'
import { COOKIE, startWire, waitFor } from './helpers.js'

function connect (t: { teardown: (fn: () => unknown) => void }, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s))
    s.on('error', reject)
    t.teardown(() => s.destroy())
  })
}

function closed (s: net.Socket): Promise<void> {
  return new Promise((resolve) => { if (s.destroyed) resolve(); else s.once('close', () => resolve()) })
}

/** A raw client that passes the handshake, for attacks after it. */
async function rawPeer (t: { teardown: (fn: () => unknown) => void }, wire: Wire, id = 'raw') {
  const s = await connect(t, wire.port)
  s.on('error', () => {})
  const keys = deriveClusterKeys(COOKIE, 'test')
  const hs = await dialerHandshake(s, { hostId: id, clusterHash: keys.clusterHash, authKey: keys.authKey, encrypt: true, addrs: [], timeoutMs: 1000 })
  return { s, sealer: new FrameSealer(hs.txKey) }
}

async function stillServes (t: Test, wire: Wire): Promise<void> {
  const { wire: good } = await startWire(t, `good-${Math.random()}`)
  wire.handle('ping', () => 'pong')
  good.addPeer(wire.hostId, wire.addresses)
  t.equal(await good.call(wire.hostId, 'ping', null, { deadlineMs: 3000 }), 'pong', 'a good peer still gets through')
}

t.test('a wrong cookie is refused on both sides, logged, counted, and never hangs', async (t) => {
  const { wire: a, logs: la } = await startWire(t, 'a')
  const { wire: b, logs: lb } = await startWire(t, 'b', { cookie: Buffer.from('another-cookie-entirely-0123456789') })
  a.addPeer('b', b.addresses)
  b.addPeer('a', a.addresses)
  await waitFor('refusals on both sides', () => a.counters.get('authFailed') >= 2 && b.counters.get('authFailed') >= 2)
  t.same(a.linkedPeers(), [])
  t.same(b.linkedPeers(), [])
  t.match(la.join('\n'), /refused link .*EAUTH: host "b" did not prove knowledge of our cookie/)
  t.match(lb.join('\n'), /refused link .*EAUTH: host "a" did not prove knowledge of our cookie/)
  await t.rejects(a.call('b', 'x', null, { deadlineMs: 200 }), { code: 'ELINKDOWN' })
})

t.test('a host of another cluster name is refused and counted', async (t) => {
  const { wire: a } = await startWire(t, 'a')
  const { wire: b } = await startWire(t, 'b', { clusterName: 'other' })
  a.addPeer('b', b.addresses)
  await waitFor('refusal', () => b.counters.get('otherCluster') >= 1 && a.counters.get('otherCluster') >= 1)
  t.same(a.linkedPeers(), [])
})

t.test('garbage, truncated, oversized and silent handshakes are dropped and counted', async (t) => {
  const { wire } = await startWire(t, 'a', { handshakeTimeoutMs: 300 })
  const garbage = await connect(t, wire.port)
  garbage.write(randomBytes(64 * 1024))
  const oversized = await connect(t, wire.port)
  oversized.write(Buffer.from([0xff, 0xff, 0xff, 0xf0, 1, 2, 3]))
  const truncated = await connect(t, wire.port)
  truncated.write(Buffer.concat([frameHeader(1000), randomBytes(10)]))
  const silent = await connect(t, wire.port)
  const badMap = await connect(t, wire.port)
  badMap.write(Buffer.concat([frameHeader(3), Buffer.from([0x93, 1, 2])]))
  await Promise.all([closed(garbage), closed(oversized), closed(truncated), closed(silent), closed(badMap)])
  t.pass('the host closed all five connections')
  await waitFor('counted', () => wire.counters.get('handshakeErrors') >= 5)
  t.equal(wire.counters.get('authFailed'), 0)
  await stillServes(t, wire)
})

t.test('many garbage connections at once: handshakes are capped, none lingers', async (t) => {
  const { wire } = await startWire(t, 'a', { handshakeTimeoutMs: 300, maxHandshakes: 8 })
  const socks = await Promise.all(Array.from({ length: 40 }, () => connect(t, wire.port)))
  for (const s of socks) s.on('error', () => {})
  await Promise.all(socks.map(closed))
  t.ok(wire.counters.get('handshakeOverload') > 0, 'connections over the cap were closed at once')
  t.equal(wire.counters.get('handshakeOverload') + wire.counters.get('handshakeErrors'), 40, 'every connection counted')
  await stillServes(t, wire)
})

t.test('after the handshake: garbage, forged, replayed and oversized frames close the link and count', async (t) => {
  const { wire } = await startWire(t, 'a', { maxFrameBytes: 1024 })
  const got: unknown[] = []
  wire.on('message', (_from: string, body: unknown) => got.push(body))

  const p1 = await rawPeer(t, wire, 'r1')
  p1.s.write(p1.sealer.seal(encodeMessage({ kind: Kind.Send, body: 'hello' })))
  await waitFor('valid frame delivered', () => got.length === 1)
  p1.s.write(Buffer.concat([frameHeader(64), randomBytes(64)]))
  await closed(p1.s)
  t.equal(wire.counters.get('protoErrors'), 1, 'forged frame')

  const p2 = await rawPeer(t, wire, 'r2')
  const frame = p2.sealer.seal(encodeMessage({ kind: Kind.Send, body: 'once' }))
  p2.s.write(frame)
  p2.s.write(frame)
  await closed(p2.s)
  t.equal(wire.counters.get('protoErrors'), 2, 'replayed frame')
  t.same(got, ['hello', 'once'], 'the replay was not delivered')

  const p3 = await rawPeer(t, wire, 'r3')
  p3.s.write(frameHeader(1 << 30))
  await closed(p3.s)
  t.equal(wire.counters.get('protoErrors'), 3, 'oversized frame')

  const p4 = await rawPeer(t, wire, 'r4')
  p4.s.write(p4.sealer.seal(Buffer.from([0x93, 9, 0, 0])))
  await closed(p4.s)
  t.equal(wire.counters.get('protoErrors'), 4, 'wrong version')

  const p5 = await rawPeer(t, wire, 'r5')
  p5.s.write(p5.sealer.seal(randomBytes(100)))
  await closed(p5.s)
  t.equal(wire.counters.get('protoErrors'), 5, 'undecodable payload')
  await stillServes(t, wire)
})

t.test('an authenticated peer that goes silent is cut after the link timeout', async (t) => {
  const { wire } = await startWire(t, 'a', { heartbeatMs: 100, linkTimeoutMs: 400 })
  const why: string[] = []
  wire.on('peer-down', (_id: string, reason: string) => why.push(reason))
  const p = await rawPeer(t, wire)
  p.s.pause()
  await waitFor('peer down', () => why.length > 0, 3000)
  t.match(why[0], /heard nothing for \d+ ms/)
})

t.test('a peer that stops reading slows its senders; queue and waiters stay bounded', async (t) => {
  const { wire } = await startWire(t, 'a', { maxQueued: 4, maxBlockedSenders: 8, linkTimeoutMs: 60_000 })
  const p = await rawPeer(t, wire, 'slow')
  p.s.pause()
  await waitFor('link', () => wire.linkedPeers().includes('slow'))
  const big = Buffer.alloc(1024 * 1024)
  let maxQueued = 0
  const results: Array<Promise<string>> = []
  for (let i = 0; i < 64; i++) {
    results.push(wire.send('slow', big).then(() => 'sent', (e: { code: string }) => e.code))
    maxQueued = Math.max(maxQueued, wire.peerTable()[0]!.queued)
    await new Promise((r) => setImmediate(r))
  }
  await new Promise((r) => setTimeout(r, 300))
  const settled = await Promise.race([Promise.all(results).then(() => 'all'), new Promise((r) => setTimeout(() => r('some wait'), 100))])
  t.equal(settled, 'some wait', 'senders wait while the peer does not read')
  t.ok(maxQueued <= 5, `queue stayed bounded (max ${maxQueued})`)
  p.s.resume()
  const outcomes = await Promise.all(results)
  t.ok(outcomes.includes('EQUEUEFULL'), 'senders beyond the waiter bound were refused')
  t.ok(outcomes.filter((o) => o === 'sent').length >= 4 + 8, 'the rest went through once the peer read again')
  t.same(outcomes.filter((o) => o !== 'sent' && o !== 'EQUEUEFULL'), [])
})
