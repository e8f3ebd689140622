/**
 * One-host filesystem benchmark: the fixed workload on walkenfs, on a plain
 * local directory and on bindfs (a C FUSE passthrough from Debian), side by
 * side in one run, alternating the targets round by round; prints medians.
 *
 * Options: --rounds N (default 3), --quick (small sizes, for a smoke run),
 * --targets walkenfs,local,bindfs
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isMountPoint } from '../src/fuse/mount-table.js'
import { DEFAULT_WORKLOAD, printTable, runWorkload, type Figure, type WorkloadOptions } from './workload.js'

const here = dirname(fileURLToPath(import.meta.url))
const walkenfs = join(here, '..', 'src', 'cli', 'main.js')

interface Target {
  name: string
  setUp: () => string
  tearDown: () => void
}

function arg (args: string[], name: string): string | undefined {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : undefined
}

function makeTargets (base: string): Target[] {
  const local = join(base, 'local')
  const bindSrc = join(base, 'bind-src')
  const bindMnt = join(base, 'bind-mnt')
  const wData = join(base, 'w-data')
  const wMnt = join(base, 'w-mnt')
  return [
    {
      name: 'walkenfs',
      setUp: () => {
        mkdirSync(wMnt, { recursive: true })
        execFileSync(process.execPath, [walkenfs, 'mount', wMnt, '-o', `data=${wData}`], { stdio: 'inherit' })
        return wMnt
      },
      tearDown: () => { execFileSync(process.execPath, [walkenfs, 'umount', wMnt], { stdio: 'inherit' }) }
    },
    {
      name: 'local',
      setUp: () => { mkdirSync(local, { recursive: true }); return local },
      tearDown: () => {}
    },
    {
      name: 'bindfs',
      setUp: () => {
        mkdirSync(bindSrc, { recursive: true })
        mkdirSync(bindMnt, { recursive: true })
        // Same kernel caching as walkenfs' defaults, so stat is compared with the attribute cache off.
        execFileSync('bindfs', ['-o', 'attr_timeout=0,entry_timeout=1,negative_timeout=0,big_writes,max_write=131072', bindSrc, bindMnt])
        return bindMnt
      },
      tearDown: () => { spawnSync('umount', [bindMnt]) }
    }
  ]
}

export async function run (args: string[]): Promise<void> {
  const rounds = Number(arg(args, '--rounds') ?? (args.includes('--quick') ? 1 : 3))
  const wanted = (arg(args, '--targets') ?? 'walkenfs,local,bindfs').split(',')
  const opts: WorkloadOptions = args.includes('--quick')
    ? { seqBytes: 32 * 1024 * 1024, files: 300, fsyncSamples: 100, dropCaches: true }
    : DEFAULT_WORKLOAD
  const base = mkdtempSync('/var/tmp/walkenfs-bench-')
  const targets = makeTargets(base).filter((t) => wanted.includes(t.name))
  const results = new Map<string, Figure[][]>(targets.map((t) => [t.name, []]))
  console.log(`fs workload: ${opts.seqBytes / 1048576} MiB sequential, ${opts.files} × 4 KiB files, 10×10×10 dirs, ${opts.fsyncSamples} fsyncs; ${rounds} round(s), medians`)
  try {
    for (let r = 0; r < rounds; r++) {
      // Alternate the order so no target always runs on a warmer machine.
      const order = r % 2 === 0 ? targets : [...targets].reverse()
      for (const t of order) {
        const dir = t.setUp()
        try {
          results.get(t.name)!.push(runWorkload(dir, opts))
        } finally {
          t.tearDown()
        }
      }
    }
    printTable(targets.map((t) => t.name), results)
  } finally {
    // A round that failed half way may have left a mount behind.
    for (const mnt of ['w-mnt', 'bind-mnt']) {
      if (isMountPoint(join(base, mnt))) spawnSync('umount', ['-l', join(base, mnt)])
    }
    rmSync(base, { recursive: true, force: true })
  }
}
