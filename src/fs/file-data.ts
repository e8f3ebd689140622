/**
 * A file's bytes inside a transaction: inline in the inode row while the
 * file is at most `inlineMax` bytes, else in fixed-size blocks of
 * `blockSize` (rows of the `block` table; a missing block is a hole and
 * reads as zeros). Functions here mutate the `Inode` object they are given
 * (size, stored, inline) and leave writing the inode row to the caller, so
 * that one operation writes its inode once.
 *
 * Invariants: no block holds bytes at or past `size`; `stored` is the sum of
 * the lengths of the stored blocks (or of the inline data).
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
  const first = Math.floor(offset / B)
  const last = Math.floor((end - 1) / B)
  for (let i = first; i <= last; i++) {
    const blockStart = i * B
    const from = Math.max(offset, blockStart) - blockStart
    const to = Math.min(end, blockStart + B) - blockStart
    const src = data.subarray(blockStart + from - offset, blockStart + to - offset)
    const key = blockKey(n.ino, i)
    // Nothing is stored at or past EOF, so a block starting there needs no read.
    const old = blockStart < n.size ? await tx.get('block', key) : undefined
    const oldLen = old ? old.length : 0
    let value: Buffer
    if (from === 0 && to >= oldLen) {
      value = Buffer.from(src) // the caller may reuse its buffer
    } else {
      value = Buffer.alloc(Math.max(oldLen, to))
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
    n.size = size // growing: the rest is a hole
    return
  }
  if (size > n.size) {
    n.size = size
    return
  }
  const B = s.blockSize
  const keep = Math.ceil(size / B) // blocks [0, keep) may keep bytes
  await deleteBlocksFrom(tx, n, keep)
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
 * Delete the blocks with index >= from, in bounded pages. `count` keeps
 * `stored` right (it needs the values' lengths); a whole-file free skips
 * reading the values.
 */
async function deleteBlocksFrom (tx: Tx, n: Inode, from: number, count = true): Promise<void> {
  const end = blockKey(n.ino, Number.MAX_SAFE_INTEGER)
  let start = blockKey(n.ino, from)
  for (;;) {
    const rows = await tx.range('block', start, end, { limit: 4096, keysOnly: !count })
    for (const r of rows) {
      tx.delete('block', r.key)
      if (count) n.stored -= r.value.length
    }
    if (rows.length < 4096) return
    start = blockKey(n.ino, blockIndexOf(rows[rows.length - 1].key) + 1)
  }
}

/** Remove every row of the inode's data (blocks or inline). */
export async function freeData (tx: Tx, n: Inode): Promise<void> {
  n.inline = null
  await deleteBlocksFrom(tx, n, 0, false)
  n.size = 0
  n.stored = 0
}
