/**
 * Row formats of the filesystem tables (pure encoding, no I/O).
 *
 * inode   key [ino]                 value: 72-byte header + inline data
 * dirent  key [parent][name utf8]   value: [ino u64][type u8]
 * block   key [ino][index u64]      value: the block's bytes (never past EOF;
 *                                   shorter than the block size at the end
 *                                   or before a hole; missing = a hole)
 * xattr   key [ino][name utf8]      value: the value bytes
 * symlink key [ino]                 value: the target bytes
 * meta    key [fragment][name]      fs settings (fragment 0, "fs"), inode
 *                                   counters, orphans ("orphan" + [ino])
 *
 * Header (big-endian): version u8, flags u8 (bit 0: data inline), pad u16,
 * mode, nlink, uid, gid, rdev (u32 each), size u64, stored u64 (bytes held
 * in blocks/inline, for st_blocks), parent u64 (directories: their parent;
 * else 0), atime, mtime, ctime (i64 ns).
 */
import { encodeOwner, decodeOwner, metaKey } from '../tables/fragments.js'

export const S_IFMT = 0o170000
export const S_IFDIR = 0o040000
export const S_IFREG = 0o100000
export const S_IFLNK = 0o120000
export const S_IFIFO = 0o010000
export const S_IFSOCK = 0o140000
export const S_IFCHR = 0o020000
export const S_IFBLK = 0o060000

const HEADER = 72
const FLAG_INLINE = 1

export interface Inode {
  ino: number
  mode: number
  nlink: number
  uid: number
  gid: number
  rdev: number
  size: number
  stored: number
  parent: number
  atimeNs: bigint
  mtimeNs: bigint
  ctimeNs: bigint
  /** the file's bytes when it is small enough to live in its inode row; else null */
  inline: Buffer | null
}

export const isDir = (mode: number): boolean => (mode & S_IFMT) === S_IFDIR

function writeU64 (b: Buffer, v: number, at: number): void {
  b.writeUInt32BE(Math.floor(v / 0x100000000), at)
  b.writeUInt32BE(v >>> 0, at + 4)
}
function readU64 (b: Buffer, at: number): number {
  return b.readUInt32BE(at) * 0x100000000 + b.readUInt32BE(at + 4)
}

export function encodeInode (n: Inode): Buffer {
  const inl = n.inline
  const b = Buffer.allocUnsafe(HEADER + (inl ? inl.length : 0))
  b[0] = 1
  b[1] = inl ? FLAG_INLINE : 0
  b.writeUInt16BE(0, 2)
  b.writeUInt32BE(n.mode >>> 0, 4)
  b.writeUInt32BE(n.nlink >>> 0, 8)
  b.writeUInt32BE(n.uid >>> 0, 12)
  b.writeUInt32BE(n.gid >>> 0, 16)
  b.writeUInt32BE(n.rdev >>> 0, 20)
  writeU64(b, n.size, 24)
  writeU64(b, n.stored, 32)
  writeU64(b, n.parent, 40)
  b.writeBigInt64BE(n.atimeNs, 48)
  b.writeBigInt64BE(n.mtimeNs, 56)
  b.writeBigInt64BE(n.ctimeNs, 64)
  if (inl) inl.copy(b, HEADER)
  return b
}

export function decodeInode (ino: number, b: Buffer): Inode {
  if (b.length < HEADER || b[0] !== 1) throw new Error(`inode ${ino}: malformed row (${b.length} bytes, version ${b[0]})`)
  return {
    ino,
    mode: b.readUInt32BE(4),
    nlink: b.readUInt32BE(8),
    uid: b.readUInt32BE(12),
    gid: b.readUInt32BE(16),
    rdev: b.readUInt32BE(20),
    size: readU64(b, 24),
    stored: readU64(b, 32),
    parent: readU64(b, 40),
    atimeNs: b.readBigInt64BE(48),
    mtimeNs: b.readBigInt64BE(56),
    ctimeNs: b.readBigInt64BE(64),
    inline: (b[1] & FLAG_INLINE) ? Buffer.from(b.subarray(HEADER)) : null
  }
}

export const inodeKey = (ino: number): Buffer => encodeOwner(ino)

export function direntKey (parent: number, name: string): Buffer {
  return Buffer.concat([encodeOwner(parent), Buffer.from(name, 'utf8')])
}
export const direntPrefix = (parent: number): Buffer => encodeOwner(parent)
export const direntName = (key: Buffer): string => key.subarray(8).toString('utf8')

export function encodeDirent (ino: number, mode: number): Buffer {
  const b = Buffer.allocUnsafe(9)
  writeU64(b, ino, 0)
  b[8] = (mode & S_IFMT) >>> 12
  return b
}
export function decodeDirent (b: Buffer): { ino: number, type: number } {
  return { ino: readU64(b, 0), type: (b[8] << 12) }
}

export function blockKey (ino: number, index: number): Buffer {
  const b = Buffer.allocUnsafe(16)
  writeU64(b, ino, 0)
  writeU64(b, index, 8)
  return b
}
export const blockIndexOf = (key: Buffer): number => readU64(key, 8)

export function xattrKey (ino: number, name: string): Buffer {
  return Buffer.concat([encodeOwner(ino), Buffer.from(name, 'utf8')])
}
export const xattrName = (key: Buffer): string => key.subarray(8).toString('utf8')

export const symlinkKey = (ino: number): Buffer => encodeOwner(ino)

export const ownerOf = (key: Buffer): number => decodeOwner(key)

/** Orphans: inodes with no name left but open handles; freed at last release or next start. */
export function orphanKey (fragment: number, ino: number): Buffer {
  return Buffer.concat([metaKey(fragment, 'orphan'), encodeOwner(ino)])
}
export const orphanPrefix = (fragment: number): Buffer => metaKey(fragment, 'orphan')
export const orphanInoOf = (key: Buffer): number => decodeOwner(key, key.length - 8)

export const FS_SETTINGS_KEY = metaKey(0, 'fs')
export interface FsSettings { blockSize: number, inlineMax: number }
