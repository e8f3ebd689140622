/**
 * Real walkenfs mounts for tests: a fresh data directory and mount point
 * under a temp dir, mounted through the real CLI (daemon, FUSE, lmdb), and
 * always unmounted and removed in teardown, also when the test fails.
 */
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { findMount } from '../../src/fuse/mount-table.js'
import { readRecord, isAlive } from '../../src/cli/daemon.js'

export const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js')

export interface TestMount {
  base: string
  mnt: string
  data: string
  /** pid of the daemon serving the mount */
  pid: () => number
  mount: (extraOpts?: string) => void
  umount: () => void
}

export function walkenfs (args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: opts.env ?? process.env, timeout: 120_000 })
}

interface Teardownable { teardown: (fn: () => void | Promise<void>) => void }

/** Unmount whatever is on `mnt`, waiting for the daemon; lazy as a last resort. */
export function forceUnmount (mnt: string): void {
  if (findMount(mnt) === undefined) return
  const rec = readRecord(mnt)
  const r = spawnSync('umount', [mnt])
  if (r.status !== 0) spawnSync('umount', ['-l', mnt])
  if (rec !== null) {
    const deadline = Date.now() + 20_000
    while (isAlive(rec.pid) && Date.now() < deadline) spawnSync('sleep', ['0.05'])
    if (isAlive(rec.pid)) {
      try { process.kill(rec.pid, 'SIGKILL') } catch { /* gone */ }
    }
  }
}

export function makeMount (t: Teardownable, opts: string = ''): TestMount {
  const base = mkdtempSync('/var/tmp/walkenfs-test-')
  // other users reach the mount through it (tests run commands as other uids)
  chmodSync(base, 0o755)
  const mnt = join(base, 'mnt')
  const data = join(base, 'data')
  mkdirSync(mnt)
  const m: TestMount = {
    base,
    mnt,
    data,
    pid: () => readRecord(mnt)?.pid ?? -1,
    mount: (extra = opts) => {
      const o = [`data=${data}`, extra].filter((s) => s !== '').join(',')
      const r = walkenfs(['mount', mnt, '-o', o])
      if (r.status !== 0) throw new Error(`mount failed (${r.status}): ${r.stderr}`)
    },
    umount: () => {
      const r = walkenfs(['umount', mnt])
      if (r.status !== 0) throw new Error(`umount failed (${r.status}): ${r.stderr}`)
    }
  }
  t.teardown(() => {
    forceUnmount(mnt)
    rmSync(base, { recursive: true, force: true })
  })
  return m
}

/** A mounted walkenfs for the test. */
export function mounted (t: Teardownable, opts = ''): TestMount {
  const m = makeMount(t, opts)
  m.mount()
  return m
}

/** Run a shell command; returns stdout, throws with stderr on failure. */
export function sh (cmd: string, env?: NodeJS.ProcessEnv): string {
  return execFileSync('bash', ['-c', cmd], { encoding: 'utf8', env: env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] })
}

/** Run a shell command, returning status, stdout and stderr without throwing. */
export function shr (cmd: string): { status: number, stdout: string, stderr: string } {
  const r = spawnSync('bash', ['-c', cmd], { encoding: 'utf8' })
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
}
