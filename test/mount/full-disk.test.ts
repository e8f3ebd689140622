/**
 * A data directory that runs out of space: writers get ENOSPC, the store
 * stays consistent (`walkenfs check` clean), what was written before is
 * intact, and writing works again once space is freed.
 */
import t from 'tap'
import { closeSync, openSync, readFileSync, unlinkSync, writeFileSync, writeSync, fsyncSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { makeMount, sh, walkenfs } from '../helpers/mount.js'

t.test('ENOSPC on a full data directory, then recovery', async (t) => {
  const m = makeMount(t)
  mkdirSync(m.data)
  sh(`mount -t tmpfs -o size=48m walkenfs-test-full ${m.data}`)
  t.teardown(() => { sh(`umount ${m.data} 2>/dev/null || umount -l ${m.data} 2>/dev/null || true`) })
  m.mount()
  writeFileSync(join(m.mnt, 'before'), 'written before the disk filled')

  const chunk = Buffer.alloc(1024 * 1024, 0x5a)
  let error: NodeJS.ErrnoException | null = null
  let written = 0
  const fd = openSync(join(m.mnt, 'filler'), 'w')
  try {
    for (let i = 0; i < 200; i++) {
      writeSync(fd, chunk)
      written++
      if (i % 4 === 3) fsyncSync(fd)
    }
    fsyncSync(fd)
  } catch (e) {
    error = e as NodeJS.ErrnoException
  }
  try { closeSync(fd) } catch (e) { error ??= e as NodeJS.ErrnoException }
  t.ok(error !== null, `writing 200 MiB into 48 MiB failed (after ${written} MiB)`)
  t.equal(error?.code, 'ENOSPC', 'with ENOSPC')

  t.equal(readFileSync(join(m.mnt, 'before'), 'utf8'), 'written before the disk filled', 'old data intact')
  unlinkSync(join(m.mnt, 'filler'))
  writeFileSync(join(m.mnt, 'after'), 'space again')
  t.equal(readFileSync(join(m.mnt, 'after'), 'utf8'), 'space again', 'writes work once space is freed')
  m.umount()
  const check = walkenfs(['check', m.data])
  t.equal(check.status, 0, `check clean: ${check.stdout}${check.stderr}`)
})
