/**
 * POSIX behaviour of a real walkenfs mount (FUSE + lmdb, one host), driven
 * with ordinary syscalls and tools, each with its error codes. The suite
 * runs once per FUSE binding: posix.test.ts (the default, low-level) and
 * posix-path-api.test.ts (fuse_api=path).
 */
import type tap from 'tap'
import {
  closeSync, existsSync, fstatSync, ftruncateSync, linkSync, lstatSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, readlinkSync,
  renameSync, rmdirSync, statSync, symlinkSync, truncateSync, unlinkSync, writeFileSync, writeSync, chmodSync, chownSync, statfsSync, appendFileSync
} from 'node:fs'
import { join } from 'node:path'
import { mounted, sh, shr } from '../helpers/mount.js'

/** Registers the suite on `t`, against a mount made with `opts`. */
export function posixSuite (t: typeof tap, opts: string): void {
  const m = mounted(t, opts)
  const p = (...names: string[]) => join(m.mnt, ...names)

  t.test('regular files: write, read back, append, overwrite in the middle', async (t) => {
    writeFileSync(p('a.txt'), 'hello world\n')
    t.equal(readFileSync(p('a.txt'), 'utf8'), 'hello world\n')
    appendFileSync(p('a.txt'), 'more\n')
    t.equal(readFileSync(p('a.txt'), 'utf8'), 'hello world\nmore\n')
    const fd = openSync(p('a.txt'), 'r+')
    writeSync(fd, 'J', 6)
    closeSync(fd)
    t.equal(readFileSync(p('a.txt'), 'utf8'), 'hello Jorld\nmore\n')
    const st = statSync(p('a.txt'))
    t.equal(st.size, 17)
    t.ok(st.isFile())
    t.equal(st.nlink, 1)
  })

  t.test('large file crossing many blocks reads back byte-identical', async (t) => {
    const buf = Buffer.alloc(3 * 1024 * 1024 + 123)
    for (let i = 0; i < buf.length; i++) buf[i] = (i * 131 + (i >> 12)) & 0xff
    writeFileSync(p('big.bin'), buf)
    const back = readFileSync(p('big.bin'))
    t.equal(back.length, buf.length)
    t.ok(back.equals(buf), 'content identical')
    // an unaligned read in the middle
    const fd = openSync(p('big.bin'), 'r')
    const part = Buffer.alloc(100_000)
    const n = readSync(fd, part, 0, part.length, 1_000_003)
    closeSync(fd)
    t.equal(n, part.length)
    t.ok(part.equals(buf.subarray(1_000_003, 1_100_003)))
  })

  t.test('truncate: shrink, grow with a hole of zeros, ftruncate', async (t) => {
    writeFileSync(p('tr.bin'), Buffer.alloc(10_000, 0x61))
    truncateSync(p('tr.bin'), 100)
    t.equal(statSync(p('tr.bin')).size, 100)
    truncateSync(p('tr.bin'), 300_000)
    const b = readFileSync(p('tr.bin'))
    t.equal(b.length, 300_000)
    t.equal(b.subarray(0, 100).toString(), 'a'.repeat(100))
    t.ok(b.subarray(100).every((x) => x === 0), 'the grown part reads as zeros')
    const fd = openSync(p('tr.bin'), 'r+')
    ftruncateSync(fd, 5)
    t.equal(fstatSync(fd).size, 5)
    closeSync(fd)
    t.equal(readFileSync(p('tr.bin'), 'utf8'), 'aaaaa')
  })

  t.test('sparse write at 5 GiB: 64-bit offsets and sizes end to end', async (t) => {
    const off = 5 * 1024 * 1024 * 1024
    const fd = openSync(p('sparse.bin'), 'w+')
    writeSync(fd, Buffer.from('past four gigabytes'), 0, 19, off)
    closeSync(fd)
    const st = statSync(p('sparse.bin'))
    t.equal(st.size, off + 19)
    t.ok(st.blocks * 512 < 16 * 1024 * 1024, `sparse: ${st.blocks} blocks stored`)
    const rfd = openSync(p('sparse.bin'), 'r')
    const tail = Buffer.alloc(19)
    t.equal(readSync(rfd, tail, 0, 19, off), 19)
    t.equal(tail.toString(), 'past four gigabytes')
    const hole = Buffer.alloc(4096, 1)
    t.equal(readSync(rfd, hole, 0, 4096, off - 4096), 4096)
    t.ok(hole.every((x) => x === 0), 'the hole before it reads as zeros')
    closeSync(rfd)
    unlinkSync(p('sparse.bin'))
  })

  t.test('directories: mkdir, readdir, nlink, rmdir, ENOTEMPTY, ENOTDIR, EEXIST', async (t) => {
    mkdirSync(p('d'))
    mkdirSync(p('d', 'sub1'))
    mkdirSync(p('d', 'sub2'))
    writeFileSync(p('d', 'f'), 'x')
    t.same(readdirSync(p('d')).sort(), ['f', 'sub1', 'sub2'])
    t.equal(statSync(p('d')).nlink, 4, '2 + one per subdirectory')
    t.throws(() => rmdirSync(p('d')), { code: 'ENOTEMPTY' })
    t.throws(() => mkdirSync(p('d')), { code: 'EEXIST' })
    t.throws(() => mkdirSync(p('d', 'f', 'x')), { code: 'ENOTDIR' })
    t.throws(() => rmdirSync(p('d', 'f')), { code: 'ENOTDIR' })
    t.throws(() => unlinkSync(p('d', 'sub1')), { code: 'EISDIR' })
    t.throws(() => statSync(p('d', 'nope')), { code: 'ENOENT' })
    rmdirSync(p('d', 'sub2'))
    t.equal(statSync(p('d')).nlink, 3)
    t.same(sh(`ls -a ${p('d')}`).trim().split('\n'), ['.', '..', 'f', 'sub1'])
    // readdir's d_ino (ls -i reads it without a stat) is each entry's st_ino
    const dIno = new Map(sh(`ls -ai -f ${p('d')}`).trim().split('\n').map((l) => l.trim().split(/\s+/)).map(([i, n]) => [n!, Number(i)]))
    t.equal(dIno.get('f'), statSync(p('d', 'f')).ino)
    t.equal(dIno.get('sub1'), statSync(p('d', 'sub1')).ino)
    t.equal(dIno.get('.'), statSync(p('d')).ino)
    t.equal(dIno.get('..'), statSync(m.mnt).ino)
  })

  t.test('names longer than 255 bytes: ENAMETOOLONG', async (t) => {
    t.throws(() => writeFileSync(p('x'.repeat(256)), ''), { code: 'ENAMETOOLONG' })
    writeFileSync(p('y'.repeat(255)), 'ok')
    t.equal(readFileSync(p('y'.repeat(255)), 'utf8'), 'ok')
  })

  t.test('hard links share an inode and stay consistent through every name', async (t) => {
    writeFileSync(p('h1'), 'one')
    linkSync(p('h1'), p('h2'))
    const a = statSync(p('h1'))
    const b = statSync(p('h2'))
    t.equal(a.ino, b.ino, 'same inode number (use_ino)')
    t.equal(b.nlink, 2)
    chmodSync(p('h1'), 0o600)
    t.equal(statSync(p('h2')).mode & 0o777, 0o600, 'chmod through one name shows through the other at once')
    appendFileSync(p('h2'), ' two')
    t.equal(statSync(p('h1')).size, 7, 'a write through one name shows in the size of the other at once')
    t.equal(readFileSync(p('h1'), 'utf8'), 'one two')
    unlinkSync(p('h1'))
    t.equal(statSync(p('h2')).nlink, 1)
    t.equal(readFileSync(p('h2'), 'utf8'), 'one two')
    mkdirSync(p('hd'))
    t.throws(() => linkSync(p('hd'), p('hd2')), { code: 'EPERM' }, 'no hard links to directories')
  })

  t.test('symlinks and fifos', async (t) => {
    symlinkSync('target/of/link', p('sl'))
    t.equal(readlinkSync(p('sl')), 'target/of/link')
    t.ok(lstatSync(p('sl')).isSymbolicLink())
    writeFileSync(p('real'), 'via link')
    symlinkSync('real', p('sl2'))
    t.equal(readFileSync(p('sl2'), 'utf8'), 'via link')
    sh(`mkfifo ${p('fifo')}`)
    t.ok(lstatSync(p('fifo')).isFIFO())
    // a fifo on walkenfs is a local rendezvous like on any disk
    t.equal(sh(`(echo through-fifo > ${p('fifo')} &) ; cat ${p('fifo')}`).trim(), 'through-fifo')
  })

  t.test('rename: replace, across directories, directories, and the errors', async (t) => {
    mkdirSync(p('r1'))
    mkdirSync(p('r2'))
    writeFileSync(p('r1', 'a'), 'A')
    writeFileSync(p('r2', 'b'), 'B')
    renameSync(p('r1', 'a'), p('r2', 'b'))
    t.equal(readFileSync(p('r2', 'b'), 'utf8'), 'A', 'the target was replaced')
    t.notOk(existsSync(p('r1', 'a')))
    mkdirSync(p('r1', 'dir'))
    writeFileSync(p('r1', 'dir', 'inner'), 'I')
    renameSync(p('r1', 'dir'), p('r2', 'moved'))
    t.equal(readFileSync(p('r2', 'moved', 'inner'), 'utf8'), 'I')
    t.equal(statSync(p('r1')).nlink, 2)
    t.equal(statSync(p('r2')).nlink, 3)
    t.throws(() => renameSync(p('r2'), p('r2', 'moved', 'x')), { code: 'EINVAL' }, 'a directory into its own subtree')
    mkdirSync(p('r1', 'empty'))
    renameSync(p('r1', 'empty'), p('r2', 'moved2'))
    mkdirSync(p('r1', 'full'))
    writeFileSync(p('r1', 'full', 'x'), '')
    mkdirSync(p('r1', 'e2'))
    t.throws(() => renameSync(p('r1', 'e2'), p('r1', 'full')), { code: 'ENOTEMPTY' })
    t.throws(() => renameSync(p('r1', 'e2'), p('r2', 'b')), { code: 'ENOTDIR' })
    t.throws(() => renameSync(p('r2', 'b'), p('r1', 'e2')), { code: 'EISDIR' })
    renameSync(p('r1', 'e2'), p('r2', 'moved2'))
    t.ok(statSync(p('r2', 'moved2')).isDirectory(), 'an empty directory is replaced')
  })

  t.test('unlink of an open file: it keeps working until the last close', async (t) => {
    writeFileSync(p('open.bin'), 'still here')
    const fd = openSync(p('open.bin'), 'r+')
    unlinkSync(p('open.bin'))
    t.notOk(existsSync(p('open.bin')))
    const b = Buffer.alloc(10)
    t.equal(readSync(fd, b, 0, 10, 0), 10)
    t.equal(b.toString(), 'still here')
    writeSync(fd, ' and more', 10)
    const st = fstatSync(fd)
    t.equal(st.size, 19)
    t.equal(st.nlink, 0)
    closeSync(fd)
    t.same(readdirSync(m.mnt).filter((n) => n.startsWith('.fuse_hidden')), [], 'no .fuse_hidden files')
  })

  t.test('chmod, chown and ownership of new files from the caller', async (t) => {
    writeFileSync(p('own'), '')
    chownSync(p('own'), 1234, 5678)
    let st = statSync(p('own'))
    t.equal(st.uid, 1234)
    t.equal(st.gid, 5678)
    chmodSync(p('own'), 0o4751)
    t.equal(statSync(p('own')).mode & 0o7777, 0o4751)
    mkdirSync(p('shared'), { mode: 0o777 })
    chmodSync(p('shared'), 0o777)
    sh(`setpriv --reuid=4321 --regid=8765 --clear-groups touch ${p('shared', 'by-user')}`)
    st = statSync(p('shared', 'by-user'))
    t.equal(st.uid, 4321, 'owner is the calling process uid')
    t.equal(st.gid, 8765, 'group is the calling process gid')
    sh(`setpriv --reuid=4321 --regid=8765 --clear-groups mkdir ${p('shared', 'dir-by-user')}`)
    t.equal(statSync(p('shared', 'dir-by-user')).uid, 4321)
    const r = shr(`setpriv --reuid=4321 --regid=8765 --clear-groups sh -c 'echo x > ${p('own')}'`)
    t.not(r.status, 0, 'the kernel checks mode bits (default_permissions)')
    t.match(r.stderr, /Permission denied/)
  })

  t.test('utimens: distinct atime and mtime with nanoseconds; only one of them', async (t) => {
    writeFileSync(p('times'), '')
    sh(`touch -a -d '2001-02-03 04:05:06.123456789' ${p('times')}`)
    sh(`touch -m -d '2011-12-13 14:15:16.987654321' ${p('times')}`)
    const out = sh(`stat -c '%x|%y' ${p('times')}`).trim()
    const [atime, mtime] = out.split('|')
    t.match(atime!, /^2001-02-03 04:05:06\.123456789/, 'touch -a set only atime, to the nanosecond')
    t.match(mtime!, /^2011-12-13 14:15:16\.987654321/, 'touch -m set only mtime, and atime stayed')
    sh(`touch -m ${p('times')}`)
    const [a2, m2] = sh(`stat -c '%X|%Y' ${p('times')}`).trim().split('|').map(Number)
    t.equal(a2, Number(sh(`date -d '2001-02-03 04:05:06' +%s`)), 'UTIME_OMIT kept atime')
    t.ok(Math.abs(m2! - Date.now() / 1000) < 60, 'UTIME_NOW set mtime to now')
  })

  t.test('xattrs: user.* and trusted.*, create/replace flags, ENODATA, ERANGE', async (t) => {
    writeFileSync(p('xa'), '')
    sh(`setfattr -n user.color -v blue ${p('xa')}`)
    sh(`setfattr -n trusted.secret -v s3 ${p('xa')}`)
    t.match(sh(`getfattr --only-values -n user.color ${p('xa')}`), /^blue$/)
    t.match(sh(`getfattr -d -m - ${p('xa')}`), /trusted\.secret="s3"/)
    t.match(sh(`getfattr -d -m - ${p('xa')}`), /user\.color="blue"/)
    t.match(shr(`getfattr -n user.none ${p('xa')}`).stderr, /No such attribute/, 'ENODATA')
    const py = (code: string) => shr(`python3 -c '${code}'`)
    const flags = py(`
import os
p=${JSON.stringify(p('xa'))}
try:
  os.setxattr(p, "user.color", b"red", os.XATTR_CREATE); print("no error")
except OSError as e: print(e.errno)
try:
  os.setxattr(p, "user.nope", b"x", os.XATTR_REPLACE); print("no error")
except OSError as e: print(e.errno)
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(2)
n = libc.getxattr(p.encode(), b"user.color", buf, 2)
print(n, ctypes.get_errno())
print(libc.getxattr(p.encode(), b"user.color", None, 0))
`)
    t.equal(flags.status, 0, flags.stderr)
    t.same(flags.stdout.trim().split('\n'), ['17', '61', '-1 34', '4'], 'EEXIST, ENODATA, ERANGE, size query')
    sh(`setfattr -x user.color ${p('xa')}`)
    t.notMatch(sh(`getfattr -d ${p('xa')}`), /user\.color/)
  })

  t.test('statfs reports the data directory\'s real capacity', async (t) => {
    const ours = statfsSync(m.mnt)
    const disk = statfsSync(m.data)
    const ourBytes = ours.blocks * ours.bsize
    const diskBytes = disk.blocks * disk.bsize
    t.ok(Math.abs(ourBytes - diskBytes) / diskBytes < 0.01, `total ${ourBytes} vs data disk ${diskBytes}`)
    t.ok(ours.bavail * ours.bsize <= disk.bavail * disk.bsize * 1.01 + 1e6)
    t.equal(sh(`stat -f -c %l ${m.mnt}`).trim(), '255', 'namemax')
  })
}
