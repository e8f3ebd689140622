// The inode handlers on the real model (no mount): what the kernel gets
// when an inode it looked up is gone by the time it asks for it. Another
// host renaming over or unlinking the name does exactly that on a cluster.
import t from 'tap'
import { Adapter } from '../../src/fuse/adapter.js'
import { inodeOps } from '../../src/fuse/inode-ops.js'
import { fixedCache } from '../../src/fuse/kernel-cache.js'
import { ROOT_INO } from '../../src/fs/types.js'
import { caller, openFs } from '../helpers/fs.js'

const ctx = { ...caller, umask: 0 }

t.test('a gone inode is ESTALE (the kernel walks the path again), a missing name ENOENT', async (t) => {
  const { fs } = await openFs(t)
  const ops = inodeOps(new Adapter(fs, { nameTtlMs: 0 }), fs, fixedCache({ entry: 0, attr: 0 }))
  const a = await fs.mknod(ROOT_INO, 'a', 0o100644, 0, caller)
  t.equal((await ops.getattr(ctx, a.ino, undefined)).stat.ino, a.ino)
  // behind the kernel's back, as another host would
  await fs.unlink(ROOT_INO, 'a')
  await t.rejects(ops.getattr(ctx, a.ino, undefined), { code: 'ESTALE' })
  await t.rejects(ops.open!(ctx, a.ino, 0), { code: 'ESTALE' })
  await t.rejects(ops.setattr!(ctx, a.ino, { mode: 0o600 }, undefined), { code: 'ESTALE' })
  await t.rejects(ops.getxattr!(ctx, a.ino, 'user.x'), { code: 'ESTALE' })
  await t.rejects(ops.lookup(ctx, ROOT_INO, 'a'), { code: 'ENOENT' }, 'the name itself is gone: ENOENT')
  const b = await fs.mknod(ROOT_INO, 'b', 0o100644, 0, caller)
  await t.rejects(ops.getxattr!(ctx, b.ino, 'user.x'), { code: 'ENODATA' }, 'other errors pass unchanged')
})
