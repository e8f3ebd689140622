/**
 * Which process has a store open: `owner.pid` in the environment directory.
 * One process per store, because the local tables serialize transactions
 * inside one process only; a file left by a dead process is taken over.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { StoreError } from './errors.js'

/**
 * One process per store: the local tables serialize transactions inside one
 * process only, so a second process on the same data directory would break
 * serializability. `owner.pid` names the process that has the store open; a
 * file left by a dead process (crash, kill -9) is taken over.
 */
export function takeOwnership (envDir: string): string {
  const file = join(envDir, 'owner.pid')
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx' })
      return file
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new StoreError((e as NodeJS.ErrnoException).code === 'ENOSPC' ? 'ENOSPC' : 'EIO', `cannot write ${file}: ${(e as Error).message}`, { cause: e })
      }
    }
    const pid = Number.parseInt(readFileSync(file, 'utf8'), 10)
    if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) {
      throw new StoreError('EBUSY', `the store in ${envDir} is in use by process ${pid}${pid === process.pid ? ' (this one)' : ''}; stop it (unmount) first`)
    }
    rmSync(file, { force: true })
  }
  throw new StoreError('EBUSY', `could not take ownership of ${envDir} (another process raced us)`)
}

function processAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export function releaseOwnership (file: string): void {
  try {
    if (readFileSync(file, 'utf8').trim() === String(process.pid)) rmSync(file, { force: true })
  } catch {}
}

