/**
 * A watcher on a host that holds no replica (in-process hosts, repl-cluster.ts:
 * h1..h3 hold every fragment, h4 none): it reads every fragment's change
 * feed from a replica host over `tables.changes`, and when the host it reads
 * from stops, it resumes on another replica from the last index it saw, so
 * no change is missed and none is reported twice.
 */
import t from 'tap'
import { ModelFs } from '../../src/fs/model.js'
import { ROOT_INO } from '../../src/fs/types.js'
import { S_IFREG } from '../../src/fs/rows.js'
import { Watcher, hostOfTxn, type WatchLine } from '../../src/fs/watcher.js'
import { ClusterChangeSource } from '../../src/tables/change-source.js'
import { ReplCluster } from './repl-cluster.js'
import { pollUntil } from '../raft/poll.js'

const caller = { uid: 0, gid: 0, pid: 1 }

t.test('a watcher without replicas follows the feeds remotely and survives the loss of the replica it reads', async (t) => {
  const c = await ReplCluster.start({ hosts: 4, replicas: 3, fragments: 4 })
  t.teardown(async () => await c.cleanup())
  const sources = new Map([...c.hosts.values()].map((h) => [h.name, new ClusterChangeSource(h.router, h.feeds, c.fragments)]))
  const h4 = c.host('h4')
  const settings = await ModelFs.init(h4.tables, {}, () => BigInt(Date.now()) * 1_000_000n)
  const fs = new ModelFs(h4.tables, settings, null)
  const app = await fs.mkdir(ROOT_INO, 'app', 0o755, caller)

  const lines: WatchLine[] = []
  const w = new Watcher({ tables: h4.tables, source: sources.get('h4')!, path: '/app', onLine: (l) => lines.push(l), hostOf: hostOfTxn, pollWaitMs: 300, pendingMs: 2000 })
  t.teardown(async () => await w.stop())
  t.same(await w.start(), { streams: 4 })

  const mk = async (name: string): Promise<void> => {
    const a = await fs.mknod(app.ino, name, S_IFREG | 0o644, 0, caller)
    await fs.write(a.ino, 0, Buffer.from(name))
  }
  for (let i = 0; i < 4; i++) await mk(`a${i}`)
  await pollUntil(() => lines.length >= 8, 'the first changes', 10_000)
  t.same(lines.map((l) => `${l.kind} ${'path' in l ? l.path : ''}`), ['a0', 'a1', 'a2', 'a3'].flatMap((n) => [`created /app/${n}`, `written /app/${n}`]))
  t.ok(lines.every((l) => 'host' in l && l.host === 'h4'), 'attributed to the coordinator h4')

  // Stop the replica the watched directory's fragment is read from.
  const f = app.ino % c.fragments
  const serving = sources.get('h4')!.servingHost(f)
  t.ok(serving !== undefined && serving !== 'h4', `fragment ${f} is read from a replica host (${serving ?? 'none'})`)
  await c.stopHost(serving!)
  for (let i = 4; i < 10; i++) await mk(`a${i}`)
  await fs.rename(app.ino, 'a0', app.ino, 'b0')
  await pollUntil(() => lines.some((l) => l.kind === 'renamed'), 'the changes after the stop', 30_000)
  const after = lines.slice(8).map((l) => `${l.kind} ${l.kind === 'renamed' ? l.from! + ' -> ' : ''}${'path' in l ? l.path : ''}`)
  t.same(after, [...['a4', 'a5', 'a6', 'a7', 'a8', 'a9'].flatMap((n) => [`created /app/${n}`, `written /app/${n}`]), 'renamed /app/a0 -> /app/b0'],
    'every change after the stop, once, in order (read from another replica)')
  t.not(sources.get('h4')!.servingHost(f), serving, 'now read from another replica')
})
