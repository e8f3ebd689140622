/**
 * Several netnode host processes in network namespaces (see netns.ts):
 * multicast and static discovery, a wrong-cookie host, partition and heal,
 * hostile traffic. Run with `npm run test:net` (also part of `npm test`).
 */
import t from 'tap'
import { Lab, netnsAvailable, until, ATTACKER, type HostProc } from './netns.js'

const skip = netnsAvailable()
const FAST = ['heartbeat_ms=200', 'link_timeout_ms=600', 'connect_timeout_ms=400', 'suspect_after_ms=600', 'down_after_ms=1500', 'beacon_ms=300']
const SECRET = 'net-test-cookie-0123456789abcdefghij'

async function allSee (hosts: HostProc[], expect: Record<string, string[]>, ms = 15_000): Promise<void> {
  await until(`views ${JSON.stringify(expect)}`, async () => {
    for (const h of hosts) if ((await h.view()).up.join(',') !== expect[h.id]!.join(',')) return false
    return true
  }, ms)
}

t.test('three hosts by multicast; a wrong cookie is kept out; a partition heals by itself; hostile traffic is dropped', { skip: skip ?? false }, async (t) => {
  const lab = new Lab(t)
  const cookie = lab.cookieFile('cookie', SECRET)
  const evilCookie = lab.cookieFile('evil', 'a-completely-different-cookie-0000000')
  const nets = [lab.addHost(), lab.addHost(), lab.addHost(), lab.addHost()]
  const [a, b, c] = ['a', 'b', 'c'].map((id, i) => lab.startHost(id, nets[i]!.ns, [`cookie=${cookie}`, ...FAST]))
  const hosts = [a!, b!, c!]
  const evil = lab.startHost('evil', nets[3]!.ns, [`cookie=${evilCookie}`, ...FAST,
    'peers=10.77.0.1:7400,10.77.0.2:7400,10.77.0.3:7400'])
  await allSee(hosts, { a: ['b', 'c'], b: ['a', 'c'], c: ['a', 'b'] })
  t.pass('a, b, c see each other')
  for (const [x, y] of [[a!, 'c'], [c!, 'a']] as const) t.match(await x.call(y), { ok: true, result: y }, `${x.id} calls ${y}`)

  await until('refusals counted', async () => (await a!.view()).wire.authFailed! > 0 && (await evil.view()).wire.authFailed! > 0 &&
    (await a!.view()).discovery!.badSignature! > 0 && (await evil.view()).discovery!.badSignature! > 0)
  const va = await a!.view()
  t.notOk(Object.keys(va.members).includes('evil'), 'evil is not a member of a')
  t.notOk(va.links.some((l) => l.id === 'evil'), 'a never learned of evil, so never dialed it')
  t.ok(va.discovery!.badSignature! > 0, `a dropped evil's beacons (${va.discovery!.badSignature})`)
  const ve = await evil.view()
  t.same(ve.up, [], 'evil sees no one')
  t.ok(ve.discovery!.badSignature! > 0, 'evil dropped the cluster beacons')
  t.match(a!.stderr.join('\n'), /refused link from 10\.77\.0\.4:\d+: EAUTH/, 'a logged the refusal with the address')

  const cut = Date.now()
  lab.partition(['p0h3'])
  await a!.waitEvent((e) => e.ev === 'down' && e.peer === 'c', 10_000, 'a: c down')
  const seen = Date.now() - cut
  await c!.waitEvent((e) => e.ev === 'down' && e.peer === 'a', 10_000, 'c: a down')
  await allSee(hosts, { a: ['b'], b: ['a'], c: [] })
  t.pass('the partition is seen on both sides')
  const healed = Date.now()
  lab.heal()
  await allSee(hosts, { a: ['b', 'c'], b: ['a', 'c'], c: ['a', 'b'] })
  // Figures, not assertions: with heartbeat 200 ms and down_after 1500 ms.
  t.comment(`partition noticed by a after ${seen} ms; all views whole ${Date.now() - healed} ms after the heal`)
  t.match(await c!.call('b'), { ok: true, result: 'b' }, 'healed without restarts')

  const attack = lab.spawnIn(nets[3]!.ns, [process.execPath, ATTACKER, '10.77.0.1', '10.77.0.2', '239.77.77.77', '7946', '7400'])
  let report = ''
  attack.stdout!.on('data', (d: Buffer) => { report += d.toString() })
  const code = await new Promise((resolve) => attack.on('exit', resolve))
  t.equal(code, 0, `attacker ran: ${report.trim()}`)
  let last: unknown = null
  await until('drops counted', async () => {
    const v = await a!.view()
    last = { discovery: v.discovery, wire: v.wire }
    return v.discovery!.replayed! >= 100 && v.discovery!.malformed! >= 305 && v.wire.handshakeErrors! >= 23
  }).catch((err: Error) => { throw new Error(`${err.message}; counters: ${JSON.stringify(last)}`) })
  const after = await a!.view()
  t.ok(after.discovery!.badSignature! >= 20, 'tampered beacons counted as bad signatures')
  t.ok(after.discovery!.replayed! >= 100, `replays counted (${after.discovery!.replayed})`)
  t.ok(after.wire.handshakeErrors! >= 23, `bad TCP input counted (${after.wire.handshakeErrors})`)
  t.ok(after.heapUsed < 256 * 1024 * 1024, `heap stayed bounded (${(after.heapUsed / 1048576).toFixed(1)} MiB)`)
  t.same(after.up, ['b', 'c'], 'a still serves its peers')
  t.match(await a!.call('b'), { ok: true })
})

t.test('static peers and peers_cmd without multicast', { skip: skip ?? false }, async (t) => {
  const lab = new Lab(t)
  const cookie = lab.cookieFile('cookie', SECRET)
  const nets = [lab.addHost(), lab.addHost(), lab.addHost()]
  const all = 'peers=10.77.0.1:7400,10.77.0.2:7400,10.77.0.3:7400'
  const a = lab.startHost('a', nets[0]!.ns, [`cookie=${cookie}`, 'mcast=off', ...FAST, all])
  const b = lab.startHost('b', nets[1]!.ns, [`cookie=${cookie}`, 'mcast=off', ...FAST, 'peers=10.77.0.1:7400'])
  const c = lab.startHost('c', nets[2]!.ns, [`cookie=${cookie}`, 'mcast=off', ...FAST, 'peers_cmd=echo 10.77.0.1:7400 10.77.0.2:7400'])
  await allSee([a, b, c], { a: ['b', 'c'], b: ['a', 'c'], c: ['a', 'b'] })
  t.pass('all three linked by static lists')
  const v = await a.view()
  t.equal(v.discovery, null, 'multicast was off')
  t.match(await b.call('c'), { ok: true, result: 'c' })
})

t.test('hosts with two interfaces: found by multicast on both networks; links and discovery survive cutting one', { skip: skip ?? false }, async (t) => {
  const lab = new Lab(t, 2)
  const cookie = lab.cookieFile('cookie', SECRET)
  const na = lab.addHost()
  const nb = lab.addHost()
  const own = (n: { addrs: string[] }): string[] => [`advertise=${n.addrs.map((x) => `${x}:7400`).join(';')}`, `mcast_iface=${n.addrs.join(';')}`]
  const slow = ['heartbeat_ms=200', 'link_timeout_ms=600', 'connect_timeout_ms=400', 'suspect_after_ms=600', 'down_after_ms=2500', 'beacon_ms=200']
  const a = lab.startHost('a', na.ns, [`cookie=${cookie}`, ...own(na), ...slow])
  const b = lab.startHost('b', nb.ns, [`cookie=${cookie}`, ...own(nb), ...slow])
  await allSee([a, b], { a: ['b'], b: ['a'] })
  const before = (await a.view()).links.find((l) => l.id === 'b')?.linkedVia
  t.equal(before, '10.77.0.2:7400', 'linked over the first network')
  const cut = Date.now()
  lab.partition(['p0h2'])
  await until('failover', async () => (await a.view()).links.find((l) => l.id === 'b')?.linkedVia === '10.77.1.2:7400')
  t.comment(`failover to the second network seen by a within ${Date.now() - cut} ms (link timeout 600 ms)`)
  t.pass('a now reaches b over the second network')
  const accepted = (await a.view()).discovery!.accepted!
  await new Promise((r) => setTimeout(r, 3000))
  t.same([...a.events, ...b.events].filter((e) => e.ev === 'down'), [], 'no host saw its peer go down')
  t.match(await a.call('b'), { ok: true, result: 'b' })
  t.match(await b.call('a'), { ok: true, result: 'a' })
  const v = await a.view()
  t.ok(v.wire.linksDown! >= 1, 'the first link did die')
  t.ok(v.discovery!.accepted! > accepted, 'beacons still arrive over the second network')
  t.equal(v.discovery!.replayed, 0, 'a beacon heard on two networks is not taken for a replay')
})

t.test('the multicast TTL setting is applied: TTL 0 keeps beacons on the host', { skip: skip ?? false }, async (t) => {
  const lab = new Lab(t)
  const cookie = lab.cookieFile('cookie', SECRET)
  const na = lab.addHost()
  const nb = lab.addHost()
  const a = lab.startHost('a', na.ns, [`cookie=${cookie}`, ...FAST, 'mcast_ttl=0'])
  const b = lab.startHost('b', nb.ns, [`cookie=${cookie}`, ...FAST, 'mcast_ttl=1'])
  // wait for both: a hears b, and a has sent a few beacons of its own
  await until('a hears b and has sent beacons', async () => {
    const d = (await a.view()).discovery!
    return d.accepted! > 3 && d.sent! > 3
  })
  const va = await a.view()
  const vb = await b.view()
  t.ok(va.discovery!.sent! > 3, `a sent beacons (${va.discovery!.sent})`)
  t.equal(vb.discovery!.accepted, 0, 'none of them reached b')
  t.equal(vb.discovery!.received, vb.discovery!.self, 'b received only its own')
})
