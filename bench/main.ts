/**
 * `npm run bench`: runs every benchmark module (dist/bench/*.bench.js) in
 * name order, or only those whose name contains one of the arguments
 * (`npm run bench -- fs raft`); `npm run bench -- --cluster` runs only the
 * cluster comparison against GlusterFS (bench/cluster.bench.ts). Each module exports `run(args)` and prints
 * its own table with units; figures are measurements, never pass/fail.
 */
import { readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const args = process.argv.slice(2)
const filters = args.filter((a) => !a.startsWith('-'))
// `--cluster` alone means the cluster comparison only (it takes minutes and root)
if (args.includes('--cluster') && filters.length === 0) filters.push('cluster')
const modules = readdirSync(here).filter((f) => f.endsWith('.bench.js')).sort()
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))

for (const file of modules) {
  console.log(`\n=== ${file.replace(/\.bench\.js$/, '')} ===`)
  const mod = await import(pathToFileURL(join(here, file)).href) as { run: (args: string[]) => Promise<void> }
  await mod.run(args)
}
