/**
 * The filesystem model measured directly (no FUSE): creates/s, stat/s,
 * small-file create+write+read/s, sequential write and read MiB/s in 128 KiB
 * chunks (what the adapter sends), and fsync latency, on a real lmdb store in
 * a temp dir, for several block sizes and with/without inlining. These are
 * the figures behind the defaults (64 KiB blocks, 1920 B inline).
 * `npm run bench -- fs-model [--quick]`.
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ModelFs } from '../src/fs/model.js'
import { ROOT_INO } from '../src/fs/types.js'
import { median } from './stats.js'

const caller = { uid: 0, gid: 0, pid: 1 }
const CHUNK = 128 * 1024

interface Result { config: string, creates: number, stats: number, lookups: number, small: number, writeMiB: number, readMiB: number, fsyncP50: number, fsyncP99: number, unlinkMs: number }

function secs (start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9
}

async function measure (blockSize: number, inlineMax: number, quick: boolean): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'walkenfs-bench-'))
  const fs = await ModelFs.open(dir, { blockSize, inlineMax, fragments: 16 })
  try {
    const nCreate = quick ? 2000 : 10000
    const d = await fs.mkdir(ROOT_INO, 'd', 0o755, caller)
    let t0 = process.hrtime.bigint()
    const inos: number[] = []
    for (let i = 0; i < nCreate; i++) inos.push((await fs.mknod(d.ino, `file-${i}`, 0o100644, 0, caller)).ino)
    const creates = nCreate / secs(t0)

    const nStat = quick ? 20000 : 100000
    t0 = process.hrtime.bigint()
    for (let i = 0; i < nStat; i++) await fs.getattr(inos[i % inos.length])
    const stats = nStat / secs(t0)
    t0 = process.hrtime.bigint()
    for (let i = 0; i < nStat; i++) await fs.lookup(d.ino, `file-${i % inos.length}`)
    const lookups = nStat / secs(t0)

    // small files: create, write 1 KiB, read it back (config files, RRD headers)
    const small = Buffer.alloc(1024, 7)
    const s = await fs.mkdir(ROOT_INO, 's', 0o755, caller)
    t0 = process.hrtime.bigint()
    for (let i = 0; i < nCreate; i++) {
      const f = await fs.mknod(s.ino, `small-${i}`, 0o100644, 0, caller)
      await fs.write(f.ino, 0, small)
      await fs.read(f.ino, 0, 4096)
    }
    const smallRate = nCreate / secs(t0)

    const total = (quick ? 128 : 512) * 1024 * 1024
    const chunk = Buffer.alloc(CHUNK)
    for (let i = 0; i < CHUNK; i++) chunk[i] = (i * 31) & 0xff
    const big = await fs.mknod(ROOT_INO, 'big', 0o100644, 0, caller)
    t0 = process.hrtime.bigint()
    for (let off = 0; off < total; off += CHUNK) await fs.write(big.ino, off, chunk)
    await fs.fsync()
    const writeMiB = total / 1048576 / secs(t0)
    t0 = process.hrtime.bigint()
    for (let off = 0; off < total; off += CHUNK) await fs.read(big.ino, off, CHUNK)
    const readMiB = total / 1048576 / secs(t0)

    const lat: number[] = []
    const one = Buffer.alloc(4096, 1)
    for (let i = 0; i < (quick ? 200 : 1000); i++) {
      await fs.write(big.ino, i * 4096, one)
      const s0 = process.hrtime.bigint()
      await fs.fsync()
      lat.push(Number(process.hrtime.bigint() - s0) / 1000)
    }
    lat.sort((a, b) => a - b)
    t0 = process.hrtime.bigint()
    await fs.unlink(ROOT_INO, 'big')
    const unlinkMs = secs(t0) * 1000
    return {
      unlinkMs,
      config: `block ${blockSize / 1024} KiB, inline ${inlineMax} B`,
      creates, stats, lookups, small: smallRate, writeMiB, readMiB,
      fsyncP50: lat[Math.floor(lat.length * 0.5)], fsyncP99: lat[Math.floor(lat.length * 0.99)]
    }
  } finally {
    await fs.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The device's own cost: write 4 KiB into a file and fdatasync it (same temp dir). */
function rawFdatasync (n: number): { p50: number, p99: number } {
  const dir = mkdtempSync(join(tmpdir(), 'walkenfs-bench-'))
  const fd = openSync(join(dir, 'f'), 'w')
  const b = Buffer.alloc(4096, 1)
  const lat: number[] = []
  try {
    for (let i = 0; i < n; i++) {
      writeSync(fd, b, 0, b.length, (i % 256) * 4096)
      const s0 = process.hrtime.bigint()
      fdatasyncSync(fd)
      lat.push(Number(process.hrtime.bigint() - s0) / 1000)
    }
  } finally {
    closeSync(fd)
    rmSync(dir, { recursive: true, force: true })
  }
  lat.sort((a, b) => a - b)
  return { p50: lat[Math.floor(n * 0.5)], p99: lat[Math.floor(n * 0.99)] }
}

export async function run (args: string[]): Promise<void> {
  const quick = args.includes('--quick')
  const reps = quick ? 1 : 3
  const configs: Array<[number, number]> = [[16384, 1920], [65536, 0], [65536, 1920], [262144, 1920]]
  // Rounds interleave the configurations so that a noisy moment of the
  // machine does not land on one configuration only; each figure is the
  // median over the rounds.
  const runs: Result[][] = configs.map(() => [])
  for (let round = 0; round < reps; round++) {
    for (let c = 0; c < configs.length; c++) runs[c].push(await measure(configs[c][0], configs[c][1], quick))
  }
  const keys = ['creates', 'stats', 'lookups', 'small', 'writeMiB', 'readMiB', 'fsyncP50', 'fsyncP99', 'unlinkMs'] as const
  const rows: Result[] = runs.map((rs) => {
    const out = { ...rs[0] }
    for (const k of keys) out[k] = median(rs.map((r) => r[k]))
    return out
  })
  console.log(`median of ${reps} interleaved round(s)`)
  const head = ['config', 'creates/s', 'getattr/s', 'lookup/s', 'small file c+w+r/s', 'seq write MiB/s', 'seq read MiB/s', 'fsync p50 µs', 'fsync p99 µs', 'unlink of the big file ms']
  console.log(head.join(' | '))
  for (const r of rows) {
    console.log([r.config, r.creates, r.stats, r.lookups, r.small, r.writeMiB, r.readMiB, r.fsyncP50, r.fsyncP99, r.unlinkMs]
      .map((v) => typeof v === 'number' ? Math.round(v).toString() : v).join(' | '))
  }
  const raw = rawFdatasync(quick ? 200 : 1000)
  console.log(`for comparison, the device: write 4 KiB + fdatasync p50 ${Math.round(raw.p50)} µs, p99 ${Math.round(raw.p99)} µs`)
}
