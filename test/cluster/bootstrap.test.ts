import t from 'tap'
import { decideBootstrap, type BootstrapDecision, type PeerView } from '../../src/cluster/bootstrap.js'
import { seededRng } from '../../src/raft/rng.js'

const S = (expect: number): { cluster: string, expect: number } => ({ cluster: 'prod', expect })
const empty = (id: string, sees?: string[]): PeerView => sees ? { id, clusterId: null, sees } : { id, clusterId: null }

t.test('two empty hosts started at once with expect=2: exactly one bootstraps', async (t) => {
  const a = decideBootstrap({ id: 'a', clusterId: null }, S(2), [empty('b')])
  const b = decideBootstrap({ id: 'b', clusterId: null }, S(2), [empty('a')])
  t.same(a, { kind: 'bootstrap', members: ['a', 'b'] })
  t.equal(b.kind, 'wait')
  t.match(b, { reason: /host a has the lowest id/ })
  // Once a has written its cluster id, b sees a member and joins.
  t.same(decideBootstrap({ id: 'b', clusterId: null }, S(2), [{ id: 'a', clusterId: 'c1', leaderHint: 'a' }]),
    { kind: 'join', clusterId: 'c1', via: ['a'], leaderHint: 'a' })
})

t.test('expect=3 with 2 seen: wait and say why', async (t) => {
  t.same(decideBootstrap({ id: 'a', clusterId: null }, S(3), [empty('b')]), { kind: 'wait', reason: '2 of 3 expected hosts seen' })
  t.same(decideBootstrap({ id: 'a', clusterId: null }, S(3), []), { kind: 'wait', reason: '1 of 3 expected hosts seen' })
})

t.test('expect=1 (walkenfs init) bootstraps a lone empty host', async (t) => {
  t.same(decideBootstrap({ id: 'solo', clusterId: null }, S(1), []), { kind: 'bootstrap', members: ['solo'] })
})

t.test('a host with data never bootstraps', async (t) => {
  for (const expect of [1, 2, 3]) {
    t.same(decideBootstrap({ id: 'a', clusterId: 'c1' }, S(expect), []), { kind: 'resume', clusterId: 'c1' }, `alone, expect=${expect}`)
    t.same(decideBootstrap({ id: 'a', clusterId: 'c1' }, S(expect), [empty('b'), empty('c')]), { kind: 'resume', clusterId: 'c1' }, `among empty hosts, expect=${expect}`)
    t.same(decideBootstrap({ id: 'a', clusterId: 'c1' }, S(expect), [{ id: 'b', clusterId: 'c1' }]), { kind: 'resume', clusterId: 'c1' }, `with its own cluster, expect=${expect}`)
  }
})

t.test('errors', async (t) => {
  const other = decideBootstrap({ id: 'a', clusterId: 'c1' }, S(3), [{ id: 'b', clusterId: 'c2' }])
  t.equal(other.kind, 'error')
  t.match(other, { message: /this host belongs to cluster id c1, but host b \(cluster name prod\) belongs to cluster id c2/ })
  const two = decideBootstrap({ id: 'a', clusterId: null }, S(3), [{ id: 'b', clusterId: 'c1' }, { id: 'c', clusterId: 'c2' }, { id: 'd', clusterId: 'c1' }])
  t.equal(two.kind, 'error')
  t.match(two, { message: /different cluster ids: c1 \(b, d\) and c2 \(c\)/ })
  for (const expect of [0, -1, 1.5, NaN]) {
    const e = decideBootstrap({ id: 'a', clusterId: null }, S(expect), [])
    t.equal(e.kind, 'error')
    t.match(e, { message: /expect=.* is not allowed: it must be a whole number of hosts, at least 1/ })
  }
  t.match(decideBootstrap({ id: 'a', clusterId: null }, S(2), [empty('a')]), { kind: 'error', message: /this host's own id a/ })
  t.match(decideBootstrap({ id: 'a', clusterId: null }, S(2), [empty('b'), { id: 'b', clusterId: 'c1' }]), { kind: 'error', message: /host b is reported both as empty and as c1/ })
})

t.test('views that disagree hold the lowest host back', async (t) => {
  // a sees {a,b,c}; b also sees d, which a does not: a must not bootstrap {a,b,c} while d may count b too.
  const d = decideBootstrap({ id: 'a', clusterId: null }, S(3), [empty('b', ['a', 'b', 'c', 'd']), empty('c', ['a', 'b', 'c'])])
  t.equal(d.kind, 'wait')
  t.match(d, { reason: /host b sees a different set of empty hosts \(a, b, c, d\) than this host \(a, b, c\)/ })
  t.same(decideBootstrap({ id: 'a', clusterId: null }, S(3), [empty('b', ['a', 'c']), empty('c', ['a', 'b', 'c'])]), { kind: 'bootstrap', members: ['a', 'b', 'c'] })
})

/** Random symmetric visibility among n hosts, some of them members already; every host decides on what it sees. */
function round (seed: number, reportViews: boolean): { ids: string[], sees: Map<string, Set<string>>, decisions: Map<string, BootstrapDecision>, expect: number } {
  const r = seededRng(seed)
  const n = 1 + r.int(7)
  const ids = Array.from({ length: n }, (_, i) => `h${String(r.int(1000)).padStart(3, '0')}-${i}`)
  const member = new Map(ids.map((id) => [id, r.next() < 0.15 ? 'c1' : null]))
  const p = r.next()
  const sees = new Map(ids.map((id) => [id, new Set<string>()]))
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      if (r.next() < p) { sees.get(ids[i])!.add(ids[j]); sees.get(ids[j])!.add(ids[i]) }
    }
  }
  const expect = 1 + r.int(n)
  const decisions = new Map<string, BootstrapDecision>()
  for (const id of ids) {
    const view = [...sees.get(id)!].map((pid) => {
      const v: PeerView = { id: pid, clusterId: member.get(pid)! }
      if (reportViews && v.clusterId === null) v.sees = [...sees.get(pid)!].filter((x) => member.get(x) === null)
      return v
    })
    decisions.set(id, decideBootstrap({ id, clusterId: member.get(id)! }, { cluster: 'prod', expect }, view))
  }
  return { ids, sees, decisions, expect }
}

t.test('property: no two hosts that see each other both bootstrap; with reported views no two bootstraps share a member', async (t) => {
  let boots = 0
  let cliques = 0
  for (let seed = 1; seed <= 3000; seed++) {
    for (const reportViews of [false, true]) {
      const { ids, sees, decisions, expect } = round(seed, reportViews)
      const booting = ids.filter((id) => decisions.get(id)!.kind === 'bootstrap')
      boots += booting.length
      for (const a of booting) {
        const d = decisions.get(a) as { kind: 'bootstrap', members: string[] }
        if (d.members.length < expect) t.fail(`seed ${seed}: ${a} bootstrapped with ${d.members.length} < expect ${expect}`)
        for (const b of booting) {
          if (a < b && sees.get(a)!.has(b)) t.fail(`seed ${seed}: ${a} and ${b} see each other and both bootstrap`)
          if (a < b && reportViews) {
            const shared = d.members.filter((m) => (decisions.get(b) as { members: string[] }).members.includes(m))
            if (shared.length > 0) t.fail(`seed ${seed}: bootstraps by ${a} and ${b} share ${shared.join(',')}`)
          }
        }
      }
      // All hosts mutually visible and empty: exactly one bootstraps once enough are there.
      const allSee = ids.every((a) => ids.every((b) => a === b || sees.get(a)!.has(b)))
      const allEmpty = ids.every((id) => !decisions.get(id)!.kind.startsWith('resume') && decisions.get(id)!.kind !== 'join')
      if (allSee && allEmpty) {
        cliques++
        if (booting.length !== 1) t.fail(`seed ${seed}: ${booting.length} of ${ids.length} mutually visible empty hosts bootstrap (expect ${expect})`)
      }
      for (const id of ids) if (decisions.get(id)!.kind === 'error') t.fail(`seed ${seed}: unexpected error ${JSON.stringify(decisions.get(id))}`)
    }
  }
  t.ok(boots > 1000, `bootstraps happened (${boots}): the property is not vacuous`)
  t.ok(cliques > 300, `fully visible empty sets occurred (${cliques})`)
})
