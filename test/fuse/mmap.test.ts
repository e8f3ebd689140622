// Per-open direct I/O decides mmap: the MapFs fixture asks for direct I/O on
// every open with write access (as walkenfs does), so the kernel refuses a
// shared mapping of a writable fd (ENODEV) while read-only shared and
// private mappings work. A control mount that never asks for direct I/O
// shows it is the per-open flag, not FUSE, that refuses.
import t from 'tap'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import type { FuseContext, OpenResult } from '../../src/fuse/binding.js'
import { MapFs } from '../helpers/map-fs.js'
import { mountForTest } from '../helpers/fuse-mount.js'
import { mmapProbe, type MmapMode } from '../helpers/mmap-probe.js'

class CachedMapFs extends MapFs {
  override async open (ctx: FuseContext, path: string, flags: number): Promise<OpenResult> {
    return { ...(await super.open(ctx, path, flags)), directIo: false }
  }
}

const content = Buffer.alloc(8192, 'w')

t.test('direct I/O on writable opens: MAP_SHARED of a writable fd fails with ENODEV', async (t) => {
  const fs = new MapFs()
  const { mnt } = await mountForTest(t, fs)
  const file = join(mnt, 'data')
  await fsp.writeFile(file, content)

  const expect: Record<MmapMode, string> = {
    'shared-rw': 'mmap ENODEV 19',
    'shared-ro': 'ok',
    private: 'ok',
    'private-rw': 'ok'
  }
  for (const [mode, want] of Object.entries(expect) as Array<[MmapMode, string]>) {
    t.equal(await mmapProbe(file, mode), want, mode)
  }
  const opens = fs.callsOf('open', '/data').map((c) => [(c.args[0] as number) & 3, (c.args[1] as OpenResult).directIo] as const)
  t.ok(opens.some(([acc, dio]) => acc !== 0 && dio === true), 'writable opens were direct I/O')
  t.ok(opens.some(([acc, dio]) => acc === 0 && dio === false), 'read-only opens were cached')
  t.same(await fsp.readFile(file), content, 'private mappings did not write through')
})

t.test('control: without direct I/O the same shared writable mapping works', async (t) => {
  const fs = new CachedMapFs()
  const { mnt } = await mountForTest(t, fs)
  const file = join(mnt, 'data')
  await fsp.writeFile(file, content)
  t.equal(await mmapProbe(file, 'shared-rw'), 'ok')
  const back = await fsp.readFile(file)
  t.equal(back[0], content[0]! ^ 0xff, 'the shared write reached the file')
})
