import t from 'tap'
import type { Entry, HardState } from '../../src/raft/types.js'
import { TestCluster } from './cluster.js'
import { KvMachine } from './kv-machine.js'

/*
 * The driver's central promise: nothing that depends on a vote or an append
 * leaves a host before it is on disk. Every batch is inspected as it is
 * handed to the transport, against what the sender's lmdb environment holds
 * at that moment.
 */
t.test('vote grants and append acknowledgements leave a host only after they are persisted', async (t) => {
  const c = new TestCluster()
  t.teardown(() => c.cleanup())
  for (const id of [1, 2, 3]) c.openHost(id)
  await c.createGroup('g', [1, 2, 3])
  const problems: string[] = []
  let grants = 0
  let acks = 0
  let commits = 0
  c.net.observer = (from, _to, batch) => {
    const th = c.hosts.get(from)
    if (!th) return
    const db = th.host.storage.db
    for (const { group, msg } of batch) {
      if (msg.type === 'voteResp' && !msg.reject) {
        grants++
        const hs = db.get([group, 'h']) as HardState | undefined
        if (!hs || hs.term !== msg.term || hs.vote !== msg.to) problems.push(`host ${from} granted a vote in term ${msg.term} to ${msg.to} but holds ${JSON.stringify(hs)}`)
      } else if (msg.type === 'app' && msg.commit !== undefined && msg.commit > 0) {
        // An append may leave before its own entries are durable, but the commit index it carries never covers an entry that is not on the sender's disk.
        commits++
        const e = db.get([group, 'e', msg.commit]) as Entry | undefined
        const snap = db.get([group, 's']) as { meta: { index: number } }
        if (!e && snap.meta.index < msg.commit) problems.push(`host ${from} told ${msg.to} index ${msg.commit} is committed but does not hold it on its disk`)
      } else if (msg.type === 'appResp' && !msg.reject && msg.index !== undefined && msg.index > 0) {
        acks++
        const e = db.get([group, 'e', msg.index]) as Entry | undefined
        const snap = db.get([group, 's']) as { meta: { index: number } }
        if (!e && snap.meta.index < msg.index) problems.push(`host ${from} acknowledged index ${msg.index} that is not on its disk`)
      }
    }
  }
  c.startAll()
  for (let round = 0; round < 4; round++) {
    await c.until(() => c.leaderOf('g') !== undefined, 'a leader')
    for (let i = 0; i < 30; i++) await c.propose('g', KvMachine.encode(`k${i}`, `${round}`))
    // Force a new election: isolate the leader until the others elect another.
    const l = c.leaderOf('g')!
    for (const o of [1, 2, 3]) if (o !== l.id) c.net.setLink(l.id, o, false)
    await c.until(() => [...c.hosts.values()].some((h) => h.id !== l.id && h.host.status('g').role === 'leader'), 'a new leader')
    for (const a of [1, 2, 3]) for (const b of [1, 2, 3]) if (a !== b) c.net.setLink(a, b, true)
  }
  t.same(problems, [], 'no message ran ahead of its write')
  t.ok(grants >= 4, `vote grants checked: ${grants}`)
  t.ok(acks >= 100, `append acknowledgements checked: ${acks}`)
  t.ok(commits >= 100, `commit indexes in appends checked: ${commits}`)
})
