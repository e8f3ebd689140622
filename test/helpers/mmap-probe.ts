/**
 * The mmap probe (native/mmap-probe.c, built by `npm install` into
 * native/build/mmap-probe): its path, and a runner that returns its one-line
 * verdict ('ok' or e.g. 'mmap ENODEV 19') without throwing on exit code 1.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** Absolute path of the probe binary (works from src and from dist). */
export const mmapProbePath: string = (() => {
  for (const rel of ['../../native/build/mmap-probe', '../../../native/build/mmap-probe']) {
    const p = fileURLToPath(new URL(rel, import.meta.url))
    if (existsSync(p)) return p
  }
  return fileURLToPath(new URL('../../../native/build/mmap-probe', import.meta.url))
})()

export type MmapMode = 'shared-rw' | 'shared-ro' | 'private' | 'private-rw'

/** Runs the probe on `file`; resolves its output line. Rejects only if it could not run or misused. */
export function mmapProbe (file: string, mode: MmapMode): Promise<string> {
  if (!existsSync(mmapProbePath)) return Promise.reject(new Error(`${mmapProbePath} is missing: run \`npm install\` (postinstall builds it with cc)`))
  return new Promise((resolve, reject) => {
    execFile(mmapProbePath, [file, mode], { timeout: 20000 }, (err, stdout, stderr) => {
      const code = (err as { code?: unknown } | null)?.code
      if (err && code !== 1) reject(new Error(`mmap-probe ${mode} ${file}: ${stderr.trim() || err.message}`))
      else resolve(stdout.trim())
    })
  })
}
