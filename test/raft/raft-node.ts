/**
 * One Raft host in its own process for the process-kill test: a Wire on
 * loopback, its lmdb environment in DIR, a RaftHost over WireTransport and
 * KvMachine groups g0..g(N-1) with voters 1,2,3 (created on first start,
 * reopened from lmdb after a restart). Prints its port once listening.
 * The test drives it over the wire itself (it is host 1, an authenticated
 * peer): `ctl.peers` [[id, addr]…], `ctl.status`, `ctl.get` [g, k],
 * `ctl.propose` [g, k, v] (answers {ok} or {error code, leader}),
 * `ctl.transfer` [g, to] (hands leadership of g to host `to`).
 * Usage: node raft-node.js ID DIR PORT GROUPS COOKIE_HEX
 */
import { open } from 'lmdb'
import { RaftHost } from '../../src/raft/host.js'
import { RaftError } from '../../src/raft/types.js'
import { WireTransport } from '../../src/raft/wire-transport.js'
import { Wire } from '../../src/wire/wire.js'
import { KvMachine } from './kv-machine.js'

const [idArg, dir, portArg, groupsArg, cookieHex] = process.argv.slice(2) as [string, string, string, string, string]
const id = Number(idArg)
const wire = new Wire({ hostId: idArg, cookie: Buffer.from(cookieHex, 'hex'), clusterName: 'raftwire', port: Number(portArg),
  listenHost: '127.0.0.1', heartbeatMs: 200, linkTimeoutMs: 1000, handshakeTimeoutMs: 1000, connectTimeoutMs: 1000,
  backoff: { baseMs: 20, maxMs: 200 }, log: () => {} })
await wire.start()
const root = open({ path: dir })
const host = new RaftHost({ id, root, transport: new WireTransport({ wire, id }), tickMs: 10, electionTicks: 30 })
const machines = new Map<string, KvMachine>()
const existing = new Set(host.storage.groups())
for (let i = 0; i < Number(groupsArg); i++) {
  const g = `g${i}`
  const sm = new KvMachine(root, g)
  machines.set(g, sm)
  if (existing.has(g)) host.openGroup(g, sm)
  else await host.createGroup(g, { voters: [1, 2, 3], learners: [] }, sm)
}
wire.handle('ctl.peers', (p) => { for (const [pid, addr] of p as Array<[string, string]>) wire.addPeer(pid, [addr]); return true })
wire.handle('ctl.status', () => Object.fromEntries(host.groupIds().map((g) => [g, host.status(g)])))
wire.handle('ctl.get', (p) => { const [g, k] = p as [string, string]; return machines.get(g)?.get(k) ?? null })
wire.handle('ctl.propose', async (p) => {
  const [g, k, v] = p as [string, string, string]
  try { return { ok: await host.propose(g, KvMachine.encode(k, v)) } } catch (e) {
    return { error: e instanceof RaftError ? e.code : String(e), leader: e instanceof RaftError ? e.leader : 0 }
  }
})
wire.handle('ctl.transfer', (p) => { const [g, to] = p as [string, number]; host.transferLeadership(g, to); return true })
host.start()
process.stdout.write(`${wire.port}\n`)
process.stdin.on('end', () => { void host.close().then(() => wire.close()).then(() => root.close()).then(() => process.exit(0)) })
process.stdin.resume()
