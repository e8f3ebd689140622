/**
 * Raft hosts in separate processes over the real wire: a process leading
 * groups is killed with SIGKILL (no shutdown; the kernel resets its
 * sockets); the two others elect new leaders in every group and go on; the
 * process restarts from its lmdb files on the same port and catches up.
 * Host 1 runs in the test process; hosts 2 and 3 are child processes
 * (test/raft/raft-node.ts) driven over the wire.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { open } from 'lmdb'
import t from 'tap'
import { RaftHost } from '../../src/raft/host.js'
import { RaftError } from '../../src/raft/types.js'
import { WireTransport } from '../../src/raft/wire-transport.js'
import { Wire } from '../../src/wire/wire.js'
import { KvMachine } from './kv-machine.js'
import { CLUSTER_COOKIE } from './wire-cluster.js'

const here = dirname(fileURLToPath(import.meta.url))
const GROUPS = Array.from({ length: 6 }, (_, i) => `g${i}`)

type Status = Record<string, { role: string, term: number, lead: number, commit: number }>

async function until (pred: () => boolean | Promise<boolean>, what: string, maxWaits = 2000): Promise<void> {
  for (let i = 0; i < maxWaits; i++) {
    if (await pred()) return
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error(`gave up waiting for ${what}`)
}

t.test('SIGKILL of a leader process: the others take over; the restarted process catches up from its lmdb', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'walkenfs-raftkill-'))
  t.teardown(() => rmSync(base, { recursive: true, force: true }))
  const children = new Map<number, ChildProcess>()
  t.teardown(() => { for (const ch of children.values()) if (ch.exitCode === null && ch.signalCode === null) ch.kill('SIGKILL') })

  const wire = new Wire({ hostId: '1', cookie: CLUSTER_COOKIE, clusterName: 'raftwire', port: 0, listenHost: '127.0.0.1',
    heartbeatMs: 200, linkTimeoutMs: 1000, handshakeTimeoutMs: 1000, connectTimeoutMs: 1000, backoff: { baseMs: 20, maxMs: 200 }, log: () => {} })
  await wire.start()
  const root = open({ path: join(base, 'host1') })
  const host = new RaftHost({ id: 1, root, transport: new WireTransport({ wire, id: 1 }), tickMs: 10, electionTicks: 30 })
  t.teardown(async () => { await host.close(); await wire.close(); await root.close() })
  const machines = new Map<string, KvMachine>()
  for (const g of GROUPS) {
    const sm = new KvMachine(root, g)
    machines.set(g, sm)
    await host.createGroup(g, { voters: [1, 2, 3], learners: [] }, sm)
  }
  host.start()

  const ports = new Map<number, number>([[1, wire.port]])
  const startChild = async (id: number): Promise<void> => {
    const ch = spawn(process.execPath, [join(here, 'raft-node.js'), String(id), join(base, `host${id}`), String(ports.get(id) ?? 0),
      String(GROUPS.length), CLUSTER_COOKIE.toString('hex')], { stdio: ['pipe', 'pipe', 'inherit'] })
    children.set(id, ch)
    const [line] = await once(ch.stdout!, 'data') as [Buffer]
    ports.set(id, Number(line.toString().trim()))
    wire.addPeer(String(id), [`127.0.0.1:${ports.get(id)!}`])
    await until(() => wire.linkedPeers().includes(String(id)), `a link to host ${id}`)
  }
  const introduce = async (ids: number[]): Promise<void> => {
    const list = [...ports].map(([id, port]) => [String(id), `127.0.0.1:${port}`])
    for (const id of ids) await wire.call(String(id), 'ctl.peers', list, { deadlineMs: 2000 })
  }
  const status = async (id: number): Promise<Status> => {
    if (id === 1) return Object.fromEntries(GROUPS.map((g) => [g, host.status(g)]))
    return await wire.call(String(id), 'ctl.status', null, { deadlineMs: 2000 }) as Status
  }
  const leaders = async (alive: number[]): Promise<Map<string, number>> => {
    const out = new Map<string, number>()
    for (const id of alive) {
      const s = await status(id).catch(() => ({} as Status))
      for (const g of GROUPS) if (s[g]?.role === 'leader') out.set(g, id)
    }
    return out
  }
  const get = async (id: number, g: string, k: string): Promise<string | null> =>
    id === 1 ? machines.get(g)!.get(k) ?? null : await wire.call(String(id), 'ctl.get', [g, k], { deadlineMs: 2000 }) as string | null
  /** Proposes at whichever host leads g (bounded retries across leader changes). */
  const propose = async (alive: number[], g: string, k: string, v: string): Promise<void> => {
    for (let i = 0; i < 200; i++) {
      const l = (await leaders(alive)).get(g)
      if (l === 1) {
        try { await host.propose(g, KvMachine.encode(k, v)); return } catch (e) { if (!(e instanceof RaftError)) throw e }
      } else if (l !== undefined) {
        const r = await wire.call(String(l), 'ctl.propose', [g, k, v], { deadlineMs: 3000 }).catch(() => ({ error: 'call' })) as { ok?: unknown, error?: string }
        if (r.error === undefined) return
      }
      await new Promise((r) => setTimeout(r, 20))
    }
    throw new Error(`proposal ${k} in ${g} was never accepted`)
  }

  await startChild(2)
  await startChild(3)
  await introduce([2, 3])
  await until(async () => (await leaders([1, 2, 3])).size === GROUPS.length, 'a leader in every group')
  for (const g of GROUPS) await propose([1, 2, 3], g, 'before', g)
  // The victim is a child process that leads at least one group: if host 1 leads them all, it hands g0 to host 2.
  if ([...(await leaders([1, 2, 3])).values()].every((id) => id === 1)) {
    await until(async () => (await status(2)).g0!.commit === host.status('g0').commit, 'host 2 caught up in g0')
    host.transferLeadership('g0', 2)
    await until(async () => (await leaders([2])).get('g0') === 2, 'host 2 leads g0')
  }
  const before = await leaders([1, 2, 3])
  const victim = [...before.values()].find((id) => id !== 1)!
  const victimLed = [...before].filter(([, id]) => id === victim).map(([g]) => g)
  await until(async () => (await get(victim, 'g0', 'before')) === 'g0', 'the victim applied the first writes')

  children.get(victim)!.kill('SIGKILL')
  await once(children.get(victim)!, 'exit')
  const alive = [1, victim === 2 ? 3 : 2]
  await until(async () => { const l = await leaders(alive); return GROUPS.every((g) => l.has(g)) }, 'new leaders among the two survivors')
  t.pass(`after SIGKILL of host ${victim} (leader of ${victimLed.join(',') || 'no group'}) every group has a leader among hosts ${alive.join(',')}`)
  for (const g of GROUPS) await propose(alive, g, 'during', g)
  for (const id of alive) {
    await until(async () => (await Promise.all(GROUPS.map((g) => get(id, g, 'during')))).every((v, i) => v === GROUPS[i]), `host ${id} applied the writes made without the victim`)
  }
  t.pass('proposals commit in every group with one process dead')

  await startChild(victim)
  await introduce([victim])
  await until(async () => (await Promise.all(GROUPS.map((g) => get(victim, g, 'during')))).every((v, i) => v === GROUPS[i]), 'the restarted process caught up in every group')
  t.pass(`host ${victim} restarted from its lmdb and caught up in every group`)
  for (const g of GROUPS) {
    await until(async () => (await status(victim))[g]!.commit === host.status(g).commit, `${g}: the restarted host's commit index matches host 1's`)
  }
  t.pass('commit indexes agree')
  for (const ch of children.values()) { if (ch.exitCode === null && ch.signalCode === null) { ch.stdin!.end(); await once(ch, 'exit') } }
})
