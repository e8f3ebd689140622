/**
 * Reads the kernel's table of mounts (/proc/self/mountinfo): is a path a
 * mount point, and of which filesystem type. Used to refuse a second mount
 * on the same point (mount(8) would stack it) and to notice an external
 * `umount` (libfuse does not tell the JS side).
 */
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'

export interface MountEntry {
  mountPoint: string
  fsType: string
  source: string
}

/** Undo the octal escapes (\040 for space, ...) of mountinfo fields. */
function unescape (s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
}

export function parseMountInfo (text: string): MountEntry[] {
  const out: MountEntry[] = []
  for (const line of text.split('\n')) {
    if (line === '') continue
    const sep = line.indexOf(' - ')
    if (sep < 0) continue
    const left = line.slice(0, sep).split(' ')
    const right = line.slice(sep + 3).split(' ')
    out.push({ mountPoint: unescape(left[4] ?? ''), fsType: right[0] ?? '', source: unescape(right[1] ?? '') })
  }
  return out
}

export function readMounts (): MountEntry[] {
  return parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8'))
}

export function findMount (mountPoint: string): MountEntry | undefined {
  const want = resolve(mountPoint)
  // The last entry wins: mounts stacked on one point are listed in order.
  return readMounts().filter((m) => m.mountPoint === want).pop()
}
