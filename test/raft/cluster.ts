/**
 * Builds hosts in one process for driver tests and benchmarks: each host has
 * its own lmdb environment in a temporary directory and talks through a
 * LocalNetwork. `cleanup()` closes and deletes everything.
 */
import { open, type RootDatabase } from 'lmdb'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RaftHost, type HostOptions } from '../../src/raft/host.js'
import { LocalNetwork } from '../../src/raft/transport.js'
import { KvMachine } from './kv-machine.js'
import { leaderAmong, pollUntil, proposeRetrying } from './poll.js'

export interface TestHost {
  id: number
  dir: string
  root: RootDatabase
  host: RaftHost
  machines: Map<string, KvMachine>
}

export class TestCluster {
  readonly net = new LocalNetwork()
  readonly hosts = new Map<number, TestHost>()
  readonly base = mkdtempSync(join(tmpdir(), 'walkenfs-raft-'))

  /** `live`: the groups' machines have live snapshots (GroupStateMachine.liveSnapshots) */
  constructor (readonly opts: Partial<HostOptions> = {}, readonly live = false) {}

  openHost (id: number): TestHost {
    const dir = join(this.base, `host${id}`)
    const root = open({ path: dir })
    // 10 ms ticks, 300 ms election timeout: fast, yet tolerant of a loaded 2-core CI machine.
    const host = new RaftHost({ id, root, transport: this.net.endpoint(id), tickMs: 10, electionTicks: 30, ...this.opts })
    const th: TestHost = { id, dir, root, host, machines: new Map() }
    this.hosts.set(id, th)
    return th
  }

  async createGroup (g: string, voters: number[]): Promise<void> {
    for (const id of voters) {
      const th = this.hosts.get(id)!
      const sm = new KvMachine(th.root, g, this.live, id)
      th.machines.set(g, sm)
      await th.host.createGroup(g, { voters, learners: [] }, sm)
    }
  }

  /** Reopens a stopped host's groups from its lmdb files. */
  reopenGroups (th: TestHost): void {
    for (const g of th.host.storage.groups()) {
      const sm = new KvMachine(th.root, g, this.live, th.id)
      th.machines.set(g, sm)
      th.host.openGroup(g, sm)
    }
  }

  async stopHost (id: number): Promise<void> {
    const th = this.hosts.get(id)
    if (!th) return
    await th.host.close()
    await th.root.close()
    this.hosts.delete(id)
  }

  startAll (): void {
    for (const th of this.hosts.values()) th.host.start()
  }

  /** Opens hosts `ids`, creates group g on all of them, starts them and waits for g's leader; returns it. */
  async startGroup (g: string, ids: number[]): Promise<TestHost> {
    for (const id of ids) this.openHost(id)
    await this.createGroup(g, ids)
    this.startAll()
    await this.until(() => this.leaderOf(g) !== undefined, 'a leader')
    return this.leaderOf(g)!
  }

  leaderOf (g: string): TestHost | undefined {
    return leaderAmong(this.hosts.values(), g)
  }

  /** Proposes through whichever host leads, retrying (bounded) across leader changes. */
  async propose (g: string, data: Uint8Array, attempts = 50): Promise<unknown> {
    return await proposeRetrying(() => this.leaderOf(g), g, data, attempts, ['NOT_LEADER'])
  }

  /** Polls until `pred` holds; gives up after `maxWaits` polls of 10 ms (a bound, not a timing assertion). */
  async until (pred: () => boolean, what: string, maxWaits = 1000): Promise<void> {
    await pollUntil(pred, what, maxWaits)
  }

  async cleanup (): Promise<void> {
    for (const id of [...this.hosts.keys()]) await this.stopHost(id)
    rmSync(this.base, { recursive: true, force: true })
  }
}
