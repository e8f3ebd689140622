/**
 * Mounts a FuseOps implementation on a fresh temp directory for one tap
 * test, and registers the cleanup (unmount, lazy-unmount fallback, rmdir)
 * with t.teardown so that it runs also when the test fails.
 *
 * The handlers run on the test process's main thread: a synchronous fs call
 * on the mount from that process deadlocks in the kernel. Use fs.promises
 * or a child process.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FuseMount, forceUnmount, isMountPoint, type FuseOps, type MountSettings } from '../../src/fuse/binding.js'

interface Teardown { teardown (fn: () => unknown): void }

export async function mountForTest (t: Teardown, ops: FuseOps, settings: MountSettings = {}): Promise<{ mnt: string, fuse: FuseMount }> {
  const dir = mkdtempSync(join(tmpdir(), 'walkenfs-fuse-'))
  chmodSync(dir, 0o755) // other users (setpriv tests) must reach the mountpoint
  const mnt = join(dir, 'mnt')
  const fuse = new FuseMount(mnt, ops, { mkdir: true, ...settings })
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
