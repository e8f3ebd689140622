/**
 * `npm run torture -- --minutes M --seed S [--clients N]`: one torture run
 * (torture.ts) with progress on stderr, then the seed and the summary line
 * `operations: N, anomalies: A` on stdout; exits 1 when there are anomalies.
 * Without --seed a seed is drawn and printed, so any run can be repeated.
 */
import { writeFileSync } from 'node:fs'
import { torture } from './torture.js'

function arg (name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}

function num (name: string, fallback: number): number {
  const v = arg(name)
  if (v === undefined) return fallback
  const n = Number(v)
  if (!Number.isFinite(n) || n <= 0) {
    process.stderr.write(`--${name} wants a positive number, got ${JSON.stringify(v)}\n`)
    process.exit(2)
  }
  return n
}

const seed = Math.floor(num('seed', 1 + Math.floor(Math.random() * 2 ** 31)))
const minutes = num('minutes', 5)
const clients = Math.floor(num('clients', 4))
process.stdout.write(`seed: ${seed}\n`)
const started = Date.now()
const t = torture({ seed, durationMs: minutes * 60_000, clients, log: (l) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${l}\n`) })
const stop = (): void => { t.cleanup(); process.exit(130) }
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
let code = 1
try {
  const r = await t.run()
  for (const a of r.anomalies.slice(0, 50)) process.stdout.write(`anomaly [${a.checker}] ${a.message}\n`)
  process.stdout.write(`kills: ${r.stats.kills}, pauses: ${r.stats.pauses}, full disks: ${r.stats.fills}, unknown outcomes: ${r.stats.unknown}, failed reads: ${r.stats.failedReads}, ENOSPC to clients: ${r.stats.clientEnospc}, ENOSPC to prober: ${r.stats.proberEnospc}\n`)
  process.stdout.write(`seed: ${seed}, minutes: ${((Date.now() - started) / 60_000).toFixed(1)}\n`)
  process.stdout.write(`operations: ${r.operations}, anomalies: ${r.anomalies.length}\n`)
  if (r.anomalies.length > 0) {
    const file = `/var/tmp/walkenfs-torture-${seed}.history.jsonl`
    writeFileSync(file, r.ops.map((o) => JSON.stringify(o)).join('\n') + '\n')
    process.stdout.write(`history: ${file}\n`)
  }
  code = r.anomalies.length === 0 ? 0 : 1
} catch (e) {
  process.stdout.write(`torture run aborted: ${(e as Error).message}\n`)
} finally {
  t.cleanup()
}
process.exit(code)
