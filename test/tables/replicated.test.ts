import t from 'tap'
import { metaKey } from '../../src/tables/fragments.js'
import { FragmentMachine, rowKey } from '../../src/tables/fragment-machine.js'
import type { Tables } from '../../src/tables/types.js'
import { pollUntil } from '../raft/poll.js'
import { tablesContract } from './contract.js'
import { ReplCluster, type ReplClusterOptions } from './repl-cluster.js'
import { patchOf } from '../../src/tables/replicated.js'

async function cluster (t: { teardown: (fn: () => unknown) => void }, opts: ReplClusterOptions = {}): Promise<ReplCluster> {
  const c = await ReplCluster.start({ hosts: 3, fragments: 4, ...opts })
  t.teardown(() => c.cleanup())
  return c
}

function u32 (n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}

// Every transaction of the contract goes to the next of three hosts in turn.
t.test('the Tables contract over 3 replicated hosts', async (t) => {
  tablesContract(t, {
    open: async (t, fragments) => (await cluster(t, { fragments })).roundRobin(),
    increments: 30,
    inodes: 300
  })
})

t.test('concurrent increments of one counter from 3 coordinators lose no update', async (t) => {
  const c = await cluster(t)
  const k = metaKey(1, 'counter')
  const per = 12
  await Promise.all([...c.hosts.values()].map(async (h) => {
    await Promise.all(Array.from({ length: per }, async () => await h.tables.txn(async (tx) => {
      const cur = await tx.get('meta', k)
      tx.put('meta', k, u32((cur?.readUInt32BE(0) ?? 0) + 1))
    }, { maxAttempts: 1000 })))
  }))
  for (const h of c.hosts.values()) {
    t.equal((await h.tables.txn(async (tx) => await tx.get('meta', k)))?.readUInt32BE(0), 3 * per, `${h.name} reads every increment`)
  }
})

const ACCOUNTS = 4
const START = 100

async function openAccounts (tables: Tables): Promise<void> {
  await tables.txn(async (tx) => {
    for (let f = 0; f < ACCOUNTS; f++) tx.put('meta', metaKey(f, 'acct'), u32(START))
  })
}

async function balances (tables: Tables): Promise<number[]> {
  return await tables.txn(async (tx) => {
    const out: number[] = []
    for (let f = 0; f < ACCOUNTS; f++) out.push((await tx.get('meta', metaKey(f, 'acct')))!.readUInt32BE(0))
    return out
  })
}

async function transfer (tables: Tables, from: number, to: number, amount: number): Promise<void> {
  await tables.txn(async (tx) => {
    const a = (await tx.get('meta', metaKey(from, 'acct')))!.readUInt32BE(0)
    const b = (await tx.get('meta', metaKey(to, 'acct')))!.readUInt32BE(0)
    if (a < amount) return
    tx.put('meta', metaKey(from, 'acct'), u32(a - amount))
    tx.put('meta', metaKey(to, 'acct'), u32(b + amount))
  }, { maxAttempts: 1000 })
}

t.test('cross-fragment transfers keep the sum under concurrency, and read-only audits see it constant', async (t) => {
  const c = await cluster(t)
  const hosts = [...c.hosts.values()]
  await openAccounts(hosts[0].tables)
  let audits = 0
  let stop = false
  const auditor = (async () => {
    while (!stop) {
      const b = await hosts[2].tables.txn(async (tx) => {
        const out: number[] = []
        for (let f = 0; f < ACCOUNTS; f++) out.push((await tx.get('meta', metaKey(f, 'acct')))!.readUInt32BE(0))
        return out
      }, { maxAttempts: 1000 })
      audits++
      if (b.reduce((x, y) => x + y, 0) !== ACCOUNTS * START) t.fail(`an audit saw balances ${b.join(',')}`)
    }
  })()
  let seed = 7
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
  const plans = hosts.map(() => Array.from({ length: 8 }, () => {
    const from = rnd(ACCOUNTS)
    return [from, (from + 1 + rnd(ACCOUNTS - 1)) % ACCOUNTS, 1 + rnd(20)]
  }))
  await Promise.all(hosts.map(async (h, i) => await Promise.all(plans[i].map(async ([a, b, n]) => await transfer(h.tables, a, b, n)))))
  stop = true
  await auditor
  t.ok(audits > 0, 'audits ran during the transfers')
  const final = await balances(hosts[1].tables)
  t.equal(final.reduce((x, y) => x + y, 0), ACCOUNTS * START, `the sum is constant (${final.join(',')})`)
  t.notSame(final, Array(ACCOUNTS).fill(START), 'transfers happened')
})

t.test('a coordinator that stops after prepare: another host recovers, all or nothing', async (t) => {
  let hang: ((txn: string) => void) | null = null
  const c = await cluster(t, {
    tables: { txnTimeoutMs: 400 },
    tablesFor: (name) => name === 'h1'
      ? { afterPrepare: async (txn) => { if (hang) { hang(txn); await new Promise(() => {}) } } }
      : {}
  })
  const h1 = c.host('h1')
  const h2 = c.host('h2')
  await openAccounts(h2.tables)
  const prepared = new Promise<string>((resolve) => { hang = resolve })
  void transfer(h1.tables, 0, 3, 30) // never settles: its coordinator is stuck after prepare
  const txn = await prepared
  hang = null
  // The prepared intents are visible on the participant; the record fragment (0) holds none: its part waits for commitDecide.
  const intentsOf = (f: number): string[] => h2.machines.get(f)!.readLocal([{ k: 'get', key: rowKey(f, 'meta', metaKey(f, 'acct')) }]).intents.map((i) => i.txn)
  await pollUntil(() => intentsOf(3).includes(txn), 'intents of the stuck transaction on h2', 500)
  t.notOk(intentsOf(0).includes(txn), 'none on the record fragment')
  const b = await balances(h2.tables)
  t.same(b, [START, START, START, START], 'the reader waited, aborted the stuck transaction and saw none of it')
  const decision = h2.machines.get(0)!.readLocal([{ k: 'decision', txn }]).results[0]
  t.same(decision, { k: 'decision', commit: false, participants: [0, 3] }, 'the record fragment holds the abort')
  // The reader resolved the fragments it met; the sweeper settles whatever else is left.
  for (const f of [0, 3]) await c.leaderOf(f)!.tables.sweep(f)
  await pollUntil(() => intentsOf(0).length === 0 && intentsOf(3).length === 0, 'no intents left', 500)
  await transfer(h2.tables, 0, 3, 30)
  t.same(await balances(c.host('h3').tables), [START - 30, START, START, START + 30], 'the rows are writable again')
})

t.test('a transaction decided commit but left unresolved is completed by a reader', async (t) => {
  const c = await cluster(t, { tables: { txnTimeoutMs: 400 } })
  const h2 = c.host('h2')
  await openAccounts(h2.tables)
  // Play a coordinator by hand: prepare on 2, commitDecide on the record fragment 1, resolve nothing.
  const txn = 'manual.1'
  const k1 = rowKey(1, 'meta', metaKey(1, 'acct'))
  const k2 = rowKey(2, 'meta', metaKey(2, 'acct'))
  const at = Date.now()
  t.same(await h2.router.propose(2, { op: 'prepare', txn, record: 1, participants: [1, 2], at, checks: [], writes: [[k2, u32(150)]] }), { ok: true })
  t.same(await h2.router.propose(1, { op: 'commitDecide', txn, at, participants: [1, 2], checks: [], writes: [[k1, u32(50)]] }), { ok: true, commit: true })
  t.same(await balances(c.host('h3').tables), [START, 50, 150, START], 'a reader applies the committed decision on the other fragment')
})

t.test('a two-phase commit answers at its decision: its record is where it wrote most, its resolves follow, and its rows read right at once', async (t) => {
  let holdBack = false
  let letGo!: () => void
  const gate = new Promise<void>((resolve) => { letGo = resolve })
  const held: string[] = []
  const c = await cluster(t, {
    tablesFor: (name) => name === 'h1' ? { beforeSettle: async (txn) => { if (!holdBack) return; held.push(txn); await gate } } : {}
  })
  const h1 = c.host('h1')
  await openAccounts(h1.tables)
  await h1.tables.settled()
  holdBack = true
  // Three rows written on fragment 3, one on fragment 0: fragment 3 takes the decision, fragment 0 the intent.
  await h1.tables.txn(async (tx) => {
    const a = (await tx.get('meta', metaKey(0, 'acct')))!.readUInt32BE(0)
    tx.put('meta', metaKey(0, 'acct'), u32(a - 10))
    tx.put('meta', metaKey(3, 'acct'), u32(START + 10))
    tx.put('meta', metaKey(3, 'note1'), u32(1))
    tx.put('meta', metaKey(3, 'note2'), u32(2))
  })
  t.equal(held.length, 1, 'the caller had its answer while the resolve was still held back')
  const txn = held[0]!
  const decision = c.leaderOf(3)!.machines.get(3)!.readLocal([{ k: 'decision', txn }]).results[0]
  t.same(decision, { k: 'decision', commit: true, participants: [0, 3] }, 'the fragment written most holds the decision')
  const intentsOf = (f: number): string[] => c.leaderOf(f)!.machines.get(f)!.readLocal([{ k: 'get', key: rowKey(f, 'meta', metaKey(f, 'acct')) }]).intents.map((i) => i.txn)
  t.same(intentsOf(0), [txn], 'the other participant still holds its intent')
  // The coordinator's own next transaction meets that intent and waits for the resolve, let go a little later.
  const own = balances(h1.tables)
  setTimeout(letGo, 200)
  t.same(await own, [START - 10, START, START, START + 10], 'the coordinator reads its own commit')
  await h1.tables.settled()
  t.same(intentsOf(0), [], 'its resolve landed')
  t.same(await balances(c.host('h3').tables), [START - 10, START, START, START + 10], 'and another host reads it too')
})

t.test('a reader on another host completes a commit whose resolves have not landed yet', async (t) => {
  let holdBack = false
  const c = await cluster(t, {
    tablesFor: (name) => name === 'h1' ? { beforeSettle: async () => { if (holdBack) await new Promise(() => {}) } } : {}
  })
  const h1 = c.host('h1')
  await openAccounts(h1.tables)
  await h1.tables.settled()
  holdBack = true
  await transfer(h1.tables, 0, 3, 25) // answered at its decision; its resolve never runs
  holdBack = false
  t.same(await balances(c.host('h2').tables), [START - 25, START, START, START + 25], 'h2 learns the decision from the record fragment and resolves')
})

t.test('a partitioned minority host serves stale reads and refuses writes with EROFS', async (t) => {
  const c = await cluster(t, { quorumWaitMs: 1500 })
  const h3 = c.host('h3')
  const k = metaKey(2, 'x')
  await h3.tables.txn(async (tx) => { tx.put('meta', k, Buffer.from('before')) })
  c.isolate('h3', true)
  const write = h3.tables.txn(async (tx) => { tx.put('meta', k, Buffer.from('minority')) })
  await t.rejects(write, { code: 'EROFS', message: /fragment 2 .*no majority of its replicas is reachable/ })
  t.same(await h3.tables.txn(async (tx) => await tx.get('meta', k)), Buffer.from('before'), 'the minority still reads')
  t.ok((h3.router.staleReads().get(2) ?? 0) > 0, 'and counts the read of fragment 2 as stale')
  t.ok(h3.router.leaderlessFragments().includes(2), 'fragment 2 is reported leaderless')
  await c.host('h1').tables.txn(async (tx) => { tx.put('meta', k, Buffer.from('majority')) })
  t.same(await h3.tables.txn(async (tx) => await tx.get('meta', k)), Buffer.from('before'), 'the minority does not see the majority\'s write yet (stale)')
  c.isolate('h3', false)
  await pollUntil(() => h3.store.get(rowKey(2, 'meta', k))?.toString() === 'majority', 'h3 to catch up after the partition heals', 1000)
  await pollUntil(() => !h3.router.leaderlessFragments().includes(2), 'fragment 2 to have a reachable leader again on h3', 1000)
  t.same(await h3.tables.txn(async (tx) => await tx.get('meta', k)), Buffer.from('majority'), 'after healing h3 reads the current value')
  await h3.tables.txn(async (tx) => { tx.put('meta', k, Buffer.from('healed')) })
  t.same(await c.host('h1').tables.txn(async (tx) => await tx.get('meta', k)), Buffer.from('healed'), 'and writes again')
})

t.test('the sweeper aborts an abandoned transaction, re-resolves old records, forgets them and drops dedupe rows', async (t) => {
  let hang: ((txn: string) => void) | null = null
  const c = await cluster(t, {
    tables: { txnTimeoutMs: 300, recordKeepMs: 0, dedupeKeepMs: 0 },
    tablesFor: (name) => name === 'h1' ? { afterPrepare: async (txn) => { if (hang) { hang(txn); await new Promise(() => {}) } } } : {}
  })
  const h1 = c.host('h1')
  const h2 = c.host('h2')
  await openAccounts(h2.tables)
  const prepared = new Promise<string>((resolve) => { hang = resolve })
  void transfer(h1.tables, 1, 2, 5)
  const stuck = await prepared
  hang = null
  // By txn id: h2's replicas may still show the intents of openAccounts for a moment.
  const txnsOf = (f: number): string[] => h2.machines.get(f)!.readLocal([{ k: 'get', key: rowKey(f, 'meta', metaKey(f, 'acct')) }]).intents.map((i) => i.txn)
  await pollUntil(() => txnsOf(2).includes(stuck), 'the abandoned transaction\'s intent', 500)
  t.notOk(txnsOf(1).includes(stuck), 'the record fragment holds none of it: its part waits for commitDecide')
  await new Promise((resolve) => setTimeout(resolve, 350)) // older than txnTimeout (a precondition, not a timing assertion)
  const first = await h2.tables.sweep(2)
  t.equal(first.recovered, 1, 'the sweeper of fragment 2 aborted the abandoned transaction (on its record fragment) and resolved it')
  t.notOk(txnsOf(2).includes(stuck))
  t.equal((h2.machines.get(1)!.readLocal([{ k: 'records', before: Date.now() + 1 }]).results[0] as { records: Array<{ commit: boolean }> }).records.map((r) => r.commit).join(), 'false',
    'the record fragment keeps the abort')
  // A recoverer that decided abort and stopped before resolving: the record fragment holds the decision, fragment 3 the intent.
  const at = Date.now()
  const left = 'manual.left'
  t.same(await h2.router.propose(3, { op: 'prepare', txn: left, record: 1, participants: [1, 3], at, checks: [], writes: [[rowKey(3, 'meta', metaKey(3, 'acct')), u32(1)]] }), { ok: true })
  t.same(await h2.router.propose(1, { op: 'decide', txn: left, commit: false, at, participants: [1, 3] }), { ok: true, commit: false })
  await pollUntil(() => txnsOf(3).includes(left), 'the left intent on h2\'s replica of fragment 3', 500)
  await new Promise((resolve) => setTimeout(resolve, 5))
  const second = await h2.tables.sweep(1)
  t.equal(second.forgotten, 2, 'both old decision records were re-resolved on every participant and forgotten')
  await pollUntil(() => !txnsOf(3).includes(left), 'fragment 3 resolved by the record sweep', 500)
  t.ok(second.removed > 0, 'old dedupe rows went')
  await new Promise((resolve) => setTimeout(resolve, 5))
  await h2.tables.sweep(1) // the dedupe rows the second sweep's own resolves and forget made
  const before = c.leaderOf(1)!.raft.status('fs/1').commit
  t.same(await h2.tables.sweep(1), { recovered: 0, forgotten: 0, removed: 0 }, 'nothing left to sweep')
  t.equal(c.leaderOf(1)!.raft.status('fs/1').commit, before, 'and an empty sweep appends nothing to the log')
  t.same(await balances(h1.tables), [START, START, START, START], 'nothing of the abandoned transfer was applied')
})

t.test('a host without replicas reads and proposes through other hosts, and is refused when cut off', async (t) => {
  const c = await cluster(t, { hosts: 4, replicas: 3, quorumWaitMs: 800 })
  const h4 = c.host('h4')
  t.same(h4.raft.groupIds(), [], 'h4 holds no fragment')
  await openAccounts(h4.tables)
  await Promise.all([transfer(h4.tables, 0, 1, 10), transfer(h4.tables, 2, 3, 20), transfer(c.host('h2').tables, 1, 2, 5)])
  const b = await balances(h4.tables)
  t.same(b, [START - 10, START + 5, START - 15, START + 20], 'h4 sees every transfer')
  t.equal(await h4.tables.countRows('meta', 3), 1, 'countRows is routed too')
  c.isolate('h4', true)
  await t.rejects(h4.tables.txn(async (tx) => { tx.put('meta', metaKey(1, 'x'), Buffer.from('x')) }), { code: 'EROFS' })
  await t.rejects(h4.tables.txn(async (tx) => await tx.get('meta', metaKey(1, 'x'))), { code: 'EIO', message: /no replica host answered/ })
  c.isolate('h4', false)
  t.same(await balances(h4.tables), b, 'and serves again once the network heals')
})

t.test('an error a body throws on reads that do not fit together re-runs it instead of reaching the caller', async (t) => {
  const c = await cluster(t)
  const h1 = c.host('h1')
  const h2 = c.host('h2')
  const a = metaKey(0, 'pair')
  const b = metaKey(1, 'pair')
  await h1.tables.txn(async (tx) => { tx.put('meta', a, u32(1)); tx.put('meta', b, u32(1)) })
  let attempts = 0
  let changedAt = 0
  const seen = await h1.tables.txn(async (tx) => {
    attempts++
    const va = (await tx.get('meta', a))!.readUInt32BE(0)
    // Test only: the first attempt that gets here lets another host change both rows between its two reads.
    if (changedAt === 0) {
      changedAt = attempts
      await h2.tables.txn(async (tx2) => { tx2.put('meta', a, u32(2)); tx2.put('meta', b, u32(2)) })
    }
    const vb = (await tx.get('meta', b))!.readUInt32BE(0)
    if (va !== vb) throw new Error(`the pair differs: ${va} vs ${vb}`)
    return va
  })
  t.equal(seen, 2, 'the re-run saw the new pair')
  t.ok(attempts > changedAt, 'the attempt that saw the change was discarded')
  await t.rejects(h1.tables.txn(async (tx) => {
    await tx.get('meta', a)
    await tx.get('meta', b)
    throw new Error('a real error')
  }), /a real error/, 'an error from reads that hold reaches the caller')
})

t.test('increments stay exact while the counter\'s fragment changes leader again and again', async (t) => {
  const c = await cluster(t)
  const k = metaKey(1, 'moving')
  const g = 'fs/1'
  let moving = true
  let transfers = 0
  const mover = (async () => {
    while (moving) {
      const l = c.leaderOf(1)
      if (l) {
        const to = (l.node % 3) + 1
        try { l.raft.transferLeadership(g, to); transfers++ } catch { /* a transfer already running */ }
      }
      await new Promise((resolve) => setTimeout(resolve, 150))
    }
  })()
  let ok = 0
  await Promise.all([...c.hosts.values()].map(async (h) => {
    // At least 10 each, and on until leadership moved a few times (fast increments must not finish first).
    for (let i = 0; i < 10 || (transfers < 4 && i < 2000); i++) {
      await h.tables.txn(async (tx) => {
        const cur = await tx.get('meta', k)
        tx.put('meta', k, u32((cur?.readUInt32BE(0) ?? 0) + 1))
      }, { maxAttempts: 1000 })
      ok++
    }
  }))
  moving = false
  await mover
  t.ok(transfers > 1, `leadership moved (${transfers} transfers asked)`)
  t.equal((await c.host('h2').tables.txn(async (tx) => await tx.get('meta', k)))?.readUInt32BE(0), ok, 'every acknowledged increment counted exactly once')
})

t.test('a partitioned host reads past intents it cannot settle (stale reads show committed rows)', async (t) => {
  let hang = false
  const c = await cluster(t, {
    quorumWaitMs: 1000,
    tablesFor: (name) => name === 'h1' ? { afterPrepare: async () => { if (hang) await new Promise(() => {}) } } : {}
  })
  const h3 = c.host('h3')
  await openAccounts(h3.tables)
  // The accounts' resolves land after openAccounts has its answer; a stale read would skip their intents.
  await h3.tables.settled()
  hang = true
  void transfer(c.host('h1').tables, 0, 2, 10)
  const intentsOf = (f: number): number => h3.machines.get(f)!.readLocal([{ k: 'get', key: rowKey(f, 'meta', metaKey(f, 'acct')) }]).intents.length
  await pollUntil(() => intentsOf(2) === 1, 'the stuck transfer\'s intent on h3', 500)
  c.isolate('h3', true)
  t.same(await balances(h3.tables), [START, START, START, START], 'h3 reads the committed balances')
  t.ok((h3.router.staleReads().get(0) ?? 0) > 0 && (h3.router.staleReads().get(2) ?? 0) > 0, 'as stale reads')
})

t.test('a host whose replica is only a learner (maybe still empty) reads through the voters, never stale', async (t) => {
  const c = await cluster(t, { hosts: 4, replicas: 3 })
  const h4 = c.host('h4')
  await openAccounts(c.host('h1').tables)
  // An empty learner replica on h4 that the voters do not feed yet (as right after it was opened).
  for (let f = 0; f < c.fragments; f++) {
    const sm = new FragmentMachine(h4.store, f, c.fragments)
    h4.machines.set(f, sm)
    await h4.raft.createGroup(`fs/${f}`, { voters: [1, 2, 3], learners: [4] }, sm)
  }
  t.equal(h4.store.get(rowKey(0, 'meta', metaKey(0, 'acct'))), undefined, 'h4\'s replica is empty')
  t.same(await balances(h4.tables), [START, START, START, START], 'h4 reads the voters\' rows')
  t.same([...h4.router.staleReads()], [], 'and served no stale read')
})

t.test('a coordinator host that stops amid transfers leaves nothing half-done; the others go on', async (t) => {
  const c = await cluster(t, { quorumWaitMs: 3000, tables: { txnTimeoutMs: 400 } })
  const [h1, h2, h3] = [c.host('h1'), c.host('h2'), c.host('h3')]
  await openAccounts(h2.tables)
  let h1done = 0
  const h1work = Promise.all(Array.from({ length: 12 }, async (_, i) => {
    await transfer(h1.tables, i % ACCOUNTS, (i + 1) % ACCOUNTS, 3).then(() => { h1done++ }, () => {})
  }))
  const others = Promise.all([h2, h3].flatMap((h, k) => Array.from({ length: 6 }, async (_, i) => await transfer(h.tables, (i + k) % ACCOUNTS, (i + k + 2) % ACCOUNTS, 2))))
  await pollUntil(() => h1done >= 2, 'h1 to commit a few transfers', 1000)
  await c.stopHost('h1')
  await others
  await h1work
  for (const h of [h2, h3]) {
    const b = await balances(h.tables)
    t.equal(b.reduce((x, y) => x + y, 0), ACCOUNTS * START, `${h.name} sees the sum intact (${b.join(',')})`)
  }
})

t.test('an unchecked (hint) transaction reads without validation and may not write', async (t) => {
  const c = await cluster(t)
  const h1 = c.host('h1')
  const k = metaKey(2, 'hint')
  await h1.tables.txn(async (tx) => { tx.put('meta', k, u32(7)) })
  // This host's own write shows at once: optimistic reads wait for it (read-your-writes).
  t.equal((await h1.tables.txn(async (tx) => await tx.get('meta', k), { unchecked: true }))?.readUInt32BE(0), 7, 'a hint sees this host\'s last write')
  await t.rejects(h1.tables.txn(async (tx) => { tx.put('meta', k, u32(8)) }, { unchecked: true }), /tried to write/, 'a hint that writes is refused')
  t.equal((await h1.tables.txn(async (tx) => await tx.get('meta', k)))?.readUInt32BE(0), 7, 'and wrote nothing')
})

t.test('a read-only check skips re-reading only while nothing changed: a write between read and check re-runs the body', async (t) => {
  const c = await cluster(t)
  const h1 = c.host('h1')
  const h2 = c.host('h2')
  const a = metaKey(0, 'left')
  const b = metaKey(0, 'right')
  await h2.tables.txn(async (tx) => { tx.put('meta', a, u32(1)); tx.put('meta', b, u32(1)) })
  const read = async (): Promise<number[]> => await h1.tables.txn(async (tx) => [(await tx.get('meta', a))!.readUInt32BE(0), (await tx.get('meta', b))!.readUInt32BE(0)])
  // h1's replica may lag h2's write for a moment; once it shows it, the check needs no second read.
  let skipped = false
  for (let i = 0; i < 100 && !skipped; i++) {
    const before = h1.router.unchangedChecks
    t.same(await read(), [1, 1])
    skipped = h1.router.unchangedChecks > before
  }
  t.ok(skipped, 'a quiet fragment is checked without re-reading')
  let attempts = 0
  const got = await h1.tables.txn(async (tx) => {
    attempts++
    const va = (await tx.get('meta', a))!.readUInt32BE(0)
    // Test only: the first attempt lets another host change the row it read, then reads on; nothing throws.
    if (attempts === 1) await h2.tables.txn(async (tx2) => { tx2.put('meta', a, u32(2)) })
    const vb = (await tx.get('meta', b))!.readUInt32BE(0)
    return [va, vb]
  })
  t.same(got, [2, 1], 'the answer shows the write that finished before the transaction did')
  t.ok(attempts >= 2, 'the attempt that read the old value was discarded')
})

t.test('a current transaction (walkenfs check) never answers from a stale replica: EIO when no leader comes back, current rows once one does', async (t) => {
  const c = await cluster(t, { quorumWaitMs: 3000 })
  const h3 = c.host('h3')
  const k = metaKey(2, 'x')
  await h3.tables.txn(async (tx) => { tx.put('meta', k, Buffer.from('before')) })
  c.isolate('h3', true)
  // The majority's write may have to wait for a new leader of fragment 2 (h3 may have led it).
  await c.host('h1').tables.txn(async (tx) => { tx.put('meta', k, Buffer.from('majority')) })
  t.same(await h3.tables.txn(async (tx) => await tx.get('meta', k)), Buffer.from('before'), 'an ordinary read on the cut-off host is stale')
  await t.rejects(h3.tables.txn(async (tx) => await tx.get('meta', k), { current: true }),
    { code: 'EIO', message: /fragment 2 has no leader this host can reach within 3000 ms/ }, 'a current read fails instead')
  // Healed while a current read waits: it answers with the majority's value.
  const waiting = h3.tables.txn(async (tx) => await tx.get('meta', k), { current: true })
  setTimeout(() => c.isolate('h3', false), 300)
  t.same(await waiting, Buffer.from('majority'), 'a current read that waited through the heal sees the current value')
})

t.test('a finished two-phase commit\'s decision record is forgotten on the coordinator\'s next proposal to the record fragment, or alone after forgetDelayMs', async (t) => {
  const c = await cluster(t, { tablesFor: (name) => ({ forgetDelayMs: name === 'h1' ? 3_600_000 : 50 }) })
  const h1 = c.host('h1')
  const records = (f: number): string[] =>
    (c.leaderOf(f)!.machines.get(f)!.readLocal([{ k: 'records', before: Date.now() + 60_000 }]).results[0] as { records: Array<{ txn: string }> }).records.map((r) => r.txn)
  await openAccounts(c.host('h2').tables)
  await transfer(h1.tables, 0, 3, 10)
  const mine = records(0).filter((txn) => txn.startsWith('h1.'))
  t.equal(mine.length, 1, 'h1\'s transfer left its decision record on the record fragment 0 (h1 forgets only by riding)')
  const leader = c.leaderOf(0)!
  // The record is forgotten once every participant is resolved, which runs after the caller has its answer.
  await h1.tables.settled()
  const before = leader.raft.status('fs/0').commit
  await h1.tables.txn(async (tx) => { tx.put('meta', metaKey(0, 'other'), u32(1)) })
  t.notOk(records(0).includes(mine[0]!), 'h1\'s next commit to fragment 0 forgot it')
  t.equal(leader.raft.status('fs/0').commit, before + 1, 'in the same log entry')
  await transfer(c.host('h2').tables, 0, 3, 10)
  await pollUntil(() => !records(0).some((txn) => txn.startsWith('h2.')), 'h2\'s record to be forgotten on its own', 2000)
  t.same(await balances(c.host('h3').tables), [START - 20, START, START, START + 20])
})

t.test('patchOf: the one span that changed, at chunk granularity; null when most of the row changed', async (t) => {
  const k = Buffer.from('k')
  const old = Buffer.alloc(65536, 1)
  const next = Buffer.from(old)
  next.fill(2, 5000, 9000)
  const p = patchOf(k, old, next)
  t.ok(p !== null)
  const [, bytes, at, len] = p!
  t.equal(len, 65536)
  t.ok(at <= 5000 && at + bytes.length >= 9000 && bytes.length <= 4000 + 2 * 256, `span [${at}, ${at + bytes.length}) covers the change and little more`)
  t.ok(bytes.equals(next.subarray(at, at + bytes.length)))
  const appended = Buffer.concat([old, Buffer.alloc(100, 3)])
  const pa = patchOf(k, old, appended)!
  t.same([pa[2], pa[3]], [65536, 65636], 'an append ships the new bytes only')
  t.equal(patchOf(k, old, Buffer.alloc(65536, 4)), null, 'a rewrite of the whole row goes whole')
  const same = patchOf(k, old, Buffer.from(old))!
  t.same([same[1].length, same[3]], [0, 65536], 'an unchanged row is an empty patch')
})

t.test('a transaction that changes a few bytes of a large row proposes those bytes; every replica holds the whole new row', async (t) => {
  const c = await cluster(t)
  const big = Buffer.alloc(65536, 'a')
  const f = 3
  const k = metaKey(f, 'big')
  await c.host('h1').tables.txn(async (tx) => { tx.put('meta', k, big) })
  // A replica may apply the first write after the commit returned: only the entries after it are counted.
  for (const h of c.hosts.values()) await pollUntil(() => h.store.get(rowKey(f, 'meta', k))?.equals(big) ?? false, `${h.name} holds the first row`, 500)
  const sizes: number[] = []
  const sm = c.host('h1').machines.get(f)!
  const apply = sm.apply.bind(sm)
  sm.apply = (e) => { sizes.push(e.data?.length ?? 0); return apply(e) }
  for (const name of ['h2', 'h3']) {
    await c.host(name).tables.txn(async (tx) => {
      const v = Buffer.from((await tx.get('meta', k))!)
      v.write(name, 30000)
      tx.put('meta', k, v)
    })
  }
  const want = Buffer.from(big)
  want.write('h3', 30000)
  for (const h of c.hosts.values()) {
    await pollUntil(() => h.store.get(rowKey(f, 'meta', k))?.equals(want) ?? false, `${h.name} holds the whole new row`, 500)
  }
  t.pass('every replica holds the row with both changes')
  t.ok(sizes.length >= 2 && sizes.every((n) => n < 4096), `entries applied on h1 after the first write are small: ${sizes.join(', ')} bytes`)
})
