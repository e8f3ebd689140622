/**
 * The key → fragment map. Every key starts with an 8-byte big-endian owner;
 * the fragment is `owner % fragments`. Inode numbers are allocated so that
 * `ino % fragments` is the fragment chosen for the inode (ino-alloc.ts), so
 * an inode's rows (inode, block, xattr, symlink: owner = ino) and a
 * directory's entries (dirent: owner = the directory's ino) share the
 * fragment of that inode. `meta` rows use a fragment number as owner.
 */

export const OWNER_BYTES = 8
/** Owners are safe integers: ino numbers stay below 2^53. */
export const MAX_OWNER = Number.MAX_SAFE_INTEGER

export function encodeOwner (owner: number): Buffer {
  if (!Number.isSafeInteger(owner) || owner < 0) throw new RangeError(`owner ${owner} is not a safe non-negative integer`)
  const b = Buffer.allocUnsafe(OWNER_BYTES)
  b.writeUInt32BE(Math.floor(owner / 0x100000000), 0)
  b.writeUInt32BE(owner >>> 0, 4)
  return b
}

export function decodeOwner (key: Buffer, at = 0): number {
  if (key.length < at + OWNER_BYTES) throw new RangeError(`key of ${key.length} bytes has no 8-byte owner`)
  return key.readUInt32BE(at) * 0x100000000 + key.readUInt32BE(at + 4)
}

export function fragmentOfOwner (owner: number, fragments: number): number {
  return owner % fragments
}

export function fragmentOfKey (key: Buffer, fragments: number): number {
  return decodeOwner(key) % fragments
}

/** Key of `meta` row `name` kept in fragment `fragment`. */
export function metaKey (fragment: number, name: string): Buffer {
  return Buffer.concat([encodeOwner(fragment), Buffer.from(name, 'utf8')])
}
