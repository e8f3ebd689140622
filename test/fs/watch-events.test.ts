/**
 * The translation of committed row changes into watch events
 * (src/fs/watch-events.ts). The row changes are the real ones: the
 * filesystem model over one-host tables makes them and the tables' change
 * feed records them; the translation itself is pure.
 */
import t from 'tap'
import { ROOT_INO } from '../../src/fs/types.js'
import { NameMap, WatchTooLarge, translate } from '../../src/fs/watch-events.js'
import type { ModelFs } from '../../src/fs/model.js'
import { LocalTables } from '../../src/tables/local.js'
import { S_IFREG } from '../../src/fs/rows.js'
import { caller, openFs, pattern } from '../helpers/fs.js'

/** Follows the model's change feed: `next()` translates every transaction since the last call. */
async function follow (fs: ModelFs, map: NameMap): Promise<() => Promise<string[]>> {
  const src = (fs.tables as LocalTables).changes()
  let after = (await src.poll(0, null, 0)).position
  return async () => {
    const r = await src.poll(0, after, 0)
    if (r.gap) throw new Error('gap')
    const out: string[] = []
    for (const b of r.batches) {
      after = b.index
      for (const e of translate(b.changes, map).events) out.push(e.kind === 'renamed' ? `renamed ${e.from!} -> ${e.path}` : `${e.kind} ${e.path}`)
    }
    return out
  }
}

async function file (fs: ModelFs, parent: number, name: string, body?: Buffer): Promise<number> {
  const a = await fs.mknod(parent, name, S_IFREG | 0o644, 0, caller)
  if (body) await fs.write(a.ino, 0, body)
  return a.ino
}

t.test('mkdir, nested', async (t) => {
  const { fs } = await openFs(t)
  const next = await follow(fs, new NameMap(ROOT_INO, '/', null))
  const a = await fs.mkdir(ROOT_INO, 'a', 0o755, caller)
  await fs.mkdir(a.ino, 'b', 0o755, caller)
  t.same(await next(), ['created /a', 'created /a/b'])
})

t.test('write to a temp file, rename it over the config: created, written, renamed (the replaced name is not "removed")', async (t) => {
  const { fs } = await openFs(t)
  const etc = await fs.mkdir(ROOT_INO, 'etc', 0o755, caller)
  await file(fs, etc.ino, 'app.conf', Buffer.from('v1\n'))
  const map = new NameMap(ROOT_INO, '/', null)
  const next = await follow(fs, map)
  // the map learns what existed before (the watcher scans it)
  map.add(ROOT_INO, 'etc', etc.ino, 0o040000)
  map.add(etc.ino, 'app.conf', (await fs.lookup(etc.ino, 'app.conf')).ino, S_IFREG)
  await file(fs, etc.ino, '.tmp1', Buffer.from('v2\n'))
  await fs.rename(etc.ino, '.tmp1', etc.ino, 'app.conf')
  t.same(await next(), ['created /etc/.tmp1', 'written /etc/.tmp1', 'renamed /etc/.tmp1 -> /etc/app.conf'])
  // the new name now means the new file
  await fs.write((await fs.lookup(etc.ino, 'app.conf')).ino, 3, Buffer.from('more'))
  t.same(await next(), ['written /etc/app.conf'])
})

t.test('rename across directories; a renamed directory keeps its contents', async (t) => {
  const { fs } = await openFs(t)
  const next = await follow(fs, new NameMap(ROOT_INO, '/', null))
  const a = await fs.mkdir(ROOT_INO, 'a', 0o755, caller)
  const b = await fs.mkdir(ROOT_INO, 'b', 0o755, caller)
  const x = await file(fs, a.ino, 'x')
  await fs.rename(a.ino, 'x', b.ino, 'y')
  await fs.rename(ROOT_INO, 'b', a.ino, 'sub')
  await fs.write(x, 0, Buffer.from('hello'))
  t.same(await next(), ['created /a', 'created /b', 'created /a/x', 'renamed /a/x -> /b/y', 'renamed /b -> /a/sub', 'written /a/sub/y'])
})

t.test('rm -rf: one removed per name, deepest first, no written for freed blocks', async (t) => {
  const { fs } = await openFs(t)
  const next = await follow(fs, new NameMap(ROOT_INO, '/', null))
  const d = await fs.mkdir(ROOT_INO, 'd', 0o755, caller)
  const e = await fs.mkdir(d.ino, 'e', 0o755, caller)
  await file(fs, e.ino, 'big', pattern(200_000, 1))
  await file(fs, d.ino, 'small', Buffer.from('x'))
  t.same(await next(), ['created /d', 'created /d/e', 'created /d/e/big', 'written /d/e/big', 'created /d/small', 'written /d/small'])
  await fs.unlink(e.ino, 'big')
  await fs.rmdir(d.ino, 'e')
  await fs.unlink(d.ino, 'small')
  await fs.rmdir(ROOT_INO, 'd')
  t.same(await next(), ['removed /d/e/big', 'removed /d/e', 'removed /d/small', 'removed /d'])
})

t.test('hard link: created for the new name; the file keeps being reported under a name it still has', async (t) => {
  const { fs } = await openFs(t)
  const next = await follow(fs, new NameMap(ROOT_INO, '/', null))
  const ino = await file(fs, ROOT_INO, 'orig', Buffer.from('1'))
  await fs.link(ino, ROOT_INO, 'alias')
  await fs.unlink(ROOT_INO, 'orig')
  await fs.write(ino, 1, Buffer.from('2'))
  t.same(await next(), ['created /orig', 'written /orig', 'created /alias', 'removed /orig', 'written /alias'])
})

t.test('truncate is written; chmod and chown are not', async (t) => {
  const { fs } = await openFs(t)
  const next = await follow(fs, new NameMap(ROOT_INO, '/', null))
  const ino = await file(fs, ROOT_INO, 'f', pattern(150_000, 2))
  await fs.setattr(ino, { mode: 0o600 }, caller)
  await fs.setattr(ino, { uid: 7, gid: 7 }, caller)
  await fs.setattr(ino, { size: 10 }, caller)
  t.same(await next(), ['created /f', 'written /f', 'written /f'])
})

t.test('a watched subtree: moves out are removed, moves in are created, the rest is not reported', async (t) => {
  const { fs } = await openFs(t)
  const w = await fs.mkdir(ROOT_INO, 'w', 0o755, caller)
  const map = new NameMap(w.ino, '/w', [ROOT_INO, 'w'])
  const next = await follow(fs, map)
  await file(fs, w.ino, 'x')
  await file(fs, ROOT_INO, 'outside', Buffer.from('no'))
  await fs.rename(w.ino, 'x', ROOT_INO, 'x-out')
  await fs.rename(ROOT_INO, 'outside', w.ino, 'inside')
  await fs.write((await fs.lookup(w.ino, 'inside')).ino, 0, Buffer.from('yes'))
  await fs.rename(ROOT_INO, 'w', ROOT_INO, 'w2')
  t.same(await next(), ['created /w/x', 'removed /w/x', 'created /w/inside', 'written /w/inside', 'removed /w'])
})

t.test('the name map is bounded', async (t) => {
  const map = new NameMap(ROOT_INO, '/', null, 3)
  map.add(ROOT_INO, 'a', 10, S_IFREG)
  map.add(ROOT_INO, 'b', 11, S_IFREG)
  map.add(ROOT_INO, 'c', 12, S_IFREG)
  t.throws(() => map.add(ROOT_INO, 'd', 13, S_IFREG), WatchTooLarge)
  map.add(ROOT_INO, 'a', 14, S_IFREG) // replacing a name does not grow it
  t.equal(map.size, 3)
  t.equal(map.pathOf(14), '/a')
  t.equal(map.pathOf(10), null)
})
