/**
 * The fixed filesystem workload of the benchmarks, run against any
 * directory (a walkenfs mount, a plain local directory, a bindfs mount, a
 * GlusterFS mount), so that every target runs exactly the same calls.
 *
 * Each step returns a figure with its unit; nothing here passes or fails.
 */
import { spawnSync } from 'node:child_process'
import { closeSync, fsyncSync, mkdirSync, openSync, readSync, readdirSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync, writeSync, readFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { median, percentile } from './stats.js'

export interface Figure {
  name: string
  value: number
  unit: string
  /** true when a larger value is better */
  higherIsBetter: boolean
  /** how many operations the step did (for per-operation counters), and what one is */
  ops?: number
  per?: string
}

export interface WorkloadOptions {
  seqBytes: number
  files: number
  fsyncSamples: number
  /** the directory tree is fanout × fanout × fanout (10 by default) */
  treeFanout?: number
  /** drop the kernel page cache before the sequential read (needs root) */
  dropCaches: boolean
  /** an rrdtool binary for the `rrdtool update` step (one process per update, as cron would); absent: step skipped */
  rrdtool?: string
  rrdUpdates?: number
}

export const DEFAULT_WORKLOAD: WorkloadOptions = {
  seqBytes: 256 * 1024 * 1024,
  files: 2000,
  fsyncSamples: 500,
  dropCaches: true
}

function seconds (start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9
}

function dropCaches (): void {
  try { writeFileSync('/proc/sys/vm/drop_caches', '3') } catch { /* not root: read may hit the page cache */ }
}

/** Runs the workload in `dir`; `progress` sees each figure as soon as it is measured. */
export function runWorkload (dir: string, opts: WorkloadOptions = DEFAULT_WORKLOAD, progress?: (f: Figure) => void): Figure[] {
  const out: Figure[] = []
  if (progress !== undefined) {
    const push = out.push.bind(out)
    out.push = (...fs: Figure[]): number => { fs.forEach(progress); return push(...fs) }
  }
  const MiB = 1024 * 1024
  rmSync(join(dir, 'bench'), { recursive: true, force: true })
  const root = join(dir, 'bench')
  mkdirSync(root)

  // Sequential write + fsync, 1 MiB application writes.
  const big = join(root, 'seq.bin')
  const buf = Buffer.alloc(MiB)
  for (let i = 0; i < buf.length; i += 4096) buf.writeUInt32LE(i, i)
  let t = process.hrtime.bigint()
  let fd = openSync(big, 'w')
  for (let done = 0; done < opts.seqBytes; done += MiB) writeSync(fd, buf, 0, MiB)
  fsyncSync(fd)
  closeSync(fd)
  out.push({ name: 'seq write+fsync', value: opts.seqBytes / MiB / seconds(t), unit: 'MiB/s', higherIsBetter: true, ops: opts.seqBytes / MiB, per: 'MiB' })

  if (opts.dropCaches) dropCaches()
  t = process.hrtime.bigint()
  fd = openSync(big, 'r')
  let total = 0
  for (;;) {
    const n = readSync(fd, buf, 0, MiB, null)
    if (n === 0) break
    total += n
  }
  closeSync(fd)
  out.push({ name: 'seq read', value: total / MiB / seconds(t), unit: 'MiB/s', higherIsBetter: true, ops: total / MiB, per: 'MiB' })
  unlinkSync(big)

  // Small files.
  const small = join(root, 'small')
  mkdirSync(small)
  const four = Buffer.alloc(4096, 7)
  const names = Array.from({ length: opts.files }, (_, i) => join(small, `f${i}`))
  t = process.hrtime.bigint()
  for (const n of names) writeFileSync(n, four)
  out.push({ name: 'create 4 KiB', value: opts.files / seconds(t), unit: 'files/s', higherIsBetter: true, ops: opts.files, per: 'file' })
  t = process.hrtime.bigint()
  for (const n of names) statSync(n)
  out.push({ name: 'stat', value: opts.files / seconds(t), unit: 'ops/s', higherIsBetter: true, ops: opts.files, per: 'op' })
  t = process.hrtime.bigint()
  for (const n of names) readFileSync(n)
  out.push({ name: 'read 4 KiB', value: opts.files / seconds(t), unit: 'files/s', higherIsBetter: true, ops: opts.files, per: 'file' })
  t = process.hrtime.bigint()
  for (const n of names) renameSync(n, n + 'r')
  out.push({ name: 'rename', value: opts.files / seconds(t), unit: 'ops/s', higherIsBetter: true, ops: opts.files, per: 'op' })
  t = process.hrtime.bigint()
  for (const n of names) unlinkSync(n + 'r')
  out.push({ name: 'unlink', value: opts.files / seconds(t), unit: 'ops/s', higherIsBetter: true, ops: opts.files, per: 'op' })

  // 10×10×10 directory tree.
  const tree = join(root, 'tree')
  mkdirSync(tree)
  t = process.hrtime.bigint()
  let dirs = 0
  const fan = opts.treeFanout ?? 10
  for (let a = 0; a < fan; a++) {
    mkdirSync(join(tree, `${a}`)); dirs++
    for (let b = 0; b < fan; b++) {
      mkdirSync(join(tree, `${a}`, `${b}`)); dirs++
      for (let c = 0; c < fan; c++) { mkdirSync(join(tree, `${a}`, `${b}`, `${c}`)); dirs++ }
    }
  }
  out.push({ name: 'mkdir', value: dirs / seconds(t), unit: 'dirs/s', higherIsBetter: true, ops: dirs, per: 'dir' })
  t = process.hrtime.bigint()
  const walk = (d: string): number => {
    let n = 0
    for (const e of readdirSync(d, { withFileTypes: true })) {
      n++
      if (e.isDirectory()) n += walk(join(d, e.name))
    }
    return n
  }
  const found = walk(tree)
  if (found !== dirs) throw new Error(`find in ${tree} saw ${found} directories, expected ${dirs}`)
  out.push({ name: 'find (readdir walk)', value: dirs / seconds(t), unit: 'dirs/s', higherIsBetter: true, ops: dirs, per: 'dir' })
  t = process.hrtime.bigint()
  rmSync(tree, { recursive: true })
  out.push({ name: 'rm -rf tree', value: dirs / seconds(t), unit: 'dirs/s', higherIsBetter: true, ops: dirs, per: 'dir' })

  // 4 KiB write + fsync latency.
  const lat: number[] = []
  fd = openSync(join(root, 'fsync.bin'), 'w')
  for (let i = 0; i < opts.fsyncSamples; i++) {
    const s = process.hrtime.bigint()
    writeSync(fd, four, 0, 4096, (i % 64) * 4096)
    fsyncSync(fd)
    lat.push(Number(process.hrtime.bigint() - s) / 1000)
  }
  closeSync(fd)
  out.push({ name: '4 KiB write+fsync p50', value: percentile(lat, 0.5), unit: 'µs', higherIsBetter: false, ops: opts.fsyncSamples, per: 'write+fsync' })
  out.push({ name: '4 KiB write+fsync p99', value: percentile(lat, 0.99), unit: 'µs', higherIsBetter: false })

  if (opts.rrdtool !== undefined) {
    const rrd = join(root, 'load.rrd')
    const start = 1699999980
    const run = (args: string[]): void => {
      const r = spawnSync(opts.rrdtool!, args, { encoding: 'utf8' })
      if (r.status !== 0) throw new Error(`${opts.rrdtool} ${args.join(' ')} failed: ${r.stderr.trim()}`)
    }
    run(['create', rrd, '--start', `${start}`, '--step', '60', 'DS:load:GAUGE:120:0:U', 'RRA:AVERAGE:0.5:1:1000', 'RRA:MAX:0.5:5:1000'])
    const n = opts.rrdUpdates ?? 100
    t = process.hrtime.bigint()
    for (let i = 1; i <= n; i++) run(['update', rrd, `${start + i * 60}:${i}`])
    out.push({ name: 'rrdtool update (1 process each)', value: n / seconds(t), unit: 'updates/s', higherIsBetter: true, ops: n, per: 'update' })
  }

  rmSync(root, { recursive: true, force: true })
  if (existsSync(root)) throw new Error(`could not clean ${root}`)
  return [...out] // a plain array: `out` may carry the progress `push`, which a worker cannot post
}

/** Prints targets side by side: one row per figure, one column per target. */
export function printTable (targets: string[], results: Map<string, Figure[][]>): void {
  const first = results.get(targets[0]!)![0]!
  const rows = first.map((f, i) => {
    const cells = targets.map((name) => {
      const rounds = results.get(name)!.map((r) => r[i]!.value)
      return median(rounds)
    })
    return { name: f.name, unit: f.unit, cells }
  })
  const header = ['figure', 'unit', ...targets]
  const lines = rows.map((r) => [r.name, r.unit, ...r.cells.map((v) => v >= 100 ? v.toFixed(0) : v.toFixed(1))])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)))
  const fmt = (cols: string[]) => cols.map((c, i) => i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join('  ')
  console.log(fmt(header))
  console.log(widths.map((w) => '-'.repeat(w)).join('  '))
  for (const l of lines) console.log(fmt(l))
}
