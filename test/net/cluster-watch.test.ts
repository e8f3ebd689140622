/**
 * `walkenfs watch` on a cluster of three real hosts (mount-lab.ts): a
 * watcher on host A sees what host C does to a configuration directory
 * (write a temp file, fsync, rename over the config: the pattern of every
 * careful config writer), a rename across directories (a two-phase
 * transaction: one `renamed` line), and after a kill -9 of a host leading
 * fragments, later changes still arrive, each exactly once.
 */
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, open, rename, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { netnsAvailable, until } from './netns.js'
import { MountLab, type ClusterHost } from './mount-lab.js'
import { CLI } from '../helpers/mount.js'

const skip = netnsAvailable()
const FAST = ['heartbeat_ms=200']

function clusterOf (s: { json: any }): any {
  return s.json?.mounts?.[0]?.cluster
}

interface Ev { time: string, kind: string, path: string, from?: string, ino: number, host?: string }
/** when each line reached the test (ms), for the figures printed (never asserted) */
const seenAt = new WeakMap<Ev, number>()

/** `walkenfs watch PATH --json` inside host h's namespace; killed (SIGINT) in teardown. */
function watch (t: { teardown: (fn: () => void | Promise<void>) => void }, h: ClusterHost, path: string): { events: Ev[], stderr: () => string, proc: ChildProcess, exited: Promise<number | null> } {
  const proc = spawn('nsenter', [`--net=/var/run/netns/${h.ns}`, process.execPath, CLI, 'watch', path, '--json'], { env: { ...process.env, WALKENFS_RUN_DIR: h.run } })
  const events: Ev[] = []
  let out = ''
  let err = ''
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString()
    for (let nl = out.indexOf('\n'); nl >= 0; nl = out.indexOf('\n')) {
      const e = JSON.parse(out.slice(0, nl)) as Ev
      seenAt.set(e, Date.now())
      events.push(e)
      out = out.slice(nl + 1)
    }
  })
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  const exited = new Promise<number | null>((resolve) => proc.on('close', (code) => resolve(code)))
  t.teardown(async () => {
    if (proc.exitCode === null) {
      proc.kill('SIGINT')
      const late = setTimeout(() => proc.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(late)
    }
  })
  return { events, stderr: () => err, proc, exited }
}

async function writeSynced (path: string, body: string): Promise<void> {
  const fh = await open(path, 'w')
  await fh.writeFile(body)
  await fh.sync()
  await fh.close()
}

t.test('watch on A sees C\'s atomic config update, a cross-directory rename, and every change after a leader is killed, once', { skip: skip ?? false }, async (t) => {
  const lab = new MountLab(t)
  const hosts = await lab.formCluster(3, [...FAST, 'fragments=8'])
  const [a, b, c] = hosts as [ClusterHost, ClusterHost, ClusterHost]
  await until('every fragment has 3 voters and a leader', async () => clusterOf(await lab.status(a))?.fragments.every((f: any) =>
    f.leader !== null && f.replicas.filter((r: any) => r.role === 'voter').length === 3) ?? false, 90_000)

  await mkdir(join(c.mnt, 'etc', 'app'), { recursive: true })
  await mkdir(join(c.mnt, 'etc', 'app', 'old'))
  await writeSynced(join(c.mnt, 'etc', 'app', 'app.conf'), 'version 1\n')
  const w = watch(t, a, join(a.mnt, 'etc', 'app'))
  await until('the watch is subscribed', async () => /watching .*etc\/app \(8 fragments\)/.test(w.stderr()), 60_000)

  // C: write a temp file, fsync it, rename it over the config.
  await writeSynced(join(c.mnt, 'etc', 'app', '.tmp123'), 'version 2\n')
  await rename(join(c.mnt, 'etc', 'app', '.tmp123'), join(c.mnt, 'etc', 'app', 'app.conf'))
  const renamedAt = Date.now()
  await until('A sees the rename', async () => w.events.some((e) => e.kind === 'renamed'), 30_000)
  const seen = seenAt.get(w.events.find((e) => e.kind === 'renamed')!)!
  t.comment(`rename returned on ${c.id} → its line printed on ${a.id}: ${seen - renamedAt} ms`)
  const kinds = w.events.map((e) => `${e.kind} ${e.from !== undefined ? e.from + ' -> ' : ''}${e.path}`)
  t.same(kinds, [
    'created /etc/app/.tmp123',
    'written /etc/app/.tmp123',
    'renamed /etc/app/.tmp123 -> /etc/app/app.conf'
  ], 'created, written, renamed over the config, in order')
  t.ok(w.events.every((e) => e.host === c.id), `every change is attributed to ${c.id}`)
  t.ok(w.events.every((e) => !Number.isNaN(Date.parse(e.time))), 'every line has a time')

  // A rename across directories (different fragments: a two-phase transaction) is one event.
  const before = w.events.length
  await rename(join(c.mnt, 'etc', 'app', 'app.conf'), join(c.mnt, 'etc', 'app', 'old', 'app.conf.1'))
  await until('A sees the move', async () => w.events.length > before, 30_000)
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.same(w.events.slice(before).map((e) => `${e.kind} ${e.from ?? ''} ${e.path}`),
    ['renamed /etc/app/app.conf /etc/app/old/app.conf.1'], 'one renamed event for a move across directories')

  // What the rings and logs hold is in `walkenfs status --json`.
  const counters = (await lab.status(a)).json.mounts[0].counters
  t.ok(counters.watch.feedBytes > 0, `A's change feeds hold ${counters.watch.feedBytes} bytes`)
  t.ok(counters.raft.logHeldBytes <= counters.raft.logBytes, `A's logs hold ${counters.raft.logHeldBytes} of ${counters.raft.logBytes} bytes in memory`)

  // kill -9 of a host that leads fragments (not the watcher's): later changes still arrive, once each.
  const st = clusterOf(await lab.status(a))
  const leads = new Map<string, number>()
  for (const f of st.fragments) leads.set(f.leader, (leads.get(f.leader) ?? 0) + 1)
  const victim = [b, c].sort((x, y) => (leads.get(y.id) ?? 0) - (leads.get(x.id) ?? 0))[0]!
  const writer = victim === b ? c : b
  t.comment(`killing ${victim.id}, leader of ${leads.get(victim.id) ?? 0} of 8 fragments; ${writer.id} writes on`)
  const mark = w.events.length
  const N = 12
  const doneAt: number[] = []
  const writes = (async () => {
    for (let i = 0; i < N; i++) {
      await writeSynced(join(writer.mnt, 'etc', 'app', `f${i}.conf`), `file ${i}\n`)
      doneAt.push(Date.now())
      if (i === 2) lab.kill9(victim)
    }
    await unlink(join(writer.mnt, 'etc', 'app', 'f0.conf'))
  })()
  await writes
  await until('A sees every change after the kill', async () => w.events.slice(mark).some((e) => e.kind === 'removed'), 60_000)
  await new Promise((resolve) => setTimeout(resolve, 1000))
  const after = w.events.slice(mark)
  for (let i = 0; i < N; i++) {
    const p = `/etc/app/f${i}.conf`
    t.equal(after.filter((e) => e.kind === 'created' && e.path === p).length, 1, `created ${p} exactly once`)
    t.ok(after.filter((e) => e.kind === 'written' && e.path === p).length >= 1, `written ${p}`)
  }
  t.same(after.filter((e) => e.kind === 'removed').map((e) => e.path), ['/etc/app/f0.conf'], 'the removal, once')
  const lags = Array.from({ length: N }, (_, i) => {
    const last = after.filter((e) => e.path === `/etc/app/f${i}.conf` && e.kind !== 'removed').map((e) => seenAt.get(e)!)
    return Math.max(...last) - doneAt[i]!
  })
  t.comment(`fsync'd write on ${writer.id} → its last line on ${a.id}, per file around the kill: ${lags.join(', ')} ms`)
  const keys = after.map((e) => JSON.stringify(e))
  t.equal(new Set(keys).size, keys.length, 'no line twice')
  t.equal(w.proc.exitCode, null, 'the watch is still running')

  w.proc.kill('SIGINT')
  t.equal(await w.exited, 0, 'SIGINT ends the watch cleanly')
})
