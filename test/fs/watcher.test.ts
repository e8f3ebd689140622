/**
 * The Watcher (src/fs/watcher.ts) over one-host tables: when the feed no
 * longer holds the changes after the index it saw (here: a ring of 3
 * batches and a poll held back while 10 transactions commit), it says so
 * with a `rescan` line instead of skipping silently, rebuilds its names
 * from the tables, and reports later changes correctly.
 */
import t from 'tap'
import { Store } from '../../src/store/store.js'
import { LocalTables } from '../../src/tables/local.js'
import type { ChangeSource } from '../../src/tables/change-feed.js'
import { ModelFs } from '../../src/fs/model.js'
import { ROOT_INO } from '../../src/fs/types.js'
import { S_IFREG } from '../../src/fs/rows.js'
import { Watcher, type WatchLine } from '../../src/fs/watcher.js'
import { tempDir } from '../helpers/tmp.js'

const caller = { uid: 0, gid: 0, pid: 1 }

async function until (cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 10_000
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

t.test('a gap in the feed is a rescan line; the watch goes on with correct names', async (t) => {
  const dir = tempDir(t)
  const tables = LocalTables.open(Store.open(dir), { fragments: 4, feed: { maxBatches: 3 } })
  const fs = new ModelFs(tables, await ModelFs.init(tables, {}, () => BigInt(Date.now()) * 1_000_000n), dir)
  t.teardown(async () => await fs.close())
  const app = await fs.mkdir(ROOT_INO, 'app', 0o755, caller)

  // The real feed, with a gate the test opens: polls wait while it is shut.
  const inner = tables.changes()
  let gate: Promise<void> | null = null
  let open = (): void => {}
  let atGate = 0
  const source: ChangeSource = {
    streams: inner.streams,
    poll: async (s, after, waitMs) => {
      if (after !== null && gate !== null) { atGate++; await gate }
      return await inner.poll(s, after, waitMs)
    }
  }
  const lines: WatchLine[] = []
  const w = new Watcher({ tables, source, path: '/app', onLine: (l) => lines.push(l), pollWaitMs: 50 })
  t.teardown(async () => { open(); await w.stop() })
  await w.start()

  await fs.mknod(app.ino, 'before', S_IFREG | 0o644, 0, caller)
  await until(() => lines.length === 1, 'the first change')
  gate = new Promise((resolve) => { open = resolve })
  await until(() => atGate === 1, 'the next poll waiting at the gate')
  for (let i = 0; i < 10; i++) await fs.mknod(app.ino, `missed${i}`, S_IFREG | 0o644, 0, caller)
  gate = null
  open()
  await until(() => lines.some((l) => l.kind === 'rescan'), 'the rescan line')
  const f = await fs.mknod(app.ino, 'after', S_IFREG | 0o644, 0, caller)
  await fs.write(f.ino, 0, Buffer.from('x'))
  await fs.rename(app.ino, 'missed3', app.ino, 'renamed3')
  await until(() => lines.some((l) => l.kind === 'renamed'), 'the later changes')
  const text = lines.map((l) => l.kind === 'rescan' ? `rescan ${/may have been missed/.test(l.reason) ? 'missed' : l.reason}` : l.kind === 'renamed' ? `renamed ${l.from!} -> ${l.path}` : `${l.kind} ${l.path}`)
  t.same(text, ['created /app/before', 'rescan missed', 'created /app/after', 'written /app/after', 'renamed /app/missed3 -> /app/renamed3'],
    'no silent skip; the rebuilt names know the files made during the gap')
})
