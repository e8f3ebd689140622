import t from 'tap'
import { execFileSync } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, rmSync, statSync, truncateSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ModelFs } from '../../src/fs/model.js'
import { checkFs } from '../../src/fs/check.js'
import { ROOT_INO } from '../../src/fs/types.js'
import { tempDir } from '../helpers/tmp.js'
import { Store } from '../../src/store/store.js'
import { caller, pattern } from '../helpers/fs.js'

const REG = 0o100644

/** Can this process mount a tmpfs (root with CAP_SYS_ADMIN)? Probed once, cleaned up at once. */
function mountProblem (): string | false {
  if (process.getuid?.() !== 0) return 'needs root to mount a tmpfs'
  const probe = mkdtempSync(join(tmpdir(), 'walkenfs-probe-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { stdio: 'ignore' })
    execFileSync('umount', [probe], { stdio: 'ignore' })
    return false
  } catch (e) {
    return `cannot mount a tmpfs here: ${(e as Error).message}`
  } finally {
    rmSync(probe, { recursive: true, force: true })
  }
}

t.test('ENOSPC on a really full small filesystem leaves the store usable and clean', { skip: mountProblem() }, async (t) => {
  const mnt = tempDir(t, 'walkenfs-full-')
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt])
  let fs: ModelFs | null = null
  t.teardown(async () => {
    if (fs) await fs.close().catch(() => {})
    execFileSync('umount', [mnt])
  })
  fs = await ModelFs.open(mnt, { fragments: 2, store: { mapSize: 64 << 20 } })
  const chunk = pattern(128 * 1024, 1)
  const files: number[] = []
  let full: unknown = null
  let written = 0
  for (let i = 0; i < 200 && !full; i++) {
    const f = await fs.mknod(ROOT_INO, `f${i}`, REG, 0, caller)
    files.push(f.ino)
    for (let off = 0; off < 1 << 20; off += chunk.length) {
      try {
        await fs.write(f.ino, off, chunk)
        written += chunk.length
      } catch (e) {
        full = e
        break
      }
    }
  }
  t.match(full, { name: 'FsError', code: 'ENOSPC' }, 'the write that does not fit fails with ENOSPC')
  t.ok(written > 2 << 20 && written < 8 << 20, `wrote ${written} bytes before the disk was full`)
  t.same(await checkFs(fs.tables), [], 'check is clean after ENOSPC')
  // Other operations on the full disk either fit in lmdb's free pages or fail with ENOSPC, never anything else.
  const codes = new Set<string>()
  for (let i = 0; i < 50; i++) {
    try {
      const f = await fs.mknod(ROOT_INO, `late${i}`, REG, 0, caller)
      await fs.setxattr(f.ino, 'user.k', Buffer.alloc(4000, 1), 0)
      await fs.write(f.ino, 0, chunk)
      codes.add('ok')
    } catch (e) {
      codes.add(String((e as { code?: string }).code))
    }
  }
  t.ok([...codes].every((c) => c === 'ok' || c === 'ENOSPC'), `only success or ENOSPC (${[...codes].join(', ')})`)
  t.ok(codes.has('ENOSPC'))
  const st = await fs.statfs()
  t.ok(st.bavail * st.bsize < 1 << 20, `statfs shows the disk full (${st.bavail} blocks of ${st.bsize} available)`)
  t.same(await checkFs(fs.tables), [], 'still clean')
  t.ok((await fs.read(files[0], 0, chunk.length)).equals(chunk), 'earlier data reads back')
  await fs.fsync()

  // Freeing space works, and so does writing again.
  for (const i of [0, 1]) await fs.unlink(ROOT_INO, `f${i}`)
  const g = await fs.mknod(ROOT_INO, 'after', REG, 0, caller)
  await fs.write(g.ino, 0, chunk)
  t.ok((await fs.read(g.ino, 0, chunk.length)).equals(chunk), 'writes work again after deleting')
  t.same(await checkFs(fs.tables), [])

  // And the store reopens with everything that was acknowledged.
  await fs.close()
  fs = await ModelFs.open(mnt)
  t.ok((await fs.read(files[2], 0, chunk.length)).equals(chunk))
  t.same(await checkFs(fs.tables), [])
})

t.test('Store.hasRoom without reusable pages: a full filesystem has no room even when data.mdb has free pages inside', { skip: mountProblem() }, async (t) => {
  const mnt = tempDir(t, 'walkenfs-room-')
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mnt])
  let store: Store | null = null
  t.teardown(async () => {
    if (store) await store.close().catch(() => {})
    execFileSync('umount', [mnt])
  })
  store = Store.open(join(mnt, 'data'), { mapSize: 64 << 20 })
  // 8 MiB of 1 MiB values, then deleted: data.mdb keeps its size, its pages become free.
  const big = Buffer.alloc(1 << 20, 0x61)
  for (let i = 0; i < 8; i++) { store.commit([[Buffer.from(`big${i}`), big]]); await store.flush() }
  for (let i = 0; i < 8; i++) { store.commit([[Buffer.from(`big${i}`), null]]); await store.flush() }
  store.commit([[Buffer.from('small'), Buffer.from('x')]])
  await store.flush()
  t.ok(store.hasRoom(4 << 20, false), 'with the filesystem mostly free there is room either way')
  const fd = openSync(join(mnt, 'filler'), 'w')
  try {
    for (;;) writeSync(fd, big)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e
  } finally { closeSync(fd) }
  t.notOk(store.hasRoom(4 << 20, false), 'counting only the filesystem, a full disk has no room (what the Raft driver asks)')
  t.ok(store.hasRoom(4 << 20), 'counting pages free inside data.mdb it would have said yes: the estimate the Raft driver must not use')
  t.notOk(store.hasRoom(4 << 20, true, 3 << 20), 'nor with room for growth asked: the filesystem has none')
  // Give back 4.5 MiB: less than the 5 MiB the filesystem alone must have, more than the 4 MiB of growth room.
  const size = statSync(join(mnt, 'filler')).size
  truncateSync(join(mnt, 'filler'), size - 4.5 * 2 ** 20)
  t.notOk(store.hasRoom(4 << 20, false), 'counting only the filesystem, 4.5 MiB free is still too little')
  t.ok(store.hasRoom(4 << 20, true, 3 << 20), 'but a data.mdb mostly free inside, with room left to grow by, has room: it is not full for good')
})
