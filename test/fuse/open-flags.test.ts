// keepCache from open reaches the kernel: a file opened with it keeps the
// pages cached by an earlier open even though the content changed behind the
// kernel's back; without it the next open drops them and reads anew.
// opendir gets the real open flags and its handle comes back in releasedir.
import t from 'tap'
import { promises as fsp, constants as fsc } from 'node:fs'
import { join } from 'node:path'
import type { FuseContext, OpenResult } from '../../src/fuse/binding.js'
import { MapFs } from '../helpers/map-fs.js'
import { mountForTest } from '../helpers/fuse-mount.js'

class KeepCacheFs extends MapFs {
  override async open (ctx: FuseContext, path: string, flags: number): Promise<OpenResult> {
    return { ...(await super.open(ctx, path, flags)), keepCache: path === '/keep' }
  }
}

t.test('keepCache keeps cached pages across opens; default drops them', async (t) => {
  const fs = new KeepCacheFs()
  const { mnt } = await mountForTest(t, fs)
  for (const name of ['keep', 'drop']) {
    await fsp.writeFile(join(mnt, name), 'old content')
    t.equal(await fsp.readFile(join(mnt, name), 'utf8'), 'old content', `${name}: first read fills the cache`)
    // same size, new bytes, without telling the kernel
    fs.nodes.get('/' + name)!.chunks.get(0)!.write('new')
  }
  t.equal(await fsp.readFile(join(mnt, 'keep'), 'utf8'), 'old content', 'keepCache: served from the kept page cache')
  t.equal(await fsp.readFile(join(mnt, 'drop'), 'utf8'), 'new content', 'default: cache dropped at open, read anew')
})

t.test('opendir receives the open flags; its handle reaches releasedir', async (t) => {
  const fs = new MapFs()
  const { mnt } = await mountForTest(t, fs)
  await fsp.mkdir(join(mnt, 'd'))
  await fsp.writeFile(join(mnt, 'd', 'x'), '')
  t.same(await fsp.readdir(join(mnt, 'd')), ['x'])
  const call = fs.callsOf('opendir', '/d').at(-1)
  const flags = call?.args[0] as number
  t.ok(flags & fsc.O_DIRECTORY, 'O_DIRECTORY is in the flags (upstream passed fi->fh, i.e. 0)')
  t.equal(flags & 3, fsc.O_RDONLY)
  const fh = (call?.args[1] as OpenResult).fh
  for (let i = 0; i < 100 && fs.callsOf('releasedir', '/d').length === 0; i++) await new Promise((r) => setTimeout(r, 20))
  t.same(fs.callsOf('releasedir', '/d').map((c) => c.args[0]), [fh])
})
