/**
 * One torture client, run as its own process so that a client blocked in a
 * call into a paused or dead mount never stalls the harness. It runs a
 * seeded mix of register writes/reads, appends/read-alls and
 * create/rename/unlink of its own entries in shared directories until its
 * deadline, and logs every operation (history.ts) to a file outside the
 * mount. Failed writes are logged as 'unknown': after kill -9 or ENOSPC
 * the client cannot know whether they took effect.
 *
 * Usage: node client.js '{"mnt":..,"log":..,"client":N,"seed":S,"until":EPOCH_MS,"registers":R,"appendFiles":A}'
 */
import { appendFileSync, closeSync, constants, fsyncSync, openSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { seededRng } from '../../src/raft/rng.js'
import { formatOp, now, type Op, type OpKind } from './history.js'

export const REGISTER_BYTES = 32

export interface ClientArgs {
  mnt: string
  log: string
  client: number
  seed: number
  until: number
  registers: number
  appendFiles: number
  /**
   * Appends go only to this file (reads still to all). The cluster run gives
   * each host's clients their own file: O_APPEND is not atomic between
   * hosts (docs/torture.md), so appends from two hosts to one file may
   * overwrite each other.
   */
  appendOnly?: number
}

export function registerName (i: number): string { return `reg${i}` }
export function appendName (i: number): string { return `app${i}` }
export const SHARED_DIR = 'shared'
/**
 * Renames move an entry from SHARED_DIR into this directory. Directories go
 * to the fragments in turn, so the two are on different fragments and a
 * rename between them is a two-phase commit (docs/replication.md).
 */
export const RENAMED_DIR = 'renamed'
/** The shared directories, created by the harness before the clients start. */
export const SHARED_DIRS = [SHARED_DIR, RENAMED_DIR]
/**
 * Everything the run touches lives under this directory of the mount, and
 * no call creates it: while the mount is down (between kill -9 and the
 * remount) the mount point is a plain empty directory, and a call there must
 * fail with ENOENT instead of creating files under the mount point.
 */
export const ROOT = 'torture'

/** A register value: unique per client and operation, padded to a fixed size so one pwrite replaces it whole. */
export function registerBytes (value: string): Buffer {
  return Buffer.from(value.padEnd(REGISTER_BYTES, '.'))
}
export function registerValue (content: Buffer | string): string {
  return content.toString().replace(/\.+$/, '')
}

/**
 * Reads a whole file. Not readFileSync: when close fails (ENOTCONN after the
 * daemon died) Node 20 aborts the process in readFileSync instead of
 * throwing.
 */
export function readAll (file: string): Buffer {
  const fd = openSync(file, 'r')
  const parts: Buffer[] = []
  try {
    // bounded: the run's files stay far below 64 MiB
    for (let total = 0; total < 64 << 20;) {
      const b = Buffer.alloc(65536)
      const n = readSync(fd, b, 0, b.length, null)
      if (n === 0) break
      parts.push(b.subarray(0, n))
      total += n
    }
  } finally {
    try { closeSync(fd) } catch { /* the data was read; a failed close of a read-only fd loses nothing */ }
  }
  return Buffer.concat(parts)
}

function sleep (ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

function main (a: ClientArgs): void {
  const rng = seededRng(a.seed)
  const root = join(a.mnt, ROOT)
  let n = 0
  // the client's current directory entry: step 0 = not created, 1 = at .a, 2 = at .b
  let entity = 0
  let step = 0
  const log = (o: Omit<Op, 'client'>): void => { appendFileSync(a.log, formatOp({ client: a.client, ...o })) }

  const run = (kind: OpKind, key: string, value: string, write: boolean, fn: () => string | void): boolean => {
    const invoke = now()
    try {
      const got = fn()
      log({ kind, key, value: got ?? value, invoke, response: now(), outcome: 'ok' })
      return true
    } catch (e) {
      const err = (e as NodeJS.ErrnoException).code ?? String(e)
      log({ kind, key, value, invoke, response: now(), outcome: write ? 'unknown' : 'fail', err })
      sleep(20 + rng.int(80))
      return false
    }
  }

  while (now() < a.until) {
    n++
    // a short think time keeps histories small enough for the linearizability search
    sleep(rng.int(10))
    const pick = rng.int(100)
    if (pick < 25) {
      const key = registerName(rng.int(a.registers))
      const value = `c${a.client}n${n}`
      run('reg-write', key, value, true, () => {
        const fd = openSync(join(root, key), 'r+')
        try {
          writeSync(fd, registerBytes(value), 0, REGISTER_BYTES, 0)
          fsyncSync(fd)
        } finally { closeSync(fd) }
      })
    } else if (pick < 50) {
      const key = registerName(rng.int(a.registers))
      run('reg-read', key, '', false, () => registerValue(readAll(join(root, key))))
    } else if (pick < 68) {
      const key = appendName(a.appendOnly ?? rng.int(a.appendFiles))
      const value = `c${a.client}n${n}`
      run('append', key, value, true, () => {
        const fd = openSync(join(root, key), constants.O_WRONLY | constants.O_APPEND)
        try {
          writeSync(fd, value + '\n')
          fsyncSync(fd)
        } finally { closeSync(fd) }
      })
    } else if (pick < 78) {
      const key = appendName(rng.int(a.appendFiles))
      run('read-all', key, '', false, () => readAll(join(root, key)).toString())
    } else {
      const id = `c${a.client}e${entity}`
      const dir = join(root, SHARED_DIR)
      let ok: boolean
      if (step === 0) {
        ok = run('create', id, `${id}.a`, true, () => {
          const fd = openSync(join(dir, `${id}.a`), 'wx')
          try {
            writeSync(fd, id)
            fsyncSync(fd)
          } finally { closeSync(fd) }
        })
      } else if (step === 1) {
        ok = run('rename', id, `${id}.b`, true, () => { renameSync(join(dir, `${id}.a`), join(root, RENAMED_DIR, `${id}.b`)) })
      } else {
        ok = run('unlink', id, `${id}.b`, true, () => { unlinkSync(join(root, RENAMED_DIR, `${id}.b`)) })
      }
      // after an unknown outcome the entry's state is uncertain: leave it and start a new one
      if (!ok || step === 2) { entity++; step = 0 } else step++
    }
  }
}

// imported by the harness for the names above; runs only as its own process
if (process.argv[1] === fileURLToPath(import.meta.url)) main(JSON.parse(process.argv[2]) as ClientArgs)
