/**
 * A data directory that runs out of space: writers get ENOSPC, the store
 * stays consistent (`walkenfs check` clean), what was written before is
 * intact, and writing works again once space is freed.
 */
import t from 'tap'
import { closeSync, openSync, readFileSync, unlinkSync, writeFileSync, writeSync, fsyncSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { makeMount, sh, walkenfs } from '../helpers/mount.js'

/** A walkenfs mount whose data directory is a 48 MiB tmpfs (unmounted at teardown). */
function mountOnSmallDisk (t: Parameters<typeof makeMount>[0], label: string): ReturnType<typeof makeMount> {
  const m = makeMount(t)
  mkdirSync(m.data)
  sh(`mount -t tmpfs -o size=48m ${label} ${m.data}`)
  t.teardown(() => { sh(`umount ${m.data} 2>/dev/null || umount -l ${m.data} 2>/dev/null || true`) })
  m.mount()
  return m
}

t.test('ENOSPC on a full data directory, then recovery', async (t) => {
  const m = mountOnSmallDisk(t, 'walkenfs-test-full')
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

t.test('an appender that keeps its descriptor across ENOSPC goes on at the real end of the file', async (t) => {
  // The kernel counts a write's bytes into the size it keeps as soon as the
  // write is answered; when their commit then fails (ENOSPC), the file is
  // shorter than the kernel thinks. An O_APPEND write taking its offset from
  // the kernel would leave a run of zeros where the failed bytes were.
  const m = mountOnSmallDisk(t, 'walkenfs-test-append')
  writeFileSync(join(m.mnt, 'ballast'), Buffer.alloc(8 * 1024 * 1024, 0x42))
  const log = join(m.mnt, 'log')
  const fd = openSync(log, 'a')
  writeSync(fd, 'BEGIN\n')
  fsyncSync(fd)
  const chunk = Buffer.alloc(1024 * 1024, 0x5a)
  let error: NodeJS.ErrnoException | null = null
  for (let i = 0; i < 100 && error === null; i++) {
    try {
      writeSync(fd, chunk)
      fsyncSync(fd)
    } catch (e) {
      error = e as NodeJS.ErrnoException
    }
  }
  t.equal(error?.code, 'ENOSPC', 'appending filled the data directory')
  unlinkSync(join(m.mnt, 'ballast'))
  writeSync(fd, 'END\n')
  fsyncSync(fd)
  closeSync(fd)
  const content = readFileSync(log)
  t.equal(content.indexOf(0), -1, 'no run of zeros: the failed bytes left no hole')
  t.ok(content.subarray(0, 6).toString() === 'BEGIN\n' && content.subarray(-4).toString() === 'END\n', 'the records before and after are intact')
  // a write cut short by the full disk may leave part of a chunk (as on a local disk), never other bytes
  t.ok(content.subarray(6, -4).every((b) => b === 0x5a), 'only appended bytes between them')
})
