/**
 * `npm run bench -- --cluster`: walkenfs as a cluster against GlusterFS, on
 * this machine, in one run.
 *
 * Targets, side by side, each running exactly the same workload
 * (workload.ts) in alternating rounds (walkenfs, glusterfs, local, ceiling,
 * walkenfs, …), medians of the rounds:
 * - walkenfs: a cluster of N hosts (default 3, copies=3), each host a
 *   network namespace with a real daemon and FUSE mount (the `npm start`
 *   demo launcher, src/cli/demo.ts, with a layout of our own); the workload
 *   runs on host h1's mount.
 * - glusterfs: a replica-3 volume of 3 bricks on loopback, mounted with its
 *   FUSE client (gluster.ts).
 * - local: a plain directory on the disk the data directories are on.
 * - ceiling: the in-memory MapFs fixture on fuse-native, served by this
 *   process, with kernel caches like a walkenfs cluster mount's (names and
 *   attributes kept up to 1 s: attr_timeout=1, entry_timeout=1; walkenfs
 *   keeps them under leases, cache=lease): the most any Node FUSE
 *   filesystem gets here.
 * Prints a table with units and the ratios walkenfs/GlusterFS and
 * walkenfs/ceiling, the targets of issue 6, and writes a PNG bar chart of
 * how many times better walkenfs is than GlusterFS per figure.
 *
 * Flags: --rounds=N (3) --mib=N (256) --files=N (2000) --fsyncs=N (500)
 * --tree=N (10: an N×N×N tree; smaller for a quick look) --fragments=N
 * (cluster default) --no-gluster --no-ceiling --no-rrdtool (skip the
 * rrdtool step rather than build the no-mmap rrdtool it needs on first use,
 * examples/rrdtool/build-rrdtool.sh: about a minute, apt) --path-api (a second walkenfs
 * cluster mounted through fuse-native's path API, fuse_api=path, as its own
 * column) --cache-off (a second walkenfs cluster mounted with cache=off, no
 * kernel caches, as its own column) --scale (the same workload on
 * a 5-host cluster too) --idle[=16,64,256] (idle CPU and RSS per host at
 * those fragment counts, a minute after placement settles, with the time
 * the cluster took to start and to stop) --restart (after the rounds,
 * 8 files of 48 MiB into 8 new directories, then h2 is unmounted and
 * mounted again: how long the mount took, and its memory before, right
 * after and 10 s after) --profile=DIR (CPU profiles of every daemon, written when they
 * exit) --chart=FILE (default bench-cluster.png) --verbose (each figure as it is
 * measured).
 *
 * Everything it starts is removed at the end, also on error and Ctrl-C:
 * mounts, daemons, namespaces, GlusterFS volume and daemons, temp dirs.
 * Needs root (namespaces, mounts, drop_caches, apt for GlusterFS).
 */
import { closeSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, existsSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { execFileSync } from 'node:child_process'
import { FuseMount, buildMountOptions, forceUnmount } from '../src/fuse/binding.js'
import { startDemo, stopDemo, mountOf, restartDemoHost, type DemoLayout } from '../src/cli/demo.js'
import { readRecord } from '../src/cli/daemon.js'
import { askControl } from '../src/cli/control.js'
import type { ClusterView } from '../src/cli/cluster-status.js'
import { MapFs } from '../test/helpers/map-fs.js'
import { GlusterVolume } from './gluster.js'
import { writeRatioChart } from './png-chart.js'
import { median } from './stats.js'
import { DEFAULT_WORKLOAD, type Figure, type WorkloadOptions } from './workload.js'

const NO_MMAP_RRDTOOL = '/var/cache/walkenfs-examples/rrdtool/bin/rrdtool'
const DEBIAN_RRDTOOL = '/usr/bin/rrdtool'

/** Issue 6 targets: ratio walkenfs/GlusterFS wanted (for latencies: GlusterFS/walkenfs). */
const TARGETS: Record<string, number> = {
  'seq write+fsync': 1.5,
  'seq read': 1.5,
  'create 4 KiB': 3,
  stat: 3,
  'read 4 KiB': 3,
  rename: 3,
  unlink: 3,
  mkdir: 3,
  'find (readdir walk)': 3,
  'rm -rf tree': 3,
  '4 KiB write+fsync p50': 2,
  '4 KiB write+fsync p99': 1
}
/** Figures that should reach half of the in-memory ceiling. */
const CEILING_HALF = new Set(['stat', 'read 4 KiB'])

type Say = (line: string) => void
const say: Say = (line) => console.log(line)

/** The running workload, ended first on Ctrl-C so that it does not fail on mounts being removed. */
let current: Worker | null = null
let verbose = false

/** Runs the workload in a worker; `between` (if given) runs after each step while the worker waits. */
function inWorker (dir: string, opts: WorkloadOptions, between?: (f: Figure) => Promise<void>): Promise<Figure[]> {
  return new Promise((resolve, reject) => {
    const gate = between !== undefined ? new SharedArrayBuffer(4) : undefined
    const w = new Worker(new URL('./workload-worker.js', import.meta.url), { workerData: { dir, opts, gate } })
    current = w
    w.on('message', (m: { progress?: Figure, figures?: Figure[], error?: string }) => {
      if (m.error !== undefined) { current = null; reject(new Error(`workload on ${dir}: ${m.error}`)); return }
      if (m.progress !== undefined) {
        if (verbose) say(`    ${m.progress.name}: ${fmt(m.progress.value)} ${m.progress.unit}`)
        if (gate !== undefined) {
          const f = m.progress
          void between!(f).catch(() => {}).finally(() => { const g = new Int32Array(gate); Atomics.store(g, 0, 1); Atomics.notify(g, 0) })
        }
      }
      if (m.figures !== undefined) { current = null; resolve(m.figures) }
    })
    w.once('error', (e) => { current = null; reject(e) })
    w.once('exit', (code) => { if (current === w) { current = null; reject(new Error(`workload on ${dir} ended (exit ${code})`)) } })
  })
}

function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Cleanup actions, run last-first once, on normal end, error or Ctrl-C. */
class Cleanup {
  private readonly steps: Array<{ what: string, fn: () => Promise<void> | void }> = []
  private running: Promise<void> | null = null
  add (what: string, fn: () => Promise<void> | void): void { this.steps.push({ what, fn }) }
  /** Runs the steps once; a second caller (Ctrl-C during the normal end) waits for the same run. */
  run (): Promise<void> {
    this.running ??= (async () => {
      for (const s of this.steps.reverse()) {
        try { await s.fn() } catch (e) { say(`cleanup: ${s.what}: ${(e as Error).message}`) }
      }
    })()
    return this.running
  }
}

type RaftCounters = Record<string, number>

/** The Raft counters of every host of a cluster, summed. */
async function raftCounters (c: WalkenCluster): Promise<RaftCounters> {
  const sum: RaftCounters = {}
  for (let n = 1; n <= c.layout.hosts; n++) {
    const rec = readRecord(mountOf(c.layout, n))
    if (rec?.control === undefined) continue
    const s = await askControl(rec.control, 'status', {}, 10_000) as { counters?: { raft?: RaftCounters | null, fuse?: RaftCounters } }
    for (const [k, v] of Object.entries(s.counters?.raft ?? {})) sum[k] = (sum[k] ?? 0) + v
    for (const v of Object.values(s.counters?.fuse ?? {})) sum.fuseCalls = (sum.fuseCalls ?? 0) + v
  }
  return sum
}

/** Per-step Raft counters of the walkenfs rounds: step name → per-operation figures. */
class StepCounters {
  private readonly rows = new Map<string, { per: string, ops: number, d: RaftCounters }>()
  private last: RaftCounters | null = null
  constructor (private readonly c: WalkenCluster) {}
  async start (): Promise<void> { this.last = await raftCounters(this.c) }
  async step (f: Figure): Promise<void> {
    const now = await raftCounters(this.c)
    if (this.last !== null && f.ops !== undefined && f.ops > 0) {
      const row = this.rows.get(f.name) ?? { per: f.per ?? 'op', ops: 0, d: {} }
      row.ops += f.ops
      for (const [k, v] of Object.entries(now)) row.d[k] = (row.d[k] ?? 0) + v - (this.last[k] ?? 0)
      this.rows.set(f.name, row)
    }
    this.last = now
  }

  print (): void {
    if (this.rows.size === 0) return
    say('\nwalkenfs work per operation, summed over all hosts (counters.raft and counters.fuse of `walkenfs status --json`, all rounds;\n"reads" are linearizable read points asked of Raft, "by lease" of them answered by a leader alone, "follower lease" by a follower holding a read lease, "shared" joined another\'s round):')
    const rows = [...this.rows].map(([name, r]) => {
      const per = (k: string): string => fmt((r.d[k] ?? 0) / r.ops)
      return [name, r.per, per('fuseCalls'), per('proposals'), per('reads'), per('leaseReads'), per('followerLeaseReads'), per('sharedReads'), per('transactions'), per('applyCycles'), per('lightCycles'), per('messagesSent')]
    })
    table(['step', 'per', 'FUSE calls', 'proposals', 'reads', 'by lease', 'follower lease', 'shared', 'fsync cycles', 'apply cycles', 'light cycles', 'messages'], rows)
  }
}

interface WalkenCluster {
  layout: DemoLayout
  pids: number[]
  stop: () => Promise<void>
  /** from the first mount command to every fragment placed (all voters, a leader, placement settled) */
  settledMs: number
}

async function clusterStatus (mnt: string): Promise<ClusterView | null> {
  const rec = readRecord(mnt)
  if (rec?.control === undefined) return null
  try {
    const s = await askControl(rec.control, 'status', {}, 10_000) as { cluster?: ClusterView }
    return s.cluster ?? null
  } catch {
    return null
  }
}

/** Starts a walkenfs cluster of `hosts` hosts and waits until every fragment has all its voters and a leader. */
async function startWalken (base: string, hosts: number, subnet: number, options: string[], env: NodeJS.ProcessEnv | undefined, quiet: boolean): Promise<WalkenCluster> {
  const layout: DemoLayout = { prefix: `wkb${subnet}`, subnet, base: join(base, 'data'), mounts: join(base, 'mnt'), hosts, options, env }
  const log: string[] = []
  const t0 = Date.now()
  const code = await startDemo(layout, (l) => { log.push(l); if (!quiet) say(`  ${l}`) })
  const stop = async (): Promise<void> => { await stopDemo(layout, () => {}) }
  if (code !== 0) {
    await stop()
    throw new Error(`walkenfs cluster of ${hosts} hosts did not start (exit ${code}):\n${log.slice(-20).join('\n')}`)
  }
  const pids = Array.from({ length: hosts }, (_, i) => readRecord(mountOf(layout, i + 1))?.pid ?? -1)
  const settleMs = 180_000 + 2000 * (Number(/^fragments=(\d+)$/.exec(options.find((o) => o.startsWith('fragments=')) ?? '')?.[1] ?? 16))
  const end = Date.now() + settleMs
  for (;;) {
    const v = await clusterStatus(mountOf(layout, 1))
    const ok = v !== null && v.fragments.length > 0 && v.fragments.every((f) => f.quorum && !f.underReplicated && f.replicas.every((r) => r.role === 'voter')) && v.placement.settled
    if (ok) {
      say(`walkenfs: ${hosts} hosts up, ${v.fragments.length} fragments, ${v.copies ?? '?'} copies each, placement settled`)
      break
    }
    if (Date.now() > end) {
      await stop()
      throw new Error(`walkenfs cluster of ${hosts} hosts did not settle in ${settleMs / 1000} s: ${JSON.stringify(v?.placement ?? null)}`)
    }
    await sleep(500)
  }
  return { layout, pids, stop, settledMs: Date.now() - t0 }
}

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100

function cpuTicks (pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
  return Number(f[11]) + Number(f[12]) // utime, stime (fields 14, 15)
}

function rssMiB (pid: number, field = 'VmRSS'): number {
  let status: string
  try { status = readFileSync(`/proc/${pid}/status`, 'utf8') } catch { return NaN } // stopped already (--scale)
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)
  return m ? Number(m[1]) / 1024 : NaN
}

/** Idle CPU (% of one core) and RSS (MiB) of each daemon, over `seconds`. */
async function idleFigures (pids: number[], seconds: number): Promise<Array<{ cpu: number, rss: number }>> {
  const t0 = process.hrtime.bigint()
  const c0 = pids.map(cpuTicks)
  await sleep(seconds * 1000)
  const dt = Number(process.hrtime.bigint() - t0) / 1e9
  return pids.map((p, i) => ({ cpu: (cpuTicks(p) - c0[i]!) / CLK_TCK / dt * 100, rss: rssMiB(p) }))
}

function fmt (v: number): string {
  if (!Number.isFinite(v)) return 'n/a'
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)
}

/**
 * The no-mmap rrdtool the workload's rrdtool step runs on walkenfs (a shared
 * writable mapping is refused there by design): built from Debian's source
 * on first use, as the examples do. A failed build skips the step, saying why.
 */
function noMmapRrdtool (): boolean {
  if (existsSync(NO_MMAP_RRDTOOL)) return true
  const script = join(fileURLToPath(new URL('../..', import.meta.url)), 'examples', 'rrdtool', 'build-rrdtool.sh')
  say(`rrdtool step: building rrdtool without mmap once (${script}; about a minute; --no-rrdtool skips the step)`)
  try {
    execFileSync('bash', [script], { stdio: ['ignore', 'inherit', 'inherit'] })
  } catch (e) {
    say(`note: building the no-mmap rrdtool failed (${(e as Error).message.split('\n')[0]}); the rrdtool step is skipped`)
    return false
  }
  return existsSync(NO_MMAP_RRDTOOL)
}

function table (header: string[], rows: string[][], leftCols = 2): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cols: string[]): string => cols.map((c, i) => i < leftCols ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join('  ')
  say(line(header))
  say(widths.map((w) => '-'.repeat(w)).join('  '))
  for (const r of rows) say(line(r))
}

export async function run (args: string[]): Promise<void> {
  if (!args.includes('--cluster')) {
    say('skipped: the cluster comparison runs with `npm run bench -- --cluster` (root; several minutes)')
    return
  }
  if (process.getuid?.() !== 0) throw new Error('the cluster bench needs root (network namespaces, FUSE and GlusterFS mounts, drop_caches)')
  const num = (name: string, dflt: number): number => {
    const a = args.find((x) => x.startsWith(`--${name}=`))
    return a ? Number(a.slice(name.length + 3)) : dflt
  }
  const str = (name: string): string | undefined => args.find((x) => x.startsWith(`--${name}=`))?.slice(name.length + 3)
  const rounds = num('rounds', 3)
  verbose = args.includes('--verbose')
  const fragments = str('fragments')
  const profileDir = str('profile')
  const chart = str('chart') ?? 'bench-cluster.png'
  const opts: WorkloadOptions = { ...DEFAULT_WORKLOAD, seqBytes: num('mib', 256) * 2 ** 20, files: num('files', DEFAULT_WORKLOAD.files), fsyncSamples: num('fsyncs', DEFAULT_WORKLOAD.fsyncSamples), treeFanout: num('tree', 10) }
  const haveNoMmap = args.includes('--no-rrdtool') ? false : noMmapRrdtool()

  const base = mkdtempSync(join(tmpdir(), 'walkenfs-cluster-bench-'))
  const cleanup = new Cleanup()
  cleanup.add(`remove ${base}`, () => rmSync(base, { recursive: true, force: true }))
  const onSignal = (): void => {
    say('interrupted: tearing everything down')
    void current?.terminate()
    void cleanup.run().finally(() => process.exit(130))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    const options = ['copies=3', ...(fragments !== undefined ? [`fragments=${fragments}`] : [])]
    const env = profileDir !== undefined ? { WALKENFS_PROFILE_DIR: profileDir } : undefined
    if (profileDir !== undefined) mkdirSync(profileDir, { recursive: true })

    const targets: Array<{ name: string, dir: string, rrdtool?: string }> = []
    say('starting walkenfs (3 hosts, copies=3) …')
    const w3 = await startWalken(join(base, 'w3'), 3, 91, options, env, false)
    cleanup.add('stop walkenfs', w3.stop)
    targets.push({ name: 'walkenfs', dir: mountOf(w3.layout, 1), ...(haveNoMmap ? { rrdtool: NO_MMAP_RRDTOOL } : {}) })
    if (args.includes('--path-api')) {
      // the same cluster again, mounted through fuse-native's path API: the binding's own share, side by side
      say('starting walkenfs through the path API (3 hosts, copies=3, fuse_api=path) …')
      const wp = await startWalken(join(base, 'wp'), 3, 93, [...options, 'fuse_api=path'], env, true)
      cleanup.add('stop walkenfs (path API)', wp.stop)
      targets.push({ name: 'walkenfs-path', dir: mountOf(wp.layout, 1), ...(haveNoMmap ? { rrdtool: NO_MMAP_RRDTOOL } : {}) })
    }

    if (args.includes('--cache-off')) {
      // the same cluster again with no kernel caches (cache=off): what the leases of finding 23 bring, side by side
      say('starting walkenfs without kernel caches (3 hosts, copies=3, cache=off) …')
      const wn = await startWalken(join(base, 'wn'), 3, 96, [...options, 'cache=off'], env, true)
      cleanup.add('stop walkenfs (cache=off)', wn.stop)
      targets.push({ name: 'walkenfs-nocache', dir: mountOf(wn.layout, 1), ...(haveNoMmap ? { rrdtool: NO_MMAP_RRDTOOL } : {}) })
    }

    if (!args.includes('--no-gluster')) {
      say('starting GlusterFS (replica 3, 3 bricks, loopback) …')
      const g = await GlusterVolume.start(join(base, 'gluster'), say)
      cleanup.add('stop GlusterFS', () => g.stop())
      targets.push({ name: 'glusterfs', dir: g.mnt, rrdtool: DEBIAN_RRDTOOL })
    }
    const local = join(base, 'local')
    mkdirSync(local)
    targets.push({ name: 'local', dir: local, rrdtool: DEBIAN_RRDTOOL })
    if (!args.includes('--no-ceiling')) {
      const mnt = join(base, 'ceiling')
      const m = new FuseMount(mnt, new MapFs(), { options: buildMountOptions({ attrTimeout: 1, entryTimeout: 1 }), mkdir: true })
      await m.mount()
      cleanup.add('unmount the ceiling', async () => { await m.unmount().catch(() => forceUnmount(mnt)) })
      // MapFs opens in direct I/O, like walkenfs: shared writable mappings are refused, so the no-mmap build
      targets.push({ name: 'ceiling', dir: mnt, ...(haveNoMmap ? { rrdtool: NO_MMAP_RRDTOOL } : {}) })
    }

    const results = new Map<string, Figure[][]>(targets.map((t) => [t.name, []]))
    const steps = new StepCounters(w3)
    const failed = new Set<string>()
    for (let r = 1; r <= rounds; r++) {
      for (const t of targets) {
        if (failed.has(t.name)) continue
        const t0 = Date.now()
        const counted = t.name === 'walkenfs'
        if (counted) await steps.start()
        let figs: Figure[]
        try {
          figs = await inWorker(t.dir, { ...opts, ...(t.rrdtool !== undefined ? { rrdtool: t.rrdtool } : {}) }, counted ? async (f) => await steps.step(f) : undefined)
        } catch (e) {
          // one target failing must not cost the others' figures
          say(`round ${r}/${rounds} ${t.name}: FAILED, left out of the table: ${(e as Error).message ?? JSON.stringify(e)}`)
          failed.add(t.name)
          continue
        }
        results.get(t.name)!.push(figs)
        say(`round ${r}/${rounds} ${t.name}: ${((Date.now() - t0) / 1000).toFixed(1)} s: ${figs.map((f) => `${f.name} ${fmt(f.value)} ${f.unit}`).join(', ')}`)
      }
    }

    let w5: Figure[][] = []
    if (args.includes('--scale')) {
      await w3.stop()
      say('starting walkenfs (5 hosts, copies=3) for the scale figures …')
      const c5 = await startWalken(join(base, 'w5'), 5, 92, options, env, true)
      cleanup.add('stop walkenfs (5 hosts)', c5.stop)
      for (let r = 1; r <= rounds; r++) {
        w5.push(await inWorker(mountOf(c5.layout, 1), { ...opts, ...(haveNoMmap ? { rrdtool: NO_MMAP_RRDTOOL } : {}) }))
        say(`round ${r}/${rounds} walkenfs-5: done`)
      }
      await c5.stop()
    }

    if (failed.has('walkenfs')) throw new Error('the walkenfs workload failed; no table')
    // --rounds=0 measures only what follows (--idle)
    if (rounds > 0) {
      report(targets.map((t) => t.name).filter((n) => !failed.has(n)), results, w5, chart)
      steps.print()
      // Anonymous memory is the daemon's own (heap, buffers, logs in memory); the rest of RSS is the store's mapped pages, which the kernel reclaims.
      say(`\nwalkenfs memory per host after ${rounds} round(s) (RSS / of it anonymous, MiB): ` +
        w3.pids.map((p, i) => `h${i + 1} ${fmt(rssMiB(p))} / ${fmt(rssMiB(p, 'RssAnon'))}`).join(', '))
    }

    if (args.includes('--restart')) {
      // What a restart reads back: every group's log tail since its last compaction (finding 31).
      // The rounds' files are gone by now, so first a log tail to read: 48 MiB files in 8 new directories.
      const t0 = Date.now()
      const chunk = Buffer.alloc(1 << 20, 0x5a)
      for (let d = 0; d < 8; d++) {
        const dir = join(mountOf(w3.layout, 1), `restart-${d}`)
        mkdirSync(dir)
        const fd = openSync(join(dir, 'f'), 'w')
        for (let m = 0; m < 48; m++) writeSync(fd, chunk)
        fsyncSync(fd)
        closeSync(fd)
      }
      say(`\nrestart: wrote 8 files of 48 MiB (fsync each) into 8 new directories through h1 in ${fmt((Date.now() - t0) / 1000)} s`)
      await sleep(5_000)
      const pid = w3.pids[1]!
      const mem = (p: number): string => `${fmt(rssMiB(p))} MiB / ${fmt(rssMiB(p, 'RssAnon'))} MiB anonymous`
      const before = mem(pid)
      const t = Date.now()
      const code = await restartDemoHost(w3.layout, 2)
      if (code !== 0) throw new Error(`h2 did not mount again (exit ${code})`)
      const took = (Date.now() - t) / 1000
      const again = readRecord(mountOf(w3.layout, 2))?.pid ?? -1
      w3.pids[1] = again
      const right = mem(again)
      await sleep(10_000)
      say(`restart of h2 (umount, mount again): mount ${fmt(took)} s; RSS before ${before}, right after ${right}, 10 s later ${mem(again)}`)
    }

    const idle = args.find((a) => a === '--idle' || a.startsWith('--idle='))
    if (idle !== undefined) {
      await w3.stop()
      const rows: string[][] = []
      const counts = idle === '--idle' ? [16, 64, 256] : idle.slice(7).split(',').map(Number)
      for (const [i, n] of counts.entries()) {
        say(`idle: 3 hosts with ${n} fragments …`)
        const c = await startWalken(join(base, `idle${n}`), 3, 100 + i, ['copies=3', `fragments=${n}`], env, true)
        cleanup.add(`stop idle cluster ${n}`, c.stop)
        // Start-up work goes on after placement settles: 20 s windows on 256
        // fragments read 3.2–5.3 % in the first, then 2.4, 2.2, 2.0, 1.9 % (the
        // fragments now start founded, in seconds). Measure after that minute.
        await sleep(60_000)
        const f = await idleFigures(c.pids, 20)
        const t = Date.now()
        await c.stop()
        rows.push([`${n}`, `${fmt(c.settledMs / 1000)} s`, ...f.map((x) => `${fmt(x.cpu)} % / ${fmt(x.rss)} MiB`), `${fmt((Date.now() - t) / 1000)} s`])
      }
      say('\nidle cost per host (CPU as % of one core over 20 s from /proc/PID/stat, RSS), 3 hosts, copies=3;')
      say('start = mount commands to every fragment placed; stop = umount of the three to the daemons gone:')
      table(['fragments', 'start', 'h1', 'h2', 'h3', 'stop'], rows, 1)
    }
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    await cleanup.run()
  }
}

function report (names: string[], results: Map<string, Figure[][]>, w5: Figure[][], chart: string): void {
  const first = results.get(names[0]!)![0]!
  const med = (name: string, i: number): number => median(results.get(name)!.map((r) => r[i]!.value))
  const has = (n: string): boolean => names.includes(n)
  const header = ['figure', 'unit', ...names, ...(w5.length > 0 ? ['walkenfs 5 hosts'] : []),
    ...(has('glusterfs') ? ['w/gluster', 'target'] : []), ...(has('ceiling') ? ['w/ceiling'] : [])]
  const rows: string[][] = []
  const bars: Array<{ label: string, ratio: number, target: number | null }> = []
  first.forEach((f, i) => {
    const w = med('walkenfs', i)
    const row = [f.name, f.unit, ...names.map((n) => fmt(med(n, i))), ...(w5.length > 0 ? [fmt(median(w5.map((r) => r[i]!.value)))] : [])]
    if (has('glusterfs')) {
      const g = med('glusterfs', i)
      const better = f.higherIsBetter ? w / g : g / w // how many times better walkenfs is
      const target = TARGETS[f.name] ?? null
      const met = target === null ? '' : better >= target ? ' ok' : ' MISS'
      row.push(`${fmt(w / g)}`, target === null ? '-' : `${f.higherIsBetter ? '≥' : '≤'}${f.higherIsBetter ? target : fmt(1 / target)}${met}`)
      bars.push({ label: f.name, ratio: better, target })
    }
    if (has('ceiling')) {
      const c = med('ceiling', i)
      const r = w / c
      row.push(`${fmt(r)}${CEILING_HALF.has(f.name) ? (r >= 0.5 ? ' ok' : ' MISS') : ''}`)
    }
    rows.push(row)
  })
  const rounds = results.get(names[0]!)!.length
  say(`\nmedians of ${rounds} rounds (alternating targets); w/gluster = walkenfs / GlusterFS (for latencies lower is better, so the target is ≤), w/ceiling = walkenfs / in-memory fuse-native:`)
  table(header, rows)
  if (bars.length > 0) {
    writeRatioChart(chart, 'WALKENFS VS GLUSTERFS REPLICA 3: TIMES BETTER (LOG SCALE, TICK = TARGET)', bars)
    say(`\nchart: ${chart}`)
  }
}
