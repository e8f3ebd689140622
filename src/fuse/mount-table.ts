/**
 * The mount table as seen from this process (/proc/self/mountinfo): whether a
 * path is mounted, and a last-resort lazy unmount for mounts this process
 * lost track of (test teardown, a crashed daemon's ENOTCONN mount).
 */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { resolve as resolvePath } from 'node:path'

export interface MountEntry {
  mountPoint: string
  fsType: string
  source: string
}

/** Undo the octal escapes (\040 for space, ...) of mountinfo fields. */
function unescape (s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)))
}

/** Parses the text of /proc/self/mountinfo: field 5 is the mount point; after " - " come type and source. */
export function parseMountInfo (text: string): MountEntry[] {
  const out: MountEntry[] = []
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ')
    if (sep < 0) continue
    const left = line.slice(0, sep).split(' ')
    const right = line.slice(sep + 3).split(' ')
    out.push({ mountPoint: unescape(left[4] ?? ''), fsType: right[0] ?? '', source: unescape(right[1] ?? '') })
  }
  return out
}

/** The mount on `mountpoint` (resolved); the last one when mounts are stacked. */
export function findMount (mountpoint: string): MountEntry | undefined {
  const want = resolvePath(mountpoint)
  return parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8')).filter((m) => m.mountPoint === want).pop()
}

/** True if `mountpoint` (resolved) is a mount point in this mount namespace. */
export function isMountPoint (mountpoint: string): boolean {
  return findMount(mountpoint) !== undefined
}

function execFileP (cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, (err, _stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`))
      else resolve()
    })
  })
}

/**
 * Last-resort unmount of a mountpoint this process may have lost track of
 * (a test teardown, a crashed daemon): lazy, so a busy or dead (ENOTCONN)
 * mount goes too. Does nothing if it is not mounted.
 */
export async function forceUnmount (mountpoint: string): Promise<void> {
  if (!isMountPoint(mountpoint)) return
  try {
    await execFileP('fusermount', ['-uz', resolvePath(mountpoint)])
  } catch {
    await execFileP('umount', ['-l', resolvePath(mountpoint)])
  }
}

/**
 * Polls /proc/self/mountinfo every `intervalMs` and calls `onGone` once when
 * `mountpoint` has left the mount table while `live()` (the caller still
 * believes it mounted) holds: libfuse does not tell JS about an external
 * umount. The timer does not keep the process alive. `watchers` collects
 * the stop functions, so an unmount can stop every watch at once; the
 * returned function stops this one.
 */
export function watchUnmounted (mountpoint: string, live: () => boolean, onGone: () => void, intervalMs: number, watchers: Set<() => void>): () => void {
  const timer = setInterval(() => {
    if (!live() || isMountPoint(mountpoint)) return
    stop()
    onGone()
  }, intervalMs)
  timer.unref()
  const stop = (): void => {
    clearInterval(timer)
    watchers.delete(stop)
  }
  watchers.add(stop)
  return stop
}
