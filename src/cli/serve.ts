/**
 * The daemon body of one mount: opens the store and the filesystem model,
 * mounts it through FUSE, tells the waiting `walkenfs mount` how it went,
 * and keeps serving until it is unmounted (by `umount`, `walkenfs umount`,
 * or a signal), then commits every buffered byte, closes the store and
 * exits.
 *
 * libfuse does not tell the JS side about an external `umount`, so the
 * daemon watches the mount table (every 500 ms) for its mount point.
 */
import { FuseMount } from '../fuse/binding.js'
import { Adapter } from '../fuse/adapter.js'
import { fuseOps } from '../fuse/fuse-ops.js'
import { inodeOps } from '../fuse/inode-ops.js'
import { fixedCache, type CachePolicy, type Invalidator } from '../fuse/kernel-cache.js'
import { LowLevelMount } from '../fuse/ll-binding.js'
import { ModelFs } from '../fs/model.js'
import { checkFs } from '../fs/check.js'
import type { FileSystem } from '../fs/types.js'
import { controlSocketPath, removeRecord, reportToParent, writeRecord } from './daemon.js'
import { serveControl, type ControlHandler, type ControlStream } from './control.js'
import { watchStream } from './watch.js'
import { LocalTables } from '../tables/local.js'
import type { MountSettings } from './mount-options.js'

/**
 * A FUSE operation that has not finished after this long gets ETIMEDOUT.
 * It is a guard against a hung handler, not a latency budget: it is longer
 * than any wait walkenfs itself imposes (the cluster's quorum_wait is 10 s).
 */
const FUSE_OP_TIMEOUT_MS = 60_000
const MOUNT_POLL_MS = 500

/**
 * How long a mount waits for the previous user of its data directory to let
 * go: after `umount`, the old daemon needs up to MOUNT_POLL_MS to notice and
 * then closes its store, so `umount; mount` must not fail with EBUSY.
 */
const STORE_BUSY_WAIT_MS = 10_000

/** Opens a store-backed thing, waiting out EBUSY from the previous user of the data directory. */
export async function waitForStore<T> (open: () => T | Promise<T>): Promise<T> {
  const deadline = Date.now() + STORE_BUSY_WAIT_MS
  for (let waited = false; ; waited = true) {
    try {
      return await open()
    } catch (e) {
      if ((e as { code?: string }).code !== 'EBUSY' || Date.now() > deadline) throw e
      if (!waited) log(`${(e as Error).message}; waiting up to ${STORE_BUSY_WAIT_MS / 1000} s for it to let go`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}

async function openStore (settings: MountSettings): Promise<ModelFs> {
  return await waitForStore(async () => await ModelFs.open(settings.data, settings.fragments === null ? {} : { fragments: settings.fragments }))
}

export function log (msg: string): void {
  process.stdout.write(`${new Date().toISOString()} ${msg}\n`)
}

export async function serve (mountPoint: string, settings: MountSettings & { log: string }, daemon: boolean): Promise<number> {
  if (settings.cluster !== null) {
    const { serveCluster } = await import('./cluster-serve.js')
    return await serveCluster(mountPoint, settings, daemon)
  }
  log(`starting: mount ${mountPoint}, data ${settings.data}, pid ${process.pid}`)
  let fs
  try {
    fs = await openStore(settings)
  } catch (e) {
    return fail(`cannot open the store in ${settings.data}: ${(e as Error).message}`, daemon)
  }
  const streams: Record<string, ControlStream> = fs.tables instanceof LocalTables ? { watch: watchStream(fs.tables, fs.tables.changes(), 'local') } : {}
  // `walkenfs status` asks every daemon with a control socket (a one-host mount has no cluster to report);
  // `walkenfs check MOUNTPOINT` runs the fsck in the daemon, over the store it holds open.
  const control = { status: () => ({ mode: 'local' }), check: async () => await checkFs(fs.tables) }
  return await serveFuse(mountPoint, settings, daemon, fs, { close: async () => { await fs.close() }, control, streams })
}

/** Reports a failure to start to the waiting `walkenfs mount` (and the log); returns mount(8)'s failure code. */
export function fail (message: string, daemon: boolean): number {
  log(message)
  reportToParent({ ok: false, message })
  if (!daemon) console.error(`walkenfs: ${message}`)
  return 32
}

export interface Backend {
  /** Closes what the filesystem runs on (after the last buffered write was committed). */
  close (): Promise<void>
  /** Extra commands of the control socket. */
  control?: Record<string, ControlHandler>
  /** Streaming commands of the control socket (`watch`). */
  streams?: Record<string, ControlStream>
  /** The kernel cache policy of a cluster mount with cache=lease, given the mount's invalidations (null until mounted). */
  kernelCache?: (kernel: () => Invalidator | null) => CachePolicy
}

/**
 * Mounts `fs` through FUSE, tells the waiting parent, and serves until
 * unmounted or signalled; then commits buffered writes and closes.
 */
export async function serveFuse (mountPoint: string, settings: MountSettings & { log: string }, daemon: boolean, fs: FileSystem, backend: Backend): Promise<number> {
  // One host: every name change passes through this adapter, which forgets
  // the names it changes, so a 1 s floor is safe. A cluster: other hosts
  // change names too, so names are cached no longer than the kernel may.
  const nameTtlMs = settings.cluster !== null ? settings.entryTimeout * 1000 : Math.max(settings.entryTimeout, 1) * 1000
  // After a failed commit the kernel's size of the file is too large: drop it (the low-level binding can)
  let dropped = (_ino: number): void => {}
  const adapter = new Adapter(fs, { nameTtlMs, onDropped: (ino) => { dropped(ino) } })
  let fm: FuseMount | LowLevelMount
  try {
    const onInternalError = (op: string, err: unknown): void => log(`internal error in ${op} (answered EIO): ${err instanceof Error ? err.stack ?? err.message : String(err)}`)
    if (settings.fuseApi === 'lowlevel') {
      let mounted: LowLevelMount | null = null
      const cache = settings.kernelCache === 'lease' && backend.kernelCache !== undefined
        ? backend.kernelCache(() => mounted)
        : fixedCache({ entry: settings.entryTimeout, attr: settings.attrTimeout })
      const ll = new LowLevelMount(mountPoint, inodeOps(adapter, fs, cache), {
        options: settings.fuseOptions, timeoutMs: FUSE_OP_TIMEOUT_MS, onInternalError
      })
      mounted = ll
      dropped = (ino) => { ll.invalInode(ino) }
      fm = ll
    } else {
      fm = new FuseMount(mountPoint, fuseOps(adapter), { options: settings.fuseOptions, timeoutMs: FUSE_OP_TIMEOUT_MS, onInternalError })
    }
    await fm.mount()
  } catch (e) {
    await backend.close()
    return fail((e as Error).message, daemon)
  }
  let closeControl: (() => Promise<void>) | null = null
  const controlPath = controlSocketPath(mountPoint)
  try {
    closeControl = await serveControl(controlPath, backend.control ?? {}, log, backend.streams ?? {})
  } catch (e) {
    log(`no control socket (${(e as Error).message}); walkenfs status will show less`)
  }
  writeRecord({ pid: process.pid, mountPoint, data: settings.data, log: settings.log, started: new Date().toISOString(), control: closeControl ? controlPath : undefined, cluster: settings.cluster !== null })
  log(`mounted ${mountPoint}`)
  reportToParent({ ok: true })

  return await new Promise<number>((resolve) => {
    let stopping = false
    const stop = async (why: string): Promise<void> => {
      if (stopping) return
      stopping = true
      stopWatching()
      log(`stopping: ${why}`)
      let code = 0
      try {
        await adapter.sync()
      } catch (e) {
        code = 1
        log(`could not commit buffered writes: ${(e as Error).message}`)
      }
      try { await fm.unmount() } catch (e) { log(`unmount: ${(e as Error).message}`) }
      await closeControl?.().catch(() => {})
      await backend.close()
      removeRecord(mountPoint)
      log('stopped')
      resolve(code)
    }
    const stopWatching = fm.watchUnmount(() => { void stop('unmounted') }, MOUNT_POLL_MS)
    process.once('SIGTERM', () => { void stop('SIGTERM') })
    process.once('SIGINT', () => { void stop('SIGINT') })
  })
}
