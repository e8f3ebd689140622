/**
 * The GlusterFS side of `npm run bench -- --cluster`: a replica-3 volume of
 * three bricks on this machine, mounted with GlusterFS's own FUSE client.
 *
 * Owns everything it starts and removes it in `stop()` (also after a failed
 * start): the mount, the volume, the glusterd it ran (by PID), the brick and
 * self-heal daemons glusterd started (by the PIDs in their pid files), the
 * working and brick directories. It never touches the system's glusterd
 * state: glusterd runs with a volfile of ours whose working directory,
 * control socket and listen address (127.0.0.1 only) are ours; bricks
 * inherit that bind address. The bricks are named by this machine's host
 * name, because gluster refuses `localhost`/`127.0.0.1` in brick names; the
 * name must resolve to a loopback address (checked), so nothing ever
 * listens or connects beyond loopback.
 *
 * `glusterfs-server` is installed with apt on first use (root), saying so.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { lookup } from 'node:dns/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'

const VOLUME = 'wkbench'

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

async function waitFor (what: string, ms: number, ok: () => boolean): Promise<void> {
  const end = Date.now() + ms
  while (!ok()) {
    if (Date.now() > end) throw new Error(`GlusterFS: ${what} did not happen within ${ms / 1000} s`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

export class GlusterVolume {
  readonly mnt: string
  private readonly work: string
  private readonly sock: string
  private glusterd: number | null = null
  private readonly pids = new Set<number>()
  /** the unix sockets glusterd gives its brick and self-heal daemons (-S), which they leave behind */
  private readonly sockets = new Set<string>()
  private created = false

  private constructor (readonly dir: string, private readonly say: (line: string) => void) {
    this.mnt = join(dir, 'mnt')
    this.work = join(dir, 'glusterd')
    this.sock = join(dir, 'glusterd.socket')
  }

  /** Installs (if needed), starts and mounts the volume under `dir`; on failure everything started is removed again. */
  static async start (dir: string, say: (line: string) => void): Promise<GlusterVolume> {
    const g = new GlusterVolume(dir, say)
    try {
      await g.up()
      return g
    } catch (e) {
      await g.stop()
      throw e
    }
  }

  private gluster (args: string[]): string {
    const r = spawnSync('gluster', ['--mode=script', `--glusterd-sock=${this.sock}`, ...args], { encoding: 'utf8', timeout: 120_000 })
    if (r.status !== 0) throw new Error(`gluster ${args.join(' ')} failed: ${(r.stdout + r.stderr).trim()}`)
    return r.stdout
  }

  private async up (): Promise<void> {
    if (spawnSync('which', ['glusterd']).status !== 0) {
      if (process.getuid?.() !== 0) throw new Error('GlusterFS is not installed and installing it needs root (apt-get install glusterfs-server)')
      this.say('GlusterFS: installing the Debian package glusterfs-server with apt-get (once; it starts no service here)')
      execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'glusterfs-server'], { stdio: ['ignore', 'ignore', 'inherit'] })
    }
    const host = hostname()
    const { address } = await lookup(host, { family: 4 })
    if (!address.startsWith('127.')) throw new Error(`GlusterFS: the host name ${host} resolves to ${address}, not to a loopback address; the benchmark keeps GlusterFS on loopback, so it needs a name that does (/etc/hosts)`)
    for (const d of [this.work, this.mnt, ...[1, 2, 3].map((i) => join(this.dir, `brick${i}`))]) mkdirSync(d, { recursive: true })
    const vol = join(this.dir, 'glusterd.vol')
    writeFileSync(vol, [
      'volume management',
      '    type mgmt/glusterd',
      `    option working-directory ${this.work}`,
      '    option transport-type socket',
      '    option transport.socket.bind-address 127.0.0.1',
      '    option transport.socket.listen-port 24007',
      `    option glusterd-sockfile ${this.sock}`,
      '    option ping-timeout 0',
      '    option event-threads 1',
      '    option max-port 60999',
      'end-volume', ''].join('\n'))
    const d = spawn('glusterd', ['-N', '-f', vol, `--log-file=${join(this.dir, 'glusterd.log')}`], { stdio: 'ignore' })
    this.glusterd = d.pid ?? null
    await waitFor('glusterd listening on its control socket', 20_000, () => existsSync(this.sock) && spawnSync('gluster', ['--mode=script', `--glusterd-sock=${this.sock}`, 'volume', 'list']).status === 0)
    this.gluster(['volume', 'create', VOLUME, 'replica', '3', ...[1, 2, 3].map((i) => `${host}:${join(this.dir, `brick${i}`)}`), 'force'])
    this.created = true
    this.gluster(['volume', 'start', VOLUME])
    this.collectPids()
    const listening = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' }).split('\n').filter((l) => /gluster/.test(l))
    const open = listening.filter((l) => !/\s127\.0\.0\.1:\d+\s/.test(l))
    if (open.length > 0) throw new Error(`GlusterFS listens beyond loopback, refusing to go on:\n${open.join('\n')}`)
    this.say(`GlusterFS: volume ${VOLUME} (replica 3, bricks under ${this.dir}) started; listening on 127.0.0.1 only (${listening.length} sockets)`)
    execFileSync('mount', ['-t', 'glusterfs', `${host}:/${VOLUME}`, this.mnt])
    await waitFor('the GlusterFS mount answering', 30_000, () => {
      try { readdirSync(this.mnt); return true } catch { return false }
    })
  }

  /** The brick and self-heal daemons glusterd started for our volume (their pid files name our volume). */
  private collectPids (): void {
    const dirs = [`/var/run/gluster/vols/${VOLUME}`, `/var/run/gluster/shd/${VOLUME}`]
    for (const d of dirs) {
      let names: string[] = []
      try { names = readdirSync(d) } catch { continue }
      for (const n of names.filter((x) => x.endsWith('.pid'))) {
        const pid = Number(readFileSync(join(d, n), 'utf8').trim())
        if (Number.isInteger(pid) && pid > 0) {
          this.pids.add(pid)
          try {
            const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
            const i = argv.indexOf('-S')
            if (i >= 0 && argv[i + 1]?.startsWith('/var/run/gluster/') === true) this.sockets.add(argv[i + 1]!)
          } catch { /* already gone */ }
        }
      }
    }
  }

  /** Unmounts, stops and deletes the volume, ends every process started for it, removes its directories. */
  async stop (): Promise<void> {
    spawnSync('umount', [this.mnt])
    if (this.created) {
      this.collectPids()
      try { this.gluster(['volume', 'stop', VOLUME, 'force']) } catch (e) { this.say(`GlusterFS: ${(e as Error).message}`) }
      try { this.gluster(['volume', 'delete', VOLUME]) } catch (e) { this.say(`GlusterFS: ${(e as Error).message}`) }
    }
    const pids = [...this.pids, ...(this.glusterd !== null ? [this.glusterd] : [])]
    for (const pid of pids) { try { process.kill(pid, 'SIGTERM') } catch {} }
    const end = Date.now() + 10_000
    for (const pid of pids) {
      // async waits: the event loop must run to reap glusterd, our child
      while (alive(pid) && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 50))
      if (alive(pid)) { try { process.kill(pid, 'SIGKILL') } catch {} }
    }
    if (existsSync(this.mnt)) spawnSync('umount', ['-l', this.mnt])
    for (const f of this.sockets) rmSync(f, { force: true })
    for (const d of [`/var/run/gluster/vols/${VOLUME}`, `/var/run/gluster/shd/${VOLUME}`]) rmSync(d, { recursive: true, force: true })
    rmSync(this.dir, { recursive: true, force: true })
  }
}
