/**
 * `walkenfs watch` on one host, measured on the filesystem model (no FUSE,
 * real lmdb): what a watcher costs the writers (small-file create + 1 KiB
 * write per second, without a watcher and with one following the whole
 * tree), and how long a change takes to reach the watcher (from the
 * model's write returning to the `written` event, p50/p99).
 * `npm run bench -- watch [--quick]`.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ModelFs } from '../src/fs/model.js'
import { ROOT_INO } from '../src/fs/types.js'
import { Watcher, type WatchLine } from '../src/fs/watcher.js'
import type { LocalTables } from '../src/tables/local.js'
import { median, percentile } from './stats.js'

const caller = { uid: 0, gid: 0, pid: 1 }

async function smallFiles (watch: boolean | 'feed', n: number): Promise<{ rate: number, events: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'walkenfs-bench-'))
  const fs = await ModelFs.open(dir, { fragments: 16 })
  let events = 0
  let w: Watcher | null = null
  try {
    if (watch === 'feed') await (fs.tables as LocalTables).changes().poll(0, null, 0) // records changes, nobody reads them
    else if (watch) {
      w = new Watcher({ tables: fs.tables, source: (fs.tables as LocalTables).changes(), path: '/', onLine: () => { events++ } })
      await w.start()
    }
    const d = await fs.mkdir(ROOT_INO, 'd', 0o755, caller)
    const body = Buffer.alloc(1024, 7)
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < n; i++) {
      const f = await fs.mknod(d.ino, `f${i}`, 0o100644, 0, caller)
      await fs.write(f.ino, 0, body)
    }
    const rate = n / (Number(process.hrtime.bigint() - t0) / 1e9)
    if (w) while (events < 2 * n + 1) await new Promise((resolve) => setTimeout(resolve, 5))
    return { rate, events }
  } finally {
    await w?.stop()
    await fs.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

const writes: number[] = []

async function latency (n: number): Promise<number[]> {
  const dir = mkdtempSync(join(tmpdir(), 'walkenfs-bench-'))
  const fs = await ModelFs.open(dir, { fragments: 16 })
  const f = await fs.mknod(ROOT_INO, 'conf', 0o100644, 0, caller)
  let wake: ((at: bigint) => void) | null = null
  const w = new Watcher({
    tables: fs.tables,
    source: (fs.tables as LocalTables).changes(),
    path: '/conf',
    onLine: (l: WatchLine) => { if (l.kind === 'written' && wake) wake(process.hrtime.bigint()) }
  })
  await w.start()
  const out: number[] = []
  try {
    for (let i = 0; i < n; i++) {
      const seen = new Promise<bigint>((resolve) => { wake = resolve })
      const t0 = process.hrtime.bigint()
      await fs.write(f.ino, 0, Buffer.from(`version ${i}\n`))
      const t1 = process.hrtime.bigint()
      const t2 = await seen
      out.push(Number(t2 - t0) / 1e3)
      writes.push(Number(t1 - t0) / 1e3)
    }
    return out
  } finally {
    await w.stop()
    await fs.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

export async function run (args: string[]): Promise<void> {
  const quick = args.includes('--quick')
  const n = quick ? 1000 : 5000
  const reps = quick ? 1 : 3
  const plain: number[] = []
  const feed: number[] = []
  const watched: number[] = []
  for (let r = 0; r < reps; r++) {
    plain.push((await smallFiles(false, n)).rate)
    feed.push((await smallFiles('feed', n)).rate)
    watched.push((await smallFiles(true, n)).rate)
  }
  console.log(`small files (create + 1 KiB write), ${n} per round, median of ${reps} interleaved round(s):`)
  console.log(`  no watcher        ${Math.round(median(plain))} files/s`)
  console.log(`  feed recording    ${Math.round(median(feed))} files/s   (old values read, ring kept, nobody reading)`)
  console.log(`  watching /        ${Math.round(median(watched))} files/s   (a watcher in the same process translating every change)`)
  const lat = await latency(quick ? 200 : 1000)
  console.log(`write called → written event (one host, model level): p50 ${Math.round(percentile(lat, 0.5))} µs, p99 ${Math.round(percentile(lat, 0.99))} µs` +
    ` (the write itself: p50 ${Math.round(percentile(writes, 0.5))} µs)`)
}
