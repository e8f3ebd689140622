/**
 * Mounts a FuseOps (or LowLevelOps) implementation on a fresh temp directory for one tap
 * test, and registers the cleanup (unmount, lazy-unmount fallback, rmdir)
 * with t.teardown so that it runs also when the test fails.
 *
 * The handlers run on the test process's main thread: a synchronous fs call
 * on the mount from that process deadlocks in the kernel. Use fs.promises
 * or a child process.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FuseMount, forceUnmount, isMountPoint, type FuseOps, type MountSettings } from '../../src/fuse/binding.js'
import { LowLevelMount, type LowLevelOps, type LowLevelSettings } from '../../src/fuse/ll-binding.js'

interface Teardown { teardown (fn: () => unknown): void }

export async function mountForTest (t: Teardown, ops: FuseOps, settings: MountSettings = {}): Promise<{ mnt: string, fuse: FuseMount }> {
  return await mountOnTemp(t, (mnt) => new FuseMount(mnt, ops, { mkdir: true, ...settings }))
}

/** The same for the low-level binding. */
export async function mountLowLevelForTest (t: Teardown, ops: LowLevelOps, settings: LowLevelSettings = {}): Promise<{ mnt: string, fuse: LowLevelMount }> {
  return await mountOnTemp(t, (mnt) => {
    mkdirSync(mnt)
    return new LowLevelMount(mnt, ops, settings)
  })
}

async function mountOnTemp<M extends { mount (): Promise<void>, unmount (): Promise<void> }> (t: Teardown, make: (mnt: string) => M): Promise<{ mnt: string, fuse: M }> {
  const dir = mkdtempSync(join(tmpdir(), 'walkenfs-fuse-'))
  chmodSync(dir, 0o755) // other users (setpriv tests) must reach the mountpoint
  const mnt = join(dir, 'mnt')
  const fuse = make(mnt)
  t.teardown(async () => {
    try {
      await fuse.unmount()
    } finally {
      if (isMountPoint(mnt)) await forceUnmount(mnt)
      if (!isMountPoint(mnt)) rmSync(dir, { recursive: true, force: true })
    }
  })
  await fuse.mount()
  return { mnt, fuse }
}
