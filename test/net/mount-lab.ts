/**
 * Test fixture: walkenfs cluster hosts with real FUSE mounts, each in its
 * own network namespace on one bridge (netns.ts). Every host has its own
 * data directory, mount point, run directory (WALKENFS_RUN_DIR, where its
 * mount record and control socket live) and log; the daemons are started
 * through the real CLI under `nsenter --net` (not `ip netns exec`, which
 * would also hide the mount in a private mount namespace, PLATFORM.md).
 *
 * Teardown unmounts every mount point and kills every daemon it started
 * (by the PID in its mount record), then removes the namespaces — also
 * when the test failed. On failure the tail of every host's log is
 * printed, since that is where a cluster problem shows.
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Lab, type LabOwner } from './netns.js'
import { CLI } from '../helpers/mount.js'
import { findMount } from '../../src/fuse/mount-table.js'

export const LAB_COOKIE = 'mount-lab-cookie-0123456789abcdefghij'

export interface ClusterHost {
  n: number
  id: string
  ns: string
  addr: string
  dir: string
  data: string
  mnt: string
  run: string
  log: string
  /** the options every mount of this host gets (cluster, host, listen, peers, cookie …) */
  opts: string[]
}

export interface CliResult { code: number | null, stdout: string, stderr: string }

export class MountLab {
  readonly lab: Lab
  readonly hosts: ClusterHost[] = []
  readonly cookie: string
  private readonly pids = new Set<number>()

  /** `env`: extra environment of every daemon (e.g. a test-only switch). */
  constructor (private readonly t: LabOwner, readonly cluster = 'lab', private readonly extraEnv: NodeJS.ProcessEnv = {}) {
    this.lab = new Lab(t)
    // Mounts go before the Lab removes their namespaces and directories.
    this.lab.beforeDestroy.push(() => this.destroy())
    this.cookie = this.lab.cookieFile('cookie', LAB_COOKIE)
  }

  /** Adds a host (namespace, directories); `extra` options are appended to its standard ones. */
  addHost (extra: string[] = []): ClusterHost {
    const { n, ns, addrs } = this.lab.addHost()
    const dir = join(this.lab.dir, `h${n}`)
    const h: ClusterHost = {
      n, id: `h${n}`, ns, addr: addrs[0]!, dir,
      data: join(dir, 'data'), mnt: join(dir, 'mnt'), run: join(dir, 'run'), log: join(dir, 'walkenfs.log'),
      opts: []
    }
    for (const d of [h.data, h.mnt, h.run]) mkdirSync(d, { recursive: true })
    h.opts = [`data=${h.data}`, `cluster=${this.cluster}`, `host=${h.id}`, `cookie_file=${this.cookie}`,
      `listen=${h.addr}:7400`, 'mcast=off', `log=${h.log}`, ...extra]
    this.hosts.push(h)
    return h
  }

  /** `n` empty hosts that know each other (`peers=`, `expect=n`), mounted together: a new cluster. */
  async formCluster (n: number, extra: string[] = ['heartbeat_ms=200']): Promise<ClusterHost[]> {
    const hosts = Array.from({ length: n }, () => this.addHost(extra))
    const peers = this.peersOption()
    for (const h of hosts) h.opts.push(peers, `expect=${n}`)
    await Promise.all(hosts.map(async (h) => { await this.mustMount(h) }))
    return hosts
  }

  /** Every host's address as a `peers=` value (all hosts, including later ones if called again). */
  peersOption (): string {
    return `peers=${this.hosts.map((h) => `${h.addr}:7400`).join('+')}`
  }

  private env (h: ClusterHost): NodeJS.ProcessEnv {
    return { ...process.env, ...this.extraEnv, WALKENFS_RUN_DIR: h.run }
  }

  /** Runs the walkenfs CLI inside host h's network namespace. */
  cli (h: ClusterHost, args: string[], timeoutMs = 120_000): Promise<CliResult> {
    return new Promise((resolve) => {
      const p = spawn('nsenter', [`--net=/var/run/netns/${h.ns}`, process.execPath, CLI, ...args], { env: this.env(h) })
      let stdout = ''
      let stderr = ''
      p.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
      p.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
      const timer = setTimeout(() => { p.kill('SIGKILL') }, timeoutMs)
      p.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
    })
  }

  /** Mounts host h (options: its standard ones, then `extra`); resolves with the CLI's result. */
  async mount (h: ClusterHost, extra: string[] = []): Promise<CliResult> {
    const r = await this.cli(h, ['mount', h.mnt, '-o', [...h.opts, ...extra].join(',')])
    const pid = this.daemonPid(h)
    if (pid !== null) this.pids.add(pid)
    return r
  }

  async mustMount (h: ClusterHost, extra: string[] = []): Promise<void> {
    const r = await this.mount(h, extra)
    if (r.code !== 0) throw new Error(`mount of ${h.id} failed (${r.code}): ${r.stderr.trim()}\n--- log of ${h.id}:\n${this.logTail(h)}`)
  }

  daemonPid (h: ClusterHost): number | null {
    const f = join(h.run, h.mnt.replace(/\//g, '_') + '.json')
    if (!existsSync(f)) return null
    try { return (JSON.parse(readFileSync(f, 'utf8')) as { pid: number }).pid } catch { return null }
  }

  /** kill -9 of host h's daemon; its mount point is then lazily detached (as an admin would). */
  kill9 (h: ClusterHost): void {
    const pid = this.daemonPid(h)
    if (pid === null) throw new Error(`host ${h.id} has no running daemon`)
    try { process.kill(pid, 'SIGKILL') } catch {}
    const end = Date.now() + 10_000
    while (alive(pid) && Date.now() < end) spawnSync('sleep', ['0.05'])
    spawnSync('umount', ['-l', h.mnt])
  }

  async umount (h: ClusterHost): Promise<CliResult> {
    return await this.cli(h, ['umount', h.mnt])
  }

  async status (h: ClusterHost): Promise<{ code: number | null, json: any }> {
    const r = await this.cli(h, ['status', '--json'], 30_000)
    let json: unknown = null
    try { json = JSON.parse(r.stdout) } catch {}
    return { code: r.code, json }
  }

  /**
   * Whether h's status shows every fs fragment with `copies` voters and a leader and, with `placement`, the planner
   * settled too (the schema group at its voters, leaderships spread, nothing in flight). The fs fragments of a new
   * cluster are founded whole within a second; the schema group grows and leaderships move over the next rounds.
   */
  async settled (h: ClusterHost, copies: number, placement = false): Promise<boolean> {
    const c = (await this.status(h)).json?.mounts?.[0]?.cluster
    if (!c) return false
    return c.fragments.length > 0 && c.fragments.every((f: { replicas: Array<{ role: string }>, leader: string | null }) =>
      f.replicas.filter((r) => r.role === 'voter').length === copies && f.leader !== null) && (!placement || c.placement?.settled === true)
  }

  /** Cuts hosts off the bridge (silent drops both ways); `heal()` ends every cut. */
  cut (hosts: ClusterHost[]): void {
    this.lab.partition(hosts.map((h) => `p0h${h.n}`))
  }

  heal (): void {
    this.lab.heal()
  }

  /** The control socket of host h's daemon (src/cli/control.ts). */
  controlSocket (h: ClusterHost): string {
    return join(h.run, h.mnt.replace(/\//g, '_') + '.sock')
  }

  logTail (h: ClusterHost, lines = 40): string {
    try { return readFileSync(h.log, 'utf8').split('\n').slice(-lines).join('\n') } catch { return '(no log)' }
  }

  private destroy (): void {
    if (this.t.passing() === false) {
      for (const h of this.hosts) this.t.comment(`--- log of ${h.id} (last lines):\n${this.logTail(h)}`)
    }
    for (const h of this.hosts) {
      const pid = this.daemonPid(h)
      if (pid !== null) this.pids.add(pid)
      if (findMount(h.mnt) !== undefined) {
        const r = spawnSync('umount', [h.mnt])
        if (r.status !== 0) spawnSync('umount', ['-l', h.mnt])
      }
    }
    const end = Date.now() + 15_000
    for (const pid of this.pids) {
      while (alive(pid) && Date.now() < end) spawnSync('sleep', ['0.05'])
      if (alive(pid)) { try { process.kill(pid, 'SIGKILL') } catch {} }
    }
  }
}

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}
