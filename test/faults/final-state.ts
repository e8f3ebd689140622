/**
 * What both torture harnesses (one host, cluster) do besides the clients:
 * read the final state the checkers judge, fill a data disk, and probe
 * whether a write with fsync goes through a mount (around a full disk).
 */
import { closeSync, fsyncSync, openSync, readdirSync, writeSync } from 'node:fs'
import { open as openAsync } from 'node:fs/promises'
import { join } from 'node:path'
import { appendName, readAll, registerName, registerValue, SHARED_DIRS } from './client.js'
import type { FinalState } from './checkers.js'
import { now } from './history.js'

/** The registers, append files and shared directory under `root`, as the checkers compare them. */
export function readFinal (root: string, registers: number, appendFiles: number): FinalState {
  const final: FinalState = { registers: new Map(), appends: new Map(), directory: new Map(), at: now() }
  for (let i = 0; i < registers; i++) final.registers.set(registerName(i), registerValue(readAll(join(root, registerName(i)))))
  for (let i = 0; i < appendFiles; i++) final.appends.set(appendName(i), readAll(join(root, appendName(i))).toString())
  // Entries are named .a in the first directory and .b in the second (client.ts), so one map holds both.
  for (const dir of SHARED_DIRS) {
    for (const name of readdirSync(join(root, dir)).sort()) final.directory.set(name, readAll(join(root, dir, name)).toString())
  }
  final.at = now()
  return final
}

/**
 * Writes `mib` MiB to `file` and fsyncs; 'ok', the error code, or 'timeout'
 * after `timeoutMs` (20 s) — async and bounded, so a stuck daemon cannot
 * stall a harness.
 */
export async function probeWrite (file: string, mib: number, timeoutMs = 20_000): Promise<string> {
  const attempt = async (): Promise<string> => {
    let fh
    try {
      fh = await openAsync(file, 'w')
      const chunk = Buffer.alloc(1 << 20, 0x70)
      for (let i = 0; i < mib; i++) await fh.write(chunk)
      await fh.sync()
      return 'ok'
    } catch (e) {
      return (e as NodeJS.ErrnoException).code ?? String(e)
    } finally {
      try { await fh?.close() } catch { /* the error above is the answer */ }
    }
  }
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<string>((resolve) => { timer = setTimeout(() => resolve('timeout'), timeoutMs); timer.unref() })
  try {
    return await Promise.race([attempt(), timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** Writes until `probe` works (or `tries` attempts, `waitMs` apart); the last answer. */
export async function probeUntilOk (probe: string, mib: number, tries: number, waitMs: number): Promise<string> {
  let answer = ''
  for (let i = 0; i < tries && answer !== 'ok'; i++) {
    answer = await probeWrite(probe, mib)
    if (answer !== 'ok') await new Promise((resolve) => setTimeout(resolve, waitMs))
  }
  return answer
}

/**
 * Fills the filesystem of `dataDir` (a small tmpfs) with `dataDir/filler`;
 * returns how many MiB it took. 4096 MiB guards against a data directory
 * that is not the small tmpfs.
 */
export function fillDataDir (dataDir: string): number {
  const fd = openSync(`${dataDir}/filler`, 'w')
  const chunk = Buffer.alloc(1 << 20, 0x66)
  let mib = 0
  try {
    for (; mib < 4096; mib++) writeSync(fd, chunk)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e
  } finally { closeSync(fd) }
  return mib
}

/** Creates an empty file and fsyncs it. */
export function syncedCreate (file: string): void {
  const fd = openSync(file, 'w')
  fsyncSync(fd)
  closeSync(fd)
}
