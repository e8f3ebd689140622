/**
 * Unlink while another host holds the file open (the fs model's shared
 * mode, used by cluster mounts): the orphan stays readable as long as any
 * host answers that it holds it open, and is freed once none does. The
 * model runs on real lmdb tables; the other hosts' answers come from the
 * test (in a cluster they come over the wire: shared-opens.ts).
 */
import t from 'tap'
import { ModelFs } from '../../src/fs/model.js'
import { Store } from '../../src/store/store.js'
import { LocalTables } from '../../src/tables/local.js'
import { caller } from '../helpers/fs.js'
import { tempDir } from '../helpers/tmp.js'

const ROOT = 1

async function sharedFs (t: { teardown: (fn: () => void | Promise<void>) => void }, elsewhere: Set<number>): Promise<{ fs: ModelFs, asked: number[], questions: () => number }> {
  const dir = tempDir(t)
  const store = Store.open(dir)
  const tables = LocalTables.open(store, { fragments: 4, debugRerun: true })
  const clock = (): bigint => BigInt(Date.now()) * 1_000_000n
  const settings = await ModelFs.init(tables, {}, clock)
  const asked: number[] = []
  let questions = 0
  const fs = new ModelFs(tables, settings, dir, clock, {
    openElsewhere: async (inos) => { questions++; asked.push(...inos); return inos.map((ino) => elsewhere.has(ino)) }
  })
  t.teardown(() => fs.close())
  return { fs, asked, questions: () => questions }
}

async function gone (fs: ModelFs, ino: number): Promise<boolean> {
  const deadline = Date.now() + 5000
  while (Date.now() < deadline) {
    try {
      await fs.getattr(ino)
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') return true
      throw e
    }
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return false
}

async function makeFile (fs: ModelFs, name: string, content: string): Promise<number> {
  const a = await fs.mknod(ROOT, name, 0o100644, 0, caller)
  await fs.write(a.ino, 0, Buffer.from(content))
  return a.ino
}

t.test('a file another host holds open survives its unlink and is freed once nobody holds it', async (t) => {
  const elsewhere = new Set<number>()
  const { fs, asked } = await sharedFs(t, elsewhere)
  const ino = await makeFile(fs, 'held', 'still here')
  elsewhere.add(ino)
  await fs.unlink(ROOT, 'held')
  await t.rejects(fs.lookup(ROOT, 'held'), { code: 'ENOENT' }, 'the name is gone')
  t.equal((await fs.read(ino, 0, 100)).toString(), 'still here', 'the other host still reads it')
  await fs.freesSettled()
  t.ok(asked.includes(ino), 'the unlinking host asked the others')
  t.equal(await fs.sweepOrphans([0, 1, 2, 3]), 0, 'a sweep frees nothing while the other host holds it')
  t.equal((await fs.getattr(ino)).nlink, 0)

  elsewhere.delete(ino)
  t.equal(await fs.sweepOrphans([0, 1, 2, 3]), 1, 'the sweep frees it once nobody holds it')
  t.ok(await gone(fs, ino), 'freed')
  t.equal(await fs.sweepOrphans([0, 1, 2, 3]), 0, 'and no orphan record is left')
})

t.test('a file nobody holds open is freed right after its unlink', async (t) => {
  const { fs } = await sharedFs(t, new Set())
  const ino = await makeFile(fs, 'free', 'x')
  await fs.unlink(ROOT, 'free')
  t.ok(await gone(fs, ino), 'freed without waiting for a sweep')
})

t.test('rename over a file another host reads: the old version stays readable there', async (t) => {
  const elsewhere = new Set<number>()
  const { fs } = await sharedFs(t, elsewhere)
  const old = await makeFile(fs, 'app.conf', 'version 1')
  const next = await makeFile(fs, '.app.conf.tmp', 'version 2')
  elsewhere.add(old)
  await fs.rename(ROOT, '.app.conf.tmp', ROOT, 'app.conf')
  t.equal((await fs.lookup(ROOT, 'app.conf')).ino, next, 'the name has the new version')
  t.equal((await fs.read(old, 0, 100)).toString(), 'version 1', 'the old version is still readable by its holder')
  elsewhere.delete(old)
  await fs.sweepOrphans([0, 1, 2, 3])
  t.ok(await gone(fs, old), 'freed once released')
})

t.test('opening an inode with no name left fails with ENOENT unless this host already holds it', async (t) => {
  const elsewhere = new Set<number>()
  const { fs } = await sharedFs(t, elsewhere)
  const ino = await makeFile(fs, 'f', 'data')
  await fs.open(ino)
  elsewhere.add(ino)
  await fs.unlink(ROOT, 'f')
  await fs.open(ino)
  t.pass('a second open through a handle this host holds works')
  await fs.release(ino)
  const other = await makeFile(fs, 'g', 'data')
  elsewhere.add(other)
  await fs.unlink(ROOT, 'g')
  await t.rejects(fs.open(other), { code: 'ENOENT' }, 'an open racing the unlink is told the name is gone (the caller resolves again)')
  t.notOk(fs.isOpenHere(other), 'and the refused open holds nothing')

  elsewhere.delete(ino)
  await fs.release(ino)
  t.notOk(fs.isOpenHere(ino))
  t.ok(await gone(fs, ino), 'the last release frees it once no other host holds it')
})

t.test('orphans are freed in batches: one question to the other hosts for many files', async (t) => {
  const elsewhere = new Set<number>()
  const { fs, questions } = await sharedFs(t, elsewhere)
  const inos: number[] = []
  for (let i = 0; i < 40; i++) inos.push(await makeFile(fs, `f${i}`, `file ${i}`))
  for (const ino of inos) elsewhere.add(ino)
  for (let i = 0; i < 40; i++) await fs.unlink(ROOT, `f${i}`)
  // While another host holds them, the kicked frees leave them; wait until those tries are over.
  await fs.freesSettled()
  for (const ino of inos) t.equal((await fs.getattr(ino)).nlink, 0, `orphan ${ino} is still there`)
  elsewhere.clear()
  const before = questions()
  t.equal(await fs.sweepOrphans([0, 1, 2, 3]), 40, 'the sweep frees all 40 once nobody holds them')
  t.equal(questions() - before, 2, 'asking the other hosts twice (batches of 32)')
  for (const ino of inos) await t.rejects(fs.getattr(ino), { code: 'ENOENT' })
})
