/**
 * Test fixture: Linux network namespaces joined by bridges, and netnode
 * host processes inside them. Addresses are only 10.77.B.H/24 inside
 * namespaces this fixture creates; every namespace and process is removed
 * in teardown, also when the test fails. Partitions are nftables rules in
 * the bridge namespace (silent drops, as on a real broken switch).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

/**
 * What a Lab needs of its owner: a teardown hook (and, for MountLab, a
 * verdict and a place for comments). A tap Test is one; the torture CLI,
 * which runs outside tap, passes its own (test/faults/cluster-torture.ts).
 */
export interface LabOwner {
  teardown: (fn: () => void) => void
  passing: () => boolean
  comment: (...message: unknown[]) => void
}

const root = new URL('../../..', import.meta.url).pathname
export const NETNODE = join(root, 'dist', 'src', 'cli', 'netnode.js')
export const ATTACKER = join(root, 'dist', 'test', 'net', 'attacker.js')

export function netnsAvailable (): string | null {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)'
  try { execFileSync('ip', ['-V'], { stdio: 'ignore' }); execFileSync('nft', ['-v'], { stdio: 'ignore' }) } catch { return 'needs ip and nft (iproute2, nftables)' }
  return null
}

function sh (args: string[]): void {
  try {
    execFileSync(args[0]!, args.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] })
  } catch (err) {
    throw new Error(`${args.join(' ')} failed: ${String((err as { stderr?: Buffer }).stderr ?? err)}`)
  }
}

export interface HostProc {
  id: string
  ns: string
  proc: ChildProcess
  events: Array<Record<string, unknown>>
  stderr: string[]
  send: (line: string) => void
  waitEvent: (pred: (e: Record<string, unknown>) => boolean, ms?: number, what?: string) => Promise<Record<string, unknown>>
  view: () => Promise<View>
  call: (peer: string) => Promise<Record<string, unknown>>
}

export interface View {
  up: string[]
  members: Record<string, string>
  links: Array<{ id: string, linkedVia: string | null }>
  wire: Record<string, number>
  discovery: Record<string, number> | null
  heapUsed: number
}

/**
 * Labs not yet destroyed. A test file that runs past tap's timeout gets
 * SIGTERM and never reaches its teardown; its daemons, mounts and
 * namespaces would then outlive it and load every later test.
 */
const liveLabs = new Set<Lab>()
let signalHandlers = false
function destroyLiveLabsOnSignal (): void {
  if (signalHandlers) return
  signalHandlers = true
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.once(sig, () => {
      for (const lab of [...liveLabs]) lab.destroy()
      process.exit(sig === 'SIGTERM' ? 143 : 130)
    })
  }
}

export class Lab {
  readonly tag = `${process.pid % 100000}${Math.floor(Math.random() * 100)}`
  readonly bridgeNs = `wkbr${this.tag}`
  private readonly namespaces: string[] = []
  private readonly procs: ChildProcess[] = []
  readonly dir: string
  private hostCount = 0

  constructor (private readonly t: LabOwner, private readonly bridges = 1) {
    this.dir = mkdtempSync(join(tmpdir(), 'walkenfs-net-'))
    t.teardown(() => this.destroy())
    liveLabs.add(this)
    destroyLiveLabsOnSignal()
    this.addNs(this.bridgeNs)
    for (let b = 0; b < bridges; b++) {
      sh(['ip', '-n', this.bridgeNs, 'link', 'add', `br${b}`, 'type', 'bridge', 'mcast_snooping', '0'])
      sh(['ip', '-n', this.bridgeNs, 'link', 'set', `br${b}`, 'up'])
    }
  }

  private addNs (name: string): void {
    sh(['ip', 'netns', 'add', name])
    this.namespaces.push(name)
  }

  /** A host namespace with one interface per bridge: ethB = 10.77.B.n. Returns its number n. */
  addHost (): { n: number, ns: string, addrs: string[] } {
    const n = ++this.hostCount
    const ns = `wkh${this.tag}-${n}`
    this.addNs(ns)
    sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up'])
    const addrs: string[] = []
    for (let b = 0; b < this.bridges; b++) {
      const port = `p${b}h${n}`
      sh(['ip', '-n', this.bridgeNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', `eth${b}`, 'netns', ns])
      sh(['ip', '-n', this.bridgeNs, 'link', 'set', port, 'master', `br${b}`, 'up'])
      sh(['ip', '-n', ns, 'addr', 'add', `10.77.${b}.${n}/24`, 'dev', `eth${b}`])
      sh(['ip', '-n', ns, 'link', 'set', `eth${b}`, 'up'])
      addrs.push(`10.77.${b}.${n}`)
    }
    sh(['ip', '-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0'])
    return { n, ns, addrs }
  }

  cookieFile (name: string, secret: string): string {
    const f = join(this.dir, name)
    writeFileSync(f, secret)
    chmodSync(f, 0o600)
    return f
  }

  /** Silently drops all traffic of the given bridge ports (e.g. "p0h3"). */
  partition (ports: string[]): void {
    const f = join(this.dir, 'part.nft')
    writeFileSync(f, `table bridge part {\n chain ff {\n  type filter hook forward priority 0; policy accept;\n${ports.map((p) => `  iifname "${p}" drop\n  oifname "${p}" drop\n`).join('')} }\n}\n`)
    sh(['ip', 'netns', 'exec', this.bridgeNs, 'nft', '-f', f])
  }

  heal (): void {
    sh(['ip', 'netns', 'exec', this.bridgeNs, 'nft', 'delete', 'table', 'bridge', 'part'])
  }

  /**
   * Replaces every cut at once (one nft transaction) by `cuts`: traffic
   * entering the bridge from a port of `from` and leaving it to a port of
   * `to` is dropped; the other direction passes unless cut too (one-way
   * cuts). An empty list heals everything; healing twice is fine.
   */
  setCuts (cuts: Array<{ from: string[], to: string[] }>): void {
    const set = (ports: string[]): string => `{ ${ports.map((p) => `"${p}"`).join(', ')} }`
    const f = join(this.dir, 'cuts.nft')
    const rules = cuts.filter((c) => c.from.length > 0 && c.to.length > 0)
      .map((c) => `  iifname ${set(c.from)} oifname ${set(c.to)} drop\n`).join('')
    // "table …" then "delete table …" makes the replace work whether the table exists or not
    writeFileSync(f, `table bridge part\ndelete table bridge part\n` +
      (rules === '' ? '' : `table bridge part {\n chain ff {\n  type filter hook forward priority 0; policy accept;\n${rules} }\n}\n`))
    sh(['ip', 'netns', 'exec', this.bridgeNs, 'nft', '-f', f])
  }

  /** Adds (or with `del`, removes) an address on a host namespace's interface, e.g. ('10.77.0.105', 'eth0'). */
  address (ns: string, addr: string, dev = 'eth0', del = false): void {
    sh(['ip', '-n', ns, 'addr', del ? 'del' : 'add', `${addr}/24`, 'dev', dev])
  }

  /** Runs a program in a host namespace; killed at teardown. */
  spawnIn (ns: string, args: string[]): ChildProcess {
    const proc = spawn('ip', ['netns', 'exec', ns, ...args], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] })
    this.procs.push(proc)
    return proc
  }

  startHost (id: string, ns: string, settings: string[]): HostProc {
    const proc = this.spawnIn(ns, [process.execPath, NETNODE, `id=${id}`, ...settings])
    const events: Array<Record<string, unknown>> = []
    const stderr: string[] = []
    const waiters = new Set<() => void>()
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      try { events.push(JSON.parse(line) as Record<string, unknown>) } catch { stderr.push(`stdout: ${line}`) }
      for (const w of [...waiters]) w()
    })
    createInterface({ input: proc.stderr! }).on('line', (line) => { if (stderr.length < 1000) stderr.push(line) })
    proc.on('exit', () => { for (const w of [...waiters]) w() })
    const waitEvent = (pred: (e: Record<string, unknown>) => boolean, ms = 10_000, what = 'event', from = 0): Promise<Record<string, unknown>> =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const hit = events.slice(from).find(pred)
          if (hit) { done(); resolve(hit) } else if (proc.exitCode !== null) {
            done(); reject(new Error(`host ${id} exited (${proc.exitCode}) while waiting for ${what}; stderr: ${stderr.slice(-5).join(' | ')}`))
          }
        }
        const timer = setTimeout(() => { done(); reject(new Error(`host ${id}: no ${what} within ${ms} ms; stderr: ${stderr.slice(-5).join(' | ')}`)) }, ms)
        const done = (): void => { clearTimeout(timer); waiters.delete(check) }
        waiters.add(check)
        check()
      })
    const send = (line: string): void => { proc.stdin!.write(line + '\n') }
    return {
      id, ns, proc, events, stderr, send,
      waitEvent: (pred, ms, what) => waitEvent(pred, ms, what),
      view: async () => {
        const from = events.length
        send('view')
        return await waitEvent((e) => e.ev === 'view', 5000, 'view', from) as unknown as View
      },
      call: async (peer) => {
        const from = events.length
        send(`call ${peer}`)
        return await waitEvent((e) => e.ev === 'call' && e.peer === peer, 5000, 'call answer', from)
      },
    }
  }

  /** Run first in teardown (e.g. unmounting FUSE mounts under `dir`), in the order added. */
  readonly beforeDestroy: Array<() => void> = []

  destroy (): void {
    if (!liveLabs.delete(this)) return
    for (const f of this.beforeDestroy) { try { f() } catch {} }
    for (const p of this.procs) if (p.exitCode === null && p.pid) { try { process.kill(p.pid, 'SIGKILL') } catch {} }
    for (const ns of this.namespaces.reverse()) { try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }) } catch {} }
    // Daemons killed just now may still be closing their log files: retry a directory that is not empty yet.
    try { rmSync(this.dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }) } catch (e) { console.error(`could not remove ${this.dir}: ${(e as Error).message}`) }
  }
}

/** Polls `cond` on host views until it holds. */
export async function until (what: string, cond: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms
  for (;;) {
    if (await cond()) return
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}
