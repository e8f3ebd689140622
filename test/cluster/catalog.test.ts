import t, { type Test } from 'tap'
import { unpack } from 'msgpackr'
import {
  applyCommand, decodeCatalog, emptyCatalog, encodeCatalog, encodeCommand, findGroup, findHost, tableGroups, toPlacementInput,
  type Catalog, type CatalogCommand
} from '../../src/cluster/catalog.js'
import { plan } from '../../src/cluster/placement.js'
import { seededRng } from '../../src/raft/rng.js'

function boot (): Catalog {
  const c = emptyCatalog()
  const r = applyCommand(c, { op: 'bootstrap', clusterId: 'c1', name: 'prod', host: { id: 'h1', addresses: ['10.0.0.1:7000'] }, at: 1000 })
  if (!r.ok) throw new Error(r.error)
  return c
}

function ok (t: Test, c: Catalog, cmd: CatalogCommand): void {
  const r = applyCommand(c, cmd)
  t.same(r, { ok: true }, `${cmd.op} accepted`)
}

/** Applies a command that must be rejected; checks the message and that nothing changed. */
function rejects (t: Test, c: Catalog, cmd: CatalogCommand, msg: RegExp): void {
  const before = Buffer.from(encodeCatalog(c))
  const r = applyCommand(c, cmd)
  t.equal(r.ok, false, `${cmd.op} rejected`)
  if (!r.ok) t.match(r.error, msg)
  t.ok(before.equals(Buffer.from(encodeCatalog(c))), `rejected ${cmd.op} changed nothing`)
}

t.test('bootstrap writes the cluster id and admits the first host; nothing else works before it', async (t) => {
  const c = emptyCatalog()
  rejects(t, c, { op: 'addHost', host: { id: 'h2', addresses: ['a'] }, at: 1 }, /not bootstrapped yet/)
  rejects(t, c, { op: 'createTable', name: 'files' }, /not bootstrapped yet/)
  rejects(t, c, { op: 'bootstrap', clusterId: 'c 1', name: 'prod', host: { id: 'h1', addresses: ['a'] }, at: 1 }, /cluster id "c 1"/)
  rejects(t, c, { op: 'bootstrap', clusterId: 'c1', name: 'prod', host: { id: 'h1', addresses: [] }, at: 1 }, /at least one address/)
  rejects(t, c, { op: 'bootstrap', clusterId: 'c1', name: 'prod', host: { id: 'h1', addresses: ['a'] }, at: 1, settings: { copies: 0 } }, /copies=0 must be an integer from 1 to 9/)
  ok(t, c, { op: 'bootstrap', clusterId: 'c1', name: 'prod', host: { id: 'h1', addresses: ['a'] }, at: 5, settings: { fragments: 4 } })
  t.equal(c.clusterId, 'c1')
  t.equal(c.settings.fragments, 4)
  t.equal(c.settings.copies, 3, 'unset settings keep their defaults')
  t.same(findHost(c, 'h1'), { id: 'h1', node: 1, addresses: ['a'], state: 'up', joinedAt: 5 })
  rejects(t, c, { op: 'bootstrap', clusterId: 'c2', name: 'prod', host: { id: 'h9', addresses: ['a'] }, at: 1 }, /already bootstrapped \(cluster id c1\)/)
})

t.test('hosts: add, addresses, retire', async (t) => {
  const c = boot()
  ok(t, c, { op: 'addHost', host: { id: 'h3', addresses: ['x:1'] }, at: 2000 })
  ok(t, c, { op: 'addHost', host: { id: 'h2', addresses: ['y:1', 'y:2'] }, at: 3000 })
  t.same(c.hosts.map((h) => [h.id, h.node]), [['h1', 1], ['h2', 3], ['h3', 2]], 'sorted by id; node numbers in admission order')
  rejects(t, c, { op: 'addHost', host: { id: 'h2', addresses: ['z'] }, at: 1 }, /already in the catalog \(up\)/)
  rejects(t, c, { op: 'addHost', host: { id: '', addresses: ['z'] }, at: 1 }, /host id "" must be/)
  rejects(t, c, { op: 'addHost', host: { id: 'h4', addresses: ['z', 'z'] }, at: 1 }, /must not repeat/)
  rejects(t, c, { op: 'addHost', host: { id: 'h4', addresses: Array.from({ length: 17 }, (_, i) => `a${i}`) }, at: 1 }, /at most 16 addresses/)
  ok(t, c, { op: 'updateAddresses', host: 'h2', addresses: ['y:9'] })
  t.same(findHost(c, 'h2')!.addresses, ['y:9'])
  rejects(t, c, { op: 'updateAddresses', host: 'nope', addresses: ['y:9'] }, /unknown host "nope"/)
  rejects(t, c, { op: 'finishRetire', host: 'h2' }, /h2 is up; only a retiring host can finish/)
  ok(t, c, { op: 'startRetire', host: 'h2' })
  rejects(t, c, { op: 'startRetire', host: 'h2' }, /already retiring/)
  ok(t, c, { op: 'recordMembership', group: 'schema', replicas: [{ host: 'h1', role: 'voter' }, { host: 'h2', role: 'voter' }], configIndex: 3 })
  rejects(t, c, { op: 'finishRetire', host: 'h2' }, /still holds replicas of 1 group\(s\) \(schema\); drain them first/)
  ok(t, c, { op: 'recordMembership', group: 'schema', replicas: [{ host: 'h1', role: 'voter' }], configIndex: 4 })
  ok(t, c, { op: 'finishRetire', host: 'h2' })
  t.equal(findHost(c, 'h2')!.state, 'retired')
  rejects(t, c, { op: 'updateAddresses', host: 'h2', addresses: ['q'] }, /retired/)
  rejects(t, c, { op: 'recordMembership', group: 'schema', replicas: [{ host: 'h1', role: 'voter' }, { host: 'h2', role: 'learner' }], configIndex: 9 }, /retired host h2/)
  rejects(t, c, { op: 'addHost', host: { id: 'h2', addresses: ['z'] }, at: 1 }, /already in the catalog \(retired\)/)
  ok(t, c, { op: 'startRetire', host: 'h3' })
  rejects(t, c, { op: 'startRetire', host: 'h1' }, /last host that is not retiring/)
})

t.test('tables, memberships, leader hints and settings', async (t) => {
  const c = boot()
  ok(t, c, { op: 'addHost', host: { id: 'h2', addresses: ['b'] }, at: 2 })
  ok(t, c, { op: 'createTable', name: 'files', fragments: 2 })
  ok(t, c, { op: 'createTable', name: 'dirs' })
  t.same(c.tables, [{ name: 'dirs', copies: 3, fragments: 16 }, { name: 'files', copies: 3, fragments: 2 }], 'defaults from settings; sorted by name')
  rejects(t, c, { op: 'createTable', name: 'files' }, /already exists/)
  rejects(t, c, { op: 'createTable', name: 'Files' }, /must start with a lower-case letter/)
  rejects(t, c, { op: 'createTable', name: 'x', copies: 10 }, /copies=10/)
  rejects(t, c, { op: 'createTable', name: 'x', fragments: 1.5 }, /fragments=1.5/)
  t.same(tableGroups(c.tables[1]), ['files/0', 'files/1'])

  rejects(t, c, { op: 'recordMembership', group: 'files/2', replicas: [{ host: 'h1', role: 'voter' }], configIndex: 1 }, /neither the schema group nor a fragment/)
  rejects(t, c, { op: 'recordMembership', group: 'nope/0', replicas: [{ host: 'h1', role: 'voter' }], configIndex: 1 }, /neither the schema group/)
  rejects(t, c, { op: 'recordMembership', group: 'files/01', replicas: [{ host: 'h1', role: 'voter' }], configIndex: 1 }, /neither the schema group/)
  rejects(t, c, { op: 'recordMembership', group: 'files/0', replicas: [{ host: 'h1', role: 'learner' }], configIndex: 1 }, /would have no voter/)
  rejects(t, c, { op: 'recordMembership', group: 'files/0', replicas: [{ host: 'h1', role: 'voter' }, { host: 'h1', role: 'learner' }], configIndex: 1 }, /appears twice/)
  rejects(t, c, { op: 'recordMembership', group: 'files/0', replicas: [{ host: 'h7', role: 'voter' }], configIndex: 1 }, /unknown host "h7"/)
  rejects(t, c, { op: 'recordMembership', group: 'files/0', replicas: [{ host: 'h1', role: 'voter' }], configIndex: 0 }, /positive integer/)
  ok(t, c, { op: 'recordMembership', group: 'files/0', replicas: [{ host: 'h2', role: 'learner' }, { host: 'h1', role: 'voter' }], configIndex: 7 })
  t.same(findGroup(c, 'files/0'), { id: 'files/0', replicas: [{ host: 'h1', role: 'voter' }, { host: 'h2', role: 'learner' }], configIndex: 7, leader: null })
  rejects(t, c, { op: 'recordMembership', group: 'files/0', replicas: [{ host: 'h1', role: 'voter' }], configIndex: 7 }, /stale membership for files\/0: config index 7 is not newer than the recorded 7/)

  rejects(t, c, { op: 'leaderHint', group: 'files/0', leader: 'h2' }, /h2" is not a voter of group files\/0/)
  rejects(t, c, { op: 'leaderHint', group: 'files/1', leader: 'h1' }, /unknown group "files\/1"/)
  ok(t, c, { op: 'leaderHint', group: 'files/0', leader: 'h1' })
  ok(t, c, { op: 'recordMembership', group: 'files/0', replicas: [{ host: 'h1', role: 'voter' }, { host: 'h2', role: 'voter' }], configIndex: 8 })
  t.equal(findGroup(c, 'files/0')!.leader, 'h1', 'the hint survives while its host stays a voter')
  ok(t, c, { op: 'recordMembership', group: 'files/0', replicas: [{ host: 'h2', role: 'voter' }], configIndex: 9 })
  t.equal(findGroup(c, 'files/0')!.leader, null, 'a hint naming a removed voter is dropped')
  ok(t, c, { op: 'recordMembership', group: 'files/0', replicas: [], configIndex: 10 })
  t.equal(findGroup(c, 'files/0'), undefined, 'an empty replica list drops the group')

  ok(t, c, { op: 'changeSettings', settings: { schemaVoters: 3, replaceAfterMs: 60000 } })
  t.same(c.settings, { copies: 3, fragments: 16, replaceAfterMs: 60000, quorumWaitMs: 10000, schemaVoters: 3 })
  rejects(t, c, { op: 'changeSettings', settings: { schemaVoters: 0 } }, /schemaVoters=0/)
  rejects(t, c, { op: 'changeSettings', settings: { color: 3 } as never }, /unknown setting "color"/)
  rejects(t, c, { op: 'changeSettings', settings: { copies: 2, quorumWaitMs: -1 } }, /quorumWaitMs=-1/)
  t.equal(c.settings.copies, 3, 'a command with one bad setting applies none of them')
  rejects(t, c, { op: 'dropEverything' } as never, /unknown catalog command "dropEverything"/)
})

/** A random but valid-or-invalid command stream over a small id space, so both kinds occur often. */
function randomCommands (seed: number, n: number): CatalogCommand[] {
  const r = seededRng(seed)
  const rng = (): number => r.next()
  const pick = <T>(xs: T[]): T => xs[Math.floor(rng() * xs.length)]
  const hosts = ['h1', 'h2', 'h3', 'h4', 'h5']
  const groups = ['schema', 'files/0', 'files/1', 'dirs/0', 'dirs/5']
  const out: CatalogCommand[] = [{ op: 'bootstrap', clusterId: `c${seed}`, name: 'n', host: { id: 'h1', addresses: ['a'] }, at: 0 }]
  for (let i = 0; i < n; i++) {
    const k = Math.floor(rng() * 9)
    if (k === 0) out.push({ op: 'addHost', host: { id: pick(hosts), addresses: [`addr${i}`] }, at: i })
    else if (k === 1) out.push({ op: 'updateAddresses', host: pick(hosts), addresses: [`u${i}`] })
    else if (k === 2) out.push({ op: 'startRetire', host: pick(hosts) })
    else if (k === 3) out.push({ op: 'finishRetire', host: pick(hosts) })
    else if (k === 4) out.push({ op: 'createTable', name: pick(['files', 'dirs']), fragments: 1 + Math.floor(rng() * 3) })
    else if (k === 5 || k === 6) {
      const reps = hosts.filter(() => rng() < 0.5).map((h) => ({ host: h, role: rng() < 0.7 ? 'voter' as const : 'learner' as const }))
      out.push({ op: 'recordMembership', group: pick(groups), replicas: reps, configIndex: 1 + Math.floor(rng() * i + 1) })
    } else if (k === 7) out.push({ op: 'leaderHint', group: pick(groups), leader: rng() < 0.2 ? null : pick(hosts) })
    else out.push({ op: 'changeSettings', settings: { copies: Math.floor(rng() * 11) } })
  }
  return out
}

t.test('determinism: the same commands give the same bytes; snapshots round-trip', async (t) => {
  for (let seed = 1; seed <= 30; seed++) {
    const cmds = randomCommands(seed, 200)
    const a = emptyCatalog()
    const b = emptyCatalog()
    let accepted = 0
    const ra = cmds.map((c) => applyCommand(a, c))
    // b applies commands decoded from their wire form, as a follower does.
    const rb = cmds.map((c) => applyCommand(b, unpack(encodeCommand(c)) as CatalogCommand))
    for (const r of ra) if (r.ok) accepted++
    t.same(rb, ra, `seed ${seed}: same results on both replicas`)
    t.ok(Buffer.from(encodeCatalog(a)).equals(Buffer.from(encodeCatalog(b))), `seed ${seed}: same encoded state`)
    t.ok(accepted > 10 && accepted < cmds.length, `seed ${seed}: the stream mixes accepted (${accepted}) and rejected commands`)
    const restored = decodeCatalog(encodeCatalog(a))
    t.same(restored, a, `seed ${seed}: snapshot restores the same catalog`)
    // A restored replica keeps agreeing with one that never restarted.
    const more = randomCommands(seed + 1000, 50).slice(1)
    t.same(more.map((c) => applyCommand(restored, c)), more.map((c) => applyCommand(a, c)))
    t.ok(Buffer.from(encodeCatalog(a)).equals(Buffer.from(encodeCatalog(restored))), `seed ${seed}: still equal after more commands`)
  }
})

t.test('key order inside a command does not change the state', async (t) => {
  const a = boot()
  const b = boot()
  applyCommand(a, { op: 'changeSettings', settings: { copies: 2, schemaVoters: 3 } })
  applyCommand(b, { op: 'changeSettings', settings: { schemaVoters: 3, copies: 2 } })
  t.ok(Buffer.from(encodeCatalog(a)).equals(Buffer.from(encodeCatalog(b))))
})

t.test('the catalog feeds the placement planner', async (t) => {
  const c = boot()
  ok(t, c, { op: 'addHost', host: { id: 'h2', addresses: ['b'] }, at: 2 })
  ok(t, c, { op: 'addHost', host: { id: 'h3', addresses: ['c'] }, at: 3 })
  ok(t, c, { op: 'addHost', host: { id: 'h4', addresses: ['d'] }, at: 4 })
  ok(t, c, { op: 'createTable', name: 'files', fragments: 2 })
  ok(t, c, { op: 'recordMembership', group: 'schema', replicas: [{ host: 'h1', role: 'voter' }, { host: 'h2', role: 'learner' }], configIndex: 2 })
  ok(t, c, { op: 'leaderHint', group: 'schema', leader: 'h1' })
  ok(t, c, { op: 'startRetire', host: 'h4' })
  const input = toPlacementInput(c, { now: 100, hosts: { h1: { up: true }, h2: { up: true, zone: 'z2' }, h3: { up: false, downSince: 50 } }, caughtUp: { schema: ['h2'] } })
  t.same(input.hosts, [
    { id: 'h1', state: 'up' },
    { id: 'h2', state: 'up', zone: 'z2' },
    { id: 'h3', state: 'down', downSince: 50 },
    { id: 'h4', state: 'down', downSince: 100, retiring: true }
  ], 'liveness joined with catalog state; an unreported host is down since now')
  t.same(input.tables, [{ name: 'files', copies: 3, fragments: 2 }])
  t.same(input.groups, [{ id: 'schema', replicas: [{ host: 'h1', role: 'voter' }, { host: 'h2', role: 'learner', caughtUp: true }], leader: 'h1' }])
  t.same(input.settings, { replaceAfterMs: 600000, schemaVoters: 5 })
  const p = plan(input)
  t.ok(p.moves.some((m) => m.kind === 'promote' && m.group === 'schema' && m.host === 'h2'), 'the planner promotes the caught-up schema learner')
  t.ok(p.moves.some((m) => m.kind === 'create' && m.group === 'files/0'), 'the planner creates the missing fragments')
  const changing = toPlacementInput(c, { now: 100, hosts: { h1: { up: true } }, changing: ['schema'], leaders: { schema: null } })
  t.same(changing.groups[0].changing, true)
  t.equal(changing.groups[0].leader, null, 'a fresher leader report wins over the catalog hint')
})
