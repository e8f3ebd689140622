/**
 * `walkenfs check [DATA_DIR] [--json]`: the fsck of a data directory's
 * tables. Exit 0 when clean, 1 when damage was found, 2 when the store could
 * not be opened at all.
 */
import { checkDataDir } from '../fs/check-data-dir.js'
import type { Problem } from '../fs/check.js'

export async function runCheck (dataDir: string, json: boolean): Promise<number> {
  let problems: Problem[]
  try {
    problems = await checkDataDir(dataDir)
  } catch (e) {
    const message = `cannot check ${dataDir}: ${(e as Error).message}`
    if (json) console.log(JSON.stringify({ dataDir, ok: false, error: message }))
    else console.error(`walkenfs: ${message}`)
    return 2
  }
  return printProblems(dataDir, problems, json)
}

/** Prints a check's findings; returns the exit code (0 clean, 1 damage). */
export function printProblems (what: string, problems: Problem[], json: boolean): number {
  if (json) {
    console.log(JSON.stringify({ dataDir: what, ok: problems.length === 0, problems }, null, 2))
  } else if (problems.length === 0) {
    console.log(`walkenfs check ${what}: clean`)
  } else {
    console.log(`walkenfs check ${what}: ${problems.length} problem(s)`)
    for (const p of problems) console.log(`  ${p.kind}${p.ino !== undefined ? ` (inode ${p.ino})` : ''}: ${p.message}`)
  }
  return problems.length === 0 ? 0 : 1
}
