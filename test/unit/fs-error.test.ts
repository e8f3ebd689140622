import t from 'tap'
import { FsError } from '../../src/fs/types.js'

t.test('FsError carries its code name and message', async (t) => {
  const e = new FsError('ENOENT', 'no such entry "x"')
  t.equal(e.code, 'ENOENT')
  t.match(e.message, /^ENOENT: no such entry/)
  t.ok(e instanceof Error)
})
