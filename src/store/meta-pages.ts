/**
 * A look at lmdb's two meta pages before lmdb opens the file: lmdb's native
 * code crashes the process (SIGSEGV, measured) on garbage there, so damage
 * must be caught first and reported as an error a person can act on.
 */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { StoreError } from './errors.js'

const LMDB_MAGIC = 0xBEEFC0DE

/**
 * lmdb trusts its two meta pages; garbage there makes the native code crash
 * the process instead of returning an error. So we look at them first: each
 * must carry lmdb's magic, and the page size must be sane. Damage deeper in
 * the file is not detected here (lmdb's own checks apply).
 */
export function checkMetaPages (envDir: string): void {
  const file = join(envDir, 'data.mdb')
  if (!existsSync(file)) return
  const size = statSync(file).size
  if (size === 0) return
  const damaged = (why: string): never => {
    throw new StoreError('EIO', `the store file ${file} is damaged (${why}). ` +
      'Restore this host from its replicas, or move the data directory away to start empty.')
  }
  const fd = openSync(file, 'r')
  try {
    const head = Buffer.alloc(64)
    if (size < 8192 || readSync(fd, head, 0, 64, 0) < 64) damaged('truncated')
    const psize = head.readUInt32LE(48)
    if (head.readUInt32LE(24) !== LMDB_MAGIC) damaged('first meta page has no lmdb magic')
    if (psize < 512 || psize > 65536 || (psize & (psize - 1)) !== 0 || size < 2 * psize) damaged(`bad page size ${psize}`)
    const second = Buffer.alloc(64)
    readSync(fd, second, 0, 64, psize)
    if (second.readUInt32LE(24) !== LMDB_MAGIC) damaged('second meta page has no lmdb magic')
  } finally {
    closeSync(fd)
  }
}
