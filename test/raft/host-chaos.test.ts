import t from 'tap'
import { performance } from 'node:perf_hooks'
import { RaftError } from '../../src/raft/types.js'
import { checkRegisters, type RegisterOp } from '../sim/linearizability.js'
import { TestCluster } from './cluster.js'
import { KvMachine } from './kv-machine.js'

/*
 * The real driver on real lmdb under faults: link cuts, leader isolation and
 * host restarts (lmdb closed and reopened) while three clients write and read.
 * The run is time-bounded and not deterministic; what it asserts is not
 * timing but safety: the history is linearizable and all hosts converge.
 */
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

t.test('driver + lmdb under link cuts and restarts: linearizable history, converged replicas', async (t) => {
  const c = new TestCluster()
  t.teardown(() => c.cleanup())
  for (const id of [1, 2, 3]) c.openHost(id)
  await c.createGroup('g', [1, 2, 3])
  c.startAll()
  await c.until(() => c.leaderOf('g') !== undefined, 'a leader')

  const history: RegisterOp[] = []
  const keys = ['a', 'b']
  let stop = false
  let seq = 0
  let acked = 0
  let reads = 0
  const client = async (id: number): Promise<void> => {
    while (!stop) {
      const key = keys[Math.floor(Math.random() * keys.length)]
      const hosts = [...c.hosts.values()]
      const h = hosts[Math.floor(Math.random() * hosts.length)]
      if (Math.random() < 0.5) {
        const value = `${id}.${++seq}`
        const leader = c.leaderOf('g') ?? h
        const op: RegisterOp = { client: id, kind: 'write', key, value, invoke: performance.now(), response: Infinity }
        try {
          await leader.host.propose('g', KvMachine.encode(key, value))
          op.response = performance.now()
          acked++
          history.push(op)
        } catch (e) {
          if (!(e instanceof RaftError) && !/not open|storage failure/.test(String(e))) throw e
          // Only UNKNOWN may have taken effect; every other code means it did not.
          if (e instanceof RaftError && e.code === 'UNKNOWN') history.push(op)
          await sleep(10)
        }
      } else {
        const op: RegisterOp = { client: id, kind: 'read', key, value: null, invoke: performance.now(), response: Infinity }
        try {
          await h.host.read('g')
          op.value = h.machines.get('g')!.get(key) ?? null
          op.response = performance.now()
          reads++
          history.push(op)
        } catch (e) {
          if (!(e instanceof RaftError) && !/not open|storage failure/.test(String(e))) throw e
          await sleep(10)
        }
      }
    }
  }

  const chaos = async (): Promise<void> => {
    for (let round = 0; round < 8; round++) {
      await sleep(300 + Math.random() * 300)
      const dice = Math.random()
      if (dice < 0.35) {
        const l = c.leaderOf('g')
        if (l) for (const other of [1, 2, 3]) if (other !== l.id) c.net.setLink(l.id, other, false)
        await sleep(500)
        for (const a of [1, 2, 3]) for (const b of [1, 2, 3]) if (a !== b) c.net.setLink(a, b, true)
      } else if (dice < 0.6) {
        const a = 1 + Math.floor(Math.random() * 3)
        const b = a === 3 ? 1 : a + 1
        c.net.setLink(a, b, false)
        await sleep(400)
        c.net.setLink(a, b, true)
      } else {
        const victim = 1 + Math.floor(Math.random() * 3)
        await c.stopHost(victim)
        await sleep(200)
        const back = c.openHost(victim)
        c.reopenGroups(back)
        back.host.start()
      }
    }
  }

  const clients = [0, 1, 2].map(client)
  await chaos()
  stop = true
  await Promise.all(clients)

  // Healed: one more write must get through, then every host converges.
  await c.propose('g', KvMachine.encode('final', 'x'))
  await c.until(() => [...c.hosts.values()].every((h) => h.machines.get('g')!.get('final') === 'x'), 'every host applied the final write', 2000)
  const rows = [...c.hosts.values()].map((h) => keys.map((k) => h.machines.get('g')!.get(k) ?? null))
  t.same(rows[1], rows[0], 'host rows agree')
  t.same(rows[2], rows[0], 'host rows agree')
  t.ok(acked > 20 && reads > 20, `workload ran: ${acked} acknowledged writes, ${reads} reads`)
  const lin = checkRegisters(history)
  t.equal(lin.ok, true, `history of ${history.length} operations is linearizable`)
})
