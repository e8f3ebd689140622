// Extended attributes through a real mount, driven by Python's os.*xattr
// (Node has none). CPython first offers a small buffer (128 bytes for a
// value, 256 for the name list) and retries bigger on ERANGE, so values and
// lists larger than that prove the patched binding answers ERANGE instead of
// overflowing or truncating.
import t from 'tap'
import { execFile } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { MapFs } from '../helpers/map-fs.js'
import { mountForTest } from '../helpers/fuse-mount.js'

const run = promisify(execFile)

const SCRIPT = `
import os, sys, json
f = sys.argv[1]
big = b'v' * 1000
os.setxattr(f, 'user.big', big)
names = ['user.n%03d_%s' % (i, 'x' * 20) for i in range(40)]
for n in names: os.setxattr(f, n, b'1')
got = os.getxattr(f, 'user.big')
listed = sorted(os.listxattr(f))
os.removexattr(f, 'user.n000_' + 'x' * 20)
try:
    os.getxattr(f, 'user.n000_' + 'x' * 20)
    missing = 'present'
except OSError as e:
    missing = e.errno
print(json.dumps({ 'big': got == big, 'biglen': len(got), 'listed': listed == sorted(names + ['user.big']), 'missing': missing }))
`

t.test('xattr values and name lists larger than the first buffer', async (t) => {
  const fs = new MapFs()
  const { mnt } = await mountForTest(t, fs)
  const file = join(mnt, 'f')
  await fsp.writeFile(file, 'x')
  const out = await run('python3', ['-c', SCRIPT, file]).catch((e: Error) => e)
  if (out instanceof Error && /ENOENT/.test(out.message)) {
    t.pass('xattrs not checked', { skip: 'python3 is not available' })
    return
  }
  t.notOk(out instanceof Error, out instanceof Error ? out.message : 'python ran')
  if (out instanceof Error) return
  const r = JSON.parse(out.stdout) as { big: boolean, biglen: number, listed: boolean, missing: number | string }
  t.equal(r.biglen, 1000, 'whole 1000-byte value')
  t.ok(r.big, 'value intact')
  t.ok(r.listed, 'all 41 names listed')
  t.equal(r.missing, 61, 'removed attribute is ENODATA')
  t.equal(fs.nodes.get('/f')!.xattrs.size, 40)
})
