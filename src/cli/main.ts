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
import { isAlive, listRecords, readRecord, spawnDaemon } from './daemon.js'

export const EXIT_USAGE = 1
export const EXIT_MOUNT_FAILURE = 32

const USAGE = `usage:
  walkenfs mount MOUNTPOINT [-o OPTIONS] [-f]   mount (data=DIR, fragments=N, attr_timeout=S, entry_timeout=S, log=FILE, FUSE options)
  walkenfs SOURCE MOUNTPOINT -o OPTIONS         the form mount.fuse uses (SOURCE: the data directory, or a label)
  walkenfs umount MOUNTPOINT                    unmount and wait for the daemon to exit
  walkenfs check [DATA_DIR]                     fsck of the tables (exit 1 on damage)
  walkenfs status [--json]                      mounts on this host
  walkenfs start | stop                         the quick-start mount (${'/mnt/walkenfs'}, data ${'/var/lib/walkenfs'})
  walkenfs help mount                           the mount options
`

const MOUNT_HELP = `walkenfs mount options (-o a,b=c):
  data=DIR            the local store (default /var/lib/walkenfs; or the SOURCE of an fstab line when it is a path)
  fragments=N         fragments per table, fixed when the store is created (1..4096, default 16)
  attr_timeout=S      kernel attribute cache, seconds (default 0: hard links stay consistent)
  entry_timeout=S     kernel name cache, seconds (default 1)
  log=FILE            daemon log (default DATA/walkenfs.log)
  foreground          stay in the foreground (same as -f)
  ro, rw, dev, nodev, suid, nosuid, exec, noexec, noatime, ...   kernel mount flags
  allow_other, default_permissions, use_ino, big_writes (on by default), max_write=N, fsname=, subtype=,
  kernel_cache, auto_cache, umask=, uid=, gid=, negative_timeout=, max_readahead=, auto_unmount, ...
  _netdev, nofail, noauto, defaults, x-*: accepted from fstab and ignored
`

export const QUICK_MOUNT = '/mnt/walkenfs'
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

async function doMount (args: string[]): Promise<number> {
  let m: MountArgs
  let settings: MountSettings
  try {
    m = parseMountArgs(args)
    const base: Partial<MountSettings> = { foreground: m.foreground }
    if (m.source !== null && m.source.startsWith('/')) base.data = m.source
    settings = parseMountOptions(m.options, base)
  } catch (e) {
    if (e instanceof MountOptionError) {
      console.error(`walkenfs: ${e.message}`)
      return EXIT_USAGE
    }
    throw e
  }
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
    await spawnDaemon(serveArgs, log, 60_000)
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
  const dir = resolve(args.find((a) => !a.startsWith('-')) ?? QUICK_DATA)
  const { runCheck } = await import('./check.js')
  return await runCheck(dir, args.includes('--json'))
}

function doStatus (args: string[]): number {
  const json = args.includes('--json')
  const mounts = listRecords().map((r) => ({
    mountPoint: r.mountPoint,
    data: r.data,
    pid: r.pid,
    running: isAlive(r.pid),
    mounted: findMount(r.mountPoint)?.fsType === 'fuse.walkenfs',
    log: r.log,
    since: r.started
  }))
  if (json) {
    console.log(JSON.stringify({ mounts }, null, 2))
  } else if (mounts.length === 0) {
    console.log('walkenfs: no mounts on this host')
  } else {
    for (const m of mounts) {
      const state = m.mounted && m.running ? 'mounted' : m.running ? 'running, NOT mounted' : m.mounted ? 'mounted, daemon DEAD' : 'stale record'
      console.log(`${m.mountPoint}  ${state}  data=${m.data}  pid=${m.pid}  since ${m.since}`)
    }
  }
  const healthy = mounts.length > 0 && mounts.every((m) => m.mounted && m.running)
  return healthy ? 0 : 1
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
      return doStatus(rest)
    case 'start': {
      if (rest.includes('--stop')) return await doUmount([QUICK_MOUNT])
      mkdirSync(QUICK_MOUNT, { recursive: true })
      if (findMount(QUICK_MOUNT) !== undefined) {
        console.log(`walkenfs: ${QUICK_MOUNT} is already mounted`)
        return doStatus([])
      }
      const code = await doMount([QUICK_MOUNT, '-o', `data=${QUICK_DATA}`, ...rest])
      if (code === 0) {
        console.log(`walkenfs is mounted at ${QUICK_MOUNT} (data in ${QUICK_DATA}, log ${QUICK_DATA}/walkenfs.log).`)
        console.log(`Stop it with: npm start -- --stop   (or: umount ${QUICK_MOUNT})`)
      }
      return code
    }
    case 'stop':
      return await doUmount([QUICK_MOUNT])
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
