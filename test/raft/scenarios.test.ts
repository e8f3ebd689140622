import t, { type Test } from 'tap'
import { RaftError } from '../../src/raft/types.js'
import { Harness } from './harness.js'

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)

t.test('pre-vote: a rejoining minority does not disrupt the leader', async (t) => {
  const h = new Harness([1, 2, 3], [1, 2, 3])
  const leader = h.electLeader()
  const term = h.node(leader).term
  const loner = [1, 2, 3].find((id) => id !== leader)!
  h.isolate(loner)
  h.tick(100)
  t.equal(h.node(loner).term, term, 'the isolated node never raised its term')
  t.equal(h.node(loner).role, 'preCandidate', 'it keeps trying pre-votes only')
  h.healAll()
  h.tick(30)
  t.equal(h.leader(), leader, 'same leader after rejoin')
  t.equal(h.node(leader).term, term, 'same term after rejoin')
})

t.test('without pre-vote the same rejoin deposes the leader (what pre-vote prevents)', async (t) => {
  const h = new Harness([1, 2, 3], [1, 2, 3], { skipPreVote: true })
  const leader = h.electLeader()
  const term = h.node(leader).term
  const loner = [1, 2, 3].find((id) => id !== leader)!
  h.isolate(loner)
  h.tick(100)
  t.ok(h.node(loner).term > term + 3, `isolated node inflated its term to ${h.node(loner).term}`)
  h.healAll()
  h.tick(60)
  t.ok(h.node(leader).term > term, 'the cluster had to move to a higher term')
})

t.test('check-quorum: a leader cut off from its quorum steps down; reads there are never confirmed', async (t) => {
  const h = new Harness([1, 2, 3], [1, 2, 3])
  const old = h.electLeader()
  h.node(old).propose([enc('x')])
  h.settle()
  h.isolate(old)
  h.node(old).readIndex('stale-read')
  h.tick(25)
  t.not(h.node(old).role, 'leader', 'isolated leader stepped down')
  t.same(h.nodes.get(old)!.reads, [], 'its pending read was never confirmed')
  const fresh = h.leader()
  t.ok(fresh !== undefined && fresh !== old, 'the majority elected a new leader')
})

t.test('ReadIndex: a read point covers every write committed before it', async (t) => {
  const h = new Harness([1, 2, 3], [1, 2, 3])
  const l = h.electLeader()
  const last = h.node(l).propose([enc('a'), enc('b')])
  h.settle()
  const follower = [1, 2, 3].find((id) => id !== l)!
  h.node(follower).readIndex('r1')
  h.settle()
  t.same(h.nodes.get(follower)!.reads, [{ context: 'r1', index: last }])
})

t.test('leadership transfer hands over to an up-to-date voter', async (t) => {
  const h = new Harness([1, 2, 3], [1, 2, 3])
  const l = h.electLeader()
  const to = [1, 2, 3].find((id) => id !== l)!
  h.node(l).transferLeadership(to)
  h.settle()
  t.equal(h.leader(), to)
  t.throws(() => h.node(l).propose([enc('x')]), RaftError)
})

t.test('leader removed from the configuration steps down once the removal commits', async (t) => {
  const h = new Harness([1, 2, 3], [1, 2, 3])
  const l = h.electLeader()
  h.tick(2)
  h.node(l).proposeConfChange({ type: 'remove', node: l })
  h.settle()
  t.not(h.node(l).role, 'leader', 'old leader stepped down')
  t.same(h.config(l).voters, [1, 2, 3].filter((id) => id !== l))
  h.tick(60)
  const nl = h.leader()
  t.ok(nl !== undefined && nl !== l, `remaining voters elected ${nl}`)
  t.equal(h.node(l).role, 'follower', 'the removed node never campaigns')
  h.node(nl!).propose([enc('after')])
  h.settle()
  const others = [1, 2, 3].filter((id) => id !== l)
  for (const id of others) t.ok(h.nodes.get(id)!.applied.some((e) => e.data && new TextDecoder().decode(e.data) === 'after'))
})

t.test('snapshot during a membership change carries the configuration', async (t) => {
  const h = new Harness([1, 2, 3, 4], [1, 2, 3])
  const l = h.electLeader()
  h.isolate(4)
  h.tick(2)
  h.node(l).proposeConfChange({ type: 'addLearner', node: 4 })
  h.settle()
  for (let i = 0; i < 20; i++) h.node(l).propose([enc(`e${i}`)])
  h.settle()
  // Compact past the configuration entry: host 4 can only learn of its membership through the snapshot.
  const ln = h.node(l)
  ln.compact(ln.log.applied, enc('state'))
  h.settle()
  h.healAll()
  h.tick(5)
  const n4 = h.nodes.get(4)!
  t.equal(n4.installed.length, 1, 'host 4 installed a snapshot')
  t.same(n4.installed[0].meta.config, { voters: [1, 2, 3], learners: [4] }, 'the snapshot holds the new configuration')
  t.same(h.config(4), { voters: [1, 2, 3], learners: [4] })
  // Promotion after catching up; host 4 then counts as a voter.
  h.node(l).proposeConfChange({ type: 'promote', node: 4 })
  h.settle()
  t.same(h.config(4).voters, [1, 2, 3, 4])
  t.equal(h.node(4).log.committed, h.node(l).log.committed)
})

t.test('a second membership step waits until the first commits', async (t) => {
  const h = new Harness([1, 2, 3, 4, 5], [1, 2, 3])
  const l = h.electLeader()
  h.tick(2)
  const followers = [1, 2, 3].filter((id) => id !== l)
  for (const f of followers) h.isolate(f)
  h.node(l).proposeConfChange({ type: 'addLearner', node: 4 })
  t.throws(() => h.node(l).proposeConfChange({ type: 'addLearner', node: 5 }), /CONF_PENDING/)
  t.throws(() => h.node(l).proposeConfChange({ type: 'promote', node: 5 }), /CONF_PENDING/)
})

t.test('a follower overwrites a conflicting uncommitted suffix and rolls back its configuration', async (t) => {
  const h = new Harness([1, 2, 3, 4], [1, 2, 3])
  const l = h.electLeader()
  h.tick(2)
  h.isolate(l)
  // The cut-off leader appends a configuration entry nobody else receives.
  h.node(l).proposeConfChange({ type: 'addLearner', node: 4 })
  h.settle()
  t.same(h.config(l).learners, [4])
  h.tick(40, [1, 2, 3].filter((id) => id !== l))
  const nl = h.leader()!
  t.not(nl, l)
  h.node(nl).propose([enc('winner')])
  h.settle()
  h.healAll()
  h.tick(30)
  t.same(h.config(l).learners, [], 'the uncommitted configuration entry was truncated and rolled back')
  t.equal(h.node(l).log.committed, h.node(nl).log.committed)
})

t.test('restart recovers term, vote and log from what was persisted', async (t) => {
  const h = new Harness([1, 2, 3], [1, 2, 3])
  const l = h.electLeader()
  h.node(l).propose([enc('p')])
  h.settle()
  const f = [1, 2, 3].find((id) => id !== l)!
  const before = { term: h.node(f).term, vote: h.node(f).vote, last: h.node(f).log.lastIndex(), commit: h.node(f).log.committed }
  h.restart(f)
  t.same({ term: h.node(f).term, vote: h.node(f).vote, last: h.node(f).log.lastIndex(), commit: h.node(f).log.committed }, before)
  h.settle()
  h.tick(3)
  t.equal(h.leader(), l, 'a restarted follower does not disturb the leader')
})

t.test('flow control: proposals beyond the uncommitted budget are refused with a clear error', async (t) => {
  const h = new Harness([1, 2, 3], [1, 2, 3])
  const l = h.electLeader()
  for (const id of [1, 2, 3]) if (id !== l) h.isolate(id)
  let refused: unknown
  for (let i = 0; i < 100000 && refused === undefined; i++) {
    try { h.node(l).propose([new Uint8Array(64 << 10)]) } catch (e) { refused = e }
  }
  t.ok(refused instanceof RaftError && refused.code === 'BUSY', 'refused')
  t.match(String(refused), /uncommitted bytes at the leader/)
})

t.test('a single-voter group elects itself, commits alone and serves reads at once', async (t) => {
  const h = new Harness([1], [1])
  t.equal(h.electLeader(), 1)
  const idx = h.node(1).propose([enc('solo')])
  h.settle()
  t.equal(h.node(1).log.committed, idx)
  h.node(1).readIndex('r')
  h.settle()
  t.same(h.nodes.get(1)!.reads, [{ context: 'r', index: idx }])
})

/** A ReadIndex on `id` is released in the same step at `index`, sending no message of type `round` (the round it saves). */
function answersAtOnce (t: Test, h: Harness, id: number, index: number, round: 'heartbeat' | 'readIndex'): void {
  h.node(id).readIndex('r', h.now)
  const rd = h.node(id).ready()
  t.same(rd.readStates, [{ context: 'r', index }], `a ReadIndex on node ${id} is released in the same step`)
  t.equal(rd.messages.filter((m) => m.type === round).length, 0, `without a ${round} message`)
  h.settle()
}

t.test('lease reads: a leader a quorum acknowledged answers at once, until the lease runs out or a transfer begins', async (t) => {
  const h = new Harness([1, 2, 3], [1, 2, 3], {}, 1, { leaseMs: 700 })
  const l = h.electLeader()
  const last = h.node(l).propose([enc('a')])
  h.tick(2)
  t.equal(h.node(l).leaseRead(h.now), last, 'within the lease: the commit index, with no round')
  answersAtOnce(t, h, l, last, 'heartbeat')
  // Cut off: nothing renews the lease; it ends leaseMs after the last acknowledged round was sent.
  h.isolate(l)
  const sent = h.now
  t.equal(h.node(l).leaseRead(sent + 600), last, 'still within the lease')
  t.equal(h.node(l).leaseRead(sent + 700), undefined, 'past the lease: no read without a round')
  h.healAll()
  h.tick(2)
  const to = [1, 2, 3].find((id) => id !== l)!
  t.equal(h.node(l).leaseRead(h.now), last, 'healed: the lease is back')
  h.node(l).transferLeadership(to)
  t.equal(h.node(l).leaseRead(h.now), undefined, 'a leader handing over its leadership serves no lease read')
})

t.test('idle groups: a quiet leader beats slower; a proposal, a read or a follower that reads brings the fast beat back', async (t) => {
  const h = new Harness([1, 2, 3], [1, 2, 3], {}, 1, { leaseMs: 700, followerLeases: true, idleHeartbeatTicks: 4, idleAfterTicks: 10 })
  const l = h.electLeader()
  const f = [1, 2, 3].find((id) => id !== l)!
  /** heartbeat rounds the leader sends over the next `ticks` ticks */
  const rounds = (ticks: number): number => {
    let n = 0
    h.onDeliver = (m) => { if (m.type === 'heartbeat' && m.from === l) n++ }
    h.tick(ticks)
    h.onDeliver = undefined
    return n / 2
  }
  h.node(l).propose([enc('a')])
  h.settle()
  t.equal(rounds(8), 8, 'busy: a round every heartbeatTicks')
  h.tick(10)
  t.equal(rounds(8), 2, 'quiet for idleAfterTicks: a round every idleHeartbeatTicks')
  const term = h.node(l).term
  h.tick(200)
  t.equal(h.leader(), l, 'the slow beat keeps the followers from campaigning')
  t.equal(h.node(l).term, term, 'no election in 200 quiet ticks')

  h.node(l).propose([enc('b')])
  h.settle()
  t.equal(rounds(4), 4, 'a proposal brings the fast beat back')
  h.tick(12)
  h.node(l).readIndex('r', h.now)
  h.settle()
  t.equal(rounds(4), 4, 'so does a read on the leader')
  h.tick(12)
  t.equal(rounds(8), 2, 'idle again')
  h.node(f).readIndex('rf', h.now)
  h.settle()
  t.same(h.nodes.get(f)!.reads.map((r) => r.context), ['rf'], 'the follower\'s read is answered')
  t.equal(rounds(20), 20, 'a follower that serves reads asks for leases, which keeps the fast beat')
  h.tick(40)
  t.equal(rounds(8), 2, 'once it stops asking, the group is idle again')

  h.isolate(l)
  h.tick(60)
  const next = h.leader()
  t.ok(next !== undefined && next !== l && h.node(next).term > term, 'a leader cut off while idle is replaced')
})

t.test('idle groups: the slow beat must leave 4 ticks before an election timeout', async (t) => {
  t.throws(() => new Harness([1], [1], {}, 1, { idleHeartbeatTicks: 7 }), /idleHeartbeatTicks 7: expected heartbeatTicks \(1\) up to electionTicks - 4 \(6\)/)
  t.doesNotThrow(() => new Harness([1], [1], {}, 1, { idleHeartbeatTicks: 6 }))
})

t.test('follower leases: a follower answers reads alone while the leader holds back commits it has not acknowledged', async (t) => {
  const h = new Harness([1, 2, 3], [1, 2, 3], {}, 1, { leaseMs: 700, followerLeases: true })
  const l = h.electLeader()
  const [f, g] = [1, 2, 3].filter((id) => id !== l)
  const last = h.node(l).propose([enc('a')])
  h.tick(3)
  t.equal(h.node(f).leaseRead(h.now), undefined, 'a follower that served no reads asked for no lease')
  t.equal(h.node(l).log.committed, last)
  h.tick(3)
  t.equal(h.node(f).leaseRead(h.now), last, 'once it reads, it asks: its commit index, with no round')
  t.equal(h.node(g).leaseRead(h.now), undefined, 'g has not read: no lease')
  answersAtOnce(t, h, f, last, 'readIndex')

  // A follower's ReadIndex request also gets a lease with its answer.
  h.node(g).readIndex('rg', h.now)
  h.settle()
  t.equal(h.node(g).leaseRead(h.now), last, 'g got a lease with the answer to its read')

  // f is cut off: a write acknowledged by g alone must not commit while f may still serve reads.
  h.isolate(f)
  const b = h.node(l).propose([enc('b')])
  h.settle()
  t.equal(h.node(l).log.committed, last, 'a quorum holds b, but the lease holder does not: not committed')
  t.equal(h.node(f).leaseRead(h.now), last, 'f still serves its reads (b is not committed)')
  let ticks = 0
  while (h.node(l).log.committed < b && ticks < 20) {
    h.tick(1, [l, g])
    ticks++
    if (h.node(l).log.committed >= b) t.equal(h.node(f).leaseRead(h.now), undefined, 'when b commits, f\'s lease is over')
  }
  t.equal(h.node(l).log.committed, b, `b commits once the promise expired (${ticks} ticks)`)
  t.ok(ticks <= 8, 'within the lease length')
  h.healAll()
  h.tick(3)
  t.equal(h.node(f).leaseRead(h.now), h.node(l).log.committed, 'healed and caught up: f has a lease again')

  // A lease-holding follower that holds an entry it does not know committed serves no lease read.
  h.isolate(l)
  h.node(l).propose([enc('c')])
  const m = h.node(l).ready().messages.find((x) => x.type === 'app' && x.to === f)!
  h.node(f).step(m, h.now)
  t.equal(h.node(f).leaseRead(h.now), undefined, 'an entry beyond the known commit: no lease read')
  h.healAll()
  h.settle()
})

t.test('follower leases: a leader hands its leadership over only once no follower lease can outlive it', async (t) => {
  const h = new Harness([1, 2, 3], [1, 2, 3], {}, 2, { leaseMs: 700, followerLeases: true })
  const l = h.electLeader()
  const [f, g] = [1, 2, 3].filter((id) => id !== l)
  h.node(l).propose([enc('a')])
  h.node(f).leaseRead(h.now)
  h.tick(3)
  t.not(h.node(f).leaseRead(h.now), undefined, 'f holds a lease')
  h.node(l).transferLeadership(g)
  h.settle()
  t.equal(h.leader(), l, 'no timeoutNow while promises run')
  let ticks = 0
  while (h.leader() !== g && ticks < 20) {
    h.tick(1)
    ticks++
    if (h.leader() === g) t.equal(h.node(f).leaseRead(h.now), undefined, 'when g leads, f holds no lease from l')
  }
  t.equal(h.leader(), g, `g leads after ${ticks} ticks`)
  t.ok(ticks >= 2, 'the transfer waited for the promises')
})

t.test('cache leases: a leader\'s lease or a follower\'s read lease bounds what its host may cache; a transfer waits for the leader\'s', async (t) => {
  const h = new Harness([1, 2, 3], [1, 2, 3], {}, 2, { leaseMs: 700, followerLeases: true })
  const l = h.electLeader()
  const [f, g] = [1, 2, 3].filter((id) => id !== l)
  h.node(l).propose([enc('a')])
  h.tick(2)
  const end = h.node(l).cacheLeaseUntil(h.now)
  t.ok(end !== undefined && end > h.now && end <= h.now + 700, 'a leader within its lease: until its lease ends')
  t.equal(h.node(g).cacheLeaseUntil(h.now), undefined, 'a follower without a read lease: nothing')
  h.node(f).leaseRead(h.now)
  h.tick(3)
  const fl = h.node(f).cacheLeaseUntil(h.now)
  t.ok(fl !== undefined && fl > h.now, 'a follower holding a read lease: until it ends')
  h.isolate(f)
  h.tick(8)
  t.equal(h.node(f).cacheLeaseUntil(h.now), undefined, 'cut off, its lease runs out')
  t.equal(h.node(l).cacheLeaseUntil(h.now + 10_000), undefined, 'as does the leader\'s without acknowledgements')

  // No follower reads here, so no promise: only what the leader's own host may cache holds a transfer back.
  const h2 = new Harness([1, 2, 3], [1, 2, 3], {}, 3, { leaseMs: 700, followerLeases: true })
  const l2 = h2.electLeader()
  const g2 = [1, 2, 3].find((id) => id !== l2)!
  h2.node(l2).propose([enc('a')])
  h2.tick(2)
  const own = h2.node(l2).cacheLeaseUntil(h2.now)!
  h2.node(l2).transferLeadership(g2)
  h2.settle()
  t.equal(h2.leader(), l2, 'no timeoutNow while the leader\'s host may still cache')
  let ticks = 0
  while (h2.leader() !== g2 && ticks < 20) {
    h2.tick(1)
    ticks++
  }
  t.equal(h2.leader(), g2, `g leads after ${ticks} ticks`)
  t.ok(h2.now >= own, 'only once the leader\'s cache lease is over')
  t.equal(h2.node(l2).cacheLeaseUntil(h2.now), undefined, 'the old leader may cache nothing more')
})

t.test('with leases, a node that just started ignores votes for an election timeout (it may have acknowledged a lease)', async (t) => {
  for (const leaseMs of [700, 0]) {
    const h = new Harness([1, 2, 3], [1, 2, 3], {}, 3, { leaseMs })
    const l = h.electLeader()
    const [f, g] = [1, 2, 3].filter((id) => id !== l)
    h.restart(f)
    h.isolate(l)
    // Only g's clock runs: f, just started, has not ticked at all.
    h.tick(40, [g])
    const won = h.leader() === g && h.node(g).term > h.node(l).term
    if (leaseMs > 0) t.notOk(won, 'with leases: g cannot win f\'s vote yet')
    else t.ok(won, 'without leases: f votes at once (what the guard prevents)')
    if (leaseMs > 0) {
      h.tick(40, [f, g])
      t.equal(h.leader() === g || h.leader() === f, true, 'after an election timeout of its own, f votes and a new leader is elected')
    }
  }
})

t.test('the compaction point stays at a follower that keeps up but lags, and passes one the leader no longer hears', async (t) => {
  const h = new Harness([1, 2, 3], [1, 2, 3])
  const l = h.electLeader()
  const [f, g] = [1, 2, 3].filter((id) => id !== l)
  for (let i = 0; i < 5; i++) h.node(l).propose([enc(`a${i}`)])
  h.settle()
  const ln = h.node(l)
  t.equal(ln.compactionPoint(), ln.log.applied, 'every follower holds everything: up to applied')
  h.isolate(f)
  for (let i = 0; i < 5; i++) ln.propose([enc(`b${i}`)])
  h.settle()
  const fMatch = ln.matchOf(f)!
  t.ok(fMatch < ln.log.applied, 'f lags')
  t.equal(ln.compactionPoint(), fMatch, 'f was heard from lately: no further than what it holds')
  t.equal(h.node(g).compactionPoint(), h.node(g).log.applied, 'a follower compacts up to its own applied index')
  h.tick(25, [l, g])
  t.equal(h.leader(), l, 'l still leads with g')
  t.equal(ln.compactionPoint(), ln.log.applied, 'f silent for check-quorum rounds: up to applied')
})

t.test('released entries: payloads leave memory once applied and held by every follower heard from, and a lagging follower gets them read back, not a snapshot', async (t) => {
  const h = new Harness([1, 2, 3], [1, 2, 3], {}, 1, { live: true, release: true })
  const l = h.electLeader()
  const [f, g] = [1, 2, 3].filter((id) => id !== l)
  const ln = h.node(l)
  for (let i = 0; i < 5; i++) ln.propose([enc(`a${i}`)])
  h.settle()
  t.equal(ln.log.heldBytes(), 0, 'every follower holds everything and all is applied: nothing held')
  t.equal(h.node(f).log.heldBytes(), 0, 'a follower keeps nothing it applied')
  t.ok(ln.log.bytes() > 0, 'the log still counts the released bytes (compaction by size reads them)')
  t.equal(new TextDecoder().decode(ln.log.entry(ln.log.lastIndex())!.data), 'a4', 'an entry is read back whole')
  h.isolate(f)
  for (let i = 0; i < 5; i++) ln.propose([enc(`b${i}`)])
  h.settle()
  t.equal(ln.log.heldBytes(), 10, 'f lags and was heard from lately: the 5 entries it lacks stay in memory')
  h.tick(25, [l, g])
  t.equal(h.leader(), l, 'l still leads with g')
  t.equal(ln.log.heldBytes(), 0, 'f silent for check-quorum rounds: released')
  for (let i = 0; i < 5; i++) ln.propose([enc(`c${i}`)])
  h.settle()
  const loadsBefore = h.loads
  h.healAll()
  h.tick(5)
  t.ok(h.loads - loadsBefore >= 10, `the leader read f's missing entries back (${h.loads - loadsBefore})`)
  t.same(h.nodes.get(f)!.installed, [], 'f got entries, no snapshot')
  const seen = h.nodes.get(f)!.applied.map((e) => e.data ? new TextDecoder().decode(e.data) : '').filter((s) => s !== '')
  t.same(seen.slice(-10), ['b0', 'b1', 'b2', 'b3', 'b4', 'c0', 'c1', 'c2', 'c3', 'c4'], 'and applied them in order')
  t.equal(h.node(f).log.lastIndex(), ln.log.lastIndex())
})

t.test('released entries: a restarted node releases again once it applied, and serves entries back from its disk', async (t) => {
  const h = new Harness([1, 2, 3], [1, 2, 3], {}, 3, { live: true, release: true })
  const l = h.electLeader()
  for (let i = 0; i < 4; i++) h.node(l).propose([enc(`x${i}`)])
  h.settle()
  const f = [1, 2, 3].find((id) => id !== l)!
  h.restart(f)
  t.equal(h.node(f).log.heldBytes(), 8, 'restarted (the harness keeps no applied index): the log is read whole')
  h.tick(3)
  t.equal(h.node(f).log.heldBytes(), 0, 'applied again: on disk only')
  t.equal(new TextDecoder().decode(h.node(f).log.entry(h.node(f).log.lastIndex())!.data), 'x3')
  // A store that answers with another term is caught, not served.
  const n = h.nodes.get(f)!
  n.entries = n.entries.map((e) => ({ ...e, term: e.term + 1 }))
  t.throws(() => h.node(f).log.entry(h.node(f).log.lastIndex()), /is not entry/)
})

t.test('live snapshots: compaction keeps no data, a snapshot is read from the state when sent, and an installed one is not kept', async (t) => {
  const h = new Harness([1, 2, 3, 4], [1, 2, 3], {}, 1, { live: true })
  const l = h.electLeader()
  h.isolate(4)
  h.node(l).proposeConfChange({ type: 'addLearner', node: 4 })
  h.settle()
  for (let i = 0; i < 10; i++) h.node(l).propose([enc(`e${i}`)])
  h.settle()
  const ln = h.node(l)
  const at = ln.log.applied - 3
  ln.compact(at)
  h.settle()
  const stored = h.nodes.get(l)!.snapshot
  t.equal(stored.meta.index, at, 'the compaction is persisted at its index')
  t.equal(stored.data.length, 0, 'with no data')
  for (let i = 0; i < 3; i++) ln.propose([enc(`f${i}`)])
  h.settle()
  h.healAll()
  h.tick(5)
  const n4 = h.nodes.get(4)!
  t.equal(n4.installed.length, 1, 'host 4 installed a snapshot')
  const sent = n4.installed[0]
  t.ok(sent.meta.index > at, `it was read at the leader's applied index (${sent.meta.index}), not at the compaction (${at})`)
  t.equal(new TextDecoder().decode(sent.data), `state@${sent.meta.index}`, 'its data is the state read at that index')
  t.same(sent.meta.config, { voters: [1, 2, 3], learners: [4] }, 'with the configuration at that index')
  t.equal(h.node(4).log.lastIndex(), ln.log.lastIndex(), 'the entries after it followed')
  t.equal(h.node(4).currentSnapshot().data.length, 0, 'the installed data is not kept by the core')
  t.throws(() => new Harness([1], [1]).node(1).compact(0), /live snapshot source/, 'compaction without data needs a live source')
})
