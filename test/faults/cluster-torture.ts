/**
 * The cluster torture run: a cluster of real walkenfs hosts (default 5),
 * each in its own network namespace on one bridge, with its own FUSE mount
 * and a data directory that is a small tmpfs of its own (MountLab,
 * test/net/mount-lab.ts). Client processes (client.ts) on every host's mount
 * share the same register files, append files and directory, so anomalies
 * between hosts show. A seeded nemesis (nemesis.ts picks, this module acts)
 * mixes partitions (majority/minority, one host, the busiest leader,
 * one-way cuts, flapping), kill -9 and restart, SIGSTOP/SIGCONT pauses
 * longer than the election timeout, a full data directory, and a restart
 * with a different address. Each action is logged with its time.
 *
 * At the end it heals everything, waits until every host's status is
 * healthy, reads the final state on every host (they must agree), runs
 * `walkenfs check --replicas` and `walkenfs check`, and hands history and
 * final state to the checkers (checkers.ts). Stale reads, which a host
 * serves by design when it gets no ReadIndex answer, are told apart by
 * polling every host's count of them (status `staleReads`): reads that
 * overlap a time when some host's count grew are checked weakly.
 *
 * Besides the checkers' anomalies the harness reports: a host that cannot
 * mount again after a crash (manual repair), a daemon that died without
 * being killed, a cluster not healthy after healing, hosts that read
 * different final states, replicas that differ, `walkenfs check` not clean,
 * a write through a host with a full disk that hangs or fails otherwise
 * than ENOSPC, a full disk after which writes through the host do not recover, a new
 * address the cluster does not take up, clients that do not finish.
 *
 * Everything it starts (clients, daemons, mounts, tmpfs, namespaces, temp
 * dirs) is ended and removed by `cleanup`, safe at any time and twice.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, unlinkSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { seededRng, type Rng } from '../../src/raft/rng.js'
import { askControl } from '../../src/cli/control.js'
import { findMount } from '../../src/fuse/mount-table.js'
import { MountLab, type ClusterHost } from '../net/mount-lab.js'
import type { LabOwner } from '../net/netns.js'
import { appendName, registerName, ROOT, SHARED_DIRS, type ClientArgs } from './client.js'
import { checkHistory, type Anomaly, type FinalState } from './checkers.js'
import { fillDataDir, probeWrite, readFinal, syncedCreate } from './final-state.js'
import { now, readClientLogs, type Op } from './history.js'
import { FAULT_KINDS, faultSequence, shuffled, type FaultKind, type NemesisMix } from './nemesis.js'

const CLIENT = join(dirname(fileURLToPath(import.meta.url)), 'client.js')

export interface ClusterTortureOptions {
  seed: number
  durationMs: number
  hosts?: number
  /** client processes, spread over the hosts' mounts round robin (default: one per host) */
  clients?: number
  registers?: number
  /** clients of every host append to the same files (O_APPEND between hosts: not atomic today, docs/torture.md) */
  sharedAppends?: boolean
  /** size of each host's data tmpfs, MiB */
  dataMiB?: number
  /** extra environment of every daemon (a test-only switch) */
  env?: NodeJS.ProcessEnv
  /** which faults, how often (nemesis.ts) */
  mix?: NemesisMix
  /** progress lines (nemesis actions) */
  log?: (line: string) => void
}

export interface ClusterTortureResult {
  seed: number
  operations: number
  anomalies: Anomaly[]
  harness: string[]
  ops: Op[]
  faults: Record<FaultKind, number>
  stats: {
    unknown: number
    failedReads: number
    clientEnospc: number
    proberEnospc: number
    clientErofs: number
    staleReads: number
    weaklyChecked: number
  }
}

export interface ClusterTorture {
  run: () => Promise<ClusterTortureResult>
  cleanup: () => void
}

/** Cluster settings: fast failure detection, short quorum_wait so faults resolve in seconds; no replacement of hosts (replace_after stays 10 min). */
const SETTINGS = ['heartbeat_ms=200', 'quorum_wait=3s', 'fragments=8', 'copies=3']
/** Raft's election timeout is 1–2 s (10 ticks of 100 ms, randomized); pauses last longer. */
const PAUSE_MIN_MS = 2500

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))
const deadline = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms).unref())

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

export function clusterTorture (opts: ClusterTortureOptions): ClusterTorture {
  const log = opts.log ?? (() => {})
  const teardowns: Array<() => void> = []
  let failed = false
  const owner: LabOwner = {
    teardown: (fn) => { teardowns.push(fn) },
    passing: () => !failed,
    comment: (...m) => { log(m.join(' ')) }
  }
  const lab = new MountLab(owner, 'torture', opts.env ?? {})
  const clients: ChildProcess[] = []
  const paused = new Set<number>()
  const tmpfs: string[] = []
  // after the daemons are gone (MountLab's own beforeDestroy runs first), before the Lab removes its directory
  lab.lab.beforeDestroy.push(() => {
    for (const d of tmpfs.splice(0)) if (spawnSync('umount', [d]).status !== 0) spawnSync('umount', ['-l', d])
  })
  let cleaned = false

  const cleanup = (): void => {
    if (cleaned) return
    cleaned = true
    for (const c of clients) { if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL') }
    for (const pid of paused) { try { process.kill(pid, 'SIGCONT') } catch { /* gone */ } }
    for (const fn of teardowns.splice(0).reverse()) { try { fn() } catch (e) { log(`cleanup: ${(e as Error).message}`) } }
  }

  const run = async (): Promise<ClusterTortureResult> => {
    const rng = seededRng(opts.seed)
    const nHosts = opts.hosts ?? 5
    const nClients = opts.clients ?? nHosts
    const registers = opts.registers ?? 6
    // one append file per host: its clients append there, every client reads all of them
    const appendFiles = nHosts
    const harness: string[] = []
    const faults = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>
    const stats = { unknown: 0, failedReads: 0, clientEnospc: 0, proberEnospc: 0, clientErofs: 0, staleReads: 0, weaklyChecked: 0 }
    const problem = (m: string): void => { failed = true; harness.push(m); log(`ANOMALY ${m}`) }

    // ---- the cluster ----------------------------------------------------------------------
    const hosts: ClusterHost[] = []
    for (let i = 0; i < nHosts; i++) {
      const h = lab.addHost(SETTINGS)
      const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${opts.dataMiB ?? 256}m`, `walkenfs-torture-${h.id}`, h.data], { encoding: 'utf8' })
      if (r.status !== 0) throw new Error(`cannot mount a tmpfs for ${h.id}'s data directory (needs root): ${r.stderr}`)
      tmpfs.push(h.data)
      hosts.push(h)
    }
    const peers = lab.peersOption()
    for (const h of hosts) h.opts.push(peers, `expect=${nHosts}`)
    log(`mounting ${nHosts} hosts`)
    await Promise.all(hosts.map(async (h) => { await lab.mustMount(h) }))

    const status = async (h: ClusterHost, ms = 1500): Promise<any> => await askControl(lab.controlSocket(h), 'status', {}, ms)
    const everyFragmentHasVoters = async (): Promise<boolean> => {
      try {
        const s = await status(hosts[0]!)
        return s.cluster.fragments.length > 0 && s.cluster.fragments.every((f: any) =>
          f.leader !== null && f.replicas.filter((r: any) => r.role === 'voter').length === 3)
      } catch { return false }
    }
    const startWait = Date.now()
    while (!(await everyFragmentHasVoters())) {
      if (Date.now() - startWait > 180_000) throw new Error('the cluster did not place 3 voters for every fragment within 180 s')
      await sleep(250)
    }
    log(`cluster ready in ${((Date.now() - startWait) / 1000).toFixed(1)} s`)

    const root = join(hosts[0]!.mnt, ROOT)
    mkdirSync(root)
    for (let i = 0; i < registers; i++) syncedCreate(join(root, registerName(i)))
    for (let i = 0; i < appendFiles; i++) syncedCreate(join(root, appendName(i)))
    for (const dir of SHARED_DIRS) mkdirSync(join(root, dir))

    // ---- stale-read windows: any host's count of stale reads grew between two polls -------
    const windows: Array<[number, number]> = []
    let staleServed = 0
    const lastPoll = new Map<ClusterHost, { sent: number, pid: number | null, count: number }>()
    const pollOne = async (h: ClusterHost): Promise<void> => {
      const sent = now()
      const pid = lab.daemonPid(h)
      let count: number
      try { count = (await status(h)).staleReads as number } catch { return }
      const prev = lastPoll.get(h)
      const delta = prev !== undefined && prev.pid === pid ? count - prev.count : count
      if (delta > 0) {
        windows.push([prev?.sent ?? 0, now()])
        staleServed += delta
      }
      lastPoll.set(h, { sent, pid, count })
    }
    let polling = true
    const poller = (async () => {
      while (polling) {
        await Promise.all(hosts.filter((h) => !paused.has(lab.daemonPid(h) ?? -1)).map(pollOne))
        await sleep(250)
      }
    })()
    /** Before a daemon dies its last count is lost: poll it, and count the time up to its death as a window. */
    const lastWords = async (h: ClusterHost): Promise<number> => {
      await pollOne(h)
      return lastPoll.get(h)?.sent ?? now()
    }

    // ---- clients ---------------------------------------------------------------------------
    const logs = join(lab.lab.dir, 'logs')
    mkdirSync(logs)
    const until = Date.now() + opts.durationMs
    const clientHost = new Map<number, ClusterHost>()
    const exits: Array<Promise<void>> = []
    for (let c = 0; c < nClients; c++) {
      const h = hosts[c % nHosts]!
      clientHost.set(c, h)
      const args: ClientArgs = {
        mnt: h.mnt, log: join(logs, `client${c}.log`), client: c, seed: opts.seed * 31 + c + 1, until, registers, appendFiles,
        appendOnly: opts.sharedAppends === true ? undefined : c % nHosts
      }
      const child = spawn(process.execPath, [CLIENT, JSON.stringify(args)], { stdio: ['ignore', 'ignore', 'pipe'] })
      let stderr = ''
      child.stderr!.on('data', (d: Buffer) => { if (stderr.length < 2000) stderr += d.toString() })
      clients.push(child)
      exits.push(new Promise((resolve) => child.on('exit', (code) => {
        if (code !== 0) problem(`client ${c} (on ${h.id}) exited with ${code}: ${stderr.trim()}`)
        resolve()
      })))
    }
    log(`${nClients} clients on ${hosts.map((h) => h.id).join(', ')}`)

    // ---- nemesis actions -------------------------------------------------------------------
    const ports = (hs: ClusterHost[]): string[] => hs.map((h) => `p0h${h.n}`)
    const split = (a: ClusterHost[], b: ClusterHost[]): Array<{ from: string[], to: string[] }> =>
      [{ from: ports(a), to: ports(b) }, { from: ports(b), to: ports(a) }]
    const names = (hs: ClusterHost[]): string => hs.map((h) => h.id).join('+')
    const others = (h: ClusterHost): ClusterHost[] => hosts.filter((x) => x !== h)
    const hold = async (min: number, spread: number): Promise<void> => { await sleep(min + rng.int(spread)) }
    const heal = (): void => { lab.lab.setCuts([]) }

    const remount = async (h: ClusterHost, why: string): Promise<void> => {
      if (findMount(h.mnt) !== undefined && spawnSync('umount', [h.mnt]).status !== 0) spawnSync('umount', ['-l', h.mnt])
      for (let attempt = 0; attempt < 3; attempt++) {
        const r = await lab.mount(h)
        if (r.code === 0) return
        log(`mount of ${h.id} failed after ${why} (attempt ${attempt + 1}): ${r.stderr.trim().slice(0, 300)}`)
        await sleep(1000)
      }
      problem(`${h.id} cannot mount again after ${why}: the host needs manual repair`)
      throw new Error(`remount of ${h.id} failed`)
    }
    const kill9 = async (h: ClusterHost): Promise<void> => {
      const pid = lab.daemonPid(h)
      if (pid === null) return
      const from = await lastWords(h)
      process.kill(pid, 'SIGKILL')
      const end = Date.now() + 10_000
      while (alive(pid) && Date.now() < end) await sleep(20)
      windows.push([from, now()])
    }
    const leaderHost = async (): Promise<ClusterHost> => {
      const leads = new Map<string, number>()
      for (const h of hosts) {
        try {
          for (const f of (await status(h)).cluster.fragments) if (f.leader !== null) leads.set(f.leader, (leads.get(f.leader) ?? 0) + 1)
          break
        } catch { /* ask the next host */ }
      }
      const id = [...leads.entries()].sort((a, b) => b[1] - a[1])[0]?.[0]
      return hosts.find((h) => h.id === id) ?? hosts[rng.int(nHosts)]!
    }

    /** A daemon that died without being killed is an anomaly; the host is restarted as an init script would. */
    const reviveDead = async (): Promise<void> => {
      for (const h of hosts) {
        const pid = lab.daemonPid(h)
        if (pid === null || !alive(pid) || findMount(h.mnt) === undefined) {
          problem(`the daemon of ${h.id} died without being killed: ${lab.logTail(h, 12).replace(/\s+/g, ' ').slice(-600)}`)
          await remount(h, 'an unexpected daemon death')
        }
      }
    }
    const act = async (kind: FaultKind): Promise<void> => {
      faults[kind]++
      const victim = hosts[rng.int(nHosts)]!
      switch (kind) {
        case 'split': {
          const order = shuffled(rng, hosts)
          const minority = order.slice(0, Math.floor(nHosts / 2))
          const majority = order.slice(minority.length)
          log(`partition: ${names(minority)} | ${names(majority)}`)
          lab.lab.setCuts(split(minority, majority))
          await hold(2000, 4000)
          break
        }
        case 'isolate':
          log(`partition: ${victim.id} isolated`)
          lab.lab.setCuts(split([victim], others(victim)))
          await hold(2000, 4000)
          break
        case 'isolate-leader': {
          const l = await leaderHost()
          log(`partition: leader ${l.id} isolated`)
          lab.lab.setCuts(split([l], others(l)))
          await hold(2000, 4000)
          break
        }
        case 'one-way': {
          const mute = rng.int(2) === 0
          log(`one-way cut: ${victim.id} ${mute ? 'cannot send (hears the others)' : 'cannot hear (its messages reach the others)'}`)
          lab.lab.setCuts([mute ? { from: ports([victim]), to: ports(others(victim)) } : { from: ports(others(victim)), to: ports([victim]) }])
          await hold(2000, 4000)
          break
        }
        case 'flap': {
          const flaps = 4 + rng.int(5)
          log(`flapping: ${flaps} cuts of 0.3–1 s`)
          for (let i = 0; i < flaps; i++) {
            const h = hosts[rng.int(nHosts)]!
            lab.lab.setCuts(rng.int(2) === 0 ? split([h], others(h)) : split(hosts.slice(0, 2), hosts.slice(2)))
            await hold(300, 700)
            heal()
            await hold(100, 600)
          }
          break
        }
        case 'kill': {
          log(`kill -9 ${victim.id} (pid ${lab.daemonPid(victim) ?? '?'})`)
          await kill9(victim)
          await hold(500, 2500)
          await remount(victim, 'kill -9')
          log(`${victim.id} mounted again`)
          break
        }
        case 'pause': {
          const pid = lab.daemonPid(victim)
          if (pid === null) break
          const ms = PAUSE_MIN_MS + rng.int(2500)
          log(`SIGSTOP ${victim.id} (pid ${pid}) for ${ms} ms`)
          paused.add(pid)
          process.kill(pid, 'SIGSTOP')
          await sleep(ms)
          process.kill(pid, 'SIGCONT')
          paused.delete(pid)
          break
        }
        case 'full-disk':
          await fullDisk(rng, victim, log, problem, stats)
          break
        case 'move-address': {
          const old = victim.addr
          const base = victim.addr.split('.').slice(0, 3).join('.')
          const fresh = `${base}.${victim.n + (old === `${base}.${victim.n}` ? 100 : 0)}`
          log(`kill -9 ${victim.id} and restart it on ${fresh} (was ${old})`)
          await kill9(victim)
          // old one first: deleting a subnet's primary address would take its secondaries along
          lab.lab.address(victim.ns, old, 'eth0', true)
          lab.lab.address(victim.ns, fresh)
          victim.addr = fresh
          victim.opts = victim.opts.map((o) => o.startsWith('listen=') ? `listen=${fresh}:7400` : o)
          await remount(victim, 'a restart with a new address')
          const end = Date.now() + 30_000
          let seen = false
          let said = ''
          while (!seen && Date.now() < end) {
            try {
              const s = await status(others(victim)[0]!)
              const entry = s.cluster.hosts.find((x: any) => x.id === victim.id)
              seen = entry?.up === true && entry.addresses.some((a: string) => a.startsWith(`${fresh}:`))
              said = JSON.stringify(entry)
            } catch { /* busy; again */ }
            if (!seen) await sleep(250)
          }
          if (!seen) problem(`${victim.id} restarted on ${fresh}, but 30 s later ${others(victim)[0]!.id} does not list it as up at that address (it says ${said})`)
          else log(`${victim.id} is up at ${fresh}`)
          break
        }
      }
      heal()
    }

    // the last seconds stay quiet so every client can finish its call and every fault resolves
    const nextFault = faultSequence(rng, opts.mix)
    const quietMs = Math.min(10_000, opts.durationMs / 4)
    try {
      while (Date.now() < until - quietMs) {
        await sleep(300 + rng.int(1200))
        if (Date.now() >= until - quietMs) break
        await reviveDead()
        await act(nextFault())
      }
    } finally {
      heal()
      for (const pid of paused) { try { process.kill(pid, 'SIGCONT') } catch { /* gone */ } }
      paused.clear()
    }
    await reviveDead()
    await Promise.race([Promise.all(exits), deadline(Math.max(0, until - Date.now()) + 60_000)])
    for (const [c, child] of clients.entries()) {
      if (child.exitCode === null && child.signalCode === null) problem(`client ${c} did not finish its last call within 60 s after the run`)
    }

    // ---- the end: healthy, same final state everywhere, replicas identical, check clean ---
    const healthyBy = Date.now() + 120_000
    let unhealthy: string[] = hosts.map((h) => h.id)
    while (unhealthy.length > 0 && Date.now() < healthyBy) {
      const verdicts = await Promise.all(hosts.map(async (h) => {
        try {
          const s = await status(h, 5000)
          const lag = s.cluster.fragments.some((f: any) => (f.local?.lag ?? 0) > 0)
          const down = s.cluster.hosts.filter((x: any) => !x.up && x.state !== 'retired').map((x: any) => x.id)
          return s.exitCode === 0 && !lag && down.length === 0 ? null : `${h.id}: ${s.cluster.writable}${lag ? ', lagging' : ''}${down.length > 0 ? `, sees ${down.join('+')} down` : ''}`
        } catch (e) { return `${h.id}: ${(e as Error).message}` }
      }))
      unhealthy = verdicts.filter((v): v is string => v !== null)
      if (unhealthy.length > 0) await sleep(500)
    }
    if (unhealthy.length > 0) problem(`the cluster is not healthy 120 s after healing: ${unhealthy.join('; ')}`)
    polling = false
    await poller

    const finals: Array<[ClusterHost, FinalState]> = []
    for (const h of hosts) {
      try { finals.push([h, readFinal(join(h.mnt, ROOT), registers, appendFiles)]) } catch (e) { problem(`${h.id} cannot read the final state: ${(e as Error).message}`) }
    }
    if (finals.length === 0) throw new Error('no host could read the final state')
    const final = finals[0]![1]
    for (const [h, f] of finals.slice(1)) {
      const diff = finalDiff(final, f)
      if (diff !== null) problem(`${h.id} reads a different final state than ${finals[0]![0].id}: ${diff}`)
    }
    const replicas = await lab.cli(hosts[0]!, ['check', '--replicas', hosts[0]!.mnt], 300_000)
    if (replicas.code !== 0) problem(`walkenfs check --replicas: ${(replicas.stdout + replicas.stderr).trim().slice(0, 800)}`)
    else log(replicas.stdout.trim())
    const check = await lab.cli(hosts[0]!, ['check', hosts[0]!.mnt], 600_000)
    if (check.code !== 0) problem(`walkenfs check not clean: ${(check.stdout + check.stderr).trim().slice(0, 800)}`)

    const ops = readClientLogs(logs, nClients)
    for (const op of ops) {
      if (op.outcome === 'unknown') stats.unknown++
      if (op.outcome === 'fail') stats.failedReads++
      if (op.err === 'ENOSPC') stats.clientEnospc++
      if (op.err === 'EROFS') stats.clientErofs++
    }
    stats.staleReads = staleServed
    const stale = (op: Op): boolean => (op.kind === 'reg-read' || op.kind === 'read-all') &&
      windows.some(([a, b]) => op.invoke <= b && op.response >= a)
    stats.weaklyChecked = ops.filter((o) => o.outcome === 'ok' && stale(o)).length
    const anomalies = [...checkHistory(ops, final, stale), ...harness.map((message) => ({ checker: 'harness' as const, message }))]
    if (anomalies.length > 0) failed = true
    return { seed: opts.seed, operations: ops.length, anomalies, harness, ops, faults, stats }
  }

  return { run, cleanup }
}

/** How long a write through a host with a full data disk may take to fail (ENOSPC is immediate; see docs/replication.md). */
const FULL_PROBE_MS = 10_000
/** How long after space was freed a write through that host must work again. */
const RECOVER_MS = 30_000

/**
 * Fills host h's data tmpfs with a file of its own and probes a write
 * through h's mount: it must end within FULL_PROBE_MS with ENOSPC (counted;
 * the host's room check counts only the filesystem's free space, which the
 * filler used up); a hang, a success or any other error is a problem. Holds
 * the disk full a moment, frees the space and checks that writing through
 * h's mount works again within RECOVER_MS.
 */
async function fullDisk (rng: Rng, h: ClusterHost, log: (l: string) => void, problem: (m: string) => void, stats: { proberEnospc: number }): Promise<void> {
  const filler = join(h.data, 'filler')
  const mib = fillDataDir(h.data)
  const holdMs = 1000 + rng.int(2000)
  log(`${h.id}: data directory full (filler ${mib} MiB) for ${holdMs} ms`)
  const probe = join(h.mnt, ROOT, `probe-${h.id}`)
  const started = Date.now()
  const before = await probeWrite(probe, 1, FULL_PROBE_MS)
  if (before === 'ENOSPC') stats.proberEnospc++
  else problem(`${h.id}: a 1 MiB write + fsync through its mount on a full data disk answered ${before} (expected ENOSPC within ${FULL_PROBE_MS} ms)`)
  log(`${h.id}: probe write on a full disk: ${before} after ${Date.now() - started} ms`)
  await sleep(holdMs)
  unlinkSync(filler)
  // Bounded in time, not only in tries: a write that hangs must not stall the run.
  const freed = Date.now()
  let after = ''
  while (after !== 'ok' && Date.now() - freed < RECOVER_MS) {
    after = await probeWrite(probe, 1, Math.max(1000, RECOVER_MS - (Date.now() - freed)))
    if (after !== 'ok') await sleep(100)
  }
  if (after !== 'ok') problem(`${h.id}: writes through its mount still fail (${after}) ${RECOVER_MS / 1000} s after space was freed`)
  else log(`${h.id}: writes work again ${Date.now() - freed} ms after space was freed`)
  try { unlinkSync(probe) } catch { /* probe not created */ }
}

/** The first difference between two final states, or null. */
function finalDiff (a: FinalState, b: FinalState): string | null {
  for (const [k, v] of a.registers) if (b.registers.get(k) !== v) return `register ${k}: ${v} vs ${String(b.registers.get(k))}`
  for (const [k, v] of a.appends) if (b.appends.get(k) !== v) return `append file ${k} differs (${v.length} vs ${b.appends.get(k)?.length ?? 0} bytes)`
  const da = [...a.directory.keys()].join(' ')
  const db = [...b.directory.keys()].join(' ')
  if (da !== db) return `directory listing: ${da} vs ${db}`
  return null
}
