/**
 * What both torture harnesses (one host, cluster) do through a mount
 * besides the clients: read the final state the checkers judge, and probe
 * whether a write with fsync goes through (around a full data disk).
 */
import { readdirSync } from 'node:fs'
import { open as openAsync } from 'node:fs/promises'
import { join } from 'node:path'
import { appendName, readAll, registerName, registerValue, SHARED_DIR } from './client.js'
import type { FinalState } from './checkers.js'
import { now } from './history.js'

/** The registers, append files and shared directory under `root`, as the checkers compare them. */
export function readFinal (root: string, registers: number, appendFiles: number): FinalState {
  const final: FinalState = { registers: new Map(), appends: new Map(), directory: new Map(), at: now() }
  for (let i = 0; i < registers; i++) final.registers.set(registerName(i), registerValue(readAll(join(root, registerName(i)))))
  for (let i = 0; i < appendFiles; i++) final.appends.set(appendName(i), readAll(join(root, appendName(i))).toString())
  for (const name of readdirSync(join(root, SHARED_DIR)).sort()) final.directory.set(name, readAll(join(root, SHARED_DIR, name)).toString())
  final.at = now()
  return final
}

/**
 * Writes `mib` MiB to `file` and fsyncs; 'ok', the error code, or 'timeout'
 * after 20 s — async and bounded, so a stuck daemon cannot stall a harness.
 */
export async function probeWrite (file: string, mib: number): Promise<string> {
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
  const timeout = new Promise<string>((resolve) => { timer = setTimeout(() => resolve('timeout'), 20_000); timer.unref() })
  try {
    return await Promise.race([attempt(), timeout])
  } finally {
    clearTimeout(timer)
  }
}
