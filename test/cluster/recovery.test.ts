/**
 * The pure parts of a forced recovery: the Raft suffix (src/raft/force.ts),
 * the catalog's forceRecover command and the plan (src/cluster/recovery.ts).
 */
import t from 'tap'
import { applyCommand, emptyCatalog, findHost, type Catalog } from '../../src/cluster/catalog.js'
import { planRecovery } from '../../src/cluster/recovery.js'
import { forceSoleVoter, soleVoterSteps, summarize } from '../../src/raft/force.js'
import { RaftLog } from '../../src/raft/log.js'
import type { WholeRaftInit } from '../../src/raft/raft.js'
import type { Entry } from '../../src/raft/types.js'

function init (voters: number[], learners: number[], entries: Entry[], commit: number, term = 4): WholeRaftInit {
  return { hardState: { term, vote: 0, commit }, snapshot: { meta: { index: 0, term: 0, config: { voters, learners } }, data: new Uint8Array() }, entries, applied: commit }
}
const normal = (index: number, term: number): Entry => ({ index, term, kind: 'normal', data: new Uint8Array([index]) })

t.test('soleVoterSteps: from any membership to this node alone, one step at a time', async (t) => {
  t.same(soleVoterSteps({ voters: [1, 2, 3], learners: [] }, 1), [{ type: 'remove', node: 2 }, { type: 'remove', node: 3 }])
  t.same(soleVoterSteps({ voters: [2, 3], learners: [1, 4] }, 1), [{ type: 'promote', node: 1 }, { type: 'remove', node: 2 }, { type: 'remove', node: 3 }, { type: 'remove', node: 4 }])
  t.same(soleVoterSteps({ voters: [2], learners: [] }, 1), [{ type: 'addLearner', node: 1 }, { type: 'promote', node: 1 }, { type: 'remove', node: 2 }])
  t.same(soleVoterSteps({ voters: [1], learners: [] }, 1), [])
})

t.test('forceSoleVoter keeps every entry, commits them, and ends with this node the only voter at a new term', async (t) => {
  const i = init([1, 2, 3], [], [normal(1, 2), normal(2, 3), normal(3, 3)], 1, 5)
  const s = summarize(i, 1)
  t.same([s.lastIndex, s.commit, s.applied, s.role, s.empty], [3, 1, 1, 'voter', false])
  const payload = new Uint8Array([9])
  const f = forceSoleVoter(i, 1, [payload])
  t.equal(f.term, 6, 'above the hard state term and every entry term')
  t.same(f.entries.map((e) => [e.index, e.term, e.kind]), [[4, 6, 'conf'], [5, 6, 'conf'], [6, 6, 'normal']])
  t.equal(f.configIndex, 5)
  t.same(f.extraIndexes, [6])
  t.same(f.hardState, { term: 6, vote: 1, commit: 6 }, 'everything committed, voted for itself')
  const log = new RaftLog(i.snapshot.meta, [...i.entries, ...f.entries], f.hardState.commit, i.applied)
  t.same(log.config(), { voters: [1], learners: [] }, 'replaying the log gives the one-voter configuration')
  t.equal(log.entry(2)?.data?.[0], 2, 'old entries are still there')
  // A replica whose log ends in a higher term than its hard state (entries taken from a newer leader).
  t.equal(forceSoleVoter(init([1, 2], [], [normal(1, 7)], 0, 3), 1).term, 8)
  t.throws(() => forceSoleVoter(init([], [], [], 0, 0), 1), /empty replica/)
})

function catalog3 (): Catalog {
  const c = emptyCatalog()
  const ok = (r: ReturnType<typeof applyCommand>): void => { if (!r.ok) throw new Error(r.error) }
  ok(applyCommand(c, { op: 'bootstrap', clusterId: 'lab-old', name: 'lab', host: { id: 'h1', addresses: ['a:1'] }, at: 1 }))
  ok(applyCommand(c, { op: 'addHost', host: { id: 'h2', addresses: ['b:1'] }, at: 2 }))
  ok(applyCommand(c, { op: 'addHost', host: { id: 'h3', addresses: ['c:1'] }, at: 3 }))
  ok(applyCommand(c, { op: 'createTable', name: 'fs', fragments: 2 }))
  const all = [{ host: 'h1', role: 'voter' as const }, { host: 'h2', role: 'voter' as const }, { host: 'h3', role: 'voter' as const }]
  for (const g of ['schema', 'fs/0', 'fs/1']) ok(applyCommand(c, { op: 'recordMembership', group: g, replicas: all, configIndex: 3 }))
  return c
}

t.test('catalog forceRecover: new id, the survivor alone, old ids remembered, lost hosts may join again empty', async (t) => {
  const c = catalog3()
  t.match(applyCommand(c, { op: 'forceRecover', clusterId: 'lab-old', host: 'h1', at: 10, configIndexes: {} }), { ok: false, error: /already used/ })
  t.match(applyCommand(c, { op: 'forceRecover', clusterId: 'lab-new', host: 'h9', at: 10, configIndexes: {} }), { ok: false, error: /not an active host/ })
  t.same(applyCommand(c, { op: 'forceRecover', clusterId: 'lab-new', host: 'h1', at: 10, configIndexes: { schema: 7, 'fs/0': 5 } }), { ok: true })
  t.equal(c.clusterId, 'lab-new')
  t.same(c.hosts.map((h) => h.id), ['h1'])
  t.same(c.recovery, { host: 'h1', at: 10, previousIds: ['lab-old'] })
  t.same(c.groups.map((g) => [g.id, g.replicas, g.configIndex, g.leader]), [
    ['fs/0', [{ host: 'h1', role: 'voter' }], 5, 'h1'],
    ['fs/1', [{ host: 'h1', role: 'voter' }], 1, 'h1'],
    ['schema', [{ host: 'h1', role: 'voter' }], 7, 'h1']
  ], 'groups not listed are founded anew (config index 1)')
  t.same(applyCommand(c, { op: 'addHost', host: { id: 'h2', addresses: ['b:1'] }, at: 11 }), { ok: true }, 'a lost host id joins again')
  t.equal(findHost(c, 'h2')?.node, 4, 'with a new node number')
  t.same(applyCommand(c, { op: 'forceRecover', clusterId: 'lab-3', host: 'h2', at: 12, configIndexes: {} }), { ok: true })
  t.same(c.recovery?.previousIds, ['lab-old', 'lab-new'])
  t.match(applyCommand(c, { op: 'forceRecover', clusterId: 'lab-old', host: 'h2', at: 13, configIndexes: {} }), { ok: false, error: /already used/ })
})

t.test('planRecovery: what is kept, what is lost, when it refuses', async (t) => {
  const c = catalog3()
  const identity = { hostId: 'h1', clusterName: 'lab', clusterId: 'lab-old', node: 1 }
  const held = summarize(init([1, 2, 3], [], [normal(1, 1), normal(2, 1), normal(3, 2)], 1), 1)
  const p = planRecovery({ identity, catalog: c, replicas: { schema: held, 'fs/0': held }, newClusterId: 'lab-new', acceptLoss: false })
  t.same(p.dropped.map((h) => h.id), ['h2', 'h3'])
  t.same(p.lost, ['fs/1'])
  t.match(p.refusal, /holds no data of 1 group\(s\): fs\/1.*--accept-loss/)
  t.same(p.groups.map((g) => [g.id, g.action, g.beyondCommit]), [['schema', 'keep', 2], ['fs/0', 'keep', 2], ['fs/1', 'recreate', 0]])
  t.match(p.groups[0]!.note, /keeps 2 entries beyond its commit index \(2\.\.3\)/)
  t.equal(planRecovery({ identity, catalog: c, replicas: { schema: held, 'fs/0': held }, newClusterId: 'x', acceptLoss: true }).refusal, undefined, '--accept-loss lets it go on')
  t.match(planRecovery({ identity, catalog: null, replicas: {}, newClusterId: 'x', acceptLoss: true }).refusal, /no copy of the catalog/)
  t.match(planRecovery({ identity: { ...identity, hostId: 'h7' }, catalog: c, replicas: { schema: held }, newClusterId: 'x', acceptLoss: true }).refusal, /does not list host h7/)
  t.match(planRecovery({ identity: { ...identity, clusterId: null, node: null }, catalog: null, replicas: {}, newClusterId: 'x', acceptLoss: true }).refusal, /never joined a cluster/)
  const learner = summarize(init([2, 3], [1], [normal(1, 1)], 1), 1)
  t.match(planRecovery({ identity, catalog: c, replicas: { schema: held, 'fs/0': held, 'fs/1': learner }, newClusterId: 'x', acceptLoss: false }).groups[2]!.note, /was a learner/)
})
