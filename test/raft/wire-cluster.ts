/**
 * Raft hosts that talk over the real peer wire (encrypted TCP on loopback),
 * each with its own Wire endpoint, lmdb environment in a temporary directory
 * and RaftHost, for the wire-transport tests and the raft-wire benchmark.
 * A host can be killed (driver, wire and lmdb closed; files kept) and
 * restarted on the same port from its lmdb files. Partitions close links
 * for real: both sides forget each other, so nobody redials.
 * `cleanup()` closes everything and deletes the directories.
 */
import { open, type RootDatabase } from 'lmdb'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RaftHost, type HostOptions } from '../../src/raft/host.js'
import { WireTransport, type WireTransportOptions } from '../../src/raft/wire-transport.js'
import { Wire, type WireOptions } from '../../src/wire/wire.js'
import { KvMachine } from './kv-machine.js'
import { leaderAmong, pollUntil, proposeRetrying } from './poll.js'

export const CLUSTER_COOKIE = Buffer.from('raft-over-the-wire-test-cookie-0123456789')

export interface WireHost {
  id: number
  dir: string
  port: number
  root: RootDatabase
  wire: Wire
  transport: WireTransport
  host: RaftHost
  machines: Map<string, KvMachine>
  logs: string[]
}

export class WireCluster {
  readonly hosts = new Map<number, WireHost>()
  /** Listen port of every host ever started (a restart reuses it). */
  readonly ports = new Map<number, number>()
  readonly base = mkdtempSync(join(tmpdir(), 'walkenfs-raftwire-'))
  private readonly cut = new Set<string>()

  constructor (readonly opts: { host?: Partial<HostOptions>, wire?: Partial<WireOptions>, transport?: Partial<WireTransportOptions> } = {}) {}

  async startHost (id: number, cookie: Buffer = CLUSTER_COOKIE): Promise<WireHost> {
    const dir = join(this.base, `host${id}`)
    const logs: string[] = []
    const wire = new Wire({
      hostId: String(id), cookie, clusterName: 'raftwire', port: this.ports.get(id) ?? 0, listenHost: '127.0.0.1',
      heartbeatMs: 200, linkTimeoutMs: 1000, handshakeTimeoutMs: 1000, connectTimeoutMs: 1000,
      backoff: { baseMs: 20, maxMs: 200 }, log: (l) => logs.push(l), ...this.opts.wire
    })
    await wire.start()
    const port = wire.port
    this.ports.set(id, port)
    const root = open({ path: dir })
    const transport = new WireTransport({ wire, id, ...this.opts.transport })
    // 10 ms ticks, 300 ms election timeout, as in the in-process driver tests.
    const host = new RaftHost({ id, root, transport, tickMs: 10, electionTicks: 30, ...this.opts.host })
    const wh: WireHost = { id, dir, port, root, wire, transport, host, machines: new Map(), logs }
    this.hosts.set(id, wh)
    for (const g of host.storage.groups()) {
      const sm = new KvMachine(root, g)
      wh.machines.set(g, sm)
      host.openGroup(g, sm)
    }
    this.connect(wh)
    return wh
  }

  /** Tells every pair of live hosts (not cut apart) about each other. */
  private connect (wh: WireHost): void {
    for (const [id, port] of this.ports) {
      if (id === wh.id || this.cut.has(`${id}|${wh.id}`)) continue
      wh.wire.addPeer(String(id), [`127.0.0.1:${port}`])
      this.hosts.get(id)?.wire.addPeer(String(wh.id), [`127.0.0.1:${wh.port}`])
    }
  }

  async createGroup (g: string, voters: number[]): Promise<void> {
    for (const id of voters) {
      const wh = this.hosts.get(id)!
      const sm = new KvMachine(wh.root, g)
      wh.machines.set(g, sm)
      await wh.host.createGroup(g, { voters, learners: [] }, sm)
    }
  }

  startAll (): void { for (const wh of this.hosts.values()) wh.host.start() }

  /** Stops a host as a crash would look from outside: its links drop at once; its lmdb files stay. */
  async killHost (id: number): Promise<void> {
    const wh = this.hosts.get(id)
    if (!wh) return
    this.hosts.delete(id)
    await wh.wire.close()
    await wh.host.close()
    await wh.root.close()
  }

  /** Cuts (or with `up`, restores) the links between a and b: both forget the other, so neither redials. */
  setLink (a: number, b: number, up: boolean): void {
    const ha = this.hosts.get(a)
    const hb = this.hosts.get(b)
    if (up) {
      this.cut.delete(`${a}|${b}`); this.cut.delete(`${b}|${a}`)
      ha?.wire.addPeer(String(b), [`127.0.0.1:${this.ports.get(b)!}`])
      hb?.wire.addPeer(String(a), [`127.0.0.1:${this.ports.get(a)!}`])
    } else {
      this.cut.add(`${a}|${b}`); this.cut.add(`${b}|${a}`)
      ha?.wire.removePeer(String(b))
      hb?.wire.removePeer(String(a))
    }
  }

  leaderOf (g: string, among: Iterable<WireHost> = this.hosts.values()): WireHost | undefined {
    return leaderAmong(among, g)
  }

  /** Proposes through whichever host leads, retrying (bounded) across leader changes. */
  async propose (g: string, data: Uint8Array, attempts = 100): Promise<unknown> {
    return await proposeRetrying(() => this.leaderOf(g), g, data, attempts, ['NOT_LEADER', 'UNKNOWN'])
  }

  /** Polls until `pred` holds; gives up after `maxWaits` polls of 10 ms (a bound, not a timing assertion). */
  async until (pred: () => boolean, what: string, maxWaits = 2000): Promise<void> {
    await pollUntil(pred, what, maxWaits)
  }

  async cleanup (): Promise<void> {
    for (const id of [...this.hosts.keys()]) await this.killHost(id)
    rmSync(this.base, { recursive: true, force: true })
  }
}
