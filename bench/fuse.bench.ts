/**
 * FUSE binding costs on a real mount of the in-memory MapFs fixture (so the
 * figures are the binding's, not a store's): getattr round trips with
 * attribute caching off, and sequential write throughput with
 * big_writes,max_write=131072, through direct-I/O and through cached opens.
 * The load runs in a worker thread: the handlers need this main thread.
 * Args: --seconds=N (default 2) per getattr run, --mib=N (default 256) per write run.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { FuseMount, buildMountOptions, forceUnmount, type FuseContext, type OpenResult } from '../src/fuse/binding.js'
import { MapFs } from '../test/helpers/map-fs.js'

class CachedMapFs extends MapFs {
  override async open (ctx: FuseContext, path: string, flags: number): Promise<OpenResult> {
    return { ...(await super.open(ctx, path, flags)), directIo: false }
  }

  override async create (ctx: FuseContext, path: string, mode: number, flags: number): Promise<OpenResult> {
    return { ...(await super.create(ctx, path, mode, flags)), directIo: false }
  }
}

// Worker bodies (CommonJS eval): report { ops, ns } or { bytes, ns }.
const STAT_LOOP = `
const { workerData, parentPort } = require('node:worker_threads')
const fs = require('node:fs')
const end = process.hrtime.bigint() + BigInt(workerData.seconds * 1e9)
let ops = 0
const t0 = process.hrtime.bigint()
while (process.hrtime.bigint() < end) { for (let i = 0; i < 100; i++) fs.statSync(workerData.file); ops += 100 }
parentPort.postMessage({ ops, ns: Number(process.hrtime.bigint() - t0) })
`
const WRITE_LOOP = `
const { workerData, parentPort } = require('node:worker_threads')
const fs = require('node:fs')
const buf = Buffer.alloc(1 << 20, 7)
const fd = fs.openSync(workerData.file, 'w')
const t0 = process.hrtime.bigint()
for (let i = 0; i < workerData.mib; i++) fs.writeSync(fd, buf, 0, buf.length, i * buf.length)
fs.closeSync(fd)
parentPort.postMessage({ bytes: workerData.mib * buf.length, ns: Number(process.hrtime.bigint() - t0) })
`

function inWorker<T> (code: string, data: object): Promise<T> {
  return new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true, workerData: data })
    w.once('message', (m: T) => resolve(m))
    w.once('error', reject)
  })
}

async function withMount<T> (fs: MapFs, options: string[], body: (mnt: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'walkenfs-bench-'))
  const mnt = join(dir, 'mnt')
  const m = new FuseMount(mnt, fs, { options, mkdir: true })
  await m.mount()
  try {
    return await body(mnt)
  } finally {
    await m.unmount().catch(() => forceUnmount(mnt))
    rmSync(dir, { recursive: true, force: true })
  }
}

export async function run (args: string[]): Promise<void> {
  const num = (name: string, dflt: number): number => {
    const a = args.find((x) => x.startsWith(`--${name}=`))
    return a ? Number(a.slice(name.length + 3)) : dflt
  }
  const seconds = num('seconds', 2)
  const mib = num('mib', 256)
  const rows: Array<[string, string, string]> = []

  const stat = await withMount(new MapFs(), buildMountOptions({ attrTimeout: 0, entryTimeout: 0 }), async (mnt) => {
    const { promises: fsp } = await import('node:fs')
    await fsp.writeFile(join(mnt, 'f'), 'x')
    return inWorker<{ ops: number, ns: number }>(STAT_LOOP, { file: join(mnt, 'f'), seconds })
  })
  rows.push(['getattr round trip, attr cache off, 1 thread', `${Math.round(stat.ops / (stat.ns / 1e9))} ops/s`, `${(stat.ns / stat.ops / 1000).toFixed(1)} µs/op`])

  for (const [name, fs] of [['direct I/O open', new MapFs()], ['cached open', new CachedMapFs()]] as const) {
    const w = await withMount(fs, buildMountOptions({}), (mnt) =>
      inWorker<{ bytes: number, ns: number }>(WRITE_LOOP, { file: join(mnt, 'big'), mib }))
    const sizes = fs.callsOf('write').map((c) => c.args[1] as number)
    const avg = sizes.length ? sizes.reduce((a, b) => a + b, 0) / sizes.length : 0
    rows.push([`sequential write 1 MiB writes, big_writes,max_write=131072, ${name}`,
      `${(w.bytes / 2 ** 20 / (w.ns / 1e9)).toFixed(0)} MiB/s`, `avg request ${(avg / 1024).toFixed(0)} KiB (last ${sizes.length} logged)`])
  }

  const width = Math.max(...rows.map((r) => r[0].length))
  for (const [what, figure, note] of rows) console.log(`${what.padEnd(width)}  ${figure.padStart(12)}  ${note}`)
}
