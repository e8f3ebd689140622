/**
 * A peer that stops reading (a real process under SIGSTOP, over real TCP)
 * must not make the sender queue without bound: the transport keeps at most
 * `maxInflight` batches in the wire, drops and counts the rest, and delivers
 * every batch it accepted once the peer reads again. Also: batches whose
 * messages claim another sender are dropped.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Envelope } from '../../src/raft/transport.js'
import { WireTransport } from '../../src/raft/wire-transport.js'
import { Wire } from '../../src/wire/wire.js'
import { CLUSTER_COOKIE } from './wire-cluster.js'

const here = dirname(fileURLToPath(import.meta.url))

function appendBatch (i: number, bytes: number): Envelope[] {
  return [{ group: 'g', msg: { type: 'app', from: 1, to: 2, term: 1, index: i, logTerm: 1, commit: 0,
    entries: [{ index: i + 1, term: 1, kind: 'normal', data: Buffer.alloc(bytes, i & 0xff) }] } }]
}

async function until (pred: () => boolean, what: string, maxWaits = 2000): Promise<void> {
  for (let i = 0; i < maxWaits; i++) {
    if (pred()) return
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error(`gave up waiting for ${what}`)
}

t.test('a peer that reads nothing: bounded in-flight batches, drops counted, accepted batches all delivered', async (t) => {
  const child = spawn(process.execPath, [join(here, 'sink-peer.js'), CLUSTER_COOKIE.toString('hex')], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => {
    if (child.exitCode === null && child.pid !== undefined) { process.kill(child.pid, 'SIGCONT'); child.kill('SIGKILL') }
  })
  const [line] = await once(child.stdout!, 'data') as [Buffer]
  const port = Number(line.toString().trim())
  const wire = new Wire({ hostId: '1', cookie: CLUSTER_COOKIE, clusterName: 'raftwire', port: 0, listenHost: '127.0.0.1',
    heartbeatMs: 5000, linkTimeoutMs: 20000, log: () => {} })
  t.teardown(() => wire.close())
  await wire.start()
  const tr = new WireTransport({ wire, id: 1, maxInflight: 16 })
  t.teardown(() => tr.close())
  wire.addPeer('2', [`127.0.0.1:${port}`])
  await until(() => wire.linkedPeers().includes('2'), 'a link to the sink')

  process.kill(child.pid!, 'SIGSTOP')
  const n = 2000
  let maxSeen = 0
  for (let i = 0; i < n; i++) {
    tr.send(2, appendBatch(i, 64 << 10))
    maxSeen = Math.max(maxSeen, tr.inflight(2))
    // Let the wire write what the kernel takes, as the driver's cycles would between sends.
    if (i % 50 === 0) await new Promise((r) => setImmediate(r))
  }
  t.ok(maxSeen <= 16, `in-flight batches stayed within the bound (max ${maxSeen})`)
  t.ok(wire.peerTable().every((p) => p.queued <= 16), 'the wire queue stayed within the bound too')
  t.ok(tr.counters.droppedBusy > 0, `${tr.counters.droppedBusy} batches dropped and counted while the peer was stopped`)
  t.equal(tr.counters.batchesSent + tr.counters.droppedBusy, n, 'every batch was either accepted or counted as dropped')

  process.kill(child.pid!, 'SIGCONT')
  await until(() => tr.inflight(2) === 0, 'the accepted batches drained')
  let got = 0
  for (let k = 0; k < 200 && got !== tr.counters.batchesSent; k++) {
    got = await wire.call('2', 'received', null, { deadlineMs: 2000 }) as number
    if (got !== tr.counters.batchesSent) await new Promise((r) => setTimeout(r, 20))
  }
  t.equal(got, tr.counters.batchesSent, 'the peer received every accepted batch once it read again')
  t.equal(tr.counters.droppedError + tr.counters.droppedNoLink, 0, 'no other losses')
  child.stdin!.end()
  await once(child, 'exit')
})

t.test('batches whose messages claim another sender or recipient are dropped and counted', async (t) => {
  const mk = async (id: string): Promise<Wire> => {
    const w = new Wire({ hostId: id, cookie: CLUSTER_COOKIE, clusterName: 'raftwire', port: 0, listenHost: '127.0.0.1', log: () => {} })
    t.teardown(() => w.close())
    await w.start()
    return w
  }
  const w1 = await mk('1')
  const w2 = await mk('2')
  const got: Envelope[][] = []
  const tr1 = new WireTransport({ wire: w1, id: 1 })
  tr1.listen((_from, b) => got.push(b))
  t.teardown(() => tr1.close())
  w2.addPeer('1', [`127.0.0.1:${w1.port}`])
  await until(() => w2.linkedPeers().includes('1'), 'a link')
  const hb = (from: number, to: number): Envelope => ({ group: 'g', msg: { type: 'heartbeat', from, to, term: 1, commit: 0 } })
  await w2.send('1', ['raft.b', [hb(3, 1), hb(2, 4), hb(2, 1), { group: 7, msg: null }]])
  await until(() => got.length === 1, 'the honest part delivered')
  t.same(got[0]!.map((e) => e.msg.from), [2], 'only the message from the authenticated sender to this host passes')
  t.equal(tr1.counters.spoofed, 2)
  t.equal(tr1.counters.malformed, 1)
})

t.test('snapshot chunks: a gap abandons the transfer; a complete one is delivered whole; claims over the bound are refused', async (t) => {
  const mk = async (id: string): Promise<Wire> => {
    const w = new Wire({ hostId: id, cookie: CLUSTER_COOKIE, clusterName: 'raftwire', port: 0, listenHost: '127.0.0.1', log: () => {} })
    t.teardown(() => w.close())
    await w.start()
    return w
  }
  const w1 = await mk('1')
  const w2 = await mk('2')
  const got: Envelope[][] = []
  const tr1 = new WireTransport({ wire: w1, id: 1, maxSnapshotBytes: 1 << 20 })
  tr1.listen((_from, b) => got.push(b))
  t.teardown(() => tr1.close())
  w2.addPeer('1', [`127.0.0.1:${w1.port}`])
  await until(() => w2.linkedPeers().includes('1'), 'a link')
  const head = { type: 'snap', from: 2, to: 1, term: 3, snapshot: { meta: { index: 9, term: 3, config: { voters: [1, 2, 3], learners: [] } }, data: Buffer.alloc(0) } }
  const data = Buffer.from(Array.from({ length: 3000 }, (_, i) => i & 0xff))
  const chunk = (id: number, seq: number, off: number, total = data.length): unknown[] =>
    ['raft.s', id, seq, 'g', seq === 0 ? head : null, total, off, data.subarray(off, Math.min(total, off + 1000))]
  // Transfer 1 loses its middle chunk (as when a link dies mid-way).
  await w2.send('1', chunk(1, 0, 0))
  await w2.send('1', chunk(1, 2, 2000))
  // Transfer 2 is complete.
  for (let s = 0; s < 3; s++) await w2.send('1', chunk(2, s, s * 1000))
  // Transfer 3 announces more than the receiver may hold.
  await w2.send('1', chunk(3, 0, 0, 2 << 20))
  await until(() => tr1.counters.snapshotsAbandoned >= 2 && got.length >= 1, 'the transfers handled')
  t.equal(got.length, 1, 'one snapshot delivered')
  const m = got[0]![0]!.msg
  t.equal(m.type, 'snap')
  t.equal(m.snapshot!.meta.index, 9)
  t.ok(Buffer.from(m.snapshot!.data).equals(data), 'the delivered snapshot is byte for byte the one sent')
  t.equal(tr1.counters.snapshotsReceived, 1)
  t.equal(tr1.counters.snapshotsAbandoned, 2, 'the gapped transfer and the oversized claim were abandoned')
})
