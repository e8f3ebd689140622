/**
 * Running a mount as a background daemon, the way `mount(8)` expects of a
 * FUSE helper: the command that mount.fuse runs must return only once the
 * filesystem is mounted (or has failed with a message), and the filesystem
 * must keep running after it returns.
 *
 * The parent spawns a detached copy of itself (`__serve`), with its output
 * going to the log file and a pipe on fd 3 on which the child writes one
 * JSON line: `{"ok":true}` once mounted, or `{"ok":false,"message":…}`.
 * The parent relays the message and exits 0 or 32 (mount(8)'s "mount
 * failure").
 *
 * Also owns the run-time record of a mount (`/run/walkenfs/*.json`: pid,
 * data directory, mount point), used by `umount` and `status`.
 */
import { spawn } from 'node:child_process'
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { join, resolve } from 'node:path'

/**
 * V8 flags of every daemon. A daemon's live heap is small (12–16 MiB) but it
 * allocates fast, and V8 sizes the old generation's limit from the live heap:
 * about 23 MiB, less headroom than its young generation may promote, so it
 * started a full (mark-compact) collection every 70–100 ms under a 4 KiB
 * write+fsync loop, each costing 5–10 ms of the JavaScript thread. A 64 MiB
 * floor for that limit (about 20 MiB more RSS per host) made them about one per
 * second and cut the loop's p99 from 14–17 ms to 7–9 ms (docs/performance.md,
 * finding 22). After the bench workload the live heap is 25–30 MiB, and buffers
 * that live into the old generation (rows, blocks) count against the same
 * headroom: with 64 MiB, full collections came every 100–300 ms again under
 * that loop, and its p99 was back at 13–20 ms; 96 MiB made them about one in
 * 9 seconds and the p99 5–6 ms, at no measurable cost in RSS (finding 26).
 * bin/walkenfs passes the same flag for a foreground mount.
 */
export const DAEMON_NODE_FLAGS = ['--initial-old-space-size=96']

export const RUN_DIR = process.env.WALKENFS_RUN_DIR ?? '/run/walkenfs'

export interface MountRecord {
  pid: number
  mountPoint: string
  data: string
  log: string
  started: string
  /** the daemon's control socket, when it has one */
  control?: string
  /** a cluster mount (hosts, replicas); false: one host's own store */
  cluster?: boolean
}

function recordPath (mountPoint: string): string {
  return join(RUN_DIR, resolve(mountPoint).replace(/\//g, '_') + '.json')
}

/** The daemon's control socket (src/cli/control.ts), next to its record. */
export function controlSocketPath (mountPoint: string): string {
  return join(RUN_DIR, resolve(mountPoint).replace(/\//g, '_') + '.sock')
}

export function writeRecord (rec: MountRecord): void {
  mkdirSync(RUN_DIR, { recursive: true })
  writeFileSync(recordPath(rec.mountPoint), JSON.stringify(rec) + '\n')
}

export function removeRecord (mountPoint: string): void {
  rmSync(recordPath(mountPoint), { force: true })
}

/** The record and control socket of a daemon that is gone (killed, not unmounted by itself). */
export function removeStaleRecord (mountPoint: string): void {
  rmSync(recordPath(mountPoint), { force: true })
  rmSync(controlSocketPath(mountPoint), { force: true })
}

export function readRecord (mountPoint: string): MountRecord | null {
  try {
    return JSON.parse(readFileSync(recordPath(mountPoint), 'utf8')) as MountRecord
  } catch {
    return null
  }
}

export function listRecords (): MountRecord[] {
  let names: string[]
  try { names = readdirSync(RUN_DIR) } catch { return [] }
  const out: MountRecord[] = []
  for (const n of names) {
    if (!n.endsWith('.json')) continue
    try { out.push(JSON.parse(readFileSync(join(RUN_DIR, n), 'utf8')) as MountRecord) } catch { /* a half-written record is skipped */ }
  }
  return out
}

export function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Start `__serve` detached and wait for its verdict. Resolves with the
 * daemon's pid, or rejects with the daemon's own error message.
 */
export async function spawnDaemon (serveArgs: string[], logFile: string, timeoutMs: number, progress: (line: string) => void = () => {}): Promise<number> {
  const main = fileURLToPath(new URL('./main.js', import.meta.url))
  const log = openSync(logFile, 'a')
  // Diagnostics: WALKENFS_PROFILE_DIR=DIR makes the daemon write a V8 CPU profile there when it exits
  // (Node refuses --cpu-prof in NODE_OPTIONS; `npm run bench -- --cluster --profile=DIR` sets it).
  const prof = process.env.WALKENFS_PROFILE_DIR
  const nodeArgs = [...DAEMON_NODE_FLAGS, ...(prof !== undefined && prof !== '' ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [])]
  const child = spawn(process.execPath, [...nodeArgs, main, '__serve', ...serveArgs], {
    detached: true,
    stdio: ['ignore', log, log, 'pipe']
  })
  closeSync(log)
  const pipe = child.stdio[3] as Readable
  try {
    return await new Promise<number>((resolvePid, reject) => {
      const timer = setTimeout(() => {
        // A daemon that could not mount in time must not mount later behind the caller's back.
        try { process.kill(child.pid!, 'SIGTERM') } catch {}
        reject(new Error(`the daemon did not mount within ${timeoutMs / 1000} s (stopped it); see ${logFile}`))
      }, timeoutMs)
      const lines = createInterface({ input: pipe })
      lines.on('line', (line) => {
        let msg: { ok?: boolean, message?: string, progress?: string }
        try {
          msg = JSON.parse(line) as typeof msg
        } catch {
          clearTimeout(timer)
          reject(new Error(`the daemon said something unexpected: ${line}`))
          return
        }
        if (typeof msg.progress === 'string') {
          progress(msg.progress)
          return
        }
        clearTimeout(timer)
        if (msg.ok === true) resolvePid(child.pid!)
        else reject(new Error(msg.message ?? 'the daemon failed'))
      })
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        reject(new Error(`the daemon exited (${signal ?? `code ${code}`}) before mounting; see ${logFile}`))
      })
    })
  } finally {
    pipe.destroy()
    child.unref()
  }
}

/** In the daemon: a progress line for the waiting parent to show (fd 3 stays open). */
/** Set once fd 3 is closed: the number may then belong to another file (a control socket connection). */
let parentPipeClosed = false

export function progressToParent (line: string): void {
  if (parentPipeClosed) return
  try {
    writeFileSync(3, JSON.stringify({ progress: line }) + '\n')
  } catch {
    // No parent pipe (foreground, or the parent gave up).
  }
}

/** In the daemon: tell the waiting parent how the mount went (fd 3), once. */
export function reportToParent (msg: { ok: boolean, message?: string }): void {
  if (parentPipeClosed) return
  parentPipeClosed = true
  try {
    writeFileSync(3, JSON.stringify(msg) + '\n')
    closeSync(3)
  } catch {
    // No parent pipe: started in the foreground.
  }
}
