/**
 * The mount table as seen from this process (/proc/self/mountinfo): whether a
 * path is mounted, and a last-resort lazy unmount for mounts this process
 * lost track of (test teardown, a crashed daemon's ENOTCONN mount).
 */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { resolve as resolvePath } from 'node:path'

/** True if `mountpoint` (resolved) is a mount point in this mount namespace. */
export function isMountPoint (mountpoint: string): boolean {
  const want = resolvePath(mountpoint)
  // mountinfo field 5 is the mount point, with space/tab/newline/backslash octal-escaped
  const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)))
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ')
    if (f.length > 4 && unescape(f[4]!) === want) return true
  }
  return false
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
