// How handler failures reach callers: a FuseError or any error with a Node
// errno code (like src/fs FsError) becomes that errno; anything else becomes
// EIO and is reported to onInternalError, never a silent success.
import t from 'tap'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { FuseError, type FuseContext } from '../../src/fuse/binding.js'
import { MapFs } from '../helpers/map-fs.js'
import { mountForTest } from '../helpers/fuse-mount.js'

class FailingFs extends MapFs {
  // not async: the sync-bug case throws before any promise exists
  override mkdir (ctx: FuseContext, path: string, mode: number): Promise<void> {
    if (path === '/erofs') return Promise.reject(new FuseError('EROFS'))
    if (path === '/coded') return Promise.reject(Object.assign(new Error('disk full'), { code: 'ENOSPC' }))
    if (path === '/bug') return Promise.reject(new TypeError('a bug in a handler'))
    if (path === '/sync-bug') throw new TypeError('a synchronous bug in a handler')
    return super.mkdir(ctx, path, mode)
  }

  override async read (): Promise<number> {
    return 1e9 // more than asked for: must not reach the kernel as a count
  }
}

t.test('errors from handlers', async (t) => {
  const reported: Array<[string, unknown]> = []
  const { mnt } = await mountForTest(t, new FailingFs(), { onInternalError: (op, err) => reported.push([op, err]) })
  await t.rejects(fsp.mkdir(join(mnt, 'erofs')), { code: 'EROFS' }, 'FuseError errno')
  await t.rejects(fsp.mkdir(join(mnt, 'coded')), { code: 'ENOSPC' }, 'error with a Node code')
  t.same(reported, [], 'errno answers are not internal errors')
  await t.rejects(fsp.mkdir(join(mnt, 'bug')), { code: 'EIO' }, 'a thrown bug is EIO')
  await t.rejects(fsp.mkdir(join(mnt, 'sync-bug')), { code: 'EIO' }, 'a handler that throws before returning a promise is EIO')
  t.same(reported.map(([op, err]) => [op, (err as Error).name]), [['mkdir', 'TypeError'], ['mkdir', 'TypeError']], 'both reported')
  await fsp.writeFile(join(mnt, 'f'), 'abc')
  await t.rejects(fsp.readFile(join(mnt, 'f')), { code: 'EIO' }, 'a read count beyond the request is EIO')
  t.match(String(reported.at(-1)?.[1]), /read handler returned 1000000000/)
  await fsp.mkdir(join(mnt, 'fine'))
  t.ok((await fsp.stat(join(mnt, 'fine'))).isDirectory(), 'the mount still works')
})

t.test('FuseError refuses an unknown errno', async (t) => {
  t.throws(() => new FuseError('ENOTANERRNO' as 'EIO'), /unknown errno/)
  t.equal(new FuseError(-2).errno, 2)
  t.equal(new FuseError('ENOENT').errno, 2)
})

t.test('timeoutMs bounds a handler that never answers (ETIMEDOUT)', async (t) => {
  class StuckFs extends MapFs {
    override rmdir (): Promise<void> {
      return new Promise(() => {}) // never settles
    }
  }
  const fs = new StuckFs()
  const { mnt } = await mountForTest(t, fs, { timeoutMs: 300 })
  await fsp.mkdir(join(mnt, 'd'))
  await t.rejects(fsp.rmdir(join(mnt, 'd')), { code: 'ETIMEDOUT' })
  t.ok((await fsp.stat(join(mnt, 'd'))).isDirectory(), 'mount still serves other operations')
})
