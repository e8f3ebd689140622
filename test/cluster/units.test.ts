import t from 'tap'
import { checkBeacon, encodeBeacon, ReplayGuard, MAX_BEACON_BYTES } from '../../src/cluster/beacon.js'
import { Discovery } from '../../src/cluster/discovery.js'
import { checkTimings, FailureDetector } from '../../src/cluster/failure-detector.js'
import { parsePeerList, runPeersCmd } from '../../src/cluster/static-peers.js'
import { parseHostSettings } from '../../src/cli/options.js'
import { deriveClusterKeys, randomBytes } from '../../src/wire/keys.js'

const keys = deriveClusterKeys(Buffer.from('cookie-for-cluster-tests-0123456789'), 'c1')

t.test('beacons: a signed beacon checks out; forged, foreign, truncated and garbage ones are dropped by reason', async (t) => {
  const b = { hostId: 'h1', incarnation: 5, addrs: ['10.0.0.1:7400', '10.1.0.1:7400'], timestamp: 1000 }
  const p = encodeBeacon(b, keys)
  const r = checkBeacon(p, keys)
  t.ok('beacon' in r)
  if ('beacon' in r) t.match(r.beacon, b)
  t.same(checkBeacon(p, deriveClusterKeys(Buffer.from('another-cookie-for-tests-0123456789'), 'c1')), { drop: 'badSignature' })
  t.same(checkBeacon(p, deriveClusterKeys(Buffer.from('cookie-for-cluster-tests-0123456789'), 'c2')), { drop: 'otherCluster' })
  const flipped = Buffer.from(p); flipped[10]! ^= 1
  t.ok('drop' in checkBeacon(flipped, keys), 'a flipped bit is dropped')
  const unsigned = p.subarray(0, p.length - 32)
  t.ok('drop' in checkBeacon(unsigned, keys))
  t.same(checkBeacon(p.subarray(0, 20), keys), { drop: 'malformed' })
  t.same(checkBeacon(Buffer.alloc(MAX_BEACON_BYTES + 1), keys), { drop: 'malformed' })
  for (let i = 0; i < 500; i++) t.ok('drop' in checkBeacon(randomBytes(1 + (i % 200)), keys))
})

t.test('replay guard: copies, old incarnations and stale timestamps are refused; memory is capped', async (t) => {
  const g = new ReplayGuard(30_000, 3)
  const b = (id: string, inc: number, ts: number) => ({ hostId: id, incarnation: inc, addrs: [], timestamp: ts, nonce: randomBytes(16) })
  t.equal(g.check(b('a', 1, 100_000), 100_000), 'fresh')
  t.equal(g.check(b('a', 1, 100_000), 100_001), 'replayed', 'same timestamp')
  t.equal(g.check(b('a', 1, 99_000), 100_002), 'replayed', 'older timestamp')
  t.equal(g.check(b('a', 1, 100_500), 100_600), 'fresh')
  t.equal(g.check(b('a', 0, 100_700), 100_700), 'replayed', 'older incarnation')
  t.equal(g.check(b('a', 2, 90_000), 100_700), 'fresh', 'restart: new incarnation, any recent timestamp')
  t.equal(g.check(b('a', 1, 100_800), 130_000), 'replayed', 'within a window of the last fresh one, the old incarnation is refused')
  t.equal(g.check(b('a', 1, 110_000), 130_900), 'fresh', 'a window after the last fresh beacon, a restart with a stepped-back clock is heard')
  t.equal(g.check(b('b', 1, 10_000), 100_000), 'stale')
  t.equal(g.check(b('b', 1, 200_000), 100_000), 'stale', 'from the future')
  for (const id of ['c', 'd', 'e', 'f']) g.check(b(id, 1, 100_000), 100_000)
  t.equal(g.size, 3)
})

t.test('discovery drops and counts bad packets without sockets or exceptions', async (t) => {
  const d = new Discovery({ hostId: 'me', incarnation: 1, keys, addrs: () => [] })
  const peers: string[] = []
  d.on('peer', (b: { hostId: string }) => peers.push(b.hostId))
  const now = Date.now()
  const good = encodeBeacon({ hostId: 'other', incarnation: 1, addrs: ['10.0.0.2:7400'], timestamp: now }, keys)
  d.receive(good, 'x')
  d.receive(good, 'x')
  d.receive(encodeBeacon({ hostId: 'me', incarnation: 1, addrs: [], timestamp: now }, keys), 'x')
  d.receive(randomBytes(300), 'x')
  d.receive(Buffer.alloc(9000), 'x')
  d.receive(encodeBeacon({ hostId: 'x', incarnation: 1, addrs: [], timestamp: now }, deriveClusterKeys(Buffer.from('zzzzzzzzzzzzzzzzzzzzzz'), 'c1')), 'x')
  d.receive(encodeBeacon({ hostId: 'y', incarnation: 1, addrs: [], timestamp: now - 3_600_000 }, keys), 'x')
  t.same(peers, ['other'])
  t.match(d.counters.snapshot(), { received: 7, accepted: 1, replayed: 1, self: 1, malformed: 2, badSignature: 1, stale: 1 })
})

t.test('failure detector: up, suspect, down, up again', async (t) => {
  const fd = new FailureDetector({ suspectAfterMs: 100, downAfterMs: 300 })
  t.same(fd.heard('a', 0), [{ type: 'up', peerId: 'a' }])
  t.same(fd.tick(50), [])
  t.same(fd.view(), { a: 'up' })
  t.same(fd.tick(150), [])
  t.same(fd.view(), { a: 'suspect' })
  t.same(fd.heard('a', 160), [], 'a suspicion cleared is no event')
  t.same(fd.view(), { a: 'up' })
  t.same(fd.tick(470), [{ type: 'down', peerId: 'a' }])
  t.same(fd.tick(900), [], 'down once')
  t.same(fd.up(), [])
  t.same(fd.heard('a', 450), [], 'news from before the death does not revive')
  t.same(fd.view(), { a: 'down' })
  t.same(fd.heard('a', 1000), [{ type: 'up', peerId: 'a' }])
  t.throws(() => new FailureDetector({ suspectAfterMs: 100, downAfterMs: 100 }))
  t.throws(() => checkTimings({ heartbeatMs: 100, linkTimeoutMs: 300, connectTimeoutMs: 200, suspectAfterMs: 300, downAfterMs: 500 }), /down_after/)
  t.throws(() => checkTimings({ heartbeatMs: 100, linkTimeoutMs: 150, connectTimeoutMs: 200, suspectAfterMs: 300, downAfterMs: 900 }), /two heartbeats/)
})

t.test('static peers: lists and commands', async (t) => {
  t.same(parsePeerList('10.0.0.1:7400, 10.0.0.2:7400\n10.0.0.1:7400 # dup'), ['10.0.0.1:7400', '10.0.0.2:7400'])
  t.throws(() => parsePeerList('10.0.0.1'), /"10.0.0.1" is not host:port/)
  t.throws(() => parsePeerList('10.0.0.1:7400;10.0.0.2:7400'), /is not host:port/)
  t.throws(() => parsePeerList('10.0.0.1:74x'), /is not host:port/)
  t.same(parsePeerList('[::1]:7400 host-1.example:80'), ['[::1]:7400', 'host-1.example:80'])
  t.same(await runPeersCmd("printf '10.0.0.3:7400\\n# comment\\n10.0.0.4:7400\\n'"), ['10.0.0.3:7400', '10.0.0.4:7400'])
  await t.rejects(runPeersCmd('exit 3'), /peers_cmd "exit 3" failed/)
  await t.rejects(runPeersCmd('echo nonsense'), /printed a bad line/)
  await t.rejects(runPeersCmd('sleep 5', 100), /no answer within 100 ms/)
})

t.test('host settings: defaults, and clear refusals', async (t) => {
  const s = parseHostSettings(['id=a', 'cookie=/c', 'peers=10.0.0.1:7400;10.0.0.2:7400'])
  t.match(s, { id: 'a', port: 7400, mcast: true, mcastTtl: 1, heartbeatMs: 1000, linkTimeoutMs: 3000, downAfterMs: 6000, encrypt: true })
  t.same(s.peers, ['10.0.0.1:7400', '10.0.0.2:7400'])
  t.same(parseHostSettings(['id=a,cookie=/c,mcast=off']).mcast, false)
  t.throws(() => parseHostSettings(['id=a', 'cookie=/c', 'nofail']), /unknown setting "nofail"/)
  t.throws(() => parseHostSettings(['cookie=/c']), /id=NAME is required/)
  t.throws(() => parseHostSettings(['id=a', 'cookie=/c', 'mcast_ttl=300']), /mcast_ttl=300/)
  t.throws(() => parseHostSettings(['id=a', 'cookie=/c', 'mcast_group=10.0.0.1']), /not an IPv4 multicast/)
  t.same(parseHostSettings(['id=a', 'cookie=/c', 'mcast_iface=10.0.0.1;10.1.0.1']).mcastIfaces, ['10.0.0.1', '10.1.0.1'])
  t.throws(() => parseHostSettings(['id=a', 'cookie=/c', 'mcast_iface=eth0']), /not an IPv4 interface address/)
  t.throws(() => parseHostSettings(['id=a', 'cookie=/c', 'down_after_ms=2000']), /down_after/)
})
