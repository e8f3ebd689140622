/**
 * `npm start` / `walkenfs start`: a demo cluster of three hosts on this
 * machine. Each host is a network namespace (created here, on a bridge in a
 * namespace of its own, addresses 10.78.0.1-3 only inside them) running a
 * real walkenfs daemon with its own data directory and FUSE mount:
 *
 *   /mnt/walkenfs/h1  /mnt/walkenfs/h2  /mnt/walkenfs/h3
 *
 * Write a file in one, read it in the others; `walkenfs status` shows the
 * cluster. `walkenfs start --stop` (or Ctrl-C while it starts) unmounts all
 * three, waits for the daemons, and removes the namespaces: nothing is left
 * behind but the data directories (so the next start resumes the same
 * cluster).
 *
 * The daemons are started with `nsenter --net`, not `ip netns exec`, which
 * would hide their mounts in a private mount namespace (PLATFORM.md).
 */
import { execFileSync, spawn } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { findMount } from '../fuse/mount-table.js'
import { isAlive, readRecord } from './daemon.js'

export interface DemoLayout {
  /** namespace name prefix */
  prefix: string
  /** third octet of 10.78.X.0/24 */
  subnet: number
  /** data directories and the cookie */
  base: string
  /** the mount points are MOUNTS/h1 … */
  mounts: string
  hosts: number
  /** extra mount options of every host (the benchmark sets fragments=N, copies=N) */
  options?: string[]
  /** extra environment of every daemon (the benchmark's CPU profiles: WALKENFS_PROFILE_DIR) */
  env?: NodeJS.ProcessEnv
}

export const DEMO: DemoLayout = { prefix: 'wkdemo', subnet: 0, base: '/var/lib/walkenfs-demo', mounts: '/mnt/walkenfs', hosts: 3 }

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url))

function ip (args: string[]): void {
  try {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] })
  } catch (e) {
    throw new Error(`ip ${args.join(' ')} failed: ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}`)
  }
}

function namespaces (): string[] {
  try {
    return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]!).filter((n) => n !== '')
  } catch {
    return []
  }
}

const hostNs = (l: DemoLayout, n: number): string => `${l.prefix}-h${n}`
const bridgeNs = (l: DemoLayout): string => `${l.prefix}-br`
const addr = (l: DemoLayout, n: number): string => `10.78.${l.subnet}.${n}`
export const mountOf = (l: DemoLayout, n: number): string => join(l.mounts, `h${n}`)

function createNetwork (l: DemoLayout): void {
  const br = bridgeNs(l)
  ip(['netns', 'add', br])
  ip(['-n', br, 'link', 'add', 'br0', 'type', 'bridge'])
  ip(['-n', br, 'link', 'set', 'br0', 'up'])
  for (let n = 1; n <= l.hosts; n++) {
    const ns = hostNs(l, n)
    ip(['netns', 'add', ns])
    ip(['-n', ns, 'link', 'set', 'lo', 'up'])
    ip(['-n', br, 'link', 'add', `p${n}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns])
    ip(['-n', br, 'link', 'set', `p${n}`, 'master', 'br0', 'up'])
    ip(['-n', ns, 'addr', 'add', `${addr(l, n)}/24`, 'dev', 'eth0'])
    ip(['-n', ns, 'link', 'set', 'eth0', 'up'])
  }
}

function removeNetwork (l: DemoLayout): void {
  const mine = new Set([bridgeNs(l), ...Array.from({ length: l.hosts }, (_, i) => hostNs(l, i + 1))])
  for (const ns of namespaces()) if (mine.has(ns)) { try { ip(['netns', 'del', ns]) } catch {} }
}

function cookieFile (l: DemoLayout): string {
  const f = join(l.base, 'cookie')
  if (!existsSync(f)) {
    mkdirSync(l.base, { recursive: true })
    writeFileSync(f, randomBytes(32).toString('base64') + '\n', { mode: 0o600 })
  }
  chmodSync(f, 0o600)
  return f
}

function mountHost (l: DemoLayout, n: number, cookie: string, say: (line: string) => void): Promise<number> {
  const data = join(l.base, `h${n}`)
  const mnt = mountOf(l, n)
  mkdirSync(data, { recursive: true })
  mkdirSync(mnt, { recursive: true })
  const peers = Array.from({ length: l.hosts }, (_, i) => `${addr(l, i + 1)}:7400`).join('+')
  const opts = [`data=${data}`, 'cluster=demo', `host=h${n}`, `cookie_file=${cookie}`, `listen=${addr(l, n)}:7400`,
    `peers=${peers}`, `expect=${l.hosts}`, 'mcast=off', ...(l.options ?? [])]
  return new Promise((resolve) => {
    const p = spawn('nsenter', [`--net=/var/run/netns/${hostNs(l, n)}`, process.execPath, MAIN, 'mount', mnt, '-o', opts.join(',')],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...l.env } })
    const relay = (b: Buffer): void => { for (const line of b.toString().split('\n')) if (line.trim() !== '') say(`[h${n}] ${line.replace(/^(walkenfs: )+/, '')}`) }
    p.stdout.on('data', relay)
    p.stderr.on('data', relay)
    p.on('close', (code) => resolve(code ?? 1))
  })
}

/** Whether process pid is gone within ms (an unmounted daemon commits, then exits). */
async function exited (pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (isAlive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 50))
  return !isAlive(pid)
}

/** Unmounts every demo host, waits for the daemons, removes the namespaces. Returns what it did. */
export async function stopDemo (l: DemoLayout = DEMO, say: (line: string) => void = console.log): Promise<void> {
  for (let n = 1; n <= l.hosts; n++) {
    const mnt = mountOf(l, n)
    const rec = readRecord(mnt)
    if (findMount(mnt) !== undefined) {
      try {
        execFileSync('umount', [mnt], { stdio: ['ignore', 'ignore', 'pipe'] })
      } catch {
        // busy (a shell inside it?): detach it; the daemon still gets to commit and exit
        try { execFileSync('umount', ['-l', mnt], { stdio: 'ignore' }) } catch {}
      }
      say(`walkenfs demo: unmounted ${mnt}`)
    }
    if (rec !== null && !(await exited(rec.pid, 30_000))) {
      say(`walkenfs demo: daemon of h${n} (pid ${rec.pid}) did not exit in 30 s; killing it`)
      try { process.kill(rec.pid, 'SIGKILL') } catch {}
    }
  }
  removeNetwork(l)
  say(`walkenfs demo: stopped (data kept in ${l.base}; the next start resumes the same cluster)`)
}

/** Unmounts demo host n, waits for its daemon to exit, and mounts it again (the benchmark's restart figures); resolves with the mount's exit code. */
export async function restartDemoHost (l: DemoLayout, n: number, say: (line: string) => void = () => {}): Promise<number> {
  const mnt = mountOf(l, n)
  const rec = readRecord(mnt)
  execFileSync('umount', [mnt], { stdio: ['ignore', 'ignore', 'pipe'] })
  if (rec !== null && !(await exited(rec.pid, 30_000))) throw new Error(`the daemon of h${n} (pid ${rec.pid}) did not exit within 30 s of its umount`)
  return await mountHost(l, n, cookieFile(l), say)
}

export function demoRunning (l: DemoLayout = DEMO): boolean {
  return namespaces().includes(bridgeNs(l))
}

/** Starts the demo cluster; resolves with an exit code once all hosts are mounted (or one failed). */
export async function startDemo (l: DemoLayout = DEMO, say: (line: string) => void = console.log): Promise<number> {
  if (process.getuid?.() !== 0) {
    say('walkenfs demo: needs root (network namespaces and FUSE mounts); run npm start as root')
    return 1
  }
  if (demoRunning(l)) {
    say('walkenfs demo: already running (stop it with: npm start -- --stop)')
    return 0
  }
  // A one-host quick-start mount from older versions sits where the demo mounts go.
  if (findMount(l.mounts) !== undefined) {
    say(`walkenfs demo: unmounting the one-host mount at ${l.mounts} first`)
    execFileSync('umount', [l.mounts])
  }
  let interrupted = false
  const onInt = (): void => {
    interrupted = true
    say('walkenfs demo: interrupted; tearing down')
    void stopDemo(l, say).finally(() => process.exit(130))
  }
  process.once('SIGINT', onInt)
  try {
    createNetwork(l)
    const cookie = cookieFile(l)
    say(`walkenfs demo: ${l.hosts} hosts in network namespaces ${hostNs(l, 1)}..${hostNs(l, l.hosts)} (10.78.${l.subnet}.1-${l.hosts}); starting their daemons`)
    const codes = await Promise.all(Array.from({ length: l.hosts }, (_, i) => mountHost(l, i + 1, cookie, say)))
    if (interrupted) return 130
    if (codes.some((c) => c !== 0)) {
      say(`walkenfs demo: a host failed to mount (exit codes ${codes.join(', ')}); see ${l.base}/h*/walkenfs.log; tearing down`)
      await stopDemo(l, say)
      return 32
    }
  } catch (e) {
    say(`walkenfs demo: ${(e as Error).message}; tearing down`)
    await stopDemo(l, say)
    return 1
  } finally {
    process.off('SIGINT', onInt)
  }
  say('')
  say(`walkenfs demo cluster is up. Its ${l.hosts} hosts mount the same tree:`)
  for (let n = 1; n <= l.hosts; n++) say(`  ${mountOf(l, n)}    (host h${n}, ${addr(l, n)}, data ${join(l.base, `h${n}`)})`)
  say('Try:  echo hello > /mnt/walkenfs/h1/x; cat /mnt/walkenfs/h3/x;  walkenfs status')
  say('Stop: npm start -- --stop')
  return 0
}

/** The log of demo host n, for messages. */
export function demoLog (l: DemoLayout, n: number): string {
  const f = join(l.base, `h${n}`, 'walkenfs.log')
  return existsSync(f) ? readFileSync(f, 'utf8') : ''
}
