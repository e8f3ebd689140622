/**
 * The `walkenfs` command line. Also the program that `mount -t
 * fuse.walkenfs SRC MNT -o OPTS` (and an fstab line) runs: mount.fuse execs
 * `walkenfs SRC MNT -o OPTS,dev,suid`.
 *
 * Exit codes follow mount(8) for mounting: 0 done, 1 bad invocation or
 * options, 32 mount failure (also: the point is already mounted).
 */
import { existsSync, mkdirSync, realpathSync, statSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { join, resolve } from 'node:path'
import { spawnSync } from 'node:child_process'
import { MountOptionError, parseMountOptions, splitOptions, type MountSettings } from './mount-options.js'
import { findMount } from '../fuse/mount-table.js'
import { isAlive, listRecords, readRecord, removeStaleRecord, spawnDaemon, type MountRecord } from './daemon.js'
import { askControl } from './control.js'
import { exitCodeOf, formatCluster, type ClusterView } from './cluster-status.js'
import type { ReplicaReport } from '../tables/replica-check.js'
import type { Problem } from '../fs/check.js'

export const EXIT_USAGE = 1
export const EXIT_MOUNT_FAILURE = 32

const USAGE = `usage:
  walkenfs mount MOUNTPOINT [-o OPTIONS] [-f]   mount (data=DIR, fragments=N, attr_timeout=S, entry_timeout=S, log=FILE, FUSE options)
  walkenfs SOURCE MOUNTPOINT -o OPTIONS         the form mount.fuse uses (SOURCE: the data directory, or a label)
  walkenfs umount MOUNTPOINT                    unmount and wait for the daemon to exit
  walkenfs init -o cluster=NAME,data=DIR,...    create a one-host cluster on purpose (others join it)
  walkenfs check [DATA_DIR | MOUNTPOINT] [--json]   fsck of the tables (exit 1 on damage); of a mount: by its daemon (a cluster: over the cluster)
  walkenfs check --replicas [MOUNTPOINT] [--json]   compare every fragment's replicas (exit 1 on a difference)
  walkenfs repair [MOUNTPOINT] [--json]         rebuild every fragment replica that differs from the others (exit 0: all agree)
  walkenfs retire HOST [MOUNTPOINT]             drain HOST's replicas and remove it from the cluster (also a dead host)
  walkenfs recover --force-new-cluster DATA_DIR [--yes] [--accept-loss]
                                                after losing a majority for good: make this stopped host the whole
                                                cluster (prints the plan and what can be lost; asks unless --yes)
  walkenfs status [MOUNTPOINT] [--json]         mounts on this host (or that one); of a cluster: hosts, fragments, quorum
                                                (exit 0: safe to serve, 2: read-only somewhere, 1: not a member / not mounted)
  walkenfs watch PATH [--json]                  print changes under PATH (any host's) as they commit, until killed
  walkenfs start | stop                         the demo: a cluster of 3 hosts in network namespaces on this machine,
                                                mounted at /mnt/walkenfs/h1, h2, h3 (start --stop = stop)
  walkenfs help mount                           the mount options
`

const MOUNT_HELP = `walkenfs mount options (-o a,b=c):
  data=DIR            the local store (default /var/lib/walkenfs; or the SOURCE of an fstab line when it is a path)
  fragments=N         fragments per table, fixed when the store (or the cluster) is created (1..4096, default 16)
cluster (lists inside one option are joined by +):
  cluster=NAME        serve the replicated filesystem of cluster NAME (without it: a one-host filesystem)
  host=ID             this host's id in the cluster (default: the hostname)
  cookie_file=PATH    the shared secret of the cluster, mode 600 (default /etc/walkenfs/cookie)
  listen=ADDR[:PORT][+ADDR[:PORT]...]   addresses to listen on and advertise (default 0.0.0.0:7400)
  peers=HOST[:PORT]+...  static peers (besides multicast discovery); peers_cmd=CMD prints peers, one per line
  mcast=on|off        multicast discovery (default on); mcast_iface=ADDR, mcast_group=, mcast_port=, mcast_ttl=
  expect=N            empty hosts that must see each other before a new cluster forms (default 3)
  copies=N            replicas per fragment of a new cluster (default 3)
  replace_after=DUR   rebuild the replicas of a host down this long (default 10m)
  quorum_wait=DUR     how long a write waits for a majority before EROFS (default 10s)
  heartbeat_ms=N      link heartbeat (default 1000; failure detection scales with it)
  cache=lease|off     a cluster mount's kernel caches: under fragment leases, dropped on every host
                      before another host's change commits (default lease), or none
  attr_timeout=S      fixed kernel attribute cache, seconds (default 1; 0 with fuse_api=path;
                      on a cluster it replaces cache=lease and is not kept coherent)
  fuse_api=lowlevel|path   walkenfs's own low-level FUSE binding (default) or fuse-native's path API
  entry_timeout=S     fixed kernel name cache, seconds (default 1; on a cluster as attr_timeout)
  log=FILE            daemon log (default DATA/walkenfs.log)
  foreground          stay in the foreground (same as -f)
  ro, rw, dev, nodev, suid, nosuid, exec, noexec, noatime, ...   kernel mount flags
  allow_other, default_permissions, use_ino, big_writes (on by default), max_write=N, fsname=, subtype=,
  kernel_cache, auto_cache, umask=, uid=, gid= (these with fuse_api=path), max_readahead=, auto_unmount, ...
  _netdev, nofail, noauto, defaults, x-*: accepted from fstab and ignored
`

export const QUICK_DATA = '/var/lib/walkenfs'

interface MountArgs {
  source: string | null
  mountPoint: string
  options: string[]
  foreground: boolean
}

function parseMountArgs (args: string[]): MountArgs {
  const positional: string[] = []
  const options: string[] = []
  let foreground = false
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (a === '-o') {
      const v = args[++i]
      if (v === undefined) throw new MountOptionError('-o needs options')
      options.push(...splitOptions(v))
    } else if (a.startsWith('-o') && a.length > 2) {
      options.push(...splitOptions(a.slice(2)))
    } else if (a === '-f' || a === '--foreground') {
      foreground = true
    } else if (a === '-n' || a === '-s' || a === '-v') {
      // mount(8) flags (no mtab, sloppy, verbose) that a helper may get
    } else if (a.startsWith('-')) {
      throw new MountOptionError(`unknown flag ${a}`)
    } else {
      positional.push(a)
    }
  }
  if (positional.length === 1) return { source: null, mountPoint: positional[0]!, options, foreground }
  if (positional.length === 2) return { source: positional[0]!, mountPoint: positional[1]!, options, foreground }
  throw new MountOptionError('expected a mount point (and optionally a source before it)')
}

/** Runs an argument parser; a bad option is reported and gives null (the caller exits with EXIT_USAGE). */
function parsed<T> (parse: () => T): T | null {
  try {
    return parse()
  } catch (e) {
    if (e instanceof MountOptionError) {
      console.error(`walkenfs: ${e.message}`)
      return null
    }
    throw e
  }
}

async function doMount (args: string[]): Promise<number> {
  const p = parsed(() => {
    const m = parseMountArgs(args)
    const base: Partial<MountSettings> = { foreground: m.foreground }
    if (m.source !== null && m.source.startsWith('/')) base.data = m.source
    return { m, settings: parseMountOptions(m.options, base) }
  })
  if (p === null) return EXIT_USAGE
  const { m, settings } = p
  const mountPoint = resolve(m.mountPoint)
  if (!existsSync(mountPoint) || !statSync(mountPoint).isDirectory()) {
    console.error(`walkenfs: mount point ${mountPoint} is not a directory`)
    return EXIT_MOUNT_FAILURE
  }
  const already = findMount(mountPoint)
  if (already !== undefined) {
    console.error(`walkenfs: ${mountPoint} is already mounted (${already.fsType} from ${already.source}); unmount it first`)
    return EXIT_MOUNT_FAILURE
  }
  const data = resolve(settings.data)
  mkdirSync(data, { recursive: true })
  settings.data = data
  const log = settings.log ?? join(data, 'walkenfs.log')
  const serveArgs = [mountPoint, JSON.stringify({ ...settings, log })]
  if (settings.foreground) {
    const { serve } = await import('./serve.js')
    process.exit(await serve(mountPoint, { ...settings, log }, false))
  }
  try {
    // A cluster mount appears once the cluster filesystem is usable: that can take a while at first boot.
    await spawnDaemon(serveArgs, log, settings.cluster !== null ? 300_000 : 60_000, (line) => console.error(line.startsWith('walkenfs') ? line : `walkenfs: ${line}`))
  } catch (e) {
    console.error(`walkenfs: mount of ${mountPoint} failed: ${(e as Error).message}`)
    return EXIT_MOUNT_FAILURE
  }
  return 0
}

async function doUmount (args: string[]): Promise<number> {
  if (args.length !== 1) {
    console.error('walkenfs: umount needs a mount point')
    return EXIT_USAGE
  }
  const mountPoint = resolve(args[0]!)
  if (findMount(mountPoint) === undefined) {
    console.error(`walkenfs: ${mountPoint} is not mounted`)
    return EXIT_USAGE
  }
  const rec = readRecord(mountPoint)
  const r = spawnSync('umount', [mountPoint], { stdio: 'inherit' })
  if (r.status !== 0) {
    console.error(`walkenfs: umount ${mountPoint} failed (is it busy? see "fuser -m ${mountPoint}")`)
    return EXIT_MOUNT_FAILURE
  }
  if (rec !== null) {
    // The daemon notices the unmount, commits and closes its store, then exits.
    const deadline = Date.now() + 30_000
    while (isAlive(rec.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    if (isAlive(rec.pid)) {
      console.error(`walkenfs: the daemon (pid ${rec.pid}) did not exit within 30 s; see ${rec.log}`)
      return EXIT_MOUNT_FAILURE
    }
  }
  return 0
}

async function doCheck (args: string[]): Promise<number> {
  const json = args.includes('--json')
  const target = args.find((a) => !a.startsWith('-'))
  let mount: MountRecord | null
  try {
    mount = servedMount(target, args.includes('--replicas') ? 'check --replicas' : undefined)
  } catch (e) {
    console.error(`walkenfs: ${(e as Error).message}`)
    return 2
  }
  const control = mount?.control ?? null
  if (args.includes('--replicas')) {
    if (control === null) {
      console.error(`walkenfs: check --replicas needs a mounted cluster (${target ?? 'no cluster mount on this host'})`)
      return 2
    }
    let report: ReplicaReport
    try {
      report = await askControl(control, 'check-replicas', {}, 300_000) as ReplicaReport
    } catch (e) {
      console.error(`walkenfs: ${(e as Error).message}`)
      return 2
    }
    if (json) console.log(JSON.stringify(report, null, 2))
    else {
      const c = report.counts
      console.log(`walkenfs check --replicas: ${report.groups.length} fragments: ${c.same} identical, ${c.mismatch} DIFFERENT, ${c.busy} busy (replicas never at the same index), ${c.unreachable} with a replica unreachable`)
      for (const g of report.groups.filter((x) => x.verdict !== 'same')) {
        console.log(`  ${g.group}: ${g.verdict}: ${g.replicas.map((r) => r.digest ? `${r.host}@${r.digest.applied} ${r.digest.sha256.slice(0, 12)} (${r.digest.rows} rows)` : `${r.host}: ${r.error}`).join('; ')}`)
      }
    }
    return report.clean ? 0 : 1
  }
  if (control !== null) {
    let problems: Problem[]
    try {
      problems = await askControl(control, 'check', {}, 600_000) as Problem[]
    } catch (e) {
      console.error(`walkenfs: cannot check ${mount!.mountPoint}: ${(e as Error).message}`)
      return 2
    }
    const { printProblems } = await import('./check.js')
    return printProblems(mount!.mountPoint, problems, json)
  }
  const dir = resolve(target ?? QUICK_DATA)
  const { runCheck } = await import('./check.js')
  return await runCheck(dir, json)
}

/**
 * The record of the mount at `path` (or of the only mount) whose daemon
 * serves a control socket. With `cluster` (a command about hosts and
 * replicas) a one-host mount is refused with a message saying so.
 */
function servedMount (path: string | undefined, cluster?: string): MountRecord | null {
  const recs = listRecords().filter((r) => r.control !== undefined && isAlive(r.pid))
  const rec = path === undefined ? (recs.length === 1 ? recs[0] : undefined) : recs.find((r) => r.mountPoint === resolve(path))
  if (rec !== undefined && cluster !== undefined && rec.cluster === false) {
    throw new Error(`${rec.mountPoint} is a one-host mount (data ${rec.data}): it has no other hosts or replicas; ${cluster} is for cluster mounts`)
  }
  return rec ?? null
}

async function doRetire (args: string[]): Promise<number> {
  const [host, mnt] = args
  if (host === undefined) {
    console.error('walkenfs: retire needs a host id (see walkenfs status)')
    return EXIT_USAGE
  }
  const control = servedMount(mnt, 'retire')?.control ?? null
  if (control === null) {
    console.error(`walkenfs: retire needs a mounted cluster on this host${mnt ? ` at ${mnt}` : ' (give its mount point)'}`)
    return EXIT_USAGE
  }
  try {
    await askControl(control, 'retire', { host }, 600_000)
  } catch (e) {
    console.error(`walkenfs: retire ${host}: ${(e as Error).message}`)
    return 2
  }
  console.log(`walkenfs: ${host} is retired: its replicas were moved to other hosts and it is no longer a member`)
  return 0
}

async function doInit (args: string[]): Promise<number> {
  const settings = parsed(() => {
    const options: string[] = []
    for (let i = 0; i < args.length; i++) {
      if (args[i] === '-o' && args[i + 1] !== undefined) options.push(...splitOptions(args[++i]!))
      else if (args[i]!.startsWith('-o')) options.push(...splitOptions(args[i]!.slice(2)))
      else throw new MountOptionError(`unexpected argument ${args[i]}; usage: walkenfs init -o cluster=NAME,data=DIR,...`)
    }
    const s = parseMountOptions(options)
    if (s.cluster === null) throw new MountOptionError('init needs cluster=NAME')
    return s as MountSettings & { cluster: NonNullable<MountSettings['cluster']> }
  })
  if (settings === null) return EXIT_USAGE
  const data = resolve(settings.data)
  mkdirSync(data, { recursive: true })
  const { initCluster } = await import('./cluster-serve.js')
  try {
    const r = await initCluster(data, settings, (line) => console.error(`walkenfs: ${line}`))
    console.log(`walkenfs: cluster ${settings.cluster.host.cluster} (id ${r.clusterId}) created with host ${r.hostId} in ${data}; mount it with the same options, and start other hosts to join`)
    return 0
  } catch (e) {
    console.error(`walkenfs: init: ${(e as Error).message}`)
    return 2
  }
}

async function doStatus (args: string[]): Promise<number> {
  const json = args.includes('--json')
  const only = args.find((a) => !a.startsWith('-'))
  // With a mount point, the verdict (and exit code) is that mount's alone: an init script asks about its own mount.
  const records = listRecords().filter((r) => only === undefined || r.mountPoint === resolve(only))
  const mounts = await Promise.all(records.map(async (r) => {
    const running = isAlive(r.pid)
    let cluster: ClusterView | null = null
    let counters: unknown = null
    let clusterError: string | null = null
    if (running && r.control !== undefined) {
      try {
        const s = await askControl(r.control, 'status', {}, 10_000) as { mode: string, cluster?: ClusterView, counters?: unknown }
        cluster = s.cluster ?? null
        counters = s.counters ?? null
      } catch (e) {
        clusterError = (e as Error).message
      }
    }
    return {
      mountPoint: r.mountPoint,
      data: r.data,
      pid: r.pid,
      running,
      mounted: findMount(r.mountPoint)?.fsType === 'fuse.walkenfs',
      log: r.log,
      since: r.started,
      cluster,
      clusterError,
      // the daemon's counters (raft, tables, watch, fuse, kernelCache): for scripts and the docs' figures, not the human view
      counters
    }
  }))
  if (json) {
    console.log(JSON.stringify({ mounts }, null, 2))
  } else if (mounts.length === 0) {
    console.log(only === undefined ? 'walkenfs: no mounts on this host' : `walkenfs: ${resolve(only)} is not a walkenfs mount of this host`)
  } else {
    for (const m of mounts) {
      const state = m.mounted && m.running ? 'mounted' : m.running ? 'running, NOT mounted' : m.mounted ? 'mounted, daemon DEAD' : 'gone (daemon exited, not mounted; its record is removed now)'
      console.log(`${m.mountPoint}  ${state}  data=${m.data}  pid=${m.pid}  since ${m.since}`)
      if (m.cluster) console.log(formatCluster(m.cluster).split('\n').map((l) => `  ${l}`).join('\n'))
      if (m.clusterError) console.log(`  cluster status unavailable: ${m.clusterError}`)
    }
  }
  // A record whose daemon is gone and whose mount is gone too (killed, then unmounted) is history, not a mount:
  // it is shown this once and removed, so it does not turn every later status (and init script) into a failure.
  const live = mounts.filter((m) => m.mounted || m.running)
  for (const m of mounts) if (!m.mounted && !m.running) removeStaleRecord(m.mountPoint)
  if (live.length === 0 || !live.every((m) => m.mounted && m.running)) return 1
  if (mounts.some((m) => m.clusterError !== null)) return 1
  const codes = mounts.filter((m) => m.cluster !== null).map((m) => exitCodeOf(m.cluster!))
  return codes.includes(1) ? 1 : codes.includes(2) ? 2 : 0
}

async function doRepair (args: string[]): Promise<number> {
  const json = args.includes('--json')
  const mnt = args.find((a) => !a.startsWith('-'))
  const control = servedMount(mnt, 'repair')?.control ?? null
  if (control === null) {
    console.error(`walkenfs: repair needs a mounted cluster on this host${mnt !== undefined ? ` at ${mnt}` : ' (give its mount point)'}`)
    return EXIT_USAGE
  }
  const { runRepair } = await import('./repair.js')
  return await runRepair(async (cmd, a, ms) => await askControl(control, cmd, a, ms), json, (s) => process.stdout.write(s))
}

async function doRecover (args: string[]): Promise<number> {
  const known = new Set(['--force-new-cluster', '--yes', '--accept-loss'])
  const bad = args.find((a) => a.startsWith('-') && !known.has(a))
  const dirs = args.filter((a) => !a.startsWith('-'))
  if (bad !== undefined || dirs.length !== 1 || !args.includes('--force-new-cluster')) {
    console.error(`walkenfs: ${bad !== undefined ? `unknown flag ${bad}; ` : ''}usage: walkenfs recover --force-new-cluster DATA_DIR [--yes] [--accept-loss] (the host must be stopped)`)
    return EXIT_USAGE
  }
  const { runRecover } = await import('./recover.js')
  const interactive = process.stdin.isTTY && process.stdout.isTTY
  return await runRecover({ dataDir: resolve(dirs[0]!), yes: args.includes('--yes'), acceptLoss: args.includes('--accept-loss') }, {
    out: (l) => console.log(l),
    err: (l) => console.error(l),
    interactive,
    ask: async (q) => {
      const { createInterface } = await import('node:readline/promises')
      const rl = createInterface({ input: process.stdin, output: process.stdout })
      try { return await rl.question(q) } finally { rl.close() }
    }
  })
}

export async function main (argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
  switch (cmd) {
    case 'mount':
      return await doMount(rest)
    case 'umount':
    case 'unmount':
      return await doUmount(rest)
    case 'check':
      return await doCheck(rest)
    case 'status':
      return await doStatus(rest)
    case 'retire':
      return await doRetire(rest)
    case 'init':
      return await doInit(rest)
    case 'recover':
      return await doRecover(rest)
    case 'repair':
      return await doRepair(rest)
    case 'watch': {
      const { doWatch } = await import('./watch.js')
      return await doWatch(rest)
    }
    case 'start': {
      const { startDemo, stopDemo } = await import('./demo.js')
      if (rest.includes('--stop')) {
        await stopDemo()
        return 0
      }
      const code = await startDemo()
      if (code === 0) {
        console.log('')
        await doStatus([])
      }
      return code
    }
    case 'stop': {
      const { stopDemo } = await import('./demo.js')
      await stopDemo()
      return 0
    }
    case '__serve': {
      const { serve } = await import('./serve.js')
      // fuse-native keeps a libuv handle referenced after the unmount: exit explicitly.
      process.exit(await serve(rest[0]!, JSON.parse(rest[1]!) as MountSettings & { log: string }, true))
    }
    case 'help':
      process.stdout.write(rest[0] === 'mount' ? MOUNT_HELP : USAGE)
      return 0
    case undefined:
    case '-h':
    case '--help':
      process.stdout.write(USAGE)
      return cmd === undefined ? EXIT_USAGE : 0
    default:
      // mount.fuse form: walkenfs SOURCE MOUNTPOINT -o OPTIONS
      return await doMount(argv)
  }
}

// Run directly (`node dist/src/cli/main.js …`, as the daemon is spawned and
// tests call it) rather than imported by bin/walkenfs.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  main(process.argv.slice(2)).then(
    (code) => { process.exitCode = code },
    (err: unknown) => { console.error(`walkenfs: ${err instanceof Error ? err.message : String(err)}`); process.exitCode = 1 })
}
