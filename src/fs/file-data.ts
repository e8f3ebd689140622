/**
 * A file's bytes inside a transaction: inline in the inode row while the
 * file is at most `inlineMax` bytes, else in fixed-size blocks of
 * `blockSize` (rows of the `block` table; a missing block is a hole and
 * reads as zeros). Functions here mutate the `Inode` object they are given
 * (size, stored, inline) and leave writing the inode row to the caller, so
 * that one operation writes its inode once.
 *
 * Invariants: no block holds bytes at or past `size`; every stored block
 * but the file's last (index floor((size-1)/B)) is exactly B bytes long (a
 * short last block is zero-padded to B when the file grows past it); and
 * `stored` is the sum of the lengths of the stored blocks (or of the inline
 * data). So the length of a block follows from its index and the size, and
 * truncating or freeing a file reads keys only, never the data.
 */
import type { Tx } from '../tables/types.js'
import { blockIndexOf, blockKey, type FsSettings, type Inode } from './rows.js'

export async function readData (tx: Tx, n: Inode, s: FsSettings, offset: number, length: number): Promise<Buffer> {
  if (offset >= n.size || length <= 0) return Buffer.alloc(0)
  const end = Math.min(n.size, offset + length)
  if (n.inline) {
    const out = Buffer.alloc(end - offset)
    n.inline.copy(out, 0, offset, Math.min(end, n.inline.length))
    return out
  }
  const B = s.blockSize
  const first = Math.floor(offset / B)
  const last = Math.floor((end - 1) / B)
  const out = Buffer.alloc(end - offset)
  const rows = await tx.range('block', blockKey(n.ino, first), blockKey(n.ino, last + 1))
  for (const r of rows) {
    const i = blockIndexOf(r.key)
    const blockStart = i * B
    const from = Math.max(offset, blockStart)
    const to = Math.min(end, blockStart + r.value.length)
    if (to > from) r.value.copy(out, from - offset, from - blockStart, to - blockStart)
  }
  return out
}

/** Move inline data into block 0 (the file is about to outgrow inlining). */
function uninline (tx: Tx, n: Inode): void {
  const data = n.inline
  n.inline = null
  if (data && data.length > 0) tx.put('block', blockKey(n.ino, 0), data)
}

/** Index of the last block a file of `size` bytes can hold (-1 when empty). */
const lastIndex = (size: number, B: number): number => size === 0 ? -1 : Math.floor((size - 1) / B)

/** The file grows to `newSize`: a short last block that becomes a middle block is padded to B. */
async function padLastBlock (tx: Tx, n: Inode, B: number, newSize: number): Promise<void> {
  const L = lastIndex(n.size, B)
  if (L < 0 || lastIndex(newSize, B) === L) return
  const key = blockKey(n.ino, L)
  const old = await tx.get('block', key)
  if (!old || old.length >= B) return
  const padded = Buffer.alloc(B)
  old.copy(padded)
  tx.put('block', key, padded)
  n.stored += B - old.length
}

export async function writeData (tx: Tx, n: Inode, s: FsSettings, offset: number, data: Buffer): Promise<void> {
  if (data.length === 0) return
  const end = offset + data.length
  if (!Number.isSafeInteger(end)) throw Object.assign(new Error('EFBIG: offset past 2^53'), { code: 'EFBIG' })
  const newSize = Math.max(n.size, end)
  if (n.inline) {
    if (newSize <= s.inlineMax) {
      const buf = Buffer.alloc(newSize)
      n.inline.copy(buf)
      data.copy(buf, offset)
      n.inline = buf
      n.size = newSize
      n.stored = newSize
      return
    }
    uninline(tx, n)
  }
  const B = s.blockSize
  await padLastBlock(tx, n, B, newSize)
  const first = Math.floor(offset / B)
  const last = Math.floor((end - 1) / B)
  const newLast = lastIndex(newSize, B)
  for (let i = first; i <= last; i++) {
    const blockStart = i * B
    const from = Math.max(offset, blockStart) - blockStart
    const to = Math.min(end, blockStart + B) - blockStart
    const src = data.subarray(blockStart + from - offset, blockStart + to - offset)
    const key = blockKey(n.ino, i)
    // Nothing is stored at or past EOF, so a block starting there needs no read.
    const old = blockStart < n.size ? await tx.get('block', key) : undefined
    const oldLen = old ? old.length : 0
    // Only the last block may be short (see the invariants above).
    const len = i < newLast ? B : Math.max(oldLen, to)
    let value: Buffer
    if (from === 0 && to === len) {
      value = Buffer.from(src) // the caller may reuse its buffer
    } else {
      value = Buffer.alloc(len)
      if (old) old.copy(value)
      src.copy(value, from)
    }
    n.stored += value.length - oldLen
    tx.put('block', key, value)
  }
  n.size = newSize
}

export async function truncateData (tx: Tx, n: Inode, s: FsSettings, size: number): Promise<void> {
  if (!Number.isSafeInteger(size) || size < 0) throw Object.assign(new Error(`EINVAL: size ${size}`), { code: 'EINVAL' })
  if (size === n.size) return
  if (n.inline) {
    if (size <= s.inlineMax) {
      const buf = Buffer.alloc(size)
      n.inline.copy(buf, 0, 0, Math.min(size, n.inline.length))
      n.inline = buf
      n.size = size
      n.stored = size
      return
    }
    uninline(tx, n)
    await padLastBlock(tx, n, s.blockSize, size)
    n.size = size // growing: the rest is a hole
    return
  }
  const B = s.blockSize
  if (size > n.size) {
    await padLastBlock(tx, n, B, size)
    n.size = size
    return
  }
  const keep = Math.ceil(size / B) // blocks [0, keep) may keep bytes
  await deleteBlocksFrom(tx, n, B, keep)
  if (size % B !== 0) {
    const key = blockKey(n.ino, keep - 1)
    const old = await tx.get('block', key)
    const want = size % B
    if (old && old.length > want) {
      tx.put('block', key, Buffer.from(old.subarray(0, want)))
      n.stored -= old.length - want
    }
  }
  n.size = size
  if (size === 0 && s.inlineMax > 0) {
    n.inline = Buffer.alloc(0)
    n.stored = 0
  }
}

/**
 * Delete the blocks with index >= from, in bounded pages, reading keys only:
 * by the invariant a block is B bytes long unless it is the last one, whose
 * length is read.
 */
async function deleteBlocksFrom (tx: Tx, n: Inode, B: number, from: number): Promise<void> {
  const end = blockKey(n.ino, Number.MAX_SAFE_INTEGER)
  const L = lastIndex(n.size, B)
  let start = blockKey(n.ino, from)
  for (;;) {
    const rows = await tx.range('block', start, end, { limit: 4096, keysOnly: true })
    for (const r of rows) {
      const i = blockIndexOf(r.key)
      n.stored -= i === L ? ((await tx.get('block', r.key))?.length ?? 0) : B
      tx.delete('block', r.key)
    }
    if (rows.length < 4096) return
    start = blockKey(n.ino, blockIndexOf(rows[rows.length - 1].key) + 1)
  }
}

/** Remove every row of the inode's data (blocks or inline). */
export async function freeData (tx: Tx, n: Inode, s: FsSettings): Promise<void> {
  n.inline = null
  await deleteBlocksFrom(tx, n, s.blockSize, 0)
  n.size = 0
  n.stored = 0
}
