/**
 * `npm run torture -- --minutes M --seed S [--hosts H] [--clients N]`: one
 * torture run with progress on stderr, then the seed and the summary line
 * `operations: N, anomalies: A` on stdout; exits 1 when there are anomalies.
 * `--hosts` defaults to 5: a cluster in network namespaces
 * (cluster-torture.ts); `--hosts 1` is the one-host run (torture.ts).
 * `--all-faults` is accepted and changes nothing now: the default mix has every fault kind (nemesis.ts).
 * `--shared-appends` lets clients of every host append to the same files.
 * Without --seed a seed is drawn and printed, so any run can be repeated.
 */
import { writeFileSync } from 'node:fs'
import { torture } from './torture.js'
import { clusterTorture } from './cluster-torture.js'
import { ALL_FAULTS, MIXED } from './nemesis.js'
import type { Anomaly } from './checkers.js'
import type { Op } from './history.js'

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
const hosts = Math.floor(num('hosts', 5))
if (hosts === 2) {
  process.stderr.write('--hosts 2 has no majority to survive a fault: use 1, or 3 and more\n')
  process.exit(2)
}
const clients = Math.floor(num('clients', hosts === 1 ? 4 : hosts))
process.stdout.write(`seed: ${seed}\n`)
const started = Date.now()
const log = (l: string): void => { process.stderr.write(`[${new Date().toISOString().slice(11, 23)} +${((Date.now() - started) / 1000).toFixed(1)} s] ${l}\n`) }
const durationMs = minutes * 60_000
const t = hosts === 1
  ? torture({ seed, durationMs, clients, log })
  : clusterTorture({ seed, durationMs, hosts, clients, log, sharedAppends: process.argv.includes('--shared-appends'), mix: process.argv.includes('--all-faults') ? ALL_FAULTS : MIXED })
const stop = (): void => { t.cleanup(); process.exit(130) }
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
let code = 1
try {
  const r: { operations: number, anomalies: Anomaly[], ops: Op[], stats: object, faults?: object } = await t.run()
  for (const a of r.anomalies.slice(0, 50)) process.stdout.write(`anomaly [${a.checker}] ${a.message}\n`)
  if (r.faults !== undefined) process.stdout.write(`faults: ${Object.entries(r.faults).map(([k, v]) => `${k} ${String(v)}`).join(', ')}\n`)
  process.stdout.write(`${Object.entries(r.stats).map(([k, v]) => `${k}: ${String(v)}`).join(', ')}\n`)
  process.stdout.write(`seed: ${seed}, hosts: ${hosts}, minutes: ${((Date.now() - started) / 60_000).toFixed(1)}\n`)
  process.stdout.write(`operations: ${r.operations}, anomalies: ${r.anomalies.length}\n`)
  if (r.anomalies.length > 0) {
    const file = `/var/tmp/walkenfs-torture-${seed}.history.jsonl`
    writeFileSync(file, r.ops.map((o) => JSON.stringify(o)).join('\n') + '\n')
    process.stdout.write(`history: ${file}\n`)
  }
  code = r.anomalies.length === 0 ? 0 : 1
} catch (e) {
  process.stdout.write(`torture run aborted: ${(e as Error).stack ?? (e as Error).message}\n`)
} finally {
  t.cleanup()
}
process.exit(code)
