/**
 * The one-host torture run: mounts walkenfs on a data directory that is a
 * small tmpfs of its own, starts client processes (client.ts) that log
 * their operations, and lets a seeded nemesis mix `kill -9` of the daemon
 * with restart, SIGSTOP/SIGCONT pauses and a full data directory while they
 * run. Afterwards it unmounts cleanly, runs `walkenfs check`, remounts,
 * reads the final state and hands history and state to the checkers.
 *
 * Besides the checkers' anomalies the harness itself reports: `walkenfs
 * check` not clean after a crash or at the end, a mount that fails after a
 * crash (the host would need manual repair), a daemon that died without
 * being killed, a full disk that gives the prober no ENOSPC or does not
 * recover once space is freed, and clients that do not finish.
 *
 * Everything it starts (clients, daemon, mounts, tmpfs, temp dir) is ended
 * and removed by `cleanup`, which is safe to call at any time and twice.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, chmodSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { seededRng, type Rng } from '../../src/raft/rng.js'
import { isAlive, readRecord, removeRecord } from '../../src/cli/daemon.js'
import { findMount } from '../../src/fuse/mount-table.js'
import { forceUnmount, walkenfs } from '../helpers/mount.js'
import { appendName, registerName, ROOT, SHARED_DIRS, type ClientArgs } from './client.js'
import { checkHistory, type Anomaly } from './checkers.js'
import { fillDataDir, probeUntilOk, probeWrite, readFinal, syncedCreate } from './final-state.js'
import { readClientLogs, type Op } from './history.js'

const CLIENT = join(dirname(fileURLToPath(import.meta.url)), 'client.js')

export interface TortureOptions {
  seed: number
  durationMs: number
  clients?: number
  registers?: number
  appendFiles?: number
  /** size of the data directory's tmpfs, MiB */
  dataMiB?: number
  /** environment of the walkenfs daemon (default: this process's) */
  env?: NodeJS.ProcessEnv
  /** progress lines (nemesis actions) */
  log?: (line: string) => void
}

export interface TortureResult {
  seed: number
  operations: number
  anomalies: Anomaly[]
  harness: string[]
  ops: Op[]
  stats: { kills: number, pauses: number, fills: number, unknown: number, failedReads: number, clientEnospc: number, proberEnospc: number }
}

export interface Torture {
  run: () => Promise<TortureResult>
  cleanup: () => void
}

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))
/** A timer that bounds a wait without keeping the process alive once the wait is over. */
const deadline = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms).unref())

export function torture (opts: TortureOptions): Torture {
  const log = opts.log ?? (() => {})
  const base = mkdtempSync('/var/tmp/walkenfs-torture-')
  chmodSync(base, 0o755)
  const mnt = join(base, 'mnt')
  const data = join(base, 'data')
  const logs = join(base, 'logs')
  mkdirSync(mnt)
  mkdirSync(data)
  mkdirSync(logs)
  const clients: ChildProcess[] = []
  let tmpfs = false
  let paused = -1

  const cleanup = (): void => {
    for (const c of clients) { if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL') }
    if (paused > 0) { try { process.kill(paused, 'SIGCONT') } catch { /* gone */ } }
    forceUnmount(mnt)
    removeRecord(mnt)
    if (tmpfs) {
      if (spawnSync('umount', [data]).status !== 0) spawnSync('umount', ['-l', data])
      tmpfs = false
    }
    rmSync(base, { recursive: true, force: true })
  }

  const run = async (): Promise<TortureResult> => {
    const rng = seededRng(opts.seed)
    const nClients = opts.clients ?? 4
    const registers = opts.registers ?? 8
    const appendFiles = opts.appendFiles ?? 3
    const harness: string[] = []
    const stats = { kills: 0, pauses: 0, fills: 0, unknown: 0, failedReads: 0, clientEnospc: 0, proberEnospc: 0 }
    const problem = (m: string): void => { harness.push(m); log(`ANOMALY ${m}`) }

    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${opts.dataMiB ?? 64}m`, 'walkenfs-torture', data], { encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`cannot mount a tmpfs for the data directory (needs root): ${r.stderr}`)
    tmpfs = true
    const mount = (): boolean => {
      const m = walkenfs(['mount', mnt, '-o', `data=${join(data, 'store')}`], { env: opts.env })
      if (m.status !== 0) log(`mount failed: ${m.stderr.trim()} [mounted: ${JSON.stringify(findMount(mnt))}]`)
      return m.status === 0
    }
    const check = (when: string): void => {
      const c = walkenfs(['check', join(data, 'store')])
      if (c.status !== 0) problem(`walkenfs check not clean ${when}: ${(c.stdout + c.stderr).trim().slice(0, 500)}`)
    }
    const daemon = (): number => readRecord(mnt)?.pid ?? -1

    if (!mount()) throw new Error('the first mount failed')
    const root = join(mnt, ROOT)
    mkdirSync(root)
    for (let i = 0; i < registers; i++) syncedCreate(join(root, registerName(i)))
    for (let i = 0; i < appendFiles; i++) syncedCreate(join(root, appendName(i)))
    for (const dir of SHARED_DIRS) mkdirSync(join(root, dir))

    const until = Date.now() + opts.durationMs
    const exits: Array<Promise<void>> = []
    for (let c = 0; c < nClients; c++) {
      const args: ClientArgs = { mnt, log: join(logs, `client${c}.log`), client: c, seed: opts.seed * 31 + c + 1, until, registers, appendFiles }
      const child = spawn(process.execPath, [CLIENT, JSON.stringify(args)], { stdio: ['ignore', 'ignore', 'pipe'] })
      let stderr = ''
      child.stderr!.on('data', (d: Buffer) => { if (stderr.length < 2000) stderr += d.toString() })
      clients.push(child)
      exits.push(new Promise((resolve) => child.on('exit', (code) => {
        if (code !== 0) problem(`client ${c} exited with ${code}: ${stderr.trim()}`)
        resolve()
      })))
    }

    // Recovery the way an operator's init script does it: clear the dead mount, check, mount.
    const restart = async (why: string): Promise<void> => {
      forceUnmount(mnt)
      check(`after ${why}`)
      for (let attempt = 0; attempt < 3; attempt++) {
        if (mount()) return
        await sleep(500)
      }
      problem(`cannot mount again after ${why}: the host needs manual repair`)
      throw new Error('remount failed')
    }

    // the nemesis keeps the last seconds quiet so every client can finish its current call
    while (Date.now() < until - 3000) {
      await sleep(300 + rng.int(2200))
      if (Date.now() >= until - 3000) break
      const pid = daemon()
      if (pid < 0 || !isAlive(pid) || findMount(mnt) === undefined) {
        problem('the daemon died without being killed')
        await restart('an unexpected daemon death')
        continue
      }
      const pick = rng.int(100)
      if (pick < 35) {
        stats.kills++
        log(`kill -9 ${pid}`)
        process.kill(pid, 'SIGKILL')
        const deadline = Date.now() + 10_000
        while (isAlive(pid) && Date.now() < deadline) await sleep(20)
        await restart('kill -9')
      } else if (pick < 70) {
        const ms = 200 + rng.int(1800)
        stats.pauses++
        log(`SIGSTOP ${pid} for ${ms} ms`)
        paused = pid
        process.kill(pid, 'SIGSTOP')
        await sleep(ms)
        process.kill(pid, 'SIGCONT')
        paused = -1
      } else if (pick < 90) {
        stats.fills++
        await fullDisk(rng, data, root, log, problem, stats)
      }
    }
    await Promise.race([Promise.all(exits), deadline(Math.max(0, until - Date.now()) + 60_000)])
    for (const [c, child] of clients.entries()) {
      if (child.exitCode === null && child.signalCode === null) problem(`client ${c} did not finish its last call within 60 s after the run`)
    }

    const end = walkenfs(['umount', mnt])
    if (end.status !== 0) problem(`clean umount failed at the end: ${end.stderr.trim()}`)
    forceUnmount(mnt)
    check('at the end')
    if (!mount()) {
      problem('cannot mount at the end: the host needs manual repair')
      throw new Error('final mount failed')
    }
    const final = readFinal(root, registers, appendFiles)
    walkenfs(['umount', mnt])
    forceUnmount(mnt)
    check('after reading the final state')

    const ops = readClientLogs(logs, nClients)
    for (const op of ops) {
      if (op.outcome === 'unknown') stats.unknown++
      if (op.outcome === 'fail') stats.failedReads++
      if (op.err === 'ENOSPC') stats.clientEnospc++
    }
    const anomalies = [...checkHistory(ops, final), ...harness.map((message) => ({ checker: 'harness' as const, message }))]
    return { seed: opts.seed, operations: ops.length, anomalies, harness, ops, stats }
  }

  return { run, cleanup }
}

/**
 * Fills the data tmpfs with a file of its own, checks that a write through
 * the mount gets ENOSPC, holds it full a moment (clients meet ENOSPC too),
 * frees the space and checks that writing through the mount works again.
 */
async function fullDisk (rng: Rng, data: string, root: string, log: (l: string) => void, problem: (m: string) => void, stats: { proberEnospc: number }): Promise<void> {
  const filler = join(data, 'filler')
  const mib = fillDataDir(data)
  const hold = 500 + rng.int(2000)
  log(`data directory full (filler ${mib} MiB) for ${hold} ms`)
  const probe = join(root, 'probe')
  const before = await probeWrite(probe, 4)
  if (before === 'ENOSPC') stats.proberEnospc++
  else log(`probe write on a full disk: ${before}`)
  await sleep(hold)
  unlinkSync(filler)
  const after = await probeUntilOk(probe, 4, 50, 100)
  if (after !== 'ok') problem(`writes still fail (${after}) 5 s after space was freed`)
  try { unlinkSync(probe) } catch { /* probe not created */ }
}

